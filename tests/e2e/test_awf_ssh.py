"""SSH out of the sandbox (--allow-ssh): port 22 judged by the name the
command resolved through awf's DNS (or the sandbox's /etc/hosts), that name
dialled, never the address the command chose; refusals logged and
summarised. And the other way: ssh's ProxyCommand through the explicit
proxy's CONNECT with --allow-ports 22."""

import errno
import shutil
import socket
import socketserver
import threading

import pytest

from harness.world import (HOSTS_ONLY, ORIGIN, ORIGIN2, ORIGIN6, require_awf,  # noqa: F401
                           world)

require_awf()

SSH_BANNER = b"SSH-2.0-awfworld_1.0\r\n"


class SSHBanner(socketserver.ThreadingTCPServer):
    """A server on port 22 that speaks first, as sshd does: its banner, then
    it records the client's identification line. A python client gets the
    rest echoed; OpenSSH (which would go on to key exchange) gets a packet
    it refuses."""
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, host):
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.idents = []
        self.lock = threading.Lock()
        super().__init__((host, 22), _SSHHandler)
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()

    @property
    def connections(self):
        with self.lock:
            return len(self.idents)

    def handle_error(self, request, client_address):
        pass


class _SSHHandler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.settimeout(10)
        try:
            sock.sendall(SSH_BANNER)
            ident = b""
            while not ident.endswith(b"\n") and len(ident) < 255:
                b = sock.recv(1)
                if not b:
                    break
                ident += b
            with self.server.lock:
                self.server.idents.append(ident)
            if ident.startswith(b"SSH-2.0-OpenSSH"):
                # A packet no client takes (length 2^32-1): ssh stops at
                # once, with the proof on stderr that bytes came back.
                sock.sendall(b"\xff" * 16)
                while sock.recv(65536):
                    pass
                return
            while True:
                data = sock.recv(65536)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    return
                sock.sendall(data)
        except OSError:
            pass


@pytest.fixture(scope="module")
def sshd(world):
    servers = {}
    for addr in (ORIGIN, ORIGIN2, ORIGIN6):
        servers[addr] = world._serve(lambda a=addr: SSHBanner(a))
    return servers


def one(r, **fields):
    recs = r.records(**fields)
    assert len(recs) == 1, f"want one record with {fields}\n{r}"
    return recs[0]


# Inside the sandbox: resolve (or not), connect to port 22, talk like a client.
CLIENT = r"""
import socket, sys
host = sys.argv[1]
pre = sys.argv[2:]
for name in pre:
    socket.getaddrinfo(name, 22, socket.AF_INET, socket.SOCK_STREAM)
try:
    s = socket.create_connection((host, 22), timeout=5)
    got = b""
    while not got.endswith(b"\n"):  # the server speaks first
        b = s.recv(4096)
        if not b:
            break
        got += b
    s.sendall(b"SSH-2.0-awftest\r\nping")
    s.shutdown(socket.SHUT_WR)
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
    print(repr(got))
except OSError as e:
    print(type(e).__name__, e.errno)
"""


def ssh_client(world, host, args, resolve_first=()):
    return world.awf("python3", "-c", CLIENT, host, *resolve_first, args=args)


def test_ssh_allowed_name_reaches_port_22_and_is_logged(world, sshd):
    before = sshd[ORIGIN].connections
    r = ssh_client(world, "allowed.test", ["--allow-ssh", "allowed.test"])
    assert r.rc == 0, r
    assert r.out.strip() == repr(SSH_BANNER + b"ping"), r
    assert sshd[ORIGIN].connections == before + 1
    assert sshd[ORIGIN].idents[-1] == b"SSH-2.0-awftest\r\n"
    rec = one(r, event="tcp", host="allowed.test")
    assert (rec["port"], rec["decision"], rec["reason"], rec["upstream"]) == \
        (22, "allow", "allowed", f"{ORIGIN}:22"), r
    assert rec["original_dst"] == f"{ORIGIN}:22", r
    assert rec["bytes_up"] == len(b"SSH-2.0-awftest\r\nping"), r
    assert rec["bytes_down"] == len(SSH_BANNER + b"ping"), r
    # the open record comes first, with the decision
    opens = [x for x in r.all_log if x.get("event") == "open" and x.get("conn") == rec["conn"]]
    assert len(opens) == 1 and opens[0]["kind"] == "tcp" and opens[0]["decision"] == "allow", r
    assert r.all_log.index(opens[0]) < r.all_log.index(rec)


def test_ssh_over_ipv6(world, sshd):
    before = sshd[ORIGIN6].connections
    r = ssh_client(world, "v6.allowed.test", ["--allow-ssh", "allowed.test"])
    assert r.out.strip() == repr(SSH_BANNER + b"ping"), r
    assert sshd[ORIGIN6].connections == before + 1
    rec = one(r, event="tcp", host="v6.allowed.test")
    assert (rec["decision"], rec["upstream"], rec["original_dst"]) == \
        ("allow", f"[{ORIGIN6}]:22", f"[{ORIGIN6}]:22"), r


def test_allow_ssh_name_resolves_but_is_not_allowed_for_https(world, sshd):
    """--allow-ssh admits the name in awf's DNS (ssh must resolve it), not for
    HTTP or TLS."""
    r = world.awf(*world.curl_args("https://allowed.test/", "-o", "/dev/null",
                                   transparent=True), args=["--allow-ssh", "allowed.test"])
    assert r.rc != 0, r
    assert one(r, event="tls", host="allowed.test")["reason"] == "not_allowed", r
    dns = [x for x in r.log if x.get("event") == "dns" and x.get("qname") == "allowed.test"]
    assert dns and all(x["decision"] == "allow" for x in dns), r


def test_ssh_to_name_not_in_allow_ssh_is_reset_logged_and_summarised(world, sshd):
    before = sshd[ORIGIN2].connections
    r = ssh_client(world, "other.test", ["-d", "other.test", "--allow-ssh", "allowed.test"])
    assert r.rc == 0, r
    assert r.out.strip() == f"ConnectionResetError {errno.ECONNRESET}", r
    assert sshd[ORIGIN2].connections == before  # never dialled
    rec = one(r, event="tcp", host="other.test")
    assert (rec["port"], rec["decision"], rec["reason"], rec["original_dst"]) == \
        (22, "deny", "ssh_not_allowed", f"{ORIGIN2}:22"), r
    assert "other.test:22  ssh_not_allowed" in r.err, r
    assert "--allow-ssh other.test" in r.err, r


def test_ssh_to_an_address_typed_directly_is_unknown_destination(world, sshd):
    """No DNS answer led to the address: there is no name to judge or dial."""
    before = sshd[ORIGIN].connections
    r = ssh_client(world, ORIGIN, ["--allow-ssh", "allowed.test"])
    assert r.rc == 0, r
    assert r.out.strip() == f"ConnectionResetError {errno.ECONNRESET}", r
    assert sshd[ORIGIN].connections == before
    rec = one(r, event="tcp", original_dst=f"{ORIGIN}:22")
    assert (rec["decision"], rec["reason"]) == ("deny", "unknown_destination"), r
    assert "host" not in rec, r
    assert f"{ORIGIN}:22  unknown_destination" in r.err, r


def test_ssh_to_a_shared_address_is_judged_by_the_allowed_name_and_dials_it(world, sshd):
    """wild.test and allowed.test share an address (a CDN). Resolving only the
    name that --allow-ssh does not admit gets nothing; once the allowed name
    was answered too, the connection reaches the allowed name, which is what
    awf dials and logs."""
    args = ["-d", "wild.test", "--allow-ssh", "allowed.test"]
    r = ssh_client(world, "wild.test", args)
    assert r.out.strip() == f"ConnectionResetError {errno.ECONNRESET}", r
    assert one(r, event="tcp", host="wild.test")["reason"] == "ssh_not_allowed", r
    r = ssh_client(world, "wild.test", args, resolve_first=["allowed.test"])
    assert r.out.strip() == repr(SSH_BANNER + b"ping"), r
    rec = one(r, event="tcp", host="allowed.test")
    assert (rec["decision"], rec["upstream"]) == ("allow", f"{ORIGIN}:22"), r


def test_ssh_to_a_name_from_the_sandbox_hosts_file(world, sshd):
    """A name the command found in /etc/hosts (the host's file, read-only in
    the sandbox) is judged like an answered one and dialled at its address."""
    r = ssh_client(world, HOSTS_ONLY, ["--allow-ssh", HOSTS_ONLY])
    assert r.out.strip() == repr(SSH_BANNER + b"ping"), r
    rec = one(r, event="tcp", host=HOSTS_ONLY)
    assert (rec["decision"], rec["upstream"]) == ("allow", f"{ORIGIN}:22"), r


def test_without_allow_ssh_port_22_is_refused_as_before(world, sshd):
    before = sshd[ORIGIN].connections
    r = ssh_client(world, "allowed.test", ["-d", "allowed.test"])
    assert r.out.strip() == f"ConnectionRefusedError {errno.ECONNREFUSED}", r
    assert sshd[ORIGIN].connections == before
    assert r.records(event="tcp", original_dst=f"{ORIGIN}:22", reason="port_not_allowed"), r


def test_allow_ssh_rejects_a_scheme(world):
    r = world.awf("true", args=["--allow-ssh", "https://allowed.test"])
    assert r.rc == 125, r
    assert "--allow-ssh" in r.err and "no scheme" in r.err, r


SSH_OPTS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=INFO"]


def test_openssh_client_gets_through_with_allow_ssh(world, sshd):
    if shutil.which("ssh") is None:
        pytest.skip("ssh is not installed (Debian: scripts/install-deps)")
    before = sshd[ORIGIN].connections
    r = world.awf("ssh", *SSH_OPTS, "git@allowed.test", "true", args=["--allow-ssh", "allowed.test"])
    # The world's server answers the identification with a packet ssh
    # refuses: ssh fails there, having talked both ways through awf.
    assert r.rc == 255, r
    assert "Bad packet length 4294967295" in r.err, r
    assert sshd[ORIGIN].connections == before + 1, r
    assert sshd[ORIGIN].idents[-1].startswith(b"SSH-2.0-OpenSSH"), sshd[ORIGIN].idents
    assert one(r, event="tcp", host="allowed.test")["decision"] == "allow", r


def test_openssh_proxycommand_through_the_explicit_proxy(world, sshd):
    """The documented alternative: CONNECT host:22 on the explicit proxy, with
    --allow-ports 22 and the host in --allow-domains."""
    for tool in ("ssh", "nc"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: scripts/install-deps)")
    before = sshd[ORIGIN].connections
    r = world.awf("ssh", *SSH_OPTS, "-o", "ProxyCommand=nc -X connect -x 127.0.0.1:3128 %h %p",
                  "git@allowed.test", "true", args=["-d", "allowed.test", "--allow-ports", "22"])
    assert r.rc == 255, r
    assert "Bad packet length 4294967295" in r.err, r
    assert sshd[ORIGIN].connections == before + 1, r
    assert sshd[ORIGIN].idents[-1].startswith(b"SSH-2.0-OpenSSH"), sshd[ORIGIN].idents
    rec = one(r, event="connect", host="allowed.test")
    assert (rec["port"], rec["decision"], rec["upstream"]) == (22, "allow", f"{ORIGIN}:22"), r


def test_git_over_ssh_gets_through_with_allow_ssh(world, sshd):
    for tool in ("ssh", "git"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: scripts/install-deps)")
    before = sshd[ORIGIN].connections
    r = world.awf("git", "ls-remote", "ssh://git@allowed.test/org/repo.git",
                  args=["--allow-ssh", "allowed.test",
                        "-e", "GIT_SSH_COMMAND=ssh " + " ".join(SSH_OPTS)])
    assert r.rc == 128 and "Bad packet length 4294967295" in r.err, r
    assert sshd[ORIGIN].connections == before + 1, r
    assert sshd[ORIGIN].idents[-1].startswith(b"SSH-2.0-OpenSSH"), sshd[ORIGIN].idents
    assert one(r, event="tcp", host="allowed.test")["decision"] == "allow", r
