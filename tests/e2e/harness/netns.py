"""Private network namespaces for the transparent-mode tests.

Each test gets a namespace of its own, held open by a child process
(`unshare --net cat`, which exits when its stdin closes, so a crashed test
run leaves nothing behind). Nothing in it can reach the outside: its only
interface is lo, with a default route into lo so that any destination
address (203.0.113.9, 2001:db8::9, ...) is "reachable" and the nftables
redirect can catch it.

The pytest process itself stays in the root namespace. External programs
(awf-proxy, curl, openssl, nft, ip) run inside through `nsenter --net`;
python servers and client sockets are *created* inside by a short-lived
thread that joins the namespace with setns(2) (a network namespace is a
per-thread attribute, and a socket stays in the namespace it was created in
whichever thread uses it later). Client sockets are created with fsuid
65534, which is what `meta skuid` in the redirect rule matches, so only
clients are redirected, never the proxy's own upstream connections."""

import ctypes
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time

from .client import Conn, clean_env
from .dns import DNSServer
from .origin import HTTPOrigin, OriginHandler, TLSOrigin, make_cert
from .proxy import ProxyProcess

CLONE_NEWNET = 0x40000000
CLIENT_UID = 65534           # "nobody": the sandboxed user whose traffic is redirected
PROXY_PORT = 15001           # the transparent listener, inside the namespace
REDIRECTED_PORTS = (80, 443, 8443)
CLIENT_V4 = "198.18.0.1"     # the namespace's "public" source addresses
CLIENT_V6 = "fd00:198:18::1"
BLACKHOLE = "127.0.0.4"       # port 443 there: connects hang
SETUP_TIMEOUT = 10.0
CMD_TIMEOUT = 30.0

TLISTEN_RE = re.compile(
    r"awf-proxy: transparent listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)\s*$")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _setfsuid(uid):
    """Per-thread (the syscall, not a glibc broadcast); returns nothing, verifies."""
    _libc.setfsuid(uid)
    if _libc.setfsuid(0xFFFFFFFF) != uid:  # an invalid id changes nothing, returns current
        raise OSError(f"setfsuid({uid}) did not take")


def _run(cmd, timeout=CMD_TIMEOUT, input=None, check=True):
    p = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=clean_env())
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd} exited {p.returncode}: "
                           f"{p.stderr.decode('utf-8', 'replace').strip()}")
    return p


class NetNS:
    """A network namespace, alive while this object is open."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "--net", "--", "cat"],
                                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        self.fd = None
        try:
            mine = os.readlink("/proc/self/ns/net")
            path = f"/proc/{self.holder.pid}/ns/net"
            deadline = time.monotonic() + SETUP_TIMEOUT
            while True:
                if self.holder.poll() is not None:
                    raise RuntimeError("unshare --net exited: "
                                       + self.holder.stderr.read().decode("utf-8", "replace"))
                try:
                    if os.readlink(path) != mine:
                        break
                except FileNotFoundError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("unshare --net did not enter a new namespace")
                time.sleep(0.005)
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            self.path = path
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.holder.poll() is None:
            try:
                self.holder.stdin.close()
                self.holder.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.holder.kill()
                self.holder.wait(5)
        self.holder.stderr.close()

    # -- programs inside ------------------------------------------------------
    def cmd(self, argv, uid=None):
        """argv wrapped to run inside the namespace (as `uid` when given)."""
        pre = ["nsenter", f"--net={self.path}", "--"]
        if uid is not None:
            pre += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        return pre + list(argv)

    def run(self, argv, uid=None, timeout=CMD_TIMEOUT, input=None, check=True):
        return _run(self.cmd(argv, uid), timeout, input, check)

    # -- python inside -------------------------------------------------------
    def call(self, fn, fsuid=None):
        """fn() on a fresh thread that joined the namespace (and took fsuid);
        sockets it creates live in the namespace. The thread then ends."""
        out = {}

        def body():
            try:
                _check(_libc.setns(self.fd, CLONE_NEWNET), "setns")
                if fsuid is not None:
                    _setfsuid(fsuid)
                out["value"] = fn()
            except BaseException as e:  # re-raised in the caller
                out["error"] = e

        t = threading.Thread(target=body, name="in-netns", daemon=True)
        t.start()
        t.join(SETUP_TIMEOUT)
        if t.is_alive():
            raise RuntimeError("in-namespace call did not finish")
        if "error" in out:
            raise out["error"]
        return out["value"]

    def socket(self, family=socket.AF_INET, uid=CLIENT_UID):
        """A TCP socket in the namespace, owned by uid (the redirect matches it)."""
        return self.call(lambda: socket.socket(family, socket.SOCK_STREAM), fsuid=uid)

    def connect(self, host, port, uid=CLIENT_UID, timeout=10.0):
        """A Conn to host:port from inside, as the sandboxed user by default."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = self.socket(family, uid)
        try:
            s.settimeout(timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        return Conn(s)


def configure(ns, proxy_port=PROXY_PORT, ports=REDIRECTED_PORTS):
    """Loopback with a default route into it, and the redirect of the client
    user's TCP to `ports` onto the transparent listener."""
    for argv in (["ip", "link", "set", "lo", "up"],
                 ["ip", "addr", "add", f"{CLIENT_V4}/32", "dev", "lo"],
                 ["ip", "route", "add", "default", "dev", "lo", "src", CLIENT_V4],
                 ["ip", "-6", "addr", "add", f"{CLIENT_V6}/128", "dev", "lo", "nodad"],
                 ["ip", "-6", "route", "add", "default", "dev", "lo", "src", CLIENT_V6],
                 ["sysctl", "-q", "-w", "net.ipv4.conf.all.route_localnet=1"]):
        ns.run(argv)
    ns.run(["nft", "-f", "-"], input=ruleset(proxy_port, ports).encode())


def ruleset(proxy_port, ports):
    return ("table inet awf {\n"
            "  chain out {\n"
            "    type nat hook output priority -100; policy accept;\n"
            f"    meta skuid {CLIENT_UID} tcp dport {{ {', '.join(map(str, ports))} }}"
            f" redirect to :{proxy_port}\n"
            "  }\n"
            "}\n")


def probe():
    """None when namespaces, nftables and setns all work here, else why not.
    Checked by doing it."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables, setns)"
    for tool in ("unshare", "nsenter", "setpriv", "ip", "nft", "sysctl"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    try:
        ns = NetNS()
    except (OSError, RuntimeError) as e:
        return f"cannot create a network namespace: {e}"
    try:
        configure(ns)
        s = ns.socket()
        s.close()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return f"cannot set up the namespace (ip/nft/setns): {e}"
    finally:
        ns.close()
    return None


# -- servers inside ------------------------------------------------------------

class _FixedPort:
    """Bind an origin to a chosen port (the origins' constructors take 0).
    Also skips HTTPServer.server_bind's socket.getfqdn(), a reverse lookup
    through the machine's resolver (which hangs in here, and is not ours to ask)."""
    fixed_port = 0

    def server_bind(self):
        self.server_address = (self.server_address[0], self.fixed_port) + \
            tuple(self.server_address[2:])
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]


class PortHTTPOrigin(_FixedPort, HTTPOrigin):
    def __init__(self, host, port):
        self.fixed_port = port
        super().__init__(host)


class PortTLSOrigin(_FixedPort, TLSOrigin):
    def __init__(self, host, port, certfile, keyfile, handler=None):
        self.fixed_port = port
        super().__init__(certfile, keyfile, host)
        if handler is not None:
            self.RequestHandlerClass = handler


ATTACKER_BODY = b"attacker got you\n"


class AttackerHandler(OriginHandler):
    """The server a bypass would reach: answers /hello with ATTACKER_BODY."""

    def _hello(self):
        self._drain_body()
        self._send(200, ATTACKER_BODY)


class PortAttackerHTTPOrigin(PortHTTPOrigin):
    def __init__(self, host, port):
        super().__init__(host, port)
        self.RequestHandlerClass = AttackerHandler


class Blackhole:
    """host:port whose accept queue is full and never drained: SYNs to it are
    dropped, so a connect() hangs until the dialler gives up."""

    def __init__(self, host, port):
        self.sock = socket.socket()
        self.filler = None
        try:
            self.sock.bind((host, port))
            self.sock.listen(0)
            self.filler = socket.create_connection((host, port), timeout=5)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.filler is not None:
            self.filler.close()
        self.sock.close()


def make_shared_cert(names):
    """A certificate in a world-readable directory, so clients running as
    CLIENT_UID can read it. Returns (dir, certfile, keyfile); the caller
    removes dir."""
    d = tempfile.mkdtemp(prefix="awf-e2e-tp-")
    os.chmod(d, 0o755)
    certfile, keyfile = make_cert(d, names)
    os.chmod(certfile, 0o644)
    return d, certfile, keyfile


class World:
    """One test's namespace: DNS server, origins, redirect, proxies, clients.

    Origins (all inside): HTTPS on 127.0.0.1:443, :8443 and [::1]:443; HTTP on
    127.0.0.1:80 and [::1]:80; an "attacker" HTTPS/HTTP server with its own
    certificate on 127.0.0.2:443 / :80; a blackhole on 127.0.0.4:443."""

    def __init__(self, proxy_bin, zone, cert, attacker_cert, tmp_path):
        self.proxy_bin = proxy_bin
        self.certfile = cert[0]
        self.attacker_certfile = attacker_cert[0]
        self.tmp_path = tmp_path
        self.proxies = []
        self.servers = []
        self.ns = NetNS()
        try:
            configure(self.ns)
            call = self.ns.call
            self.dns = call(lambda: DNSServer(zone).start())
            self.https = self._serve(lambda: PortTLSOrigin("127.0.0.1", 443, *cert))
            self.https_alt = self._serve(lambda: PortTLSOrigin("127.0.0.1", 8443, *cert))
            self.https6 = self._serve(lambda: PortTLSOrigin("::1", 443, *cert))
            self.http = self._serve(lambda: PortHTTPOrigin("127.0.0.1", 80))
            self.http6 = self._serve(lambda: PortHTTPOrigin("::1", 80))
            self.attacker = self._serve(lambda: PortTLSOrigin(
                "127.0.0.2", 443, *attacker_cert, handler=AttackerHandler))
            self.attacker_http = self._serve(lambda: PortAttackerHTTPOrigin("127.0.0.2", 80))
            self.blackhole = self.ns.call(lambda: Blackhole(BLACKHOLE, 443))
        except BaseException:
            self.close()
            raise

    def _serve(self, make):
        server = self.ns.call(make)
        server.start()
        self.servers.append(server)
        return server

    # -- proxy ------------------------------------------------------------------
    def start_proxy(self, allow="allowed.test,other.test", ports="80,443",
                    cidrs="127.0.0.0/8,::1", extra=(), v6=True):
        listen = ["127.0.0.1"] + (["[::1]"] if v6 else [])
        args = []
        for host in listen:
            args += ["--transparent-listen", f"{host}:{PROXY_PORT}"]
        if allow is not None:
            args += ["--allow-domains", allow]
        if ports is not None:
            args += ["--allow-ports", ports]
        if cidrs is not None:
            args += ["--allow-destination-cidrs", cidrs]
        log_path = str(self.tmp_path / f"tp-access-{len(self.proxies)}.jsonl")
        args += ["--dns-servers", self.dns.addr, "--log-file", log_path,
                 "--shutdown-grace", "3"] + list(extra)
        argv = self.ns.cmd([self.proxy_bin] + args)  # nsenter execs: the pid is the proxy's
        p = ProxyProcess(argv[0], argv[1:], log_path=log_path)
        self.proxies.append(p)
        seen = set()

        def listening(line):
            m = TLISTEN_RE.search(line)
            if m:
                seen.add((m.group(1), m.group(2)))
            return len(seen) >= len(listen)

        if p.stderr.wait_for(listening, SETUP_TIMEOUT) is None:
            raise AssertionError(
                f"awf-proxy did not print {len(listen)} 'transparent listening on' line(s); "
                f"command: {argv}\nstderr:\n{p.stderr.text()[-4000:]}")
        return p

    # -- clients ------------------------------------------------------------------
    def connect(self, host, port, uid=CLIENT_UID, timeout=10.0):
        return self.ns.connect(host, port, uid, timeout)

    def curl(self, args, uid=CLIENT_UID, timeout=CMD_TIMEOUT):
        argv = ["curl", "-q", "--silent", "--show-error", "--noproxy", "*",
                "--max-time", "15"] + list(args)
        return self.ns.run(argv, uid=uid, timeout=timeout, check=False)

    def openssl_get(self, connect, servername, path, host=None, cafile=None, extra=(),
                    uid=CLIENT_UID, timeout=CMD_TIMEOUT):
        """`openssl s_client` sending one GET; returns the CompletedProcess."""
        argv = ["openssl", "s_client", "-connect", connect, "-quiet",
                "-ignore_unexpected_eof", "-verify_return_error",
                "-CAfile", cafile or self.certfile]
        if servername is not None:
            argv += ["-servername", servername]
        else:
            argv += ["-noservername"]
        argv += list(extra)
        req = (f"GET {path} HTTP/1.1\r\nHost: {host or servername}\r\n"
               f"Connection: close\r\n\r\n").encode()
        return self.ns.run(argv, uid=uid, timeout=timeout, input=req, check=False)

    # -- teardown ---------------------------------------------------------------
    def release(self):
        for s in self.servers:
            s.state.release_all()

    def close(self):
        """Stop everything; returns the proxies' clean-exit problems (strings)."""
        errors = []
        self.release()
        for p in self.proxies:
            try:
                p.check_clean_exit()
            except AssertionError as e:
                errors.append(str(e))
            finally:
                if p.proc.poll() is None:
                    p.proc.send_signal(signal.SIGKILL)
                    p.proc.wait(5)
        for s in self.servers:
            try:
                s.stop()
            except OSError:
                pass
        if getattr(self, "dns", None) is not None:
            self.dns.stop()
        if getattr(self, "blackhole", None) is not None:
            self.blackhole.close()
        self.ns.close()
        return errors

