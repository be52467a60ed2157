"""awf's process side: exit statuses, signals, --agent-timeout, awf's own
errors (125), the environment rules, and who the command runs as (user,
groups, no capabilities, no_new_privs, seccomp)."""

import errno
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness.origin import sha256
from harness.util import token
from harness.world import (EXTRA_GROUP, GID, UID, USER, only_root, require_awf, stop, wait_for,
                           world)  # noqa: F401 (fixture)

require_awf()

ENV_DUMP = ["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def env_of(r):
    assert r.rc == 0, r
    return json.loads(r.out)


# -- exit status ----------------------------------------------------------------

@pytest.mark.parametrize("code", [0, 1, 2, 42, 255])
def test_exit_status_is_the_commands(world, code):
    r = world.awf("sh", "-c", f"exit {code}")
    assert r.rc == code, r


def test_one_argument_with_shell_syntax_runs_under_sh(world):
    r = world.awf("echo one two | tr a-z A-Z; exit 42")
    assert (r.rc, r.out) == (42, "ONE TWO\n"), r


def test_several_arguments_are_not_a_shell_line(world):
    r = world.awf("echo", "$HOME;", "exit", "3")
    assert (r.rc, r.out) == (0, "$HOME; exit 3\n"), r


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGHUP])
def test_signal_death_is_128_plus_n(world, sig):
    r = world.awf("sh", "-c", f"kill -{sig.name[3:]} $$")
    assert r.rc == 128 + sig, r


def test_not_found_is_127(world):
    for cmd in ("no-such-command-awf", "/no/such/file"):
        r = world.awf(cmd)
        assert r.rc == 127, r


def test_not_executable_is_126(world):
    script = world.user_file("not-executable.sh", "#!/bin/sh\necho ran\n", mode=0o644)
    r = world.awf(script)
    assert r.rc == 126 and "ran" not in r.out, r
    r = world.awf(world.home)  # a directory
    assert r.rc == 126, r


def test_agent_timeout_is_124(world):
    """Fractional minutes: 0.02 min = 1.2 s. The command gets SIGTERM first."""
    mark = os.path.join(world.home, "timeout-" + token())
    script = f"trap 'echo term > {mark}; exit 0' TERM; while :; do sleep 0.05; done"
    start = time.monotonic()
    r = world.awf("sh", "-c", script, args=["--agent-timeout", "0.02"], timeout=30)
    took = time.monotonic() - start
    assert r.rc == 124, r
    assert 1.0 <= took < 8, took
    assert open(mark).read() == "term\n"


# -- awf's own errors -------------------------------------------------------------

BAD_ARGS = [
    ["--no-such-flag"],
    ["-d", "bad domain"],
    ["-d", "*"],
    ["--block-domains", "a..b"],
    ["--allow-ports", "http"],
    ["--allow-destination-cidrs", "300.1.0.0/16"],
    ["--dns-servers", "not-an-ip"],
    ["--log-level", "loud"],
    ["-v", "/no/such/host/path:/data"],
    ["-v", "relative:/data"],
    ["-v", "/tmp:/data:rx"],
    ["--work-dir", "relative/dir"],
    ["--agent-timeout", "0"],
    ["--agent-timeout", "soon"],
    ["--agent-timeout", "nan"],
    ["--agent-timeout", "-1"],
    ["--agent-timeout", "1e9"],
    ["--agent-timeout", "5m"],
    ["--tls-ports", "443,x"],
    ["--http-ports", "0"],
    ["-e", "=novalue"],
    ["--env-file", "/no/such/env-file"],
    ["-e", "1BAD=x"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a))
def test_awf_errors_are_125_and_run_nothing(world, args):
    mark = os.path.join(world.home, "ran-" + token())
    r = world.awf("touch", mark, args=args)
    assert r.rc == 125, r
    assert r.err.startswith("awf:") or "\nawf:" in r.err, r
    assert not os.path.exists(mark)


def test_missing_command_is_125(world):
    argv, _ = world.awf_argv([], ["-d", "allowed.test"])
    p = subprocess.run(argv[:-1], capture_output=True, env=world.base_env(), timeout=30)
    assert p.returncode == 125, p


def test_unknown_user_is_125(world):
    only_root(world, "SUDO_UID is root's to trust (test_rootless_ignores_sudo_ids)")
    r = world.awf("true", extra_env={"SUDO_UID": "4343", "SUDO_GID": "4343"})
    assert r.rc == 125 and "awf:" in r.err, r


def test_rootless_ignores_sudo_ids(world):
    """A user cannot claim another uid through SUDO_UID: rootless, the
    command runs as awf's own caller whatever the environment says."""
    if not world.rootless:
        pytest.skip("root: SUDO_UID names the user (test_unknown_user_is_125)")
    r = world.awf("sh", "-c", "id -u; id -g", extra_env={"SUDO_UID": "0", "SUDO_GID": "0"})
    assert (r.rc, r.out.split()) == (0, [str(UID), str(GID)]), r


def test_work_dir_missing_is_125(world):
    r = world.awf("pwd", args=["--work-dir", "/no/such/dir"])
    assert r.rc == 125 and "awf:" in r.err, r


def test_not_root_runs_rootless(world):
    """awf started by a user (no sudo) builds the sandbox in a user namespace
    of its own: the command runs as that user, uid and gid mapped onto
    themselves."""
    only_root(world, "every run of this mode is one")
    r = world.awf("sh", "-c", "id -u; cat /proc/self/uid_map /proc/self/gid_map", log=False,
                  pre=["setpriv", f"--reuid={UID}", f"--regid={GID}", "--clear-groups", "--"])
    assert r.rc == 0, r
    assert r.out.split() == [str(UID), str(UID), str(UID), "1", str(GID), str(GID), "1"], r


def test_version_and_help(world):
    for flag, want in (("--version", "awf "), ("--help", "Usage: awf")):
        p = subprocess.run(world.ns.cmd([world.awf_bin, flag]), capture_output=True,
                           timeout=30, env=world.base_env())
        assert p.returncode == 0 and p.stdout.decode().startswith(want), p


# -- signals --------------------------------------------------------------------

FORWARDED = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGWINCH, signal.SIGINT,
             signal.SIGQUIT]


def test_signals_are_forwarded(world):
    t = token()
    log = os.path.join(world.home, f"sigs-{t}")
    ready = os.path.join(world.home, f"ready-{t}")
    traps = "; ".join(f"trap 'echo {s.name} >> {log}' {s.name[3:]}" for s in FORWARDED)
    script = (f"{traps}; trap 'echo SIGTERM >> {log}; exit 7' TERM; echo up > {ready}; "
              "while :; do sleep 0.05; done")
    p, _ = world.popen("sh", "-c", script)
    try:
        assert wait_for(lambda: os.path.exists(ready)), stop(p)
        for sig in FORWARDED:
            p.send_signal(sig)
            assert wait_for(lambda: os.path.exists(log) and sig.name in open(log).read()), \
                (sig.name, stop(p))
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 7
        assert open(log).read().split() == [s.name for s in FORWARDED] + ["SIGTERM"]
    finally:
        stop(p)


def test_stdin_and_stdout_pass_through(world):
    data = b"line one\n" + bytes(range(256)) * 64
    r = world.awf("sha256sum", input=data)
    assert r.rc == 0 and r.out.split()[0] == sha256(data), r


def test_only_stdio_is_inherited(world):
    """Every fd but 0-2 is closed before exec (here: one awf inherited)."""
    with open(os.path.join(world.logs, "inherited-" + token()), "w") as f:
        argv, _ = world.awf_argv(["ls", "/proc/self/fd"], ["--log-file", "/dev/null"],
                                 log=False)
        p = subprocess.run(argv, capture_output=True, env=world.base_env(), cwd=world.home,
                           timeout=30, pass_fds=[f.fileno()])
    assert p.returncode == 0, p
    assert sorted(map(int, p.stdout.split())) == [0, 1, 2, 3], p  # 3: ls's own directory


# -- environment ------------------------------------------------------------------

def test_default_environment(world):
    env = env_of(world.awf(*ENV_DUMP, extra_env={"HOST_ONLY_VAR": "x"}))
    assert "HOST_ONLY_VAR" not in env
    assert (env["HOME"], env["USER"], env["LOGNAME"]) == (world.home, USER, USER)
    assert not any(k.startswith("SUDO_") for k in env)
    assert "/usr/bin" in env["PATH"].split(":")


def test_env_all_passes_the_host_but_not_the_reserved(world):
    host = {"FOO_ALL": "from host", "PATH": "/evil/bin:/usr/bin", "HOME": "/root",
            "USER": "root", "LOGNAME": "root", "PWD": "/root", "OLDPWD": "/x", "SHLVL": "9",
            "http_proxy": "http://evil:1", "HTTPS_PROXY": "http://evil:2",
            "ALL_PROXY": "socks5://evil:3", "no_proxy": "*", "Ftp_Proxy": "x",
            "BIG": "b" * (64 * 1024 + 1), "EXCLUDED": "secret", "WITH_EQ": "a=b c=d"}
    env = env_of(world.awf(*ENV_DUMP, args=["--env-all", "--exclude-env", "EXCLUDED"],
                           extra_env=host))
    assert env["FOO_ALL"] == "from host" and env["WITH_EQ"] == "a=b c=d"
    assert env["HOME"] == world.home and env["USER"] == USER and env["LOGNAME"] == USER
    assert "/evil/bin" not in env["PATH"]
    for k in ("PWD", "OLDPWD", "SHLVL", "BIG", "EXCLUDED", "ALL_PROXY", "Ftp_Proxy",
              "SUDO_UID", "SUDO_GID", "SUDO_USER", "SUDO_COMMAND"):
        assert k not in env, k
    # awf's own proxy, whatever port the sandbox reports, never the host's
    assert env["http_proxy"] == env["HTTPS_PROXY"] == env["HTTP_PROXY"]
    assert re.fullmatch(r"http://127\.0\.0\.1:[0-9]+", env["HTTP_PROXY"]), env["HTTP_PROXY"]
    assert env["no_proxy"] == "localhost,127.0.0.1,127.0.0.0/8,::1"


def test_env_precedence_cli_over_file_over_all(world):
    envfile = world.user_file(
        "vars.env", "# comment\n\nexport BOTH=from file\nFILE_ONLY=x y = z\n"
        "ALL3=from file\nQUOTED='a \"b\" c'\nHOME=/from/file\n")
    host = {"BOTH": "from host", "ALL3": "from host", "HOST_ONLY": "h"}
    env = env_of(world.awf(*ENV_DUMP, extra_env=host, args=[
        "--env-all", "--env-file", envfile, "-e", "ALL3=from cli", "-e", "SPACED=a b=c d",
        "-e", "USER=chosen"]))
    assert env["HOST_ONLY"] == "h"
    assert env["BOTH"] == "from file"
    assert env["ALL3"] == "from cli"
    assert env["FILE_ONLY"] == "x y = z"
    assert env["QUOTED"] == 'a "b" c'
    assert env["SPACED"] == "a b=c d"
    assert env["HOME"] == "/from/file" and env["USER"] == "chosen"  # explicit wins


def test_exclude_env_does_not_remove_explicit(world):
    env = env_of(world.awf(*ENV_DUMP, extra_env={"KEEP": "host"}, args=[
        "--env-all", "--exclude-env", "KEEP", "-e", "KEEP=cli"]))
    assert env["KEEP"] == "cli"


def test_env_name_alone_copies_the_host_value(world):
    """-e NAME (no '=') passes awf's own value of NAME, spaces and '=' kept;
    a NAME awf does not have is simply not set."""
    env = env_of(world.awf(*ENV_DUMP, extra_env={"TOKEN_X": "s3 cr=et"}, args=[
        "-e", "TOKEN_X", "-e", "NOT_SET_ANYWHERE_X"]))
    assert env["TOKEN_X"] == "s3 cr=et"
    assert "NOT_SET_ANYWHERE_X" not in env


# -- who the command is -----------------------------------------------------------

def test_runs_as_the_invoking_user(world):
    r = world.awf("sh", "-c", "id -u; id -g; id -G; id -un; echo $HOME")
    assert r.rc == 0, r
    uid, gid, groups, name, home = r.out.split("\n")[:5]
    assert (int(uid), int(gid), name, home) == (UID, GID, USER, world.home)
    if world.rootless:
        # Only the user's own uid and gid are mapped in its user namespace:
        # the other groups stay (their files remain readable, below) but show
        # as the overflow gid.
        assert sorted(map(int, groups.split())) == sorted([GID, 65534]), r
    else:
        assert sorted(map(int, groups.split())) == sorted([GID, EXTRA_GROUP[1]])


def test_supplementary_group_rights_are_kept(world):
    """A file only the user's extra group may read: readable in both modes
    (rootless, the group is unmapped but still the process's)."""
    path = world.user_file("group-only-" + token(), "for the group\n", mode=0o040)
    os.chown(path, 0, EXTRA_GROUP[1])
    r = world.awf("cat", path)
    assert (r.rc, r.out) == (0, "for the group\n"), r


def test_no_capabilities_no_new_privs_seccomp(world):
    r = world.awf("cat", "/proc/self/status")
    assert r.rc == 0, r
    st = dict(ln.split(":\t", 1) for ln in r.out.splitlines() if ":\t" in ln)
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[cap], 16) == 0, (cap, st[cap])
    assert st["NoNewPrivs"].strip() == "1"
    assert st["Seccomp"].strip() == "2"
    assert st["Uid"].split() == [str(UID)] * 4


SYSCALLS = r"""
import ctypes, json, os, platform
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def err(rc):
    return 0 if rc == 0 else ctypes.get_errno()
out = {}
out["unshare_user"] = err(libc.unshare(0x10000000))            # CLONE_NEWUSER
out["unshare_net"] = err(libc.unshare(0x40000000))
out["ptrace_traceme"] = err(libc.ptrace(0, 0, None, None))       # PTRACE_TRACEME
out["mount"] = err(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
out["umount2"] = err(libc.umount2(b"/tmp", 0))
out["chroot"] = err(libc.chroot(b"/"))
out["setns"] = err(libc.setns(os.open("/proc/self/ns/net", os.O_RDONLY), 0))
if platform.machine() == "x86_64":
    for name, nr in (("pivot_root", 155), ("kexec_load", 246), ("init_module", 175),
                     ("keyctl", 250), ("add_key", 248), ("request_key", 249),
                     ("perf_event_open", 298), ("open_by_handle_at", 304),
                     ("process_vm_readv", 310), ("bpf", 321), ("userfaultfd", 323),
                     ("io_uring_setup", 425), ("open_tree", 428), ("move_mount", 429),
                     ("fsopen", 430), ("clone3", 435)):
        out[name] = err(libc.syscall(nr, 0, 0, 0, 0, 0, 0))
print(json.dumps(out))
"""


def test_privileged_syscalls_fail_with_eperm(world):
    """EPERM from the filter before any argument is looked at (unfiltered,
    most of these fail with EFAULT/EINVAL on their null arguments, and the
    namespace ones succeed); clone3 gets ENOSYS so libc falls back to clone."""
    r = world.awf("python3", "-c", SYSCALLS)
    assert r.rc == 0, r
    got = json.loads(r.out)
    want = {k: errno.ENOSYS if k == "clone3" else errno.EPERM for k in got}
    assert got == want


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86_64 machine code")
@pytest.mark.parametrize("abi", ["i386", "x32"])
def test_foreign_abi_kills(world, abi):
    """int 0x80 (i386) or the x32 bit: the process is killed (SIGSYS)."""
    if abi == "i386":
        code = ("import ctypes, mmap\n"
                "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
                "m.write(b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3')  # getpid; int 0x80; ret\n"
                "addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
                "print('survived', ctypes.CFUNCTYPE(ctypes.c_int)(addr)())\n")
    else:
        code = ("import ctypes\n"
                "libc = ctypes.CDLL(None, use_errno=True)\n"
                "print('survived', libc.syscall(0x40000000 | 39), ctypes.get_errno())\n")
    r = world.awf("python3", "-c", code)
    assert r.rc == 128 + signal.SIGSYS and "survived" not in r.out, r


def test_privileged_tools_fail(world):
    cmds = [["unshare", "-U", "true"], ["unshare", "-Ur", "true"], ["unshare", "-n", "true"],
            ["chroot", "/", "true"], ["mount", "-t", "tmpfs", "none", "/tmp"],
            ["nft", "list", "ruleset"], ["nft", "add", "table", "inet", "evil"]]
    for tool in ("strace", "iptables"):
        if shutil.which(tool):
            cmds.append([tool, "-L"] if tool == "iptables" else [tool, "-o", "/dev/null", "true"])
    script = "; ".join(" ".join(c) + " >/dev/null 2>&1; echo $?" for c in cmds)
    r = world.awf(script)
    assert r.rc == 0, r
    codes = [int(x) for x in r.out.split()]
    failed = dict(zip((" ".join(c) for c in cmds), codes))
    assert all(c not in (0, 127) for c in codes), failed


def test_own_session_no_terminal(world):
    code = ("import os\n"
            "print(os.getsid(0) == os.getpid())\n"
            "try:\n"
            "    os.open('/dev/tty', os.O_RDWR); print('tty')\n"
            "except OSError as e:\n"
            "    print('no tty', e.errno)\n")
    r = world.awf("python3", "-c", code)
    assert r.rc == 0 and r.out.splitlines()[0] == "True" and "no tty" in r.out, r


def test_pid_namespace(world):
    """Only the sandbox's processes are visible; the caller's are not."""
    r = world.awf("sh", "-c", "ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/1/cmdline | "
                  "tr '\\0' ' '; echo; echo $$")
    assert r.rc == 0, r
    count, _init, mypid = r.out.splitlines()[:3]
    assert int(count) < 8, r
    assert int(mypid) < 10, r


def test_root_caller_gets_root_without_privileges(world):
    """No SUDO_UID: the command runs as the caller, here uid 0, and still has
    no capabilities: no nft, no mount, no sysctl writes."""
    script = ("id -u; grep -E '^Cap(Eff|Prm|Bnd)' /proc/self/status | awk '{print $2}'; "
              "nft list ruleset >/dev/null 2>&1; echo nft=$?; "
              "mount -t tmpfs none /mnt >/dev/null 2>&1; echo mount=$?; "
              "echo 1 2>/dev/null > /proc/sys/net/ipv4/ip_forward; echo sysctl=$?; "
              "test -e /etc/shadow; echo shadow=$?")
    r = world.awf(script, sudo=False, cwd="/")
    assert r.rc == 0, r
    lines = r.out.split()
    assert lines[0] == "0", r
    assert all(int(x, 16) == 0 for x in lines[1:4]), r
    for key in ("nft", "mount", "sysctl", "shadow"):
        line = next(x for x in lines if x.startswith(key + "="))
        assert line != f"{key}=0", r


def test_path_is_rebuilt(world):
    """GITHUB_PATH's entries first (its last line first, as the runner
    prepends each line), then the tool a job's GOROOT names, then awf's own
    PATH entries that exist in the sandbox (others are dropped), then the
    system directories."""
    mine = world.user_dir("bin-" + token())
    hidden = world.logs  # exists on the host, not in the sandbox
    gh1 = world.user_dir("ghbin1-" + token())
    gh2 = world.user_dir("ghbin2-" + token())
    goroot = world.user_dir("go-" + token())
    os.makedirs(os.path.join(goroot, "bin"))
    gh = world.user_file("github_path-" + token(), f"{gh1}\n{gh2}\n")
    env = world.base_env()
    env.update(PATH=f"{mine}:{hidden}:/usr/bin:/bin", GITHUB_PATH=gh, GOROOT=goroot)
    path = env_of(world.awf(*ENV_DUMP, env=env))["PATH"].split(":")
    assert path[:4] == [gh2, gh1, goroot + "/bin", mine], path
    assert hidden not in path, path
    assert path.index(mine) < path.index("/usr/bin"), path
    assert len(path) == len(set(path)), path


def test_github_path_tool_wins_over_system_binary(world):
    """A job that ran setup-node has the tool cache's node on GITHUB_PATH: it
    must shadow /usr/bin/node inside the sandbox, as it does on the runner."""
    tool = world.user_dir("node-" + token())
    node = os.path.join(tool, "node")
    with open(node, "w") as f:
        f.write("#!/bin/sh\necho tool-cache-node\n")
    os.chmod(node, 0o755)
    gh = world.user_file("github_path-" + token(), f"{tool}\n")
    env = world.base_env()
    env.update(GITHUB_PATH=gh)
    r = world.awf("node", env=env)
    assert (r.rc, r.out) == (0, "tool-cache-node\n"), r


# ---- files the caller names are opened with the caller's rights ---------------

def _root_only(world, name, text):
    """A file only root can read, in a directory only root can enter."""
    d = os.path.join(world.root, "root-only-" + token())
    os.mkdir(d, 0o700)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return d, path


@pytest.mark.parametrize("flag", ["--env-file", "--allow-domains-file", "--block-domains-file"])
def test_root_only_input_files_are_refused(world, flag):
    """Under sudo, awf is root but the files its caller names must be the
    caller's to read: no secret reaches the command or awf's messages."""
    _, path = _root_only(world, "input", "TOKEN=root-only-secret\n")
    r = world.awf("sh", "-c", "echo TOKEN=$TOKEN", args=[flag, path])
    assert r.rc == 125, r
    assert "Permission denied" in r.err, r
    assert "root-only-secret" not in r.out + r.err, r


def test_log_file_in_a_root_only_directory_is_refused(world):
    """--log-file is created with the caller's rights: not in a directory of
    root's (it could be /root/.bashrc or /etc/profile.d)."""
    d, _ = _root_only(world, "unused", "")
    log = os.path.join(d, "awf.jsonl")
    r = world.awf("true", args=["--log-file", log], log=False)
    assert r.rc == 125 and "--log-file" in r.err and "Permission denied" in r.err, r
    # whose rights: under sudo, a bare "Permission denied" reads as root's
    assert f"(opened as uid {UID} ({USER}))" in r.err, r
    assert not os.path.exists(log)


def test_root_only_github_path_is_not_read(world):
    d, gh = _root_only(world, "github_path", "/opt/awfw-secret-bin\n")
    env = world.base_env()
    env.update(GITHUB_PATH=gh)
    r = world.awf("sh", "-c", "echo $PATH", env=env)
    assert r.rc == 0, r
    assert "awfw-secret-bin" not in r.out and "GITHUB_PATH" in r.err, r
