"""The access log outlives the command: a --log-file that lies in a tree the
sandbox sees read-write (the home, /tmp, a -v mount) belongs to the command's
uid, yet inside the sandbox the command can neither rewrite, truncate,
unlink or replace it nor move a directory on its path; what cannot be
protected is refused (125). After every attack the log holds the line that
was there before, the lines of the run, and only whole JSON lines; awf's exit
status is the command's."""

import json
import os
import shutil
import signal
import subprocess

import pytest

from harness.util import token
from harness.world import GID, UID, require_awf, stop, wait_for, world  # noqa: F401

require_awf()

EXIT = 3      # the command's own status, which awf must report
PRE = {"pre": "a line from before the run"}

# One attack, run as the command: prints "<attack> OK" or "<attack> <ERRNO>".
ATTACK = r"""
import errno, os, sys
attack, log = sys.argv[1], sys.argv[2]
d = os.path.dirname(log)
def forge():
    with open(log, "a") as f:
        f.write('{"forged": true}\n')
def swap():
    tmp = os.path.join(d, "planted.tmp")
    os.symlink(sys.argv[3], tmp)
    try:
        os.rename(tmp, log)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
attacks = {
    "write": forge,
    "truncate": lambda: os.truncate(log, 0),
    "chmod": lambda: os.chmod(log, 0o666),
    "unlink": lambda: os.unlink(log),
    "rename": lambda: os.rename(log, log + ".moved"),
    "link": lambda: os.link(log, log + ".link"),
    "rename-dir": lambda: os.rename(d, d + ".moved"),
    "rename-grandparent": lambda: os.rename(os.path.dirname(d), os.path.dirname(d) + ".moved"),
    "swap": swap,
}
try:
    attacks[attack]()
    print(attack, "OK")
except OSError as e:
    print(attack, errno.errorcode[e.errno])
"""


def user_tree(w, *names):
    """Nested directories of the test user's in the home; the innermost."""
    path = w.home
    for n in names:
        path = w.user_dir(n, parent=path)
    return path


def seeded_log(w, where):
    """A log file of the user's holding one line already."""
    log = os.path.join(where, "access.jsonl")
    with open(log, "w") as f:
        f.write(json.dumps(PRE) + "\n")
    os.chown(log, UID, GID)
    os.chmod(log, 0o640)
    return log


def lines_of(log):
    """Every line of the log, each a whole JSON object (or the test fails)."""
    with open(log, "rb") as f:
        data = f.read()
    assert data.endswith(b"\n"), data[-200:]
    return [json.loads(line) for line in data.splitlines()]


def assert_log_intact(log, *tokens):
    """The line from before first, then awf's records only (each of the run)."""
    recs = lines_of(log)
    assert recs[0] == PRE, recs
    assert recs[1:] and all("run" in r and "event" in r for r in recs[1:]), recs
    assert not any(r.get("forged") for r in recs), recs
    for t in tokens:
        assert any(t in r.get("url", "") for r in recs), (t, recs)


def fetch(w, t):
    return " ".join(w.curl_args(f"http://allowed.test/hello?t={t}", "-o", "/dev/null"))


def attacked_run(w, attack, log, *more):
    script = w.user_file("attack.py", ATTACK)
    t1, t2 = token(), token()
    cmd = (f"{fetch(w, t1)}; python3 {script} {attack} {log} {' '.join(more)}; "
           f"{fetch(w, t2)}; exit {EXIT}")
    r = w.awf("sh", "-c", cmd, args=["-d", "allowed.test", "--log-file", log], log=False)
    return r, t1, t2


@pytest.mark.parametrize("attack,err", [
    ("write", "EROFS"), ("truncate", "EROFS"), ("chmod", "EROFS"), ("unlink", "EBUSY"),
    ("rename", "EBUSY"), ("link", "EXDEV"), ("rename-dir", "EBUSY"),
    ("rename-grandparent", "EBUSY"),
])
def test_command_attacking_its_log_in_the_home_fails(world, attack, err):
    log = seeded_log(world, user_tree(world, "ws-" + token(), "logs"))
    r, t1, t2 = attacked_run(world, attack, log)
    assert r.rc == EXIT, r
    assert f"{attack} {err}" in r.out, r
    assert_log_intact(log, t1, t2)
    assert os.stat(log).st_nlink == 1
    assert not os.path.exists(log + ".moved") and not os.path.exists(log + ".link")


@pytest.mark.parametrize("attack,err", [("truncate", "EROFS"), ("rename-dir", "EBUSY")])
def test_command_attacking_its_log_in_tmp_fails(world, attack, err):
    top = os.path.join("/tmp", "awfw-log-" + token())
    os.mkdir(top)
    try:
        os.chown(top, UID, GID)
        where = world.user_dir("logs", parent=top)
        log = seeded_log(world, where)
        r, t1, t2 = attacked_run(world, attack, log)
        assert r.rc == EXIT, r
        assert f"{attack} {err}" in r.out, r
        assert_log_intact(log, t1, t2)
    finally:
        for root, dirs, files in os.walk(top, topdown=False):
            for n in files:
                os.unlink(os.path.join(root, n))
            for n in dirs:
                os.rmdir(os.path.join(root, n))
        os.rmdir(top)


def test_command_writing_its_log_through_a_second_mount_fails(world):
    """The log's directory is also bound elsewhere with -v: both views are
    protected, and the bound directory cannot be moved in the home either."""
    where = user_tree(world, "ws-" + token(), "logs")
    log = seeded_log(world, where)
    script = world.user_file("attack.py", ATTACK)
    cmd = (f"python3 {script} write /data/access.jsonl; python3 {script} truncate {log}; "
           f"python3 {script} rename /data/access.jsonl; "
           f"python3 {script} rename-dir {log}; exit {EXIT}")
    r = world.awf("sh", "-c", cmd, args=["-v", f"{where}:/data", "--log-file", log], log=False)
    assert r.rc == EXIT, r
    assert r.out.split("\n")[:4] == ["write EROFS", "truncate EROFS", "rename EBUSY",
                                     "rename-dir EBUSY"], r
    assert_log_intact(log)


def test_command_attacking_its_log_bound_with_v_fails(world):
    """-v binds the log file itself elsewhere: that view is read-only too."""
    log = seeded_log(world, user_tree(world, "ws-" + token()))
    script = world.user_file("attack.py", ATTACK)
    cmd = "; ".join(f"python3 {script} {a} /audit.jsonl" for a in ("write", "truncate", "rename"))
    r = world.awf("sh", "-c", cmd + f"; exit {EXIT}",
                  args=["-v", f"{log}:/audit.jsonl", "--log-file", log], log=False)
    assert r.rc == EXIT, r
    assert r.out.split("\n")[:3] == ["write EROFS", "truncate EROFS", "rename EROFS"], r
    assert_log_intact(log)


def test_log_with_a_second_hard_link_is_refused(world):
    """The command could write the log through the other link."""
    where = user_tree(world, "ws-" + token())
    log = seeded_log(world, where)
    os.link(log, os.path.join(where, "other-name"))
    mark = os.path.join(world.home, "ran-" + token())
    r = world.awf("touch", mark, args=["--log-file", log], log=False)
    assert r.rc == 125, r
    assert "--log-file" in r.err and "hard links" in r.err, r
    assert not os.path.exists(mark)
    assert lines_of(log) == [PRE]


def test_fifo_log_the_sandbox_shows_is_refused(world):
    """A FIFO can be opened for writing even on a read-only mount."""
    fifo = os.path.join(user_tree(world, "ws-" + token()), "log.fifo")
    os.mkfifo(fifo, 0o600)
    os.chown(fifo, UID, GID)
    mark = os.path.join(world.home, "ran-" + token())
    # awf opens it for writing: a reader must be there, or open(2) blocks.
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        r = world.awf("touch", mark, args=["--log-file", fifo], log=False)
    finally:
        os.close(rfd)
    assert r.rc == 125, r
    assert "FIFO" in r.err and "--log-file" in r.err, r
    assert not os.path.exists(mark)


def test_symlink_swap_then_sighup_keeps_the_log(world):
    """The command plants a link at the log's path and awf gets SIGHUP (as a
    log rotation would send): the swap fails, awf never opens the planted
    file, and the rest of the run is logged in the real one."""
    t = token()
    where = user_tree(world, "ws-" + t, "logs")
    log = seeded_log(world, where)
    planted = world.user_file("planted-" + t, "planted\n")
    script = world.user_file("attack.py", ATTACK)
    ready = os.path.join(world.home, f"ready-{t}")
    go = os.path.join(world.home, f"go-{t}")
    t1, t2 = token(), token()
    cmd = (f"trap 'echo hup > {go}' HUP; {fetch(world, t1)}; "
           f"python3 {script} swap {log} {planted}; echo up > {ready}; "
           f"while [ ! -e {go} ]; do sleep 0.05; done; {fetch(world, t2)}; exit {EXIT}")
    p, _ = world.popen("sh", "-c", cmd, args=["-d", "allowed.test", "--log-file", log])
    try:
        assert wait_for(lambda: os.path.exists(ready), timeout=30), stop(p)
        p.send_signal(signal.SIGHUP)
        out, err = p.communicate(timeout=30)
        assert p.returncode == EXIT, (out, err)
        assert b"swap EBUSY" in out, (out, err)
    finally:
        stop(p)
    assert not os.path.islink(log)
    assert_log_intact(log, t1, t2)
    assert open(planted).read() == "planted\n"


def test_command_reads_its_log_and_runs_in_its_directory(world):
    """Protected, not hidden: the command may read the log, and create and
    remove other files next to it."""
    where = user_tree(world, "ws-" + token(), "logs")
    log = seeded_log(world, where)
    cmd = (f"cat {log}; touch {where}/mine && rm {where}/mine && echo created; "
           f"test -w {log} || echo read-only")
    r = world.awf("sh", "-c", cmd, args=["--log-file", log], log=False, cwd=where)
    assert r.rc == 0, r
    out = r.out.splitlines()
    assert out[0] == json.dumps(PRE) and out[-2:] == ["created", "read-only"], r


# ---- the log's filesystem filled from inside -------------------------------

class SmallFS:
    """A tmpfs of `size` on the host, owned by the test user: the log's
    filesystem, which the command also gets read-write (-v ...:/work)."""

    def __init__(self, size="8m"):
        self.top = os.path.join("/tmp", "awfw-small-" + token())
        self.dir = os.path.join(self.top, "small")
        os.makedirs(self.dir)
        os.chmod(self.top, 0o755)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", self.dir],
                       check=True)
        os.chown(self.dir, UID, GID)
        self.log = os.path.join(self.dir, "log.jsonl")

    def fill(self):
        """Fill it from the host, to the last byte; returns the fill file."""
        path = os.path.join(self.dir, "fill")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for chunk in (b"\0" * 65536, b"\0"):  # then the last page's bytes
                try:
                    while os.write(fd, chunk) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        os.chown(path, UID, GID)
        return path

    def close(self):
        subprocess.run(["umount", "-l", self.dir], check=False)
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture
def small_fs():
    fs = SmallFS()
    yield fs
    fs.close()


def exfil(w, names):
    """Denied requests, one per name (curl says 403 and goes on)."""
    return "; ".join(" ".join(w.curl_args(f"http://{n}.other.test/", "-o", "/dev/null"))
                     for n in names)


def whole_records(log):
    """The log's lines, each a whole JSON object: no cut line anywhere."""
    with open(log, "rb") as f:
        data = f.read()
    assert not data or data.endswith(b"\n"), data[-300:]
    out = []
    for line in data.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"a cut line in the log: {line[:300]!r}") from None
    return out


def denied_hosts(recs):
    return [r["host"] for r in recs if r.get("event") == "http" and r.get("decision") == "deny"]


FILL = "dd if=/dev/zero of=/work/fill bs=64k 2>/dev/null; sync"


def run_on_small_fs(w, fs, cmd, denied):
    """Run cmd with fs as /work and the log on it: awf's status is the
    command's, the log holds whole lines only, the `denied` names (first
    labels) in order and nothing lost. Returns the records."""
    r = w.awf("sh", "-c", cmd, log=False,
              args=["-d", "allowed.test", "-v", f"{fs.dir}:/work:rw", "--log-file", fs.log])
    assert r.rc == EXIT, r
    recs = whole_records(fs.log)
    assert [h.split(".")[0] for h in denied_hosts(recs)] == denied, (recs, r)
    assert not any(x.get("event") == "log_lost" for x in recs), recs
    assert "incomplete" not in r.err, r
    return recs


def test_command_filling_the_log_filesystem_does_not_cut_the_record(world, small_fs):
    """The command fills the filesystem the log lies on, then makes requests,
    then frees the space: every decision is in the log, in order, every line
    whole, and awf's status is the command's."""
    t = token()
    names = [f"exfil-{i}-{t}" for i in range(1, 31)]
    cmd = (f"{FILL}; {exfil(world, names)}; {fetch(world, t)}; rm /work/fill; "
           f"{exfil(world, ['late-' + t])}; exit {EXIT}")
    recs = run_on_small_fs(world, small_fs, cmd, names + ["late-" + t])
    assert any(t in x.get("url", "") and x["decision"] == "allow"
               for x in recs if x.get("event") == "http"), recs


def test_log_filesystem_full_from_the_start_keeps_lines_until_space_returns(world, small_fs):
    """No room at all when awf starts: the records wait in awf's memory and
    reach the log, in order and whole, once the command frees space."""
    small_fs.fill()
    t = token()
    names = [f"early-{i}-{t}" for i in range(1, 6)]
    cmd = (f"{exfil(world, names)}; {fetch(world, t)}; rm /work/fill; "
           f"{exfil(world, ['late-' + t])}; exit {EXIT}")
    recs = run_on_small_fs(world, small_fs, cmd, names + ["late-" + t])
    assert recs[0]["event"] == "run", recs


def test_log_filesystem_full_for_good_is_reported_and_keeps_the_exit_status(world, small_fs):
    """The space never comes back: nothing half-written is left, awf says on
    stderr how many records are missing (the summary says the log is
    incomplete), and its status is still the command's."""
    small_fs.fill()
    t = token()
    r = world.awf("sh", "-c", f"{exfil(world, ['gone-' + t])}; exit {EXIT}", log=False,
                  args=["-d", "allowed.test", "--log-file", small_fs.log])
    assert r.rc == EXIT, r
    assert whole_records(small_fs.log) == [], r
    assert "the access log is incomplete" in r.err, r
    # run, open and http: three records that never reached the file
    assert "3 records" in r.err and "No space left on device" in r.err, r
    assert f"gone-{t}.other.test" in r.err, r  # the summary, from memory
