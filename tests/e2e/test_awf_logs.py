"""`awf logs summary|stats|show` on crafted access logs, run as an ordinary
user (no root, no sandbox): the counts and the order of the summary, the
--allow-domains line, malformed lines reported with their numbers and never
stopping the run (--strict: exit 1), a cut last line, a hostile host name
that must not reach a terminal or inject Markdown, NO_COLOR, --denied, and
--follow across a rotation by rename."""

import json
import os
import re
import subprocess
import tempfile
import time

import pytest

from harness.world import REPO, SYS_PATH

UID = 4242  # any user but root: `awf logs` needs no privilege
HOSTILE = "x|y<script>*_[a](javascript:1)"


def awf_path():
    path = os.environ.get("AWF_BIN") or os.path.join(REPO, "build", "sandbox", "awf")
    if not os.access(path, os.X_OK):
        if os.environ.get("AWF_BIN"):
            raise RuntimeError(f"AWF_BIN={path} is not an executable")
        pytest.skip(f"no awf binary at {path}", allow_module_level=True)
    return os.path.abspath(path)


AWF = awf_path()


def as_user():
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(UID)
        os.setuid(UID)


def env(**more):
    e = {"PATH": SYS_PATH, "LANG": "C.UTF-8"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            e[k] = os.environ[k]
    e.update(more)
    return e


def logs(*args, input=None, extra_env=None, timeout=60):
    p = subprocess.run([AWF, "logs"] + list(args), input=input, capture_output=True,
                       timeout=timeout, env=env(**(extra_env or {})), preexec_fn=as_user)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    assert "Sanitizer" not in p.err and "runtime error:" not in p.err, p.err
    return p


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="awf-logs-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", d], check=True)


def write(d, name, lines, end="\n"):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write("\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + end)
    os.chmod(path, 0o644)
    return path


RUN = "5f0c8e1d2a4b6c79"


def rec(event, conn, host=None, decision="allow", reason="allowed", **f):
    r = {"ts": "2026-11-28T17:46:41.123Z", "run": RUN, "event": event, "conn": conn}
    if host is not None:
        r["host"] = host
    r.update(f)
    r["decision"] = decision
    r["reason"] = reason
    return r


def sample():
    """A small log: github.com allowed twice (one open record that never
    closed), evil.test denied, a DNS denial, a firewall refusal."""
    return [
        {"ts": "2026-11-28T17:46:40.001Z", "run": RUN, "event": "run", "version": "0.1.0"},
        rec("open", 1, "github.com", kind="connect", port=443),
        rec("connect", 1, "github.com", port=443, bytes_up=2210, bytes_down=48213,
            duration_ms=1830, status=200),
        rec("http", 2, "evil.test", "deny", "not_allowed", port=80, status=403, bytes_up=0,
            bytes_down=0, duration_ms=0, url="http://evil.test/x", method="GET"),
        rec("dns", 3, "leak.evil.test", "deny", "not_allowed", duration_ms=0, qname="leak.evil.test",
            qtype="A", answers=0),
        rec("tcp", 4, None, "deny", "port_not_allowed", port=22, original_dst="192.0.2.7:22",
            bytes_up=0, bytes_down=0, duration_ms=0),
        rec("open", 5, "github.com", kind="connect", port=443),   # awf was killed
        rec("http", 6, "api.example", port=80, bytes_up=100, bytes_down=100000, duration_ms=40,
            status=200),
    ]


# -- summary ----------------------------------------------------------------------

def test_summary_json_counts_and_order(tmp):
    path = write(tmp, "a.jsonl", sample())
    p = logs("summary", "--format", "json", path)
    assert p.returncode == 0, p.err
    s = json.loads(p.out)
    hosts = [h["host"] for h in s["hosts"]]
    # denied hosts first (then by volume), then allowed by volume
    assert set(hosts[:3]) == {"evil.test", "leak.evil.test", "192.0.2.7"}, hosts
    assert hosts[3:] == ["api.example", "github.com"], hosts
    gh = s["hosts"][4]
    # the open record of conn 1 is not counted twice; conn 5's open is
    assert (gh["allowed"], gh["denied"], gh["ports"]) == (2, 0, [443]), gh
    assert (gh["bytes_up"], gh["bytes_down"]) == (2210, 48213)
    assert s["open_only"] == 1 and s["events"] == 6
    ev = next(h for h in s["hosts"] if h["host"] == "evil.test")
    assert ev["first_denial"] == "not_allowed" and ev["denied"] == 1
    assert (s["hosts_allowed"], s["hosts_denied"]) == (2, 3)
    # the firewall's port refusal is not fixed by a domain rule
    assert s["allow_domains"] == "evil.test,leak.evil.test", s


def test_summary_text_and_several_files(tmp):
    a = write(tmp, "a.jsonl", sample())
    b = write(tmp, "b.jsonl", [rec("http", 1, "evil.test", "deny", "not_allowed", port=8080)])
    p = logs("summary", a, b)
    assert p.returncode == 0, p.err
    assert p.out.startswith("awf: 2 hosts allowed, 3 denied"), p.out
    line = next(l for l in p.out.splitlines() if l.startswith("evil.test"))
    assert re.search(r"evil\.test\s+0\s+2\s+80,8080\s", line), line
    assert "--allow-domains evil.test,leak.evil.test" in p.out


def test_summary_markdown_hostile_host(tmp):
    """A host name holding Markdown and HTML must come out as text: no tag,
    no link, no extra table cell."""
    path = write(tmp, "a.jsonl", sample() + [
        rec("http", 9, HOSTILE, "deny", "invalid_name", port=80),
        rec("http", 10, "a`b\u001b[2J\n| x |", "deny", "invalid_name", port=80)])
    p = logs("summary", "--format", "markdown", path)
    assert p.returncode == 0, p.err
    md = p.out
    assert md.startswith("### awf: 2 hosts allowed, 5 denied\n"), md
    assert "<" not in md and ">" not in md and "\x1b" not in md
    assert "](" not in md.replace("\\]\\(", ""), md
    body = md.replace("```\n", "")
    assert not re.search(r"(?<!\\)`", body), md   # every backtick escaped
    assert r"x\|y&lt;script&gt;\*\_\[a\]\(javascript\:1\)" in md, md
    rows = [l for l in md.splitlines() if l.startswith("| ")]
    assert len(rows) == 2 + 7, md   # header, rule, one row per host
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)   # unescaped pipes only
        assert len(cells) == 9, row           # 7 cells and the two ends
    # the paste line: in a code block, the plain names only
    assert "```\n--allow-domains evil.test,leak.evil.test\n```" in md


# -- malformed lines ------------------------------------------------------------

MALFORMED = [
    json.dumps(rec("http", 1, "a.test", port=80)),
    "not json",                                                      # 2
    json.dumps({"run": RUN, "event": "http", "host": "b.test"}),     # 3: no conn
    json.dumps(rec("http", 3, "c.test", port="80")),                 # 4: port a string
    "",                                                              # 5: blank, skipped
    json.dumps(rec("http", 4, "d.test", decision="maybe")),          # 6
    "[1,2]",                                                         # 7
    json.dumps(rec("http", 5, "e.test", port=443)),
    '{"ts":"2026-11-28T17:46:42.007Z","run":"' + RUN + '","event":"http","co',  # 9: cut
]


@pytest.mark.parametrize("cmd", ["summary", "stats", "show"])
def test_malformed_lines_reported_and_skipped(tmp, cmd):
    path = write(tmp, "m.jsonl", MALFORMED, end="")
    p = logs(cmd, path)
    assert p.returncode == 0, p.err
    bad = [int(m) for m in re.findall(r"m\.jsonl:(\d+): ", p.err)]
    assert bad == [2, 3, 4, 6, 7, 9], p.err
    assert "missing \"conn\"" in p.err and "\"port\" is not a non-negative integer" in p.err
    assert "cut short" in p.err and "6 malformed lines" in p.err
    # the good lines on either side still count
    assert "a.test" in p.out and "e.test" in p.out, p.out
    assert logs(cmd, "--strict", path).returncode == 1
    good = write(tmp, "g.jsonl", MALFORMED[:1])
    assert logs(cmd, "--strict", good).returncode == 0


def test_huge_line_is_malformed_not_memory(tmp):
    path = write(tmp, "h.jsonl", ['{"x":"' + "a" * (3 << 20) + '"}',
                                  json.dumps(rec("http", 1, "a.test", port=80))])
    p = logs("summary", "--format", "json", path)
    assert p.returncode == 0 and "h.jsonl:1: longer than 1 MiB" in p.err, p.err
    assert json.loads(p.out)["hosts"][0]["host"] == "a.test"


def test_usage_errors():
    assert logs().returncode == 2
    assert logs("frobnicate", "x").returncode == 2
    p = logs("summary", "--format", "yaml", "x")
    assert p.returncode == 2 and "expected text, markdown or json" in p.err
    assert logs("stats", "--follow", "x").returncode == 2
    p = logs("summary", "/nonexistent/log")
    assert p.returncode == 2 and "/nonexistent/log: No such file" in p.err


def test_stdin(tmp):
    data = "\n".join(json.dumps(x) for x in sample()) + "\n"
    p = logs("stats", "--format", "json", "-", input=data.encode())
    assert p.returncode == 0, p.err
    assert json.loads(p.out)["events"] == 6


# -- stats ------------------------------------------------------------------------

def test_stats_percentiles_and_reasons(tmp):
    lines = [rec("http", i + 1, f"h{i % 3}.test", port=80, duration_ms=i + 1, bytes_up=1,
                 bytes_down=2) for i in range(1000)]
    lines += [rec("http", 2000 + i, "no.test", "deny", "not_allowed", port=80)
              for i in range(5)]
    lines += [rec("http", 3000, "blk.test", "deny", "blocked", port=80)]
    path = write(tmp, "s.jsonl", lines)
    p = logs("stats", "--format", "json", path)
    assert p.returncode == 0, p.err
    s = json.loads(p.out)
    d = s["duration_ms"]
    assert d["count"] == 1000
    # log-scale buckets: never below the true value, at most 1/32 above
    for q, true in (("p50", 500), ("p95", 950), ("p99", 990)):
        assert true <= d[q] <= true * 33 / 32, (q, d)
    assert s["denials_by_reason"] == {"not_allowed": 5, "blocked": 1}
    assert [h["host"] for h in s["top_hosts"][:3]] == ["h0.test", "h1.test", "h2.test"]
    assert (s["allowed"], s["denied"], s["bytes_up"]) == (1000, 6, 1000)
    t = logs("stats", path)
    assert re.search(r"p50 \d+, p95 \d+, p99 \d+", t.out), t.out
    assert "not_allowed" in t.out


# -- show -------------------------------------------------------------------------

def test_show_pretty_escapes_and_filters(tmp):
    path = write(tmp, "s.jsonl", sample() + [
        rec("http", 9, "evil\u001b]0;owned\u0007.test", "deny", "invalid_name", port=80),
        rec("connect", 10, "audit.test", would_deny=True, reason="not_allowed", port=443)])
    p = logs("show", path)
    assert p.returncode == 0, p.err
    lines = p.out.splitlines()
    assert "\x1b" not in p.out and "\x07" not in p.out
    assert any("evil\\x1b]0;owned\\x07.test:80" in l for l in lines), p.out
    assert not any(" open " in l for l in lines)       # the final record says it
    assert len(lines) == 1 + 5 + 2                     # run, five final records, two more
    # one aligned line per event: the destination column starts at one place
    starts = {len(re.match(r"\S+\s+\S+\s+\S+\s+", l).group(0)) for l in lines[1:]}
    assert len(starts) == 1, p.out
    d = logs("show", "--denied", path).out.splitlines()
    assert len(d) == 5 and all(("DENY" in l) or ("AUDIT" in l) for l in d), d
    j = logs("show", "--denied", "--format", "json", path).out.splitlines()
    assert [json.loads(l)["conn"] for l in j] == [2, 3, 4, 9, 10]


def test_show_colour_only_on_a_terminal_and_never_with_no_color(tmp):
    path = write(tmp, "c.jsonl", sample())
    assert "\x1b[" not in logs("show", path).out       # a pipe: no colour
    script = ["script", "-qec", f"{AWF} logs show {path}", "/dev/null"]
    if subprocess.run(["which", "script"], capture_output=True).returncode != 0:
        pytest.skip("script(1) not installed")
    tty = subprocess.run(script, capture_output=True, timeout=30, env=env(TERM="xterm"),
                         preexec_fn=as_user).stdout.decode()
    assert "\x1b[31mDENY" in tty and "\x1b[32mallow" in tty, tty
    plain = subprocess.run(script, capture_output=True, timeout=30,
                           env=env(TERM="xterm", NO_COLOR="1"), preexec_fn=as_user)
    assert b"\x1b[" not in plain.stdout and b"DENY" in plain.stdout


def test_show_follow_survives_rotation(tmp):
    path = os.path.join(tmp, "f.jsonl")
    write(tmp, "f.jsonl", [json.dumps(rec("http", 1, "first.test", port=80))])
    os.chmod(tmp, 0o777)
    p = subprocess.Popen([AWF, "logs", "show", "--follow", "--format", "json", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
                         preexec_fn=as_user)
    try:
        def wait_for(host, timeout=10):
            deadline = time.time() + timeout
            buf = b""
            os.set_blocking(p.stdout.fileno(), False)
            while time.time() < deadline:
                chunk = p.stdout.read()
                if chunk:
                    buf += chunk
                    if host.encode() in buf:
                        return buf
                time.sleep(0.05)
            raise AssertionError(f"{host} not shown within {timeout}s: {buf!r}")

        wait_for("first.test")
        with open(path, "a") as f:       # grows: a line written in two parts
            f.write(json.dumps(rec("http", 2, "second.test", port=80))[:30])
            f.flush()
            time.sleep(0.3)
            f.write(json.dumps(rec("http", 2, "second.test", port=80))[30:] + "\n")
        wait_for("second.test")
        # rotated by rename: a last line to the old file, then a new file
        os.rename(path, path + ".1")
        with open(path + ".1", "a") as f:
            f.write(json.dumps(rec("http", 3, "late-old.test", port=80)) + "\n")
        write(tmp, "f.jsonl", [json.dumps(rec("http", 1, "rotated.test", port=80))])
        out = wait_for("rotated.test")
        assert b"late-old.test" in out
        assert p.poll() is None                          # still following
    finally:
        p.terminate()
        p.wait(timeout=10)
    assert b"malformed" not in p.stderr.read()


# -- memory ---------------------------------------------------------------------

def max_rss_kb(args, lines_gen):
    """Feed the generated lines to `awf logs ARGS -` through a pipe; the
    child's peak resident set (VmHWM, from wait4's rusage) in KiB."""
    # An ASan build keeps freed blocks in a quarantine (256 MiB by default),
    # which would read as growth: off for this measurement (ignored otherwise).
    asan = os.environ.get("ASAN_OPTIONS", "")
    e = env(ASAN_OPTIONS=(asan + ":" if asan else "") + "quarantine_size_mb=0")
    p = subprocess.Popen([AWF, "logs"] + args + ["-"], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e,
                         preexec_fn=as_user)
    for chunk in lines_gen:
        p.stdin.write(chunk)
    p.stdin.close()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    assert p.returncode == 0, err
    assert b"malformed" not in err, err
    return ru.ru_maxrss


def generated(n_lines, hosts=2000):
    """n_lines records over a fixed set of hosts: open + final pairs, DNS and
    denials, in chunks of a few thousand lines."""
    block = []
    for i in range(5000):
        h = f"host{i % hosts}.example"
        if i % 5 == 0:
            block.append(json.dumps(rec("open", i + 1, h, kind="connect", port=443)))
            block.append(json.dumps(rec("connect", i + 1, h, port=443, bytes_up=i,
                                        bytes_down=3 * i, duration_ms=i % 997)))
        elif i % 5 == 1:
            block.append(json.dumps(rec("dns", i + 1, h, "deny", "not_allowed", qname=h,
                                        qtype="A", duration_ms=0, answers=0)))
        else:
            block.append(json.dumps(rec("http", i + 1, h, port=80, status=200, bytes_up=10,
                                        bytes_down=i, duration_ms=i % 50)))
    data = ("\n".join(block) + "\n").encode()
    per = len(block)
    for _ in range(max(1, n_lines // per)):
        yield data


@pytest.mark.parametrize("cmd", [["summary", "--format", "json"], ["stats"]])
def test_memory_does_not_grow_with_lines(cmd):
    """A log of millions of lines takes no more memory than a small one with
    the same hosts: one pass, one line at a time."""
    small = max_rss_kb(cmd, generated(6000))
    big = max_rss_kb(cmd, generated(3_000_000))
    assert big - small < 8 * 1024, (small, big)
