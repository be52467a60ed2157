"""awf's filesystem: what the command sees of the host (read-only system
trees, rw $HOME and /tmp, --mount, --work-dir, --private-tmp) and what it
does not (shadow, the Docker socket, the rest of the host)."""

import glob
import json
import os
import shutil

from harness.util import token
from harness.world import GID, HOSTS_ONLY, ORIGIN, UID, require_awf, world  # noqa: F401

require_awf()

STAT = r"""
import json, os, sys
out = {}
for p in sys.argv[1:]:
    try:
        st = os.statvfs(p)
        out[p] = {"ro": bool(st.f_flag & os.ST_RDONLY), "nosuid": bool(st.f_flag & os.ST_NOSUID),
                  "nodev": bool(st.f_flag & os.ST_NODEV), "noexec": bool(st.f_flag & os.ST_NOEXEC),
                  "dir": os.path.isdir(p), "entries": len(os.listdir(p)) if os.path.isdir(p) else -1}
    except OSError as e:
        out[p] = e.errno
print(json.dumps(out))
"""


def stat_inside(w, paths, args=()):
    r = w.awf("python3", "-c", STAT, *paths, args=args)
    assert r.rc == 0, r
    return json.loads(r.out)


def test_system_trees_read_only_home_and_tmp_writable(world):
    paths = ["/usr", "/bin", "/usr/bin", "/lib", "/etc/passwd", "/etc/ssl/certs",
             "/etc/resolv.conf", "/sys", world.home, "/tmp", "/proc", "/dev/shm"]
    got = stat_inside(world, paths)
    for p in paths[:8]:
        assert isinstance(got[p], dict) and got[p]["ro"], (p, got[p])
    assert got["/usr"]["nosuid"] and got["/usr"]["nodev"]
    for p in (world.home, "/tmp", "/dev/shm"):
        assert not got[p]["ro"], (p, got[p])
    assert got["/proc"]["nosuid"] and got["/proc"]["nodev"] and got["/proc"]["noexec"]


def test_home_and_tmp_writes_reach_the_host(world):
    t = token()
    host_tmp = f"/tmp/awfw-{t}"
    with open(host_tmp + ".in", "w") as f:
        f.write("from host\n")
    try:
        r = world.awf("sh", "-c", f"echo home > $HOME/w-{t} && echo tmp > {host_tmp} && "
                      f"cat {host_tmp}.in")
        assert r.rc == 0 and r.out == "from host\n", r
        for path, text in ((os.path.join(world.home, f"w-{t}"), "home\n"), (host_tmp, "tmp\n")):
            assert open(path).read() == text
            assert (os.stat(path).st_uid, os.stat(path).st_gid) == (UID, GID)
    finally:
        for p in (host_tmp, host_tmp + ".in"):
            if os.path.exists(p):
                os.unlink(p)


def test_private_tmp(world):
    t = token()
    host_in = f"/tmp/awfw-{t}.in"
    with open(host_in, "w") as f:
        f.write("from host\n")
    try:
        r = world.awf("sh", "-c", f"test -e {host_in} && echo visible; echo x > /tmp/awfw-{t} "
                      "&& echo wrote", args=["--private-tmp"])
        assert r.rc == 0 and r.out == "wrote\n", r
        assert not os.path.exists(f"/tmp/awfw-{t}")
    finally:
        for p in (host_in, f"/tmp/awfw-{t}"):
            if os.path.exists(p):
                os.unlink(p)


def _host_dir(w, name):
    d = w.user_dir(f"{name}-{token()}", parent=w.root)
    with open(os.path.join(d, "data.txt"), "w") as f:
        f.write(name + "\n")
    return d


def test_mounts_ro_rw_default(world):
    ro, rw, dflt = (_host_dir(world, n) for n in ("ro", "rw", "default"))
    single = os.path.join(ro, "data.txt")
    script = ("cat /data/ro/data.txt /data/rw/data.txt /data/default/data.txt /data/one.txt; "
              "touch /data/ro/new 2>&1; echo ro=$?; "
              "touch /data/rw/new; echo rw=$?; touch /data/default/new; echo default=$?")
    r = world.awf(script, args=["-v", f"{ro}:/data/ro:ro", "-v", f"{rw}:/data/rw:rw",
                                "-v", f"{dflt}:/data/default", "-v", f"{single}:/data/one.txt:ro"])
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[:4] == ["ro", "rw", "default", "ro"], r
    assert "Read-only file system" in r.out and "ro=1" in lines, r
    assert "rw=0" in lines and "default=0" in lines, r
    assert not os.path.exists(os.path.join(ro, "new"))
    assert os.path.exists(os.path.join(rw, "new")) and os.path.exists(os.path.join(dflt, "new"))


def test_work_dir(world):
    wd = world.user_dir("wd-" + token())
    r = world.awf("sh", "-c", "pwd; echo x > relative.txt", args=["--work-dir", wd])
    assert r.rc == 0 and r.out == wd + "\n", r
    assert os.path.exists(os.path.join(wd, "relative.txt"))


def test_default_work_dir_is_the_current_one(world):
    wd = world.user_dir("cwd-" + token())
    r = world.awf("pwd", cwd=wd)
    assert r.rc == 0 and r.out == wd + "\n", r


def test_current_dir_outside_the_sandbox_falls_back_to_root(world):
    r = world.awf("pwd", cwd=world.logs)
    assert r.rc == 0 and r.out == "/\n", r
    assert "warning" in r.err.lower(), r


def test_secrets_and_host_files_invisible(world):
    host = ["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/sudoers.d", "/etc/crontab",
            "/etc/ssh/sshd_config", "/etc/machine-id", "/etc/apt", "/root", "/var/log",
            "/var/lib", "/srv", "/home", "/etc/netns", "/run/netns", "/run/docker.sock",
            world.logs, os.path.join(world.root, "keys"), "/var/cache"]
    host += glob.glob("/etc/ssh/ssh_host_*")
    host = [p for p in host if os.path.exists(p)]
    assert "/etc/shadow" in host and "/root" in host and "/var/log" in host
    got = stat_inside(world, host)
    visible = {p: v for p, v in got.items()
               if isinstance(v, dict) and not (v["dir"] and v["entries"] == 0)}
    assert visible == {}, visible


def test_etc_has_what_programs_need(world):
    r = world.awf("sh", "-c", f"getent hosts {HOSTS_ONLY}; getent passwd awftest | cut -d: -f3; "
                  "test -s /etc/ld.so.cache && test -e /etc/nsswitch.conf && "
                  "test -d /etc/ssl/certs && echo etc-ok")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split()[:2] == [ORIGIN, HOSTS_ONLY], r  # the world's /etc/hosts
    assert lines[1:] == [str(UID), "etc-ok"], r


def test_docker_socket_absent(world):
    """A Docker socket on the host (faked in a private mount namespace around
    awf) is not in the sandbox."""
    fake = ("mount -t tmpfs awf-e2e /run && python3 -c \"import socket; "
            "socket.socket(socket.AF_UNIX).bind('/run/docker.sock')\"")
    wrap = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c"]
    control = world.run(wrap + [fake + " && test -S /run/docker.sock && "
                                "test -S /var/run/docker.sock && echo present"])
    assert control.stdout == b"present\n", control
    code = ("import os, socket\n"
            "for p in ('/run/docker.sock', '/var/run/docker.sock'):\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.connect(p); print('connected', p)\n"
            "    except OSError as e:\n"
            "        print(p, os.path.exists(p), e.errno)\n")
    r = world.awf("python3", "-c", code, pre=wrap + [fake + ' && exec "$@"', "sh"])
    assert r.rc == 0, r
    assert r.out.split("\n")[:2] == ["/run/docker.sock False 2", "/var/run/docker.sock False 2"], r


def test_dev_is_minimal(world):
    want = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
            "/dev/pts/ptmx", "/dev/shm", "/dev/fd"]
    absent = [p for p in ("/dev/mem", "/dev/kmsg", "/dev/port", "/dev/sda", "/dev/vda",
                          "/dev/nvme0", "/dev/loop0", "/dev/net/tun", "/dev/kvm")
              if os.path.exists(p)]
    script = "; ".join(f"test -e {p} && echo {p}" for p in want + absent)
    r = world.awf(script + "; echo x > /dev/null && head -c 4 /dev/zero | wc -c")
    assert r.rc == 0, r
    assert r.out.split() == want + ["4"], r


def test_root_command_cannot_change_the_hosts_device_nodes(world):
    """/dev/null, /dev/tty... are the host's inodes, bound in. A command running
    as uid 0 (root's awf without sudo, or --rootless as root: no capability)
    is their owner, and the owner may chmod, chown and touch without one:
    `chmod 000 /dev/null` inside changed the host's. The binds are read-only
    (EROFS); the devices still read and write."""
    nodes = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"]
    before = {n: (os.stat(n).st_mode, os.stat(n).st_mtime_ns) for n in nodes}
    # the same mode and owner again: nothing would change on the host even unfixed
    script = "id -u; " + " ".join(
        f"chmod 666 {n} 2>/dev/null; echo $?; chown 0:0 {n} 2>/dev/null; echo $?; "
        f"touch -m {n} 2>/dev/null; echo $?;" for n in nodes)
    r = world.awf("sh", "-c", script + " echo x > /dev/null && head -c 4 /dev/zero | wc -c",
                  sudo=False, cwd="/")
    assert r.rc == 0, r
    out = r.out.split()
    assert out[0] == "0" and out[-1] == "4", r
    assert "0" not in out[1:-1], r
    assert {n: (os.stat(n).st_mode, os.stat(n).st_mtime_ns) for n in nodes} == before


def test_usr_is_the_hosts(world):
    """Host binaries, not copies: the same inode numbers as on the host."""
    py = os.path.realpath(shutil.which("python3", path="/usr/bin") or "/usr/bin/python3")
    r = world.awf("stat", "-c", "%i", py, "/usr/bin/env")
    assert r.rc == 0, r
    assert r.out.split() == [str(os.stat(py).st_ino), str(os.stat("/usr/bin/env").st_ino)]


def test_mount_inside_home_read_only(world):
    src = _host_dir(world, "inner")
    target = world.user_dir("inner-" + token())
    r = world.awf(f"cat {target}/data.txt; touch {target}/new 2>&1; echo rc=$?; "
                  "touch $HOME/beside && echo home-rw", args=["-v", f"{src}:{target}:ro"])
    assert r.rc == 0, r
    assert r.out.splitlines()[0] == "inner" and "Read-only file system" in r.out, r
    assert "rc=1" in r.out and "home-rw" in r.out, r
    assert not os.path.exists(os.path.join(src, "new"))


def test_mount_into_a_system_tree_leaves_the_host_alone(world):
    """A -v target under read-only /usr: whatever awf does (refuse, or make
    the mount point in its own tree), the host's /usr gets no new entry."""
    src = _host_dir(world, "sys")
    target = f"/usr/share/awfw-e2e-{token()}"
    r = world.awf("cat", f"{target}/data.txt", args=["-v", f"{src}:{target}:ro"])
    assert r.rc in (0, 125), r
    if r.rc == 0:
        assert r.out == "sys\n", r
    else:
        assert "awf:" in r.err, r
    assert not os.path.exists(target)


# ---- what a command leaves behind cannot steer the next run's mounts ----------

def test_mount_source_through_the_users_symlink_is_refused(world):
    """A link the command's user owns (one an earlier run could have planted
    in the home) is not followed in a -v host path: awf names it and stops.
    The same link owned by root is followed."""
    secret = _host_dir(world, "secret")  # stands for /root/.ssh or /etc
    os.chmod(secret, 0o700)
    os.chown(secret, 0, 0)
    proj = world.user_dir("proj-" + token())
    planted = os.path.join(proj, "cache")
    os.symlink(secret, planted)
    os.lchown(planted, UID, GID)
    r = world.awf("cat", "/cache/data.txt", args=["-v", f"{planted}:/cache"])
    assert r.rc == 125, r
    assert "symbolic link owned by uid" in r.err and '"cache"' in r.err, r
    assert "secret" not in r.out, r
    r = world.awf("true", args=["-v", f"{proj}/./cache/../cache:/cache"])
    assert r.rc == 125, r
    os.lchown(planted, 0, 0)
    os.chmod(secret, 0o755)
    r = world.awf("ls", "/cache", args=["-v", f"{planted}:/cache:ro"])
    assert r.rc == 0 and r.out == "data.txt\n", r


def test_mount_target_through_a_planted_link_stays_in_the_sandbox(world):
    """A first run plants a link in its read-write -v tree that points at the
    host's root as awf's builder saw it; a second run mounts through it.
    Nothing may appear on the host outside the sandbox's trees."""
    proj = _host_dir(world, "proj")
    real = world.user_dir("real-" + token(), parent=world.root)
    src = os.path.join(_host_dir(world, "src"), "data.txt")
    r = world.awf("ln", "-s", f"/.awf-oldroot{real}", "/work/proj/cache",
                  args=["--private-tmp", "-v", f"{proj}:/work/proj"])
    assert r.rc == 0, r
    assert os.path.islink(os.path.join(proj, "cache"))
    for target in ("/work/proj/cache/planted.txt", "/work/proj/cache/d/planted.txt"):
        r = world.awf("true", args=["--private-tmp", "-v", f"{proj}:/work/proj",
                                    "-v", f"{src}:{target}"])
        assert r.rc in (0, 125), r
        assert os.listdir(real) == [], (target, r)
    r = world.awf("true", args=["-v", f"{src}:/./.awf-oldroot{real}/planted.txt"])
    assert r.rc == 125 and ". or .." in r.err, r
    assert os.listdir(real) == []


def test_root_caller_gets_an_empty_home_and_a_private_tmp(world):
    """Run by root without sudo, the command is uid 0: it must not reach the
    host's /root or /tmp, where root's own files live."""
    t = token()
    host_tmp = f"/tmp/awfw-root-{t}"
    with open(host_tmp, "w") as f:
        f.write("host\n")
    try:
        r = world.awf("sh", "-c", f"echo HOME=$HOME; ls -A /root | wc -l; test -e {host_tmp} "
                      f"&& echo tmp-visible; touch /root/awfw-{t} && echo wrote",
                      sudo=False, cwd="/")
        assert r.rc == 0, r
        lines = r.out.split()
        assert lines[0] == "HOME=/root" and lines[1] == "0", r
        assert "tmp-visible" not in lines and "wrote" in lines, r
        assert not os.path.exists(f"/root/awfw-{t}")
    finally:
        for p in (host_tmp, f"/root/awfw-{t}"):
            if os.path.exists(p):
                os.unlink(p)
