"""Hostile clients and origins against TLS interception (--ssl-bump): a
client that floods denied requests without reading the answers, and the
other ways to make the intercepting proxy hold memory, crash or lie in its
log. The proxy trusts the suite's self-signed origin certificate through
SSL_CERT_FILE; clients trust the run's CA from --ssl-bump-ca-out."""

import os
import re
import socket
import ssl
import time

import pytest

from harness.util import token

ALLOW_URLS = "https://allowed.test/hello*, https://allowed.test/echo*"


@pytest.fixture
def bump(start_proxy, certfile, tmp_path):
    """Start an intercepting proxy; returns (proxy, ca file)."""
    def _start(extra=(), **kw):
        ca = str(tmp_path / f"run-ca-{time.monotonic_ns()}.pem")
        p = start_proxy(extra=["--ssl-bump", "--ssl-bump-ca-out", ca,
                               "--allow-urls", ALLOW_URLS, *extra],
                        env=dict(os.environ, SSL_CERT_FILE=certfile), **kw)
        return p, ca
    return _start


def connect_tunnel(p, port, host="allowed.test"):
    s = socket.create_connection((p.host, p.port), timeout=10)
    s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        assert d, head
        head += d
    assert head.startswith(b"HTTP/1.1 200"), head
    return s


def bumped(p, ca, port, host="allowed.test", rcvbuf=None, sni=None):
    """A TLS connection through an intercepted CONNECT tunnel."""
    s = connect_tunnel(p, port, host)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ctx = ssl.create_default_context(cafile=ca)
    return ctx.wrap_socket(s, server_hostname=sni or host)


def read_until(s, marker, timeout=10):
    s.settimeout(timeout)
    out = b""
    while marker not in out:
        d = s.recv(65536)
        if not d:
            break
        out += d
    return out


def test_denied_flood_without_reading_is_held_back(bump, origins):
    """Denied requests are answered inside TLS and the connection stays open:
    a client that pipelines them and reads none of the 403s must be stopped
    by its own full write queue, not buffered without bound (the old binary
    took every byte and queued ~6x as much in answers)."""
    p, ca = bump()
    s = bumped(p, ca, origins.https.port, rcvbuf=4096)
    # Padded: fewer requests (and log lines) for the bytes.
    req = b"GET /no/x HTTP/1.1\r\nHost: allowed.test\r\nX-Pad: " + b"p" * 1000 + b"\r\n\r\n"
    req *= 64
    limit = 96 << 20  # the old binary took all of it; a held client stops far below half
    sent = 0
    s.settimeout(3)
    try:
        while sent < limit:
            s.sendall(req)
            sent += len(req)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    assert sent < limit // 2, f"the proxy took {sent} bytes of requests it answered nowhere"
    # The answers are all there, in order, once the client reads them.
    s.settimeout(10)
    got = read_until(s, b"403 Forbidden", timeout=10)
    assert got.startswith(b"HTTP/1.1 403 Forbidden"), got[:200]
    s.close()
    # And the proxy still serves an allowed request.
    s = bumped(p, ca, origins.https.port)
    s.sendall(b"GET /hello HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n")
    got = read_until(s, b"hello from origin")
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    s.close()


def client_hello(ca, host="allowed.test"):
    """A real ClientHello's bytes (the handshake is never finished)."""
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def test_stalled_client_handshake_is_not_an_allowed_tunnel(bump, origins):
    """A client that sends its ClientHello and then nothing until the head
    deadline passed no TLS session at all: the tunnel's record says
    client_tls_failed, as for a client that rejected the leaf, not allowed."""
    p, ca = bump(extra=["--header-timeout", "1"])
    s = connect_tunnel(p, origins.https.port)
    s.sendall(client_hello(ca))
    got = read_until(s, b"never", timeout=5)  # the proxy's flight, then its close
    assert got, "no server flight"
    s.close()
    rec = p.log.wait_one(lambda r: r["event"] == "connect" and r.get("intercepted"))
    assert rec["decision"] == "deny" and rec["reason"] == "client_tls_failed", rec


@pytest.mark.parametrize("host", ["allowed.test.", "Allowed.TEST."])
def test_connect_with_root_label_is_intercepted(bump, origins, host):
    """CONNECT allowed.test.:port (the root label, admitted by the domain
    rules as allowed.test) is the same host: intercepted and judged by its
    URL rules. The old binary relayed it raw, and /no/ reached the origin."""
    p, ca = bump()
    port = origins.https.port
    # Python's name check takes no root label: the SNI and the name checked
    # are allowed.test, the leaf must come from the run's CA.
    s = bumped(p, ca, port, host=host, sni="allowed.test")
    s.sendall(b"GET /no/x HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
    got = read_until(s, b"url_not_allowed")
    assert got.startswith(b"HTTP/1.1 403"), got[:200]
    s.sendall(f"GET /hello HTTP/1.1\r\nHost: {host.lower()}\r\n\r\n".encode())
    got = read_until(s, b"hello from origin")
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    s.close()
    rec = p.log.wait_one(lambda r: r["event"] == "connect" and r.get("intercepted"))
    assert rec["decision"] == "allow", rec


def test_plain_http_root_label_is_judged(start_proxy, origins):
    """GET http://allowed.test./no/x is held to allowed.test's http:// URL
    rules (the old binary found no rule for 'allowed.test.' and let it pass)."""
    p = start_proxy(extra=["--allow-urls", "http://allowed.test/hello*"])
    port = origins.http.port
    r = p.fetch(f"http://allowed.test.:{port}/echo", host="allowed.test")
    assert r.status == 403, r
    r = p.fetch(f"http://allowed.test.:{port}/hello", host="allowed.test")
    assert r.status == 200, r


def responses(data):
    """The status lines of the responses in data, in order."""
    return [m.decode() for m in re.findall(rb"(?:^|\n)HTTP/1\.1 (\d{3}) ", data)]


def drain(s, timeout=2):
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out + b"<EOF>"
            out += d
    except (socket.timeout, ssl.SSLError):
        return out


def req(path, extra=b"", host=b"allowed.test"):
    return b"GET " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra + b"\r\n"


def post(path, body, chunked=False):
    if chunked:
        framing = b"Transfer-Encoding: chunked\r\n"
        body = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:
        framing = b"Content-Length: %d\r\n" % len(body)
    return b"POST " + path + b" HTTP/1.1\r\nHost: allowed.test\r\n" + framing + b"\r\n" + body


# Each: what the client writes inside the intercepted TLS (t: a token in
# every path), the statuses it gets, and whether the connection is closed.
SMUGGLES = {
    # a denied request with a body is answered at once and the connection
    # closed: its body is never parsed as requests
    "denied-body-is-dropped": (lambda t: post(b"/no/" + t, req(b"/no/smuggled-" + t))
                               + req(b"/echo?" + t), ["403"], True),
    "denied-chunked-body-is-dropped": (
        lambda t: post(b"/no/" + t, req(b"/no/smuggled-" + t), chunked=True)
        + req(b"/echo?" + t), ["403"], True),
    "pipelined-allowed-denied-allowed": (
        lambda t: req(b"/hello?" + t) + req(b"/no/" + t) + req(b"/echo?" + t),
        ["200", "403", "200"], False),
    "te-and-cl": (
        lambda t: b"POST /echo?" + t + b" HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + req(b"/no/" + t), ["400"], True),
    "connect-inside": (
        lambda t: b"CONNECT allowed.test:443 HTTP/1.1\r\nHost: allowed.test:443\r\n\r\n"
        + req(b"/no/" + t), ["400"], True),
    "absolute-form-other-host": (
        lambda t: b"GET https://other.test/no/" + t + b" HTTP/1.1\r\nHost: allowed.test\r\n\r\n",
        ["400"], True),
    "host-of-another-allowed-domain": (
        lambda t: req(b"/echo?" + t, host=b"other.test") + req(b"/echo?" + t),
        ["421", "200"], False),
    "encoded-traversal": (
        lambda t: req(b"/echo/%2e%2e/no/" + t) + req(b"/hello/..%2fno/" + t),
        ["403", "403"], False),
    "upgrade-is-not-followed": (
        lambda t: req(b"/hello?" + t, b"Connection: Upgrade\r\nUpgrade: websocket\r\n")
        + req(b"/no/" + t), ["200", "403"], False),
    "h2-preface": (lambda t: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ["400"], True),
}


@pytest.mark.parametrize("name", list(SMUGGLES))
def test_requests_inside_tls_are_each_judged(bump, origins, name):
    """Whatever the framing, every request inside intercepted TLS is judged on
    its own: no denied path reaches the origin, and each request has exactly
    one final record."""
    data, want, closed = SMUGGLES[name]
    t = token()
    p, ca = bump()
    s = bumped(p, ca, origins.https.port)
    s.sendall(data(t.encode()))
    got = drain(s)
    s.close()
    assert responses(got) == want, got
    assert got.endswith(b"<EOF>") == closed, got[-200:]
    seen = [r["path"] for r in origins.https.state.requests if t in r["path"]]
    assert not [x for x in seen if "/no" in x], seen
    assert len(seen) == want.count("200"), seen
    p.log.wait_one(lambda r: r["event"] == "connect" and r.get("intercepted"))
    finals = [r for r in p.log.records() if r["event"] == "https"]
    assert len(finals) == len(want), finals
    assert len({r["req"] for r in finals}) == len(finals), finals
