"""What the command's sockets can reach beyond its network namespace:
netlink protocols that report on the whole machine, and the host's UNIX
sockets in the shared /tmp and $HOME."""

import json
import os
import shutil
import socket
import struct
import tempfile
import threading
import time

import pytest

from harness.util import token
from harness.world import GID, UID, require_awf, stop, wait_for, world  # noqa: F401 (fixture)

require_awf()

NETLINK_PROBE = """
import errno, json, socket
out = {}
for name, proto in (("route", 0), ("sock_diag", 4), ("uevent", 15), ("audit", 9),
                    ("generic", 16)):
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def test_host_uevents_not_heard(world):
    """A NETLINK_KOBJECT_UEVENT socket would receive the host's device events
    (every namespace the initial user namespace owns gets them): refused like
    a missing family, as are audit and generic netlink; the sandbox's own
    routes and sockets (ROUTE, SOCK_DIAG) still answer."""
    r = world.awf("python3", "-c", NETLINK_PROBE)
    assert r.rc == 0, r
    assert json.loads(r.out) == {"route": "ok", "sock_diag": "ok", "uevent": "EAFNOSUPPORT",
                                 "audit": "EAFNOSUPPORT", "generic": "EAFNOSUPPORT"}, r


# -- host UNIX sockets ------------------------------------------------------------

class HostUnixServer:
    """A listening UNIX socket of the host (like tmux's or ssh-agent's) in the
    shared /tmp, open to everyone (mode 0777, as a careless daemon leaves it):
    counts connections and records each peer's SO_PEERCRED."""

    def __init__(self, path):
        self.path = path
        self.peers = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        os.chmod(path, 0o777)
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            cred = c.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
            self.peers.append(struct.unpack("3i", cred))
            try:
                c.sendall(b"host\n")
            except OSError:
                pass
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        try:
            os.unlink(self.path)
        except OSError:
            pass


@pytest.fixture
def shared_dir():
    """A directory of the caller's in the shared /tmp, seen alike inside awf."""
    path = tempfile.mkdtemp(prefix="awf-unix-", dir="/tmp")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


CONNECT = """
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print("connected", s.recv(16).decode().strip())
except OSError as e:
    print(errno.errorcode[e.errno])
"""


def test_host_unix_socket_tmux_like_refused(world, shared_dir):
    """A tmux-like server socket in the shared /tmp: a connect would let the
    command `send-keys` to a shell outside the sandbox. Refused (EACCES), and
    the server never sees a connection; awf says so on stderr."""
    server = HostUnixServer(os.path.join(shared_dir, "default"))
    try:
        r = world.awf("python3", "-c", CONNECT, server.path)
        assert r.rc == 0 and r.out.strip() == "EACCES", r
        assert "refused a connection to the UNIX socket" in r.err, r
        assert server.peers == []
        # the decision is in the access log and the summary, with its fix
        recs = r.records(event="unix")
        assert [(x["path"], x["decision"], x["reason"]) for x in recs] == \
            [(server.path, "deny", "unix_socket_not_allowed")], r
        assert f"  {server.path}  unix_socket_not_allowed" in r.err, r
        assert f"--allow-unix-socket {server.path}" in r.err, r
    finally:
        server.close()


def test_host_unix_socket_made_after_start_refused(world, shared_dir):
    """A host socket that appears once the command runs is refused too: the
    decision is made at each connect, not from a list taken at start."""
    path = os.path.join(shared_dir, "agent.sock")
    script = ("import os, time, runpy, sys\n"
              "while not os.path.exists(sys.argv[1]): time.sleep(0.02)\n"
              f"exec({CONNECT!r})\n")
    p, _ = world.popen("python3", "-c", script, path)
    server = None
    try:
        time.sleep(0.3)
        server = HostUnixServer(path)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and out.decode().strip() == "EACCES", (out, err)
        assert server.peers == []
    finally:
        stop(p)
        if server:
            server.close()


def test_allow_unix_socket_connects_as_the_command_user(world, shared_dir):
    """--allow-unix-socket PATH lets that host socket through; the server sees
    the command's uid and gid as the peer, never root's."""
    server = HostUnixServer(os.path.join(shared_dir, "ssh-agent.sock"))
    try:
        r = world.awf("python3", "-c", CONNECT, server.path,
                      args=["--allow-unix-socket", server.path])
        assert r.rc == 0 and r.out.strip() == "connected host", r
        assert [(uid, gid) for _, uid, gid in server.peers] == [(UID, GID)]
        recs = r.records(event="unix")  # a host socket let through is a decision too
        assert [(x["path"], x["decision"], x["reason"]) for x in recs] == \
            [(server.path, "allow", "allowed")], r
    finally:
        server.close()


def test_allow_unix_socket_bad_path_is_125(world, shared_dir):
    plain = os.path.join(shared_dir, "plain")
    open(plain, "w").close()
    for path, why in ((os.path.join(shared_dir, "missing"), "No such file"),
                      (plain, "not a socket")):
        r = world.awf("true", args=["--allow-unix-socket", path])
        assert r.rc == 125 and why in r.err, r


SANDBOX_PAIR = """
import os, socket, sys, threading
path = sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
def serve():
    c, _ = srv.accept()
    c.sendall(b"inside\\n")
    c.close()
threading.Thread(target=serve, daemon=True).start()
cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
cli.settimeout(10)
os.chdir(os.path.dirname(path))
cli.connect(os.path.basename(path))  # a relative name, from the command's cwd
print(cli.recv(16).decode().strip())
a, b = socket.socketpair()
a.sendall(b"pair")
print(b.recv(4).decode())
"""


@pytest.mark.parametrize("where", ["tmp", "home"])
def test_sandbox_own_unix_socket_works(world, shared_dir, where):
    """A socket the command binds itself (in the shared /tmp or its home)
    serves its own clients; socketpair is untouched."""
    d = shared_dir if where == "tmp" else world.user_dir("unix-" + token())
    r = world.awf("python3", "-c", SANDBOX_PAIR, os.path.join(d, "own.sock"))
    assert r.rc == 0 and r.out.split() == ["inside", "pair"], r


SWAP_RACE = """
import errno, os, socket, sys, threading
d, host = sys.argv[1], sys.argv[2]
own = os.path.join(d, "own.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(own)
srv.listen(512)
def serve():
    while True:
        c, _ = srv.accept()
        c.close()
threading.Thread(target=serve, daemon=True).start()
link = os.path.join(d, "link")
stop = False
def swap():
    i = 0
    while not stop:
        tmp = os.path.join(d, "tmp%d" % (i % 2))
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(own if i % 2 else host, tmp)
        os.rename(tmp, link)
        i += 1
threading.Thread(target=swap, daemon=True).start()
ok = refused = 0
for _ in range(N):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(link)
        ok += 1
    except OSError as e:
        if e.errno == errno.EACCES:
            refused += 1
    s.close()
stop = True
print(ok, refused)
"""


def test_symlink_swap_race_never_reaches_host(world, shared_dir):
    """The command flips a symlink between its own socket and a host one while
    connecting through it: awf connects the inode it checked, so some
    connects reach the command's own server, some are refused, none reaches
    the host's."""
    server = HostUnixServer(os.path.join(shared_dir, "host.sock"))
    d = world.user_dir("race-" + token(), parent=shared_dir)
    try:
        r = world.awf("python3", "-c", "N = 400\n" + SWAP_RACE, d, server.path)
        assert r.rc == 0, r
        ok, refused = map(int, r.out.split())
        assert ok > 0 and refused > 0, r
        assert server.peers == []
    finally:
        server.close()


FD_SWAP = """
import errno, os, socket, sys, threading
host = sys.argv[1]
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
fd = os.dup(tcp.fileno())
stop = False
def swap():
    while not stop:
        os.dup2(uds.fileno(), fd)
        os.dup2(tcp.fileno(), fd)
threading.Thread(target=swap, daemon=True).start()
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
addr = socket.AF_UNIX.to_bytes(2, "little") + host.encode() + b"\\0"
buf = ctypes.create_string_buffer(addr, len(addr))
import time
end = time.monotonic() + 2
while time.monotonic() < end and libc.connect(fd, buf, len(addr)) != 0:
    pass
stop = True
print("done")
"""


def test_fd_swap_race_never_reaches_host(world, shared_dir):
    """Another thread points the descriptor being connected at a UNIX socket
    and back at a TCP one: awf connects the socket it looked at, never
    whatever the number names when the kernel would go on."""
    server = HostUnixServer(os.path.join(shared_dir, "host.sock"))
    try:
        r = world.awf("python3", "-c", FD_SWAP, server.path, timeout=120)
        assert r.rc == 0 and r.out.strip() == "done", r
        assert server.peers == []
    finally:
        server.close()


DGRAM = """
import errno, socket, sys
out = []
# SOCK_RAW is a datagram socket too: the kernel's unix_create maps it to SOCK_DGRAM
for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
    for make in (lambda: [socket.socket(socket.AF_UNIX, kind)],
                 lambda: list(socket.socketpair(socket.AF_UNIX, kind))):
        try:
            socks = make()
            socks[0].sendto(b"from the sandbox", sys.argv[1])
            out.append("sent")
        except OSError as e:
            out.append(errno.errorcode[e.errno])
print(*out)
"""


def test_host_unix_datagram_socket_unreachable(world, shared_dir):
    """A datagram may be sent by name from any AF_UNIX datagram socket (to
    /dev/log, a journal or notify socket of the host); such sockets are not
    available in the sandbox, whether asked for as SOCK_DGRAM or as SOCK_RAW
    (which the kernel silently makes a datagram socket), by socket or
    socketpair."""
    path = os.path.join(shared_dir, "log")
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(path)
    os.chmod(path, 0o777)
    host.settimeout(0.5)
    try:
        r = world.awf("python3", "-c", DGRAM, path)
        assert r.rc == 0 and r.out.split() == ["EAFNOSUPPORT"] * 4, r
        with pytest.raises(socket.timeout):
            host.recv(100)
    finally:
        host.close()


def test_host_abstract_unix_socket_unreachable(world):
    """An abstract name (like X11's @/tmp/.X11-unix/X0) lives in a network
    namespace: one bound where awf runs is not in the sandbox's own."""
    name = "awf-test-" + token()

    def bind():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind("\0" + name)
        s.listen(4)
        return s
    host = world.ns.call(bind)
    host.settimeout(0.3)
    script = CONNECT.replace("s.connect(sys.argv[1])", "s.connect('\\0' + sys.argv[1])")
    try:
        r = world.awf("python3", "-c", script, name)
        assert r.rc == 0 and r.out.strip() == "ECONNREFUSED", r
        with pytest.raises(socket.timeout):
            host.accept()
    finally:
        host.close()


# -- awf's own identity and sockets must not lend themselves to the command --------

FORGED_DIAG = """
import errno, json, socket, struct, sys
path, dev, ino = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}

def attempt():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        return "connected " + s.recv(16).decode().strip()
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))

def step(name, fn):
    try:
        out[name] = fn()
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))

out["before"] = attempt()
# A connect awf makes autobinds the socket: its port id says which pid made it.
r = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
step("kernel", lambda: r.connect((0, 0)))
awfpid = r.getsockname()[0]
# Forged SOCK_DIAG_BY_FAMILY "replies" saying the host socket is the sandbox's.
vfs = struct.pack("HHII", 12, 1, ino, dev)  # UNIX_DIAG_VFS: ino, (major << 20) | minor
body = struct.pack("BBBBIII", 1, 1, 10, 0, 12345, 0, 0) + vfs
msg = struct.pack("IHHII", 16 + len(body), 20, 2, 0, 0) + body
dg = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4)
step("connect", lambda: dg.connect((awfpid, 0)))
step("send", lambda: [dg.send(msg) for _ in range(3)] and "sent")
step("sendto", lambda: [dg.sendto(msg, (awfpid, 0)) for _ in range(3)] and "sent")
out["after"] = attempt()
print(json.dumps(out))
"""


def test_forged_sock_diag_replies_never_admit_a_host_socket(world, shared_dir):
    """The command's netlink socket, connected by awf to awf's own port id,
    feeds forged NETLINK_SOCK_DIAG "replies" naming a host socket's inode into
    the socket awf lists the sandbox's sockets with. The connect is made with
    the command's credentials and no capability, so the kernel refuses a port
    id (EPERM, as it would without awf), sending there is refused too, and awf
    reads only the kernel's answer to its own request: the host socket stays
    refused."""
    server = HostUnixServer(os.path.join(shared_dir, "tmux"))
    st = os.stat(server.path)
    kdev = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
    try:
        r = world.awf("python3", "-c", FORGED_DIAG, server.path, str(kdev), str(st.st_ino))
        assert r.rc == 0, r
        out = json.loads(r.out)
        assert out["before"] == "EACCES" and out["kernel"] is None, r
        assert out["connect"] == "EPERM" and out["sendto"] == "EPERM", r
        assert out["after"] == "EACCES", r
        assert server.peers == []
    finally:
        server.close()


NETLINK_PORT = """
import errno, socket
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
try:
    s.connect((12345, 0))  # another socket's port id: needs CAP_NET_ADMIN
    print("connected")
except OSError as e:
    print(errno.errorcode[e.errno])
"""


@pytest.mark.parametrize("sudo", [True, False], ids=["user", "root"])
def test_netlink_connect_never_uses_awfs_capabilities(world, sudo):
    """awf makes the command's connects; none of awf's capabilities may be in
    effect then (CAP_NET_ADMIN would let a netlink socket be pointed at any
    port id), also when the command runs as root, whose capabilities awf
    dropped."""
    r = world.awf("python3", "-c", NETLINK_PORT, sudo=sudo)
    assert r.rc == 0 and r.out.strip() == "EPERM", r


ABSTRACT_PEER = """
import socket, struct, sys
name = "\\0awf-peer-" + sys.argv[1]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(name)
srv.listen(4)
out = []
for blocking in (True, False):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.setblocking(blocking)
    c.connect(name)
    a, _ = srv.accept()
    pid, uid, gid = struct.unpack("3i", a.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    out.append("%d:%d" % (uid, gid))
print(*out)
"""


def test_abstract_socket_peer_sees_the_command_user_not_root(world):
    """A server of the command's on an abstract name sees its clients as the
    command's uid and gid (SO_PEERCRED), on blocking and non-blocking
    sockets alike, never as root."""
    r = world.awf("python3", "-c", ABSTRACT_PEER, token())
    assert r.rc == 0 and r.out.split() == [f"{UID}:{GID}"] * 2, r


FULL_BACKLOG = """
import errno, os, signal, socket, sys, threading, time
path = os.path.join(sys.argv[1], "full.sock")
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(0)
fill = []
while True:  # fill the backlog: the next blocking connect waits for ever
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
        fill.append(s)
    except BlockingIOError:
        break
"""

INTERRUPTED_CONNECTS = FULL_BACKLOG + """
class Interrupted(Exception):
    pass
def alarm(sig, frame):
    raise Interrupted()
signal.signal(signal.SIGALRM, alarm)
counts = {}
for _ in range(N):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    signal.setitimer(signal.ITIMER_REAL, 0.005)
    try:
        s.connect(path)
        k = "connected"
    except Interrupted:
        k = "interrupted"
    except OSError as e:
        k = errno.errorcode[e.errno]
    signal.setitimer(signal.ITIMER_REAL, 0)
    counts[k] = counts.get(k, 0) + 1
    s.close()
print(" ".join("%s=%d" % kv for kv in sorted(counts.items())), flush=True)
time.sleep(60)
"""


def awf_threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError(f"no Threads line for {pid}")


def test_interrupted_blocking_connects_do_not_pile_up_threads_in_awf(world):
    """A command connecting in a loop to a socket whose backlog is full, each
    connect cut short by a timer: awf's threads for connects it abandoned
    must end (they live outside the sandbox's cgroup and --pids-limit), and
    never exceed the gate's cap."""
    d = world.user_dir("full-" + token())
    p, _ = world.popen("python3", "-c", "N = 300\n" + INTERRUPTED_CONNECTS, d)
    try:
        line = p.stdout.readline().decode()
        assert "interrupted=" in line, (line, stop(p))
        assert awf_threads(p.pid) <= 64 + 16, (line, stop(p))
        # once nothing waits, the connect threads are gone
        assert wait_for(lambda: awf_threads(p.pid) <= 16, timeout=10), \
            (awf_threads(p.pid), stop(p))
    finally:
        stop(p)


WAITING_CONNECTS = FULL_BACKLOG + """
results = []
def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        results.append("connected")
    except OSError as e:
        results.append(errno.errorcode[e.errno])
for _ in range(N):
    threading.Thread(target=connect, daemon=True).start()
time.sleep(2)
print("EAGAIN=%d" % results.count("EAGAIN"), flush=True)
time.sleep(60)
"""


BUSY_THEN_HOST = FULL_BACKLOG + """
def wait():
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(path)
    except OSError:  # EAGAIN past the gate's cap
        pass
for _ in range(N):  # every connect thread of the gate waits on the full backlog
    threading.Thread(target=wait, daemon=True).start()
time.sleep(2)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[2])
    print("connected", flush=True)
except OSError as e:
    print(errno.errorcode[e.errno], flush=True)
os._exit(0)
"""


def test_host_socket_refused_for_want_of_a_thread_is_logged(world, shared_dir):
    """A command holding all the gate's connect threads (64 connects waiting
    on a full backlog of its own) then tries a host socket: refused with
    EAGAIN before any judgement, which left no record, so a command could
    probe host sockets unseen (rootless, the gate's threads also share the
    command's pids). Every connect to a socket file refused so is on the
    record: deny, overloaded."""
    server = HostUnixServer(os.path.join(shared_dir, "default"))
    d = world.user_dir("busy-" + token())
    try:
        r = world.awf("python3", "-c", "N = 70\n" + BUSY_THEN_HOST, d, server.path)
    finally:
        server.close()
    assert r.rc == 0 and r.out.strip() == "EAGAIN", r
    assert server.peers == []
    recs = {(x["path"], x["decision"], x["reason"]) for x in r.records(event="unix")}
    # the 6 waiting connects past the cap are refused unjudged as well
    assert recs == {(server.path, "deny", "overloaded"),
                    (os.path.join(d, "full.sock"), "deny", "overloaded")}, r
    assert f"  {server.path}  overloaded" in r.err, r


def test_blocking_connects_past_the_cap_fail_with_eagain(world):
    """100 threads of the command wait in connect() on a full backlog: awf
    makes at most 64 such connects at once (its threads are outside the
    sandbox's cgroup), the others fail with EAGAIN at once."""
    d = world.user_dir("cap-" + token())
    p, _ = world.popen("python3", "-c", "N = 100\n" + WAITING_CONNECTS, d)
    try:
        line = p.stdout.readline().decode()
        assert line.strip() == "EAGAIN=36", (line, stop(p))
        assert awf_threads(p.pid) <= 64 + 16, (line, stop(p))
    finally:
        stop(p)
