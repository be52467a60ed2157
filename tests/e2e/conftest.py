"""Fixtures for the awf-proxy end-to-end suite.

Everything runs on loopback: a DNS server the proxy is pointed at with
--dns-servers (the machine's resolver is never asked), plain/TLS/raw-TCP
origins, and the awf-proxy binary from AWF_PROXY_BIN (default
<repo>/build/proxy/awf-proxy)."""

import os

import pytest

from harness import origin as origin_mod
from harness.dns import DNSServer
from harness.proxy import ProxyProcess, default_binary
from harness.util import LOOPBACK_CIDRS

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Every name the tests use. Anything else is NXDOMAIN.
ZONE = {
    "allowed.test": ["127.0.0.1"],
    "*.allowed.test": ["127.0.0.1"],
    "other.test": ["127.0.0.1"],
    "notallowed.test": ["127.0.0.1"],
    "evil.test": ["127.0.0.1"],
    "*.evil.test": ["127.0.0.1"],
    "*.example.test": ["127.0.0.1"],
    "wild.test": ["127.0.0.1"],
    "*.wild.test": ["127.0.0.1"],
    "tlsonly.test": ["127.0.0.1"],
    "plainonly.test": ["127.0.0.1"],
    "rebind.test": ["127.0.0.1"],
    "ipv6only.test": ["::1"],
    "dual.test": ["::1", "127.0.0.1"],
    "loopback2.test": ["127.0.0.2"],
    "partial.test": ["127.0.0.2", "127.0.0.1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    # IPv6 forms that deliver to an IPv4 address, and a deprecated relay block.
    "nat64local.test": ["64:ff9b:1:7f00:0:100::"],   # 64:ff9b:1::/48 layout: 127.0.0.1
    "nat64local96.test": ["64:ff9b:1::7f00:1"],      # 64:ff9b:1::/96: 127.0.0.1
    "sixtofour.test": ["2002:c0a8:101::"],           # 6to4 of 192.168.1.1
    "teredo.test": ["2001:0:808:808::80ff:fffe"],    # Teredo, client 127.0.0.1
    "teredo-public.test": ["2001:0:808:808::fefd:fcfb"],  # Teredo, 8.8.8.8 / 1.2.3.4
    "relay6to4.test": ["192.88.99.1"],
    "nodata.test": [],
    "servfail.test": "SERVFAIL",
    # Only with a search domain appended: gone.test itself does not exist.
    "gone.test.corp.test": ["127.0.0.1"],
    # 16 AAAA records: with this long name the answer passes 512 bytes (TC over UDP).
    "many6." + "a" * 50 + ".allowed.test": ["2001:db8::%x" % i for i in range(1, 17)],
}

CERT_NAMES = ["allowed.test", "*.allowed.test", "other.test", "tlsonly.test",
              "plainonly.test", "evil.test", "notallowed.test", "wild-1.example.test"]


@pytest.fixture(scope="session")
def proxy_bin():
    path = default_binary(REPO)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        msg = (f"awf-proxy binary not found or not executable at {path}: build it "
               f"(cmake -S {REPO} -B {REPO}/build && cmake --build {REPO}/build) "
               f"or set AWF_PROXY_BIN")
        if os.environ.get("AWF_E2E_ALLOW_MISSING") == "1":
            pytest.skip(msg)
        pytest.fail(msg, pytrace=False)
    return path


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("awf-e2e")


@pytest.fixture(scope="session")
def dns():
    server = DNSServer(ZONE).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cert(session_dir):
    return origin_mod.make_cert(str(session_dir), CERT_NAMES)


@pytest.fixture(scope="session")
def certfile(cert):
    return cert[0]


class Origins:
    """All loopback origins of the session, by role."""

    def __init__(self, cert):
        self.http = origin_mod.HTTPOrigin().start()
        self.https = origin_mod.TLSOrigin(*cert).start()
        self.http6 = origin_mod.HTTPOrigin("::1").start()
        self.echo = origin_mod.TCPOrigin("echo").start()
        self.digest = origin_mod.TCPOrigin("digest").start()
        self.banner = origin_mod.TCPOrigin("banner").start()
        self.refused = origin_mod.RefusingPort()
        self.blackhole = origin_mod.BlackholePort()

    @property
    def ports(self):
        return [self.http.port, self.https.port, self.http6.port, self.echo.port,
                self.digest.port, self.banner.port, self.refused.port, self.blackhole.port]

    def stop(self):
        for s in (self.http, self.https, self.http6, self.echo, self.digest, self.banner):
            s.stop()
        self.refused.close()
        self.blackhole.close()


@pytest.fixture(scope="session")
def origins(cert):
    o = Origins(cert)
    yield o
    o.stop()


@pytest.fixture
def start_proxy(proxy_bin, dns, origins, tmp_path):
    """Factory: start awf-proxy with the suite's defaults plus overrides.

    allow/block: -d / --block-domains values (None: flag omitted);
    ports: --allow-ports (default: every origin port); cidrs: the
    --allow-destination-cidrs value (None: omitted); log: "file", "-" or None;
    dns_listen: --dns-listen addresses (waited for like the listeners);
    extra: more flags; env: the environment (default: the tests'). Every proxy is stopped with SIGTERM at teardown, which
    must give exit 0, no sanitizer report and a log of JSON lines."""
    procs = []

    def _start(allow="allowed.test,other.test", block=None, ports=None, cidrs=LOOPBACK_CIDRS,
               log="file", listen=("127.0.0.1:0",), extra=(), grace="3", use_dns=True,
               wait=True, dns_listen=(), env=None):
        args = []
        for addr in listen:
            args += ["--listen", addr]
        for addr in dns_listen:
            args += ["--dns-listen", addr]
        if allow is not None:
            args += ["--allow-domains", allow]
        if block is not None:
            args += ["--block-domains", block]
        args += ["--allow-ports", ports or ",".join(str(p) for p in origins.ports)]
        if cidrs is not None:
            args += ["--allow-destination-cidrs", cidrs]
        if use_dns:
            args += ["--dns-servers", dns.addr]
        log_path = None
        if log == "file":
            log_path = str(tmp_path / f"access-{len(procs)}.jsonl")
            args += ["--log-file", log_path]
        elif log == "-":
            args += ["--log-file", "-"]
        if grace is not None:
            args += ["--shutdown-grace", str(grace)]
        args += list(extra)
        p = ProxyProcess(proxy_bin, args, log_path=log_path, log_stdout=(log == "-"), env=env)
        procs.append(p)
        if wait:
            p.wait_listening(count=len(listen))
            p.wait_dns_listening(count=len(dns_listen))
        return p

    yield _start
    origins.http.state.release_all()
    origins.https.state.release_all()
    errors = []
    for p in procs:
        try:
            p.check_clean_exit()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def proxy(start_proxy):
    """awf-proxy allowing allowed.test and other.test (and their subdomains)."""
    return start_proxy()
