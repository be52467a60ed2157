"""awf-proxy under systemd, without systemd: sockets passed the way socket
activation passes them (fds from 3, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES,
set by a small wrapper that execs awf-proxy so the pid is its own), and the
Type=notify protocol on a NOTIFY_SOCKET the test listens on (a path, or an
abstract name): READY=1 once every listener is up, RELOADING=1 then READY=1
around SIGHUP, STOPPING=1 on SIGTERM. Also the unit files in contrib/systemd
(systemd-analyze verify, when systemd is installed) and systemd's own
systemd-socket-activate."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import sys

import pytest

from harness.proxy import ProxyProcess
from harness.util import LOOPBACK_CIDRS, by, token

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Moves the fds given on its command line to 3, 4, ... (in order), sets the
# socket-activation variables with its own pid, and execs the rest.
WRAPPER = r"""
import fcntl, os, sys
names, fds, argv = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], sys.argv[4:]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100) for fd in fds]  # above 3 + len(fds)
for fd in fds:
    os.close(fd)  # only 3, 4, ... stay open in awf-proxy, as systemd leaves them
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(fds)), LISTEN_FDNAMES=names)
if sys.argv[3] == "--other-pid":
    os.environ["LISTEN_PID"] = str(os.getppid())
os.execv(argv[0], argv)
"""


class Notify:
    """The NOTIFY_SOCKET end: a datagram socket at a path or an abstract name."""

    def __init__(self, tmp_path, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"awf-test-{token()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = str(tmp_path / "notify")
            self.sock.bind(path)
            self.env = path
        self.sock.settimeout(10)

    def next(self):
        return self.sock.recv(4096).decode()

    def close(self):
        self.sock.close()


def _tcp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def _udp_and_tcp_on_one_port():
    for _ in range(20):
        t = _tcp_listener()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", t.getsockname()[1]))
            return u, t
        except OSError:
            u.close()
            t.close()
    pytest.fail("no port free for both UDP and TCP")


@pytest.fixture
def activated(proxy_bin, dns, origins, tmp_path):
    """Factory: awf-proxy with sockets [(name, socket)] passed, a notify
    socket, and the suite's rules. Returns (proc, notify)."""
    started = []

    def _start(socks, abstract=False, extra=(), wrapper_flag="--", wait=True):
        notify = Notify(tmp_path, abstract)
        log = str(tmp_path / f"access-{len(started)}.jsonl")
        args = ["--allow-domains", "allowed.test", "--allow-ports",
                ",".join(str(p) for p in origins.ports), "--allow-destination-cidrs",
                LOOPBACK_CIDRS, "--dns-servers", dns.addr, "--log-file", log,
                "--shutdown-grace", "3"] + list(extra)
        fds = [s.fileno() for _, s in socks]
        names = ":".join(n for n, _ in socks)
        env = dict(os.environ, NOTIFY_SOCKET=notify.env)
        p = ProxyProcess(proxy_bin, args, log_path=log, env=env, pass_fds=fds,
                         prefix=[sys.executable, "-c", WRAPPER, names,
                                 ",".join(map(str, fds)), wrapper_flag])
        for _, s in socks:
            s.close()  # the proxy's now
        started.append((p, notify))
        if wait:
            p.wait_listening(count=sum(1 for n, _ in socks if n in ("proxy", "")))
        return p, notify

    yield _start
    errors = []
    for p, notify in started:
        try:
            p.check_clean_exit()
        except AssertionError as e:
            errors.append(str(e))
        notify.close()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_passed_socket_and_notify(activated, origins, abstract):
    s = _tcp_listener()
    port = s.getsockname()[1]
    p, notify = activated([("proxy", s)], abstract=abstract)
    # READY=1 comes once the listener is up, after its "listening" line.
    assert notify.next() == "READY=1"
    assert ("127.0.0.1", port) in p.listeners
    r = p.fetch(f"http://allowed.test:{origins.http.port}/hello")
    assert r.status == 200
    assert p.fetch(f"http://denied.test:{origins.http.port}/").status == 403
    p.log.wait_one(by(event="http", host="denied.test", reason="not_allowed"))
    # SIGHUP: RELOADING=1 with the monotonic time, then READY=1 again.
    p.send_signal(signal.SIGHUP)
    msg = notify.next().split("\n")
    assert msg[0] == "RELOADING=1"
    assert msg[1].startswith("MONOTONIC_USEC=") and int(msg[1].split("=")[1]) > 0
    assert notify.next() == "READY=1"
    assert p.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200
    p.send_signal(signal.SIGTERM)
    assert notify.next() == "STOPPING=1"
    assert p.wait(15) == 0
    assert p.stderr.text().count("listening on") == 1  # the passed socket, no other


def test_every_role_passed(activated, origins):
    """proxy, transparent, metrics and a dns pair, all from systemd."""
    import http.client

    proxy_s, transparent_s, metrics_s = _tcp_listener(), _tcp_listener(), _tcp_listener()
    udp, tcp = _udp_and_tcp_on_one_port()
    mport, dport = metrics_s.getsockname()[1], udp.getsockname()[1]
    p, notify = activated([("dns", udp), ("proxy", proxy_s), ("metrics", metrics_s),
                           ("transparent", transparent_s), ("dns", tcp)])
    assert notify.next() == "READY=1"
    for line in (f"metrics listening on 127.0.0.1:{mport}", f"dns listening on 127.0.0.1:{dport}",
                 "transparent listening on 127.0.0.1:"):
        # Printed before READY=1; the test reads stderr on a thread of its own.
        assert p.stderr.wait_for(lambda l, line=line: line in l, 5), p.stderr.text()
    c = http.client.HTTPConnection("127.0.0.1", mport, timeout=5)
    c.request("GET", "/healthz")
    assert c.getresponse().status == 200
    c.close()
    # DNS over the passed UDP socket: an allowed name is answered.
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l for l in b"allowed.test".split(b".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(q, ("127.0.0.1", dport))
        ans = u.recv(512)
    assert ans[:2] == b"\x12\x34" and (ans[3] & 0x0F) == 0  # NOERROR
    assert struct.unpack("!H", ans[6:8])[0] >= 1  # an answer
    p.send_signal(signal.SIGTERM)
    assert notify.next() == "STOPPING=1"
    assert p.wait(15) == 0


def _fds_on_socket(pid, sock_inode):
    """The process's descriptors open on the socket with this inode."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{sock_inode}]"
        except OSError:
            pass
    return n


def test_passed_socket_shared_by_every_worker(activated, origins):
    """--workers 4: a passed socket is one socket, not a SO_REUSEPORT group,
    so every worker accepts on a dup of it (four descriptors on the one
    socket); concurrent connections are all served; a reload is framed by
    one RELOADING=1/READY=1 pair for all the workers."""
    from concurrent.futures import ThreadPoolExecutor

    s = _tcp_listener()
    inode = os.fstat(s.fileno()).st_ino
    p, notify = activated([("proxy", s)], extra=["--workers", "4"])
    assert notify.next() == "READY=1"
    assert _fds_on_socket(p.proc.pid, inode) == 4
    P = origins.http.port
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda i: p.fetch(f"http://allowed.test:{P}/hello?i={i}").status,
                            range(40)))
    assert got == [200] * 40
    p.send_signal(signal.SIGHUP)
    assert notify.next().startswith("RELOADING=1\n")
    assert notify.next() == "READY=1"
    p.send_signal(signal.SIGTERM)
    assert notify.next() == "STOPPING=1"
    assert p.wait(15) == 0
    assert p.stderr.text().count("listening on") == 1  # the passed socket, no other


def test_unnamed_socket_is_the_proxy(activated, origins):
    """Without FileDescriptorName= systemd-style launchers say "unknown"."""
    s = _tcp_listener()
    p, notify = activated([("", s)])
    assert notify.next() == "READY=1"
    assert p.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200


def test_unknown_role_refused(activated):
    s = _tcp_listener()
    p, notify = activated([("bogus", s)], wait=False)
    assert p.wait(10) == 2  # wait() reads stderr to its end
    assert "named 'bogus'" in p.stderr.text()
    p.returncode = 0  # the teardown's clean-exit contract does not apply


def test_dns_needs_both_halves(activated):
    udp, tcp = _udp_and_tcp_on_one_port()
    tcp.close()
    p, notify = activated([("dns", udp)], wait=False)
    assert p.wait(10) == 2
    assert "'dns' needs a UDP and a TCP socket" in p.stderr.text()
    p.returncode = 0


def test_sockets_for_another_pid_ignored(activated, origins):
    """LISTEN_PID names another process (a parent that did not unset them):
    the fds are not taken, the flags' listeners are used."""
    s = _tcp_listener()
    passed = s.getsockname()[1]
    p, notify = activated([("proxy", s)], extra=["--listen", "127.0.0.1:0"],
                          wrapper_flag="--other-pid")
    assert notify.next() == "READY=1"
    assert len(p.listeners) == 1 and p.listeners[0][1] != passed
    p.send_signal(signal.SIGTERM)
    assert p.wait(15) == 0
    assert p.stderr.text().count("listening on") == 1


def test_systemd_socket_activate(proxy_bin, dns, origins, tmp_path):
    """systemd's own socket passing (systemd-socket-activate), when installed."""
    tool = shutil.which("systemd-socket-activate")
    if not tool:
        pytest.skip("systemd-socket-activate not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = str(tmp_path / "access.jsonl")
    p = ProxyProcess(proxy_bin, ["--allow-domains", "allowed.test", "--allow-ports",
                                 ",".join(str(x) for x in origins.ports),
                                 "--allow-destination-cidrs", LOOPBACK_CIDRS,
                                 "--dns-servers", dns.addr, "--log-file", log],
                     log_path=log, prefix=[tool, "-l", f"127.0.0.1:{port}", "--fdname=proxy"])
    try:
        # It listens, then starts the program on the first connection.
        assert p.stderr.wait_for(lambda l: f"Listening on 127.0.0.1:{port}" in l, 10), \
            p.stderr.text()
        first = socket.create_connection(("127.0.0.1", port), timeout=5)
        p.wait_listening()
        first.close()
        assert ("127.0.0.1", port) in p.listeners
        assert p.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200
    finally:
        p.check_clean_exit()


def test_unit_files_verify(tmp_path, proxy_bin):
    """systemd-analyze verify accepts the units (ExecStart= pointed at this
    build), when systemd is installed."""
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("systemd-analyze not installed")
    units = os.path.join(REPO, "contrib", "systemd")
    names = sorted(os.listdir(units))
    assert {"awf-proxy.service", "awf-proxy.socket", "awf-proxy-metrics.socket"} <= set(names)
    for n in names:
        with open(os.path.join(units, n)) as f:
            text = f.read().replace("/usr/bin/awf-proxy", os.path.abspath(proxy_bin))
        (tmp_path / n).write_text(text)
    res = subprocess.run([tool, "verify", "--man=no"] + [str(tmp_path / n) for n in names],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    service = (tmp_path / "awf-proxy.service").read_text()
    for directive in ("Type=notify", "DynamicUser=yes", "ProtectSystem=strict",
                      "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                      "LogsDirectory=awf-proxy", "ExecReload=/bin/kill -HUP $MAINPID",
                      "NoNewPrivileges=yes", "MemoryDenyWriteExecute=yes",
                      "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"):
        assert directive in service, directive
