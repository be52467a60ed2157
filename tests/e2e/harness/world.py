"""A little world for the `awf` end-to-end tests: a named network namespace
(`ip netns add awfw-<random>`) whose only link is a dummy interface carrying
the origin addresses, with a DNS server, HTTP/TLS origins (also HTTP on port
8080) and a UDP echo inside, plus /etc/netns/<name>/{passwd,group,hosts,resolv.conf},
which `ip netns exec` binds over /etc in a private mount namespace: a test
user (awftest, uid 4242) and names no one else sees.

awf runs inside it (`ip netns exec <name> awf --dns-servers 198.51.100.53
...`), so its upstream connections and lookups stay in the world: the dummy
interface has no peer and there is no default route, so nothing can leave
the machine. The world is torn down at close(), even after a failure.

Python servers are created inside by a thread that joined the namespace
(NetNS.call); programs run inside through `ip netns exec`."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from .dns import DNSServer, _TCPHandler, _TCPServer
from .netns import NetNS, PortHTTPOrigin, PortTLSOrigin
from .origin import make_ca, make_cert
from .util import SocketLoop

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

IFACE = "awfw0"
ORIGIN = "198.51.100.10"       # allowed.test and its subdomains
ORIGIN2 = "198.51.100.11"      # other.test: also the "attacker" a client may aim at
ORIGIN6 = "2001:db8:100::10"   # v6.allowed.test
DNS_ADDR = "198.51.100.53"
WORLD_CIDRS = "198.51.100.0/24,2001:db8:100::/64"
ALT_PORT = 8080                 # HTTP on a port awf does not allow by default
UDP_PORT = 9999                 # UDP echo

USER = "awftest"
UID = 4242
GID = 4242
EXTRA_GROUP = ("awfextra", 4243)  # a supplementary group of awftest

ZONE = {
    "allowed.test": [ORIGIN],
    "*.allowed.test": [ORIGIN],
    "v6.allowed.test": [ORIGIN6],
    "other.test": [ORIGIN2],
    "*.other.test": [ORIGIN2],
    "wild.test": [ORIGIN],
    "*.wild.test": [ORIGIN],
    "hosts-only.test": "NXDOMAIN",
    # Only with a search domain appended: gone.test itself does not exist.
    "gone.test.corp.test": [ORIGIN],
}
CERT_NAMES = ["allowed.test", "*.allowed.test", "*.sub.allowed.test", "other.test",
              "*.other.test", "wild.test", "*.wild.test", "*.c.wild.test"]
HOSTS_ONLY = "hosts-only.test"   # in the world's /etc/hosts only

SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error: ")
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUN_TIMEOUT = 60.0


def awf_binary():
    """(path, None), or (None, why the awf tests cannot run here)."""
    if os.geteuid() != 0:
        return None, "the awf tests need root (network namespaces, ip netns, awf itself)"
    for tool in ("ip", "nft", "curl", "openssl", "unshare"):
        if shutil.which(tool) is None:
            return None, f"{tool} not found"
    path = os.environ.get("AWF_BIN") or os.path.join(REPO, "build", "sandbox", "awf")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        msg = (f"awf binary not found or not executable at {path}: build the `awf` target "
               f"or set AWF_BIN")
        if os.environ.get("AWF_BIN"):
            raise RuntimeError(msg)  # asked for explicitly: never a silent skip
        return None, msg
    return os.path.abspath(path), None


def require_awf():
    """The awf binary path; skips the calling module when it cannot run."""
    path, why = awf_binary()
    if path is None:
        pytest.skip(why, allow_module_level=True)
    return path


def _run(argv, timeout=30.0, input=None, check=True, env=None):
    p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout,
                       env=env or {"PATH": SYS_PATH, "LANG": "C.UTF-8"})
    if check and p.returncode != 0:
        raise RuntimeError(f"{argv} exited {p.returncode}: "
                           f"{p.stderr.decode('utf-8', 'replace').strip()}")
    return p


class NamedNetNS(NetNS):
    """NetNS's in-namespace helpers on a namespace made by `ip netns add`,
    so that `ip netns exec` (with its /etc/netns binds) can enter it."""

    def __init__(self, name):  # pylint: disable=super-init-not-called
        self.name = name
        self.holder = None
        self.fd = None
        _run(["ip", "netns", "add", name])
        self.path = f"/run/netns/{name}"
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        _run(["ip", "netns", "del", self.name], check=False)

    def cmd(self, argv, uid=None):
        pre = ["ip", "netns", "exec", self.name]
        if uid is not None:
            pre += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
        return pre + list(argv)


class WorldDNS(DNSServer):
    """The harness DNS server, on a fixed address and port (UDP and TCP)."""

    def start_at(self, host, port):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
            tcp = _TCPServer((host, port), _TCPHandler)
        except BaseException:
            udp.close()
            raise
        tcp.dns = self
        udp.settimeout(0.2)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._threads = [threading.Thread(target=self._udp_loop, daemon=True),
                         threading.Thread(target=tcp.serve_forever,
                                          kwargs={"poll_interval": 0.2}, daemon=True)]
        for t in self._threads:
            t.start()
        return self


class UDPEcho(SocketLoop):
    """Echoes datagrams and counts them: a count above zero is a leak."""

    def __init__(self, host, port):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, port))
        super().__init__(sock)
        self.received = 0

    def _loop(self):
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.received += 1
            try:
                self.sock.sendto(data, peer)
            except OSError:
                pass


class Result:
    """One awf run: exit status, output, and the JSONL access log."""

    def __init__(self, argv, rc, stdout, stderr, log_path):
        self.argv = argv
        self.rc = rc
        self.out = stdout.decode("utf-8", "replace")
        self.err = stderr.decode("utf-8", "replace")
        self.log_path = log_path

    @property
    def log(self):
        """The final records (no `open` or `run` record; all_log has them)."""
        return [r for r in self.all_log if r.get("event") not in ("open", "run")]

    @property
    def all_log(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return []
        with open(self.log_path, "rb") as f:
            return [json.loads(line) for line in f.read().splitlines() if line.strip()]

    def records(self, **fields):
        return [r for r in self.log if all(r.get(k) == v for k, v in fields.items())]

    def __repr__(self):
        return (f"awf exit {self.rc}\nargv: {self.argv}\nstdout:\n{self.out[-3000:]}"
                f"\nstderr:\n{self.err[-3000:]}\nlog:\n"
                + "\n".join(json.dumps(r) for r in self.log[-30:]))


MODES = ("root", "rootless")


def e2e_modes():
    """The modes the awf suites run in: AWF_E2E_MODES (comma-separated), else both."""
    want = [m for m in os.environ.get("AWF_E2E_MODES", ",".join(MODES)).split(",") if m]
    bad = [m for m in want if m not in MODES]
    if bad:
        raise RuntimeError(f"AWF_E2E_MODES: unknown mode(s) {bad}; known: {MODES}")
    return want


def rootless_drop():
    """The argv prefix that turns root into the test user before awf: uid,
    gid and the user's groups from the world's /etc/group, no capability."""
    return ["setpriv", f"--reuid={UID}", f"--regid={GID}", "--init-groups", "--"]


class World:
    """The namespace, its servers, the test user's home and the awf runner.

    mode "root": awf runs as root with SUDO_UID (the command runs as the test
    user). mode "rootless": awf itself runs as the test user (setpriv, no
    SUDO_*), so it builds the sandbox in a user namespace; a run "without
    sudo" (sudo=False) is root running awf --rootless."""

    def __init__(self, awf_bin, mode="root"):
        self.awf_bin = awf_bin
        self.mode = mode
        self.rootless = mode == "rootless"
        self.name = "awfw-" + uuid.uuid4().hex[:8]
        self.etc = f"/etc/netns/{self.name}"
        self.servers = []
        self.dns = self.udp = None
        self.ns = None
        self.runs = 0
        self.root = tempfile.mkdtemp(prefix="awfw-", dir="/var/tmp")
        try:
            self._setup()
        except BaseException:
            self.close()
            raise

    # -- setup -------------------------------------------------------------
    def _setup(self):
        os.chmod(self.root, 0o755)
        self.home = os.path.join(self.root, "home")
        self.logs = os.path.join(self.root, "logs")
        os.mkdir(self.home, 0o755)
        os.chown(self.home, UID, GID)
        os.mkdir(self.logs, 0o700)
        os.chown(self.logs, UID, GID)  # awf opens --log-file with the caller's rights
        self.keys = os.path.join(self.root, "keys")
        os.mkdir(self.keys, 0o700)
        # The origins' certificate is a leaf the world's own CA issued; the
        # CA certificate is what clients trust (world.ca, in the user's home).
        self.test_ca = make_ca(self.keys)
        self.certfile, keyfile = make_cert(self.keys, CERT_NAMES, ca=self.test_ca)
        self.ca = self.user_file("ca.pem", open(self.test_ca[0], "rb").read())
        self._write_etc()
        self.ns = NamedNetNS(self.name)
        self.ns.run(["ip", "link", "set", "lo", "up"])
        # A dummy link when the kernel has the module; else lo, which serves
        # local addresses just as well (neither has a way out).
        self.iface = IFACE
        if self.ns.run(["ip", "link", "add", IFACE, "type", "dummy"], check=False).returncode:
            self.iface = "lo"
        for argv in (["ip", "link", "set", self.iface, "up"],
                     ["ip", "addr", "add", f"{ORIGIN}/24", "dev", self.iface],
                     ["ip", "addr", "add", f"{ORIGIN2}/24", "dev", self.iface],
                     ["ip", "addr", "add", f"{DNS_ADDR}/24", "dev", self.iface],
                     ["ip", "-6", "addr", "add", f"{ORIGIN6}/64", "dev", self.iface, "nodad"]):
            self.ns.run(argv)
        # Counts ICMP echo requests and UDP to the world's addresses: a leak
        # out of the sandbox would show here.
        self.ns.run(["nft", "-f", "-"], input=(
            "table inet awfw_probe {\n"
            "  chain in {\n"
            "    type filter hook input priority 0; policy accept;\n"
            "    icmp type echo-request counter name icmp_in\n"
            "    icmpv6 type echo-request counter name icmp_in\n"
            "  }\n"
            "  counter icmp_in { }\n"
            "}\n").encode())
        call = self.ns.call
        self.dns = call(lambda: WorldDNS(ZONE).start_at(DNS_ADDR, 53))
        self.https = self._serve(lambda: PortTLSOrigin(ORIGIN, 443, self.certfile, keyfile))
        self.http = self._serve(lambda: PortHTTPOrigin(ORIGIN, 80))
        self.https2 = self._serve(lambda: PortTLSOrigin(ORIGIN2, 443, self.certfile, keyfile))
        self.http2 = self._serve(lambda: PortHTTPOrigin(ORIGIN2, 80))
        self.https6 = self._serve(lambda: PortTLSOrigin(ORIGIN6, 443, self.certfile, keyfile))
        self.http6 = self._serve(lambda: PortHTTPOrigin(ORIGIN6, 80))
        self.http_alt = self._serve(lambda: PortHTTPOrigin(ORIGIN, ALT_PORT))
        self.udp = call(lambda: UDPEcho(ORIGIN, UDP_PORT)).start()

    def add_host(self, name, addr):
        """One more address on the world's link, and a name for it in its DNS
        (for a module's own origins; gone with the world)."""
        self.ns.run(["ip", "addr", "add", f"{addr}/24", "dev", self.iface])
        self.dns.zone.set(name, [addr])

    def _serve(self, make):
        server = self.ns.call(make)
        server.start()
        self.servers.append(server)
        return server

    def _write_etc(self):
        self.made_netns_etc = not os.path.isdir(os.path.dirname(self.etc))
        os.makedirs(self.etc, 0o755)
        with open("/etc/passwd") as f:
            passwd = [ln for ln in f.read().splitlines() if ln and ln.split(":")[2] != str(UID)]
        passwd.append(f"{USER}:x:{UID}:{GID}:awf test user:{self.home}:/bin/sh")
        with open("/etc/group") as f:
            group = [ln for ln in f.read().splitlines()
                     if ln and ln.split(":")[2] not in (str(GID), str(EXTRA_GROUP[1]))]
        group += [f"{USER}:x:{GID}:", f"{EXTRA_GROUP[0]}:x:{EXTRA_GROUP[1]}:{USER}"]
        files = {
            "passwd": "\n".join(passwd) + "\n",
            "group": "\n".join(group) + "\n",
            "hosts": ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n"
                      f"{ORIGIN}\t{HOSTS_ONLY}\n"),
            # Anything in the world that asks the system resolver asks ours.
            "resolv.conf": f"nameserver {DNS_ADDR}\n",
        }
        for fname, text in files.items():
            with open(os.path.join(self.etc, fname), "w") as f:
                f.write(text)
            os.chmod(os.path.join(self.etc, fname), 0o644)

    def user_file(self, name, data, mode=0o644):
        """A file in the test user's home, owned by the user; returns its path."""
        path = os.path.join(self.home, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
        os.chown(path, UID, GID)
        os.chmod(path, mode)
        return path

    def user_dir(self, name, parent=None):
        path = os.path.join(parent or self.home, name)
        os.makedirs(path, exist_ok=True)
        os.chown(path, UID, GID)
        os.chmod(path, 0o755)
        return path

    def truststore(self):
        """A PKCS12 truststore with the world's CA, for Java (keytool)."""
        path = os.path.join(self.home, "trust.p12")
        if not os.path.exists(path):
            _run(["keytool", "-importcert", "-noprompt", "-alias", "awf-world",
                  "-file", self.ca, "-keystore", path, "-storetype", "PKCS12",
                  "-storepass", "changeit"], timeout=60)
            os.chown(path, UID, GID)
            os.chmod(path, 0o644)
        return path

    # -- running things inside ---------------------------------------------
    def run(self, argv, timeout=30.0, input=None, check=False):
        """A program inside the world, as root, with ip netns exec's /etc binds."""
        return _run(self.ns.cmd(argv), timeout=timeout, input=input, check=check)

    def base_env(self, sudo=True):
        env = {"PATH": SYS_PATH, "LANG": "C.UTF-8", "HOME": "/root", "USER": "root",
               "LOGNAME": "root", "TERM": "dumb"}
        if self.rootless and sudo:  # the test user's own login, no sudo
            env.update(HOME=self.home, USER=USER, LOGNAME=USER)
        elif sudo:
            env.update(SUDO_UID=str(UID), SUDO_GID=str(GID), SUDO_USER=USER,
                       SUDO_COMMAND="/usr/bin/awf")
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS"):
            if k in os.environ:
                env[k] = os.environ[k]
        return env

    def awf_prefix(self, sudo=True):
        """What runs awf in this world's mode: [awf] as root, the drop to the
        test user then [awf] rootless (or root's awf --rootless without sudo)."""
        if not self.rootless:
            return [self.awf_bin]
        if not sudo:
            return [self.awf_bin, "--rootless"]
        return rootless_drop() + [self.awf_bin]

    def awf_argv(self, cmd, args=(), world_flags=True, log=True, pre=(), sudo=True):
        """argv running awf inside the world; returns (argv, log_path)."""
        self.runs += 1
        log_path = os.path.join(self.logs, f"run-{self.runs}.jsonl") if log else None
        flags = []
        if world_flags:
            flags += ["--dns-servers", DNS_ADDR, "--allow-destination-cidrs", WORLD_CIDRS]
        if log_path:
            flags += ["--log-file", log_path]
        argv = self.ns.cmd(list(pre) + self.awf_prefix(sudo) + flags + list(args) + ["--"]
                           + list(cmd))
        return argv, log_path

    def awf(self, *cmd, args=(), env=None, extra_env=None, cwd=None, timeout=RUN_TIMEOUT,
            input=None, world_flags=True, log=True, sudo=True, pre=()):
        """Run `awf [world flags] ARGS -- CMD` inside the world; a Result."""
        argv, log_path = self.awf_argv(cmd, args, world_flags, log, pre, sudo)
        e = dict(env) if env is not None else self.base_env(sudo)
        e.update(extra_env or {})
        p = subprocess.run(argv, input=input, capture_output=True, timeout=timeout, env=e,
                           cwd=cwd or self.home)
        r = Result(argv, p.returncode, p.stdout, p.stderr, log_path)
        assert not SANITIZER_RE.search(r.err), f"sanitizer report from awf:\n{r}"
        return r

    def popen(self, *cmd, args=(), extra_env=None, cwd=None, pre=()):
        """Start awf in the background; (Popen, log_path). With no `pre`,
        ip netns exec execs awf, so the Popen's pid is awf's."""
        argv, log_path = self.awf_argv(cmd, args, pre=pre)
        e = self.base_env()
        e.update(extra_env or {})
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                             cwd=cwd or self.home, start_new_session=True)
        return p, log_path

    def curl_args(self, url, *more, transparent=False, max_time=10):
        """A curl command line for inside the sandbox (CA from the user's home)."""
        argv = ["curl", "-q", "-sS", "--max-time", str(max_time), "--cacert", self.ca]
        if transparent:
            argv += ["--noproxy", "*"]
        return argv + list(more) + [url]

    def icmp_echo_requests(self):
        """Echo requests that reached the world's addresses."""
        p = self.run(["nft", "-j", "list", "counter", "inet", "awfw_probe", "icmp_in"],
                     check=True)
        for item in json.loads(p.stdout)["nftables"]:
            if "counter" in item:
                return item["counter"]["packets"]
        raise AssertionError(f"no counter in {p.stdout!r}")

    # -- teardown ---------------------------------------------------------
    def close(self):
        for s in self.servers:
            try:
                if hasattr(s, "state"):
                    s.state.release_all()
                s.stop()
            except OSError:
                pass
        if self.dns is not None and self.dns._tcp is not None:
            self.dns.stop()
        if self.udp is not None:
            self.udp.stop()
        if self.ns is not None:
            self.ns.close()
        shutil.rmtree(self.etc, ignore_errors=True)
        if getattr(self, "made_netns_etc", False):
            try:
                os.rmdir(os.path.dirname(self.etc))  # ours, and empty again
            except OSError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module", params=e2e_modes())
def world(request):
    """One world per test module and mode (import this fixture into the
    module): every test that takes it runs with awf as root and rootless."""
    awf_bin, why = awf_binary()
    if awf_bin is None:
        pytest.skip(why)
    w = World(awf_bin, request.param)
    yield w
    w.close()


def only_root(world, why):
    """Skip the calling test in the rootless mode, saying why."""
    if world.rootless:
        pytest.skip(f"rootless: {why}")


@pytest.fixture(scope="module")
def bare_world():
    """The world without awf: for checking the rig itself."""
    if os.geteuid() != 0:
        pytest.skip("the world needs root (ip netns)")
    w = World(None)
    yield w
    w.close()


def wait_for(pred, timeout=10.0, step=0.02):
    """pred()'s first true value, or None after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            return None
        time.sleep(step)


def stop(proc):
    """Kill a background awf (its whole process group) if still running;
    returns what it wrote on stderr, for assertion messages."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        _, err = proc.communicate(timeout=10)
    except (subprocess.TimeoutExpired, ValueError):
        return "(stderr unavailable)"
    return (err or b"").decode("utf-8", "replace")[-3000:]
