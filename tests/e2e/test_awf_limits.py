"""awf's resource limits (--memory-limit, --pids-limit, --cpus): the sandbox
in a cgroup of its own, an OOM kill reported, nothing left behind.

awf runs inside a cgroup this module makes and removes (`awft-<random>`, under
the test's own cgroup in each hierarchy), so awf's `awf-*` directories go
there and nothing touches the machine's other cgroups. `ip netns exec`
mounts a fresh sysfs, which hides /sys/fs/cgroup, so the wrapper that puts
awf into the test cgroup first mounts the hierarchies awf needs again, at
their usual places, in that private mount namespace."""

import errno
import os
import shlex
import signal
import subprocess
import time

import pytest

from harness.util import token
from harness.world import GID, UID, require_awf, stop, wait_for, world  # noqa: F401 (fixture)

require_awf()

CONTROLLERS = ("memory", "pids", "cpu")
CG_TOP = "/sys/fs/cgroup"


def _unescape(field):
    return field.encode().decode("unicode_escape")


def _cgroup_mounts():
    """{controller or 'cgroup2': (mount point, root, fstype, options)}."""
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3:
                continue
            fstype, opts = rfields[0], rfields[2].split(",")
            point, root = _unescape(fields[4]), _unescape(fields[3])
            if fstype == "cgroup2":
                found.setdefault("cgroup2", (point, root, fstype, tuple(opts)))
            elif fstype == "cgroup":
                for c in CONTROLLERS:
                    if c in opts:
                        found.setdefault(c, (point, root, fstype, tuple(opts)))
    return found


def _own_paths():
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctls, path = line.rstrip("\n").split(":", 2)
            if hid == "0" and not ctls:
                own["cgroup2"] = path
            for c in ctls.split(","):
                own[c] = path
    return own


def _dir_of(mount, path):
    point, root = mount[0], mount[1]
    root = "" if root == "/" else root
    assert path == root or path.startswith(root + "/"), (mount, path)
    return point + path[len(root):].rstrip("/")


def _procs_below(d):
    """Every pid in cgroup d and its descendants."""
    pids = []
    for top, _, _ in os.walk(d):
        try:
            with open(os.path.join(top, "cgroup.procs")) as f:
                pids += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return pids


def _awf_dirs(d):
    return sorted(n for n in os.listdir(d) if n.startswith("awf-"))


class MadeCgroup:
    """A cgroup the test made; awf runs inside it (`pre`)."""

    def __init__(self):
        self.mounts = _cgroup_mounts()
        own = _own_paths()
        name = "awft-" + token()
        self.dirs = {}   # controller -> the test cgroup's directory (where awf-* appear)
        self.procs = []  # cgroup.procs files the wrapper writes itself into
        self.made = []   # directories to remove, deepest last
        v1 = all(c in self.mounts and self.mounts[c][2] == "cgroup" and c in own
                 for c in CONTROLLERS)
        if v1:
            for c in CONTROLLERS:
                d = os.path.join(_dir_of(self.mounts[c], own[c]), name)
                if d not in self.made:
                    os.mkdir(d)
                    self.made.append(d)
                    self.procs.append(os.path.join(d, "cgroup.procs"))
                self.dirs[c] = d
            self.need = [self.mounts[c] for c in CONTROLLERS]
            return
        if "cgroup2" not in self.mounts or "cgroup2" not in own:
            pytest.skip("no cgroup v1 memory, pids and cpu hierarchies, and no cgroup v2")
        parent = _dir_of(self.mounts["cgroup2"], own["cgroup2"])
        with open(os.path.join(parent, "cgroup.subtree_control")) as f:
            enabled = f.read().split()
        if not all(c in enabled for c in CONTROLLERS):
            pytest.skip(f"cgroup v2: {parent} does not enable memory, pids and cpu for its "
                        f"children (cgroup.subtree_control: {' '.join(enabled)})")
        d = os.path.join(parent, name)
        os.mkdir(d)
        self.made.append(d)
        with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
            f.write("+memory +pids +cpu")
        leaf = os.path.join(d, "run")  # awf's own cgroup: d stays free of processes
        os.mkdir(leaf)
        self.made.append(leaf)
        self.procs.append(os.path.join(leaf, "cgroup.procs"))
        self.dirs = {c: d for c in CONTROLLERS}
        self.need = [self.mounts["cgroup2"]]

    def delegate(self, uid, gid):
        """Hand the test cgroups to uid:gid, as systemd delegates a subtree
        (Delegate=yes): the directories and their files. Rootless awf then
        makes its awf-* cgroup inside, as the user."""
        for d in self.made:
            os.chown(d, uid, gid)
            for n in os.listdir(d):
                if os.path.isfile(os.path.join(d, n)):
                    os.chown(os.path.join(d, n), uid, gid)

    @property
    def v2(self):
        return self.need[0][2] == "cgroup2"

    def pre(self):
        """Wrapper argv: mount the hierarchies, join the test cgroup, exec awf."""
        script = []
        if any(m[0] != CG_TOP for m in self.need):
            script.append(f"mount -t tmpfs -o mode=755 awft {CG_TOP}")
        for point, _, fstype, opts in dict.fromkeys(self.need):
            o = ",".join(x for x in opts if x not in ("rw", "ro")) or "defaults"
            script.append(f"mkdir -p {shlex.quote(point)}")
            script.append(f"mount -t {fstype} -o {shlex.quote(o)} awft {shlex.quote(point)}")
        for p in self.procs:
            script.append(f"echo $$ > {shlex.quote(p)}")
        script.append('exec "$@"')
        return ["/bin/sh", "-ec", "\n".join(script), "awft"]

    def leftovers(self):
        return {c: _awf_dirs(d) for c, d in self.dirs.items() if _awf_dirs(d)}

    def processes(self):
        return sorted({p for d in set(self.dirs.values()) for p in _procs_below(d)})

    def close(self):
        for pid in self.processes():  # only after a failure
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        wait_for(lambda: not self.processes(), timeout=10)
        for d in set(self.dirs.values()):
            for n in _awf_dirs(d):
                try:
                    os.rmdir(os.path.join(d, n))
                except OSError:
                    pass
        for d in reversed(self.made):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if e.errno != errno.EBUSY:
                        raise
                    time.sleep(0.05)


@pytest.fixture
def cg(world):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    t = MadeCgroup()
    if world.rootless:  # the user's own cgroup subtree, as systemd gives one
        t.delegate(UID, GID)
    yield t
    t.close()


def run(world, cg, *cmd, args=(), timeout=60):
    return world.awf(*cmd, args=args, pre=cg.pre(), timeout=timeout)


def assert_clean(cg):
    assert not cg.processes(), "processes left in the test cgroup"
    assert not cg.leftovers(), f"awf's cgroup directories left behind: {cg.leftovers()}"


FORK_BOMB = """
import os, time
n = 0
for i in range(200):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    n += 1
print(n, flush=True)
"""


def test_fork_bomb_is_stopped_by_pids_limit(world, cg):
    """200 forks of 30-second sleepers: at most 50 processes run at once, the
    command goes on (fork fails with EAGAIN) and awf ends at once with
    nothing left (the sleepers die with the sandbox)."""
    t0 = time.monotonic()
    r = run(world, cg, "python3", "-c", FORK_BOMB, args=("--pids-limit", "50"))
    assert r.rc == 0, r
    started = int(r.out)
    assert 0 < started < 50, r
    assert time.monotonic() - t0 < 25, r
    assert "awf: --pids-limit 50 reached" in r.err, r
    assert_clean(cg)


def test_memory_hog_is_killed_and_reported_as_out_of_memory(world, cg):
    r = run(world, cg, "python3", "-c",
            "b = b'x' * (256 << 20); print('allocated', len(b))",
            args=("--memory-limit", "64m"))
    assert r.rc == 128 + signal.SIGKILL, r
    assert "allocated" not in r.out, r
    assert "awf: the command was killed: out of memory (--memory-limit 64m)\n" in r.err, r
    assert_clean(cg)


def test_memory_within_the_limit_is_no_oom(world, cg):
    r = run(world, cg, "python3", "-c", "b = b'x' * (16 << 20); print(len(b))",
            args=("--memory-limit", "256m"))
    assert (r.rc, r.out) == (0, f"{16 << 20}\n"), r
    assert "out of memory" not in r.err, r
    assert_clean(cg)


def test_limits_are_written_to_the_sandboxs_own_cgroup(world, cg):
    """Every process of the sandbox is in awf-* below the test cgroup, with the
    limits asked for (the files are read from inside the sandbox, whose
    /sys/fs/cgroup is the host's)."""
    if cg.v2:
        d = cg.dirs["cpu"]
        files = [f"{d}/awf-*/memory.max", f"{d}/awf-*/memory.swap.max",
                 f"{d}/awf-*/pids.max", f"{d}/awf-*/cpu.max"]
        want = ["536870912", "0", "77", "150000 100000"]
    else:
        m, p, c = cg.dirs["memory"], cg.dirs["pids"], cg.dirs["cpu"]
        files = [f"{m}/awf-*/memory.limit_in_bytes", f"{p}/awf-*/pids.max",
                 f"{c}/awf-*/cpu.cfs_quota_us", f"{c}/awf-*/cpu.cfs_period_us"]
        want = ["536870912", "77", "150000", "100000"]
        if os.path.exists(os.path.join(m, "memory.memsw.limit_in_bytes")):
            files.append(f"{m}/awf-*/memory.memsw.limit_in_bytes")
            want.append("536870912")
    script = "cat /proc/self/cgroup; echo ==; cat " + " ".join(files)
    r = run(world, cg, "sh", "-c", script,
            args=("--memory-limit", "512m", "--pids-limit", "77", "--cpus", "1.5"))
    assert r.rc == 0, r
    groups, _, values = r.out.partition("==\n")
    assert values.split("\n")[:-1] == want, r
    for line in groups.splitlines():
        hid, ctls, path = line.split(":", 2)
        if cg.v2 and hid == "0":
            assert "/awft-" in path and "/awf-" in path.split("/awft-")[1], r
        for c in CONTROLLERS:
            if not cg.v2 and c in ctls.split(","):
                assert path.rsplit("/", 2)[1].startswith("awft-"), r
                assert path.rsplit("/", 1)[1].startswith("awf-"), r
    assert_clean(cg)


def test_default_limits_apply_without_flags(world, cg):
    d = cg.dirs["pids"]
    r = run(world, cg, "sh", "-c", f"cat {d}/awf-*/pids.max")
    assert (r.rc, r.out) == (0, "1000\n"), r
    assert_clean(cg)


def test_cgroup_of_a_killed_awf_is_removed_by_the_next_run(world, cg):
    """A SIGKILLed awf cannot rmdir its cgroup; the sandbox dies with it
    (PDEATHSIG) and the next awf in the same place removes the empty
    directory of the dead owner."""
    argv, _ = world.awf_argv(["sleep", "60"], pre=cg.pre())
    e = world.base_env()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                         cwd=world.home, start_new_session=True)
    try:
        assert wait_for(lambda: cg.leftovers(), timeout=20), stop(p)
        stale = cg.leftovers()
        assert all(v == [f"awf-{p.pid}-" + v[0].split("-")[2]] for v in stale.values()), stale
        os.kill(p.pid, signal.SIGKILL)  # awf itself (ip netns exec and sh exec it)
        p.wait(timeout=10)
    finally:
        stop(p)
    assert wait_for(lambda: not cg.processes(), timeout=10), cg.processes()
    assert cg.leftovers() == stale  # nothing removed it
    r = run(world, cg, "true")
    assert r.rc == 0, r
    assert_clean(cg)


def test_explicit_limit_without_cgroups_is_an_error(world):
    """Plain `ip netns exec` hides /sys/fs/cgroup: no controller. A limit asked
    for is then awf's error; the default limits are skipped quietly."""
    r = world.awf("true", args=("--memory-limit", "64m"))
    assert r.rc == 125, r
    assert "awf: --memory-limit: the kernel offers awf no usable cgroup 'memory'" in r.err, r
    r = world.awf("true", args=("--cpus", "2"))
    assert r.rc == 125 and "awf: --cpus: " in r.err, r
    r = world.awf("true", args=("-d", "allowed.test"))  # (no rule at all: a warning)
    assert (r.rc, r.err) == (0, ""), r
    r = world.awf("true", args=("--log-level", "debug"))
    assert r.rc == 0, r
    assert ("awf: debug: no usable cgroup controller for the default --memory-limit, "
            "--pids-limit: not applied\n") in r.err, r


@pytest.mark.parametrize("flag,value", [
    ("--memory-limit", "0"), ("--memory-limit", "64x"), ("--memory-limit", "-1g"),
    ("--memory-limit", "1k"), ("--pids-limit", "0"), ("--pids-limit", "ten"),
    ("--pids-limit", "99999999"), ("--cpus", "0"), ("--cpus", "-1"), ("--cpus", "abc"),
    ("--cpus", "1e9"),
])
def test_bad_limit_is_refused_naming_flag_and_value(world, flag, value):
    r = world.awf("true", args=(flag, value))
    assert r.rc == 125, r
    assert r.err.startswith(f"awf: {flag} '{value}': expected "), r


def test_rootless_limit_needs_a_delegated_cgroup(world):
    """Rootless, in cgroups the user may not write (nothing delegated): a
    limit asked for is an error naming the controller and why; the default
    limits are skipped (said at debug level) and the command runs."""
    if not world.rootless:
        pytest.skip("root: awf may write every cgroup")
    t = MadeCgroup()  # root's, not delegated
    try:
        r = world.awf("true", args=("--memory-limit", "64m"), pre=t.pre())
        assert r.rc == 125, r
        assert "awf: --memory-limit: " in r.err and "delegated to your user" in r.err, r
        r = world.awf("true", args=("--log-level", "debug"), pre=t.pre())
        assert r.rc == 0, r
        assert "awf: debug: " in r.err and "not applied" in r.err, r
        assert_clean(t)
    finally:
        t.close()
