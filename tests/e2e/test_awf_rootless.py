"""Rootless awf: what differs from root's, what a command run by it can
reach (nothing of awf's), and the precise refusal when user namespaces are
unavailable (exit 125 naming the check and its fix).

The world-based tests run in both modes (the `world` fixture); those about
the refusal build their own namespace or seccomp filter and need no world."""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from harness.util import token
from harness.world import (SYS_PATH, UID, awf_binary, require_awf, rootless_drop, stop,
                           wait_for, world)  # noqa: F401 (fixture)

require_awf()

# -- the refusal -------------------------------------------------------------------

def _plain_env():
    env = {"PATH": SYS_PATH, "LANG": "C.UTF-8"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def _awf_true(*pre, flags=()):
    """awf (as `pre` arranges) running `true`; nothing reaches a network."""
    awf, _ = awf_binary()
    argv = list(pre) + [awf, "--dns-servers", "127.0.0.1", *flags, "--", "true"]
    return subprocess.run(argv, capture_output=True, timeout=60, env=_plain_env(), cwd="/")


def test_user_namespaces_disabled_by_sysctl(world):
    """user.max_user_namespaces=0, set in a user namespace the test owns (the
    limit binds every namespace below it): awf --rootless, root in there,
    cannot make its own and says which knob and how to change it."""
    if world.rootless:
        pytest.skip("needs no world mode: runs once")
    p = _awf_true("unshare", "--user", "--map-root-user", "--", "/bin/sh", "-c",
                  'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh",
                  flags=["--rootless"])
    err = p.stderr.decode()
    assert p.returncode == 125, err
    assert ("awf: rootless: cannot create the sandbox's user namespace: user namespaces are "
            "disabled: user.max_user_namespaces is 0 (No space left on device). Allow them: "
            "sysctl -w user.max_user_namespaces=15000") in err, err


SECCOMP_HELPER = r"""
/* Refuse what a container runtime's default seccomp profile refuses to an
 * unprivileged container: unshare, and clone with CLONE_NEWUSER (clone3 is
 * ENOSYS, so libc falls back to clone); then exec argv[1]. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
  if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
    perror("seccomp helper");
    return 2;
  }
  execv(argv[1], argv + 1);
  perror("exec");
  return 2;
}
"""


@pytest.fixture(scope="module")
def seccomp_helper():
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the seccomp helper")
    d = tempfile.mkdtemp(prefix="awf-seccomp-")
    os.chmod(d, 0o755)
    src, exe = os.path.join(d, "helper.c"), os.path.join(d, "helper")
    with open(src, "w") as f:
        f.write(SECCOMP_HELPER)
    subprocess.run([cc, "-O1", "-o", exe, src], check=True, capture_output=True, timeout=120)
    yield exe
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("who", ["user", "root --rootless"])
def test_user_namespaces_refused_by_seccomp(world, seccomp_helper, who):
    """A container's seccomp profile refusing clone(CLONE_NEWUSER): named as
    such, with what to change, exit 125."""
    if world.rootless:
        pytest.skip("needs no world mode: runs once")
    if who == "user":
        pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", seccomp_helper]
        flags = []
    else:
        pre, flags = [seccomp_helper], ["--rootless"]
    p = _awf_true(*pre, flags=flags)
    err = p.stderr.decode()
    assert p.returncode == 125, err
    assert ("awf: rootless: cannot create the sandbox's user namespace: a seccomp filter "
            "refuses to create user namespaces (Operation not permitted; this process runs "
            "under one: Seccomp 2 in /proc/self/status)") in err, err
    assert "CLONE_NEWUSER" in err and "sudo awf" in err, err


# -- what a rootless command can reach -----------------------------------------------

AWF_PROCESSES = r"""
import ctypes, errno, json, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
out = {}
def err():
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
out["ptrace_attach"] = err() if libc.ptrace(16, 1, 0, 0) < 0 else "attached"
out["ptrace_seize"] = err() if libc.ptrace(0x4206, 1, 0, 0) < 0 else "seized"
for name in ("mem", "environ", "root/", "fd/"):
    try:
        if name.endswith("/"):
            os.listdir("/proc/1/" + name)
        else:
            open("/proc/1/" + name, "rb").read(1)
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGALRM):
    try:
        os.kill(1, sig)
    except OSError as e:
        out["kill%d" % sig] = errno.errorcode[e.errno]
try:
    os.kill(-1, signal.SIGKILL)  # everything it may signal but itself
except OSError as e:
    out["kill-1"] = errno.errorcode[e.errno]
time.sleep(0.3)
out["init_state"] = open("/proc/1/stat").read().split(") ")[1].split()[0]
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
"""


def test_command_cannot_trace_signal_or_see_awf(world):
    """awf's processes: the engine outside is in no namespace the command
    sees; the sandbox's PID 1 (same uid as the command, rootless) keeps
    capabilities the command lacks and is not dumpable, so ptrace and its
    /proc files are refused, and as a PID namespace's init it ignores the
    command's SIGKILL and SIGSTOP, and any signal it has no handler for
    (SIGALRM here; not SIGSEGV, which a sanitizer build handles). awf goes on:
    the request after it passes."""
    t = token()
    curl = world.curl_args(f"http://allowed.test/after-{t}", "-o", "/dev/null")
    script = AWF_PROCESSES + f"import subprocess; subprocess.run({curl!r}, check=True)\n"
    r = world.awf("python3", "-c", script, args=["-d", "allowed.test"])
    assert r.rc == 0, r
    out = json.loads(r.out.splitlines()[0])
    assert out["ptrace_attach"] == "EPERM" and out["ptrace_seize"] == "EPERM", out
    for name in ("mem", "environ", "root/", "fd/"):
        assert out[name] == "EACCES", (name, out)
    assert out["init_state"] == "S", out  # sleeping in its loop: neither stopped nor gone
    assert out["pids"][0] == 1 and all(p < 100 for p in out["pids"]), out
    assert any(f"after-{t}" in (x.get("url") or "") for x in r.log), r


FIREWALL_TAMPERING = (
    "nft flush ruleset 2>/dev/null; echo flush=$?; "
    "nft add table inet mine 2>/dev/null; echo add=$?; "
    "ip link set lo down 2>/dev/null; echo link=$?; "
    "unshare -n true 2>/dev/null; echo unshare_net=$?; "
    "unshare -U true 2>/dev/null; echo unshare_user=$?; "
    "unshare -Ur true 2>/dev/null; echo unshare_root=$?; "
    "echo 0 2>/dev/null > /proc/sys/net/ipv4/ip_unprivileged_port_start; echo port_start=$?; "
    "python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 80))' "
    "2>/dev/null; echo bind80=$?; ")


def test_command_cannot_change_the_network_policy(world):
    """No CAP_NET_ADMIN in the sandbox's user namespace (rootless) or
    anywhere (root): the ruleset, the links, the sysctls stay awf's; no new
    network or user namespace; no low port; and the policy still holds after
    the attempts (a denied name stays denied, transparently too)."""
    t = token()
    denied = " ".join(world.curl_args(f"http://other.test/tamper-{t}", "-o", "/dev/null",
                                      "-w", "%{http_code}", transparent=True))
    r = world.awf("sh", "-c", FIREWALL_TAMPERING + f"{denied}; echo; "
                  "cat /proc/self/uid_map", args=["-d", "allowed.test"])
    assert r.rc == 0, r
    lines = r.out.splitlines()
    got = dict(x.split("=", 1) for x in lines if "=" in x)
    for key in ("flush", "add", "link", "unshare_net", "unshare_user", "unshare_root",
                "port_start", "bind80"):
        assert got[key] != "0", (key, r)
    assert any("other.test" in (x.get("host") or x.get("qname") or "")
               and x.get("decision") == "deny" for x in r.log), r
    uid_map = lines[-1].split()
    if world.rootless:
        assert uid_map == [str(UID), str(UID), "1"], r
    else:
        assert uid_map == ["0", "0", "4294967295"], r


LOWER_INIT_LIMITS = r"""
import errno, json, os, resource, socket, sys
out = {}
# every thread of the sandbox's PID 1 (the UNIX socket gate runs in one)
for tid in sorted(int(t) for t in os.listdir("/proc/1/task")):
    try:
        resource.prlimit(tid, resource.RLIMIT_NOFILE, (3, 3))
        out["prlimit%d" % tid] = "ok"
    except OSError as e:
        out["prlimit%d" % tid] = errno.errorcode[e.errno]
try:  # rootless, PID 1's limits can be read (same uid); as root they cannot
    out["init_nofile"] = resource.prlimit(1, resource.RLIMIT_NOFILE)[0]
except PermissionError:
    out["init_nofile"] = None
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))  # its own: allowed
out["own_nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    out["connect"] = "connected"
except OSError as e:
    out["connect"] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def test_command_cannot_lower_the_limits_of_awfs_init(world):
    """Rootless, the sandbox's PID 1 has the command's uid and gid, and the
    kernel lets a process lower the resource limits of another with the same
    ids, dumpable or not. The command set PID 1's RLIMIT_NOFILE to 3 through
    the gate's thread id: the gate could then not take the command's socket,
    and a connect to a host UNIX socket failed with EMFILE before any decision
    was made, so the attempt reached neither the log nor the summary. seccomp
    refuses prlimit64 on any other process (reading stays allowed); its own
    limits the command still sets."""
    d = tempfile.mkdtemp(prefix="awf-limits-", dir="/tmp")
    os.chmod(d, 0o777)
    path = os.path.join(d, "host.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        os.chmod(path, 0o777)
        server.listen(8)
        r = world.awf("python3", "-c", LOWER_INIT_LIMITS, path)
    finally:
        server.close()
        shutil.rmtree(d, ignore_errors=True)
    assert r.rc == 0, r
    out = json.loads(r.out)
    tried = [k for k in out if k.startswith("prlimit")]
    assert tried and all(out[k] == "EPERM" for k in tried), out
    assert out["init_nofile"] > 3 if world.rootless else out["init_nofile"] is None, out
    assert out["own_nofile"] <= 512, out
    assert out["connect"] == "EACCES", out
    assert [(x["path"], x["decision"]) for x in r.records(event="unix")] == \
        [(path, "deny")], r


# -- the same sandbox ------------------------------------------------------------------

def _sandbox_ruleset(world, rootless):
    """`nft -j list ruleset` of a running sandbox's network namespace (read
    from outside, by root), without handles."""
    mark = os.path.join(world.home, "up-" + token())
    awf = ([world.awf_bin] if not rootless else rootless_drop() + [world.awf_bin])
    argv = world.ns.cmd(awf + ["--dns-servers", "198.51.100.53", "-d", "allowed.test",
                               "--", "sh", "-c", f"touch {mark}; sleep 30"])
    env = world.base_env()
    if rootless:
        env = {k: v for k, v in env.items() if not k.startswith("SUDO_")}
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         cwd=world.home, start_new_session=True)
    try:
        assert wait_for(lambda: os.path.exists(mark), timeout=20), stop(p)
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            init = int(f.read().split()[0])
        q = subprocess.run(["nsenter", "-t", str(init), "-n", "nft", "-j", "list", "ruleset"],
                           capture_output=True, timeout=30, check=True)
    finally:
        stop(p)
    items = json.loads(q.stdout)["nftables"]
    for item in items:
        for v in item.values():
            if isinstance(v, dict):
                v.pop("handle", None)
    return [i for i in items if "metainfo" not in i]


def test_rootless_ruleset_is_roots(world):
    """The firewall a rootless sandbox gets is the root path's, rule for rule."""
    if world.rootless:
        pytest.skip("compares both modes: runs once")
    root = _sandbox_ruleset(world, False)
    rootless = _sandbox_ruleset(world, True)
    assert any("rule" in i for i in root), root
    assert rootless == root


def test_filesystem_differences(world):
    """What a rootless sandbox cannot make the same: files of users other than
    the caller show as nobody/nogroup (unmapped), and the command cannot become
    another user (no setuid exec gains anything either). Root's run shows the
    real owners."""
    r = world.awf("sh", "-c", "stat -c %U:%G /usr/bin/env; stat -c %u /etc/passwd; "
                  "su -c true root </dev/null >/dev/null 2>&1; echo su=$?")
    assert r.rc == 0, r
    owner, passwd_uid, su = r.out.split()
    assert su != "su=0", r
    if world.rootless:
        assert (owner, passwd_uid) == ("nobody:nogroup", "65534"), r
    else:
        assert (owner, passwd_uid) == ("root:root", "0"), r


def test_callers_other_processes_cannot_read_awf(world):
    """Rootless, awf and the sandbox's PID 1 run as the caller's uid: another
    process of that uid on the host (a second shell, another agent) still
    cannot read their memory or environment: both are not dumpable (the
    caller's uid owns the sandbox's user namespace, so PID 1's capabilities
    there would not stop it)."""
    mark = os.path.join(world.home, "up-" + token())
    p, _ = world.popen("sh", "-c", f"touch {mark}; sleep 30", args=["-d", "allowed.test"])
    try:
        assert wait_for(lambda: os.path.exists(mark), timeout=20), stop(p)
        with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
            init = int(f.read().split()[0])
        for pid in (p.pid, init):
            for name in ("environ", "mem"):
                q = subprocess.run(["setpriv", f"--reuid={UID}", f"--regid={UID}",
                                    "--clear-groups", "--", "dd", f"if=/proc/{pid}/{name}",
                                    "bs=1", "count=1", "status=none"],
                                   capture_output=True, timeout=30)
                assert q.returncode != 0 and b"Permission denied" in q.stderr, (pid, name, q)
    finally:
        stop(p)


def test_root_without_cap_sys_admin_goes_rootless(world):
    """Root in a container that drops CAP_SYS_ADMIN cannot build the sandbox
    as root: awf picks the rootless path by itself (uid 0 mapped onto itself
    only), and the policy holds there too."""
    if world.rootless:
        pytest.skip("about root's choice: runs once")
    drop = ["setpriv", "--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"]
    r = world.awf("sh", "-c", "cat /proc/self/uid_map; " + " ".join(world.curl_args(
        "http://other.test/", "-o", "/dev/null", "-w", "%{http_code}")),
        args=["-d", "allowed.test"], sudo=False, cwd="/", pre=drop)
    assert r.rc == 0, r
    uid_map, code = r.out.split("\n", 1)
    assert uid_map.split() == ["0", "0", "1"], r
    assert code.strip() == "403", r
