"""The host is unchanged by awf: /etc/resolv.conf, nftables/iptables rules
(in the namespace awf ran in and in the root namespace), mounts, processes,
namespaces; also when awf is killed with SIGKILL in the middle of a run."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from harness.util import token
from harness.world import Result, require_awf, stop, wait_for, world  # noqa: F401 (fixture)

require_awf()

# Runs around awf in the same mount namespace (the one ip netns exec made):
# mountinfo and the world's nftables ruleset, before and after.
AROUND = ('d="$1"; shift; cat /proc/self/mountinfo > "$d/mounts.before"; '
          'nft -s list ruleset > "$d/nft.before"; "$@"; rc=$?; '
          'cat /proc/self/mountinfo > "$d/mounts.after"; '
          'nft -s list ruleset > "$d/nft.after"; exit $rc')


def snapshot_root():
    """What the host's own namespaces look like (pytest runs in them)."""
    # Other sessions' `ip netns add` come and go under /run/netns: not awf's.
    mounts = [ln for ln in open("/proc/self/mountinfo").read().splitlines()
              if " /run/netns/" not in ln]
    snap = {"resolv": open("/etc/resolv.conf", "rb").read(), "mounts": mounts}
    snap["nft"] = subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True,
                                 timeout=30).stdout
    if shutil.which("iptables-save"):
        p = subprocess.run(["iptables-save"], capture_output=True, timeout=30)
        snap["iptables"] = b"\n".join(ln for ln in p.stdout.splitlines()
                                      if not ln.startswith(b"#"))
    return snap


def around_dir(w):
    d = os.path.join(w.logs, "around-" + token())
    os.mkdir(d, 0o700)
    return d


def assert_around_unchanged(d):
    for what in ("mounts", "nft"):
        before = open(os.path.join(d, f"{what}.before")).read()
        after = open(os.path.join(d, f"{what}.after")).read()
        assert before == after, f"{what} changed:\n--- before\n{before}\n--- after\n{after}"


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def sandbox_pids(marker):
    """Host pids whose command line has marker."""
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and marker.encode() in _cmdline(d)]


def holders_of(ns_link):
    """Host pids in the given namespace (e.g. 'net:[4026532245]')."""
    out = []
    kind = ns_link.split(":")[0]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/{kind}") == ns_link:
                    out.append(int(d))
            except OSError:
                pass
    return out


def test_host_unchanged_by_a_run(world):
    world_resolv = world.run(["cat", "/etc/resolv.conf"]).stdout
    root = snapshot_root()
    d = around_dir(world)
    t = token()
    script = (f"curl -s --max-time 5 --cacert {world.ca} https://allowed.test/hello; "
              f"curl -s --max-time 5 https://other.test/ ; dig +time=1 +tries=1 other.test; "
              f"sleep 0.2; echo {t}")
    r = world.awf(script, args=["-d", "allowed.test"], pre=["sh", "-c", AROUND, "sh", d])
    assert r.rc == 0 and t in r.out, r
    assert_around_unchanged(d)
    assert snapshot_root() == root
    assert world.run(["cat", "/etc/resolv.conf"]).stdout == world_resolv
    assert sandbox_pids(t) == []


def sleepers(digits):
    return [pid for pid in sandbox_pids(digits) if _cmdline(pid).startswith(b"sleep\0")]


def awf_under(wrapper_pid, awf_bin):
    exe = os.path.realpath(awf_bin)
    for x in os.listdir("/proc"):
        if x.isdigit() and _ppid(int(x)) == wrapper_pid and _exe(int(x)) == exe:
            return int(x)
    return None


def test_sigkill_leaves_nothing(world):
    t = token()
    digits = str(int(t[:8], 16))
    ready = os.path.join(world.home, f"ready-{t}")
    root = snapshot_root()
    d = around_dir(world)
    script = (f"setsid sleep 1001.{digits} & sleep 1002.{digits} & "
              f"echo up > {ready}; exec sleep 1000.{digits}")
    p, _ = world.popen("sh", "-c", script, args=["-d", "allowed.test"],
                       pre=["sh", "-c", AROUND, "sh", d])
    try:
        assert wait_for(lambda: os.path.exists(ready) and len(sleepers(digits)) == 3), \
            (sandbox_pids(digits), stop(p))
        cmd_pid = sleepers(digits)[0]
        nss = [os.readlink(f"/proc/{cmd_pid}/ns/{k}") for k in ("net", "pid", "mnt")]
        awf_pid = awf_under(p.pid, world.awf_bin)
        assert awf_pid, "awf's pid not found under the wrapper"
        os.kill(awf_pid, signal.SIGKILL)
        assert p.wait(10) == 128 + signal.SIGKILL
        gone = wait_for(lambda: not sandbox_pids(digits)
                        and not any(holders_of(n) for n in nss), timeout=5)
        assert gone, (sandbox_pids(digits), [(n, holders_of(n)) for n in nss])
    finally:
        stop(p)
        for pid in sleepers(digits):
            os.kill(pid, signal.SIGKILL)
    assert_around_unchanged(d)
    assert snapshot_root() == root


def test_normal_exit_leaves_no_namespace(world):
    """The sandbox's namespaces end with the run."""
    t = token()
    ready = os.path.join(world.home, f"ready-{t}")
    go = os.path.join(world.home, f"go-{t}")
    digits = str(int(t[:8], 16))
    p, _ = world.popen("sh", "-c", f"echo up > {ready}; while [ ! -e {go} ]; do "
                       f"sleep 0.02; done; sleep 30.{digits} & exit 0")
    try:
        assert wait_for(lambda: os.path.exists(ready)), stop(p)
        pid = next(x for x in sandbox_pids(go)
                   if os.path.basename(_exe(x) or "") in ("sh", "dash", "bash"))
        nss = [os.readlink(f"/proc/{pid}/ns/{k}") for k in ("net", "pid", "mnt", "ipc", "uts")]
        mine = [os.readlink(f"/proc/self/ns/{k}") for k in ("net", "pid", "mnt", "ipc", "uts")]
        assert all(a != b for a, b in zip(nss, mine)), (nss, mine)
        world.user_file(f"go-{t}", "")
        assert p.wait(20) == 0
        time.sleep(0.1)
        assert wait_for(lambda: all(not holders_of(n) for n in nss), timeout=5), \
            [(n, holders_of(n)) for n in nss]
        assert sleepers(digits) == []
    finally:
        stop(p)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_awf_stops_cleanly_on_signal(world, sig):
    """TERM/INT to awf: the command gets it (default action: it dies), awf
    reports 128+N, the log is whole."""
    t = token()
    ready = os.path.join(world.home, f"ready-{t}")
    p, log = world.popen("sh", "-c", f"echo up > {ready}; exec sleep 30",
                         args=["-d", "allowed.test"])
    try:
        assert wait_for(lambda: os.path.exists(ready)), stop(p)
        time.sleep(0.05)
        p.send_signal(sig)
        assert p.wait(10) == 128 + sig
        assert all(isinstance(x, dict) for x in Result(p.args, 0, b"", b"", log).log)
    finally:
        stop(p)
