"""The GitHub step summary: when GITHUB_STEP_SUMMARY names a file, a run of
awf appends the Markdown summary of its traffic there, with or without
--log-file, as the calling user (never root: a file only root may write is
refused), never through a symbolic link; --no-step-summary leaves it alone.
A hostile DNS name reaches the table as text, not as Markdown or HTML."""

import os
import re

from harness.util import token
from harness.world import GID, UID, require_awf, world  # noqa: F401 (fixture)

require_awf()

BEFORE = "## an earlier step's summary\n"
HOSTILE_LABEL = b"x|y<script>*_[a](javascript:1)"

# Two requests through the proxy: one allowed, one denied.
TRAFFIC = ("curl -q -sS -o /dev/null --cacert {ca} https://allowed.test/hello?t={t}; "
           "curl -q -sS -o /dev/null --cacert {ca} https://other.test/hello?t={t}; exit 3")

# A DNS query for a name whose label holds Markdown and HTML, sent raw.
HOSTILE_QUERY = r"""
import socket, struct, sys
label = bytes.fromhex(sys.argv[1])
q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
q += bytes([len(label)]) + label + b"\x04test\x00" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, ("127.0.0.1", 53))
print(len(s.recv(512)))
"""


def summary_file(w, name, content=BEFORE, owner=UID):
    path = os.path.join(w.user_dir("summaries"), name)
    if content is not None:
        with open(path, "w") as f:
            f.write(content)
        os.chown(path, owner, owner)
        os.chmod(path, 0o644)
    return path


def run(w, path, *args, log=False, cmd=None):
    t = token()
    cmd = cmd or ["sh", "-c", TRAFFIC.format(ca=w.ca, t=t)]
    extra = {"GITHUB_STEP_SUMMARY": path} if path else {}
    return w.awf(*cmd, args=["-d", "allowed.test"] + list(args), extra_env=extra, log=log)


def appended(path):
    with open(path) as f:
        text = f.read()
    assert text.startswith(BEFORE), text
    return text[len(BEFORE):]


def test_summary_appended_without_log_file(world):
    path = summary_file(world, "s1.md")
    r = run(world, path)
    assert r.rc == 3, r
    md = appended(path)
    assert md.startswith("### awf: 1 host allowed, 1 denied\n"), md
    assert re.search(r"^\| allowed\\\.test \| 1 \| 0 \| 443 \| .* \|  \|$", md, re.M), md
    assert re.search(r"^\| other\\\.test \| 0 \| 1 \| 443 \| 0 B \| 0 B \| not\\_allowed \|$",
                     md, re.M), md
    assert "```\n--allow-domains other.test\n```\n" in md, md
    assert md.index("other\\.test") < md.index("allowed\\.test")   # denied first
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (UID, GID)
    # a second run appends after the first
    r = run(world, path, log=True)
    assert r.rc == 3, r
    again = appended(path)
    assert again.startswith(md) and again.count("### awf:") == 2


def test_summary_file_created_as_the_caller(world):
    path = summary_file(world, "new.md", content=None)
    r = run(world, path)
    assert r.rc == 3, r
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (UID, GID), "created with the caller's rights"
    assert open(path).read().startswith("### awf: 1 host allowed, 1 denied")


def test_summary_never_written_as_root(world):
    """A file the caller may not write (root's) stays untouched."""
    path = summary_file(world, "roots.md", owner=0)
    r = run(world, path)
    assert r.rc == 3, r
    assert open(path).read() == BEFORE
    assert "GITHUB_STEP_SUMMARY" in r.err and "Permission denied" in r.err, r


def test_summary_not_written_through_a_symlink(world):
    """A link planted at the summary's path (pointing at a file the caller
    owns, so only O_NOFOLLOW stops it) is not followed."""
    target = summary_file(world, "target.md")
    link = os.path.join(os.path.dirname(target), "link.md")
    os.symlink(target, link)
    os.lchown(link, UID, GID)
    r = run(world, link)
    assert r.rc == 3, r
    assert open(target).read() == BEFORE
    assert "symbolic link" in r.err, r


def test_no_step_summary_flag(world):
    path = summary_file(world, "off.md")
    r = run(world, path, "--no-step-summary")
    assert r.rc == 3, r
    assert open(path).read() == BEFORE


def test_no_variable_no_summary(world):
    r = run(world, None)
    assert r.rc == 3 and "GITHUB_STEP_SUMMARY" not in r.err, r


def test_hostile_dns_name_cannot_inject_markdown(world):
    path = summary_file(world, "hostile.md")
    r = run(world, path, cmd=["python3", "-c", HOSTILE_QUERY, HOSTILE_LABEL.hex()])
    assert r.rc == 0, r
    md = appended(path)
    assert "<" not in md and ">" not in md, md
    assert "](" not in md.replace("\\]\\(", ""), md
    # the name as text: every markup byte escaped (RFC 1035's \DDD is not used
    # for printable bytes, so they arrive here as they were sent)
    row = next(line for line in md.splitlines() if "script" in line)
    assert row.startswith(r"| x\|y&lt;script&gt;\*\_\[a\]\(javascript\:1\)\.test | 0 | 1 |"), md
    cells = re.split(r"(?<!\\)\|", row)
    assert len(cells) == 9, row
    assert "--allow-domains" not in md   # not a plain name: never suggested
