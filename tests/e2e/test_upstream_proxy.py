"""--upstream-proxy: allowed traffic leaves through a parent HTTP proxy (the
tests' own, harness/parent_proxy.py). The ACL judges first, exactly as
without a parent; then every admitted connection (CONNECT tunnels and plain
HTTP alike) is a CONNECT to the parent; its failures are 502
upstream_proxy_failed."""

import base64
import os
import subprocess
import time

import pytest

from harness.client import Conn, TLSOverSocket, curl, request_bytes
from harness.origin import BANNER, HELLO_BODY
from harness.parent_proxy import ParentProxy
from harness.util import by, token

RESOLVE = {"allowed.test": "127.0.0.1", "sub.allowed.test": "127.0.0.1",
           "other.test": "127.0.0.1"}


@pytest.fixture
def parent():
    p = ParentProxy(resolve=RESOLVE).start()
    yield p
    p.stop()


def _stderr_has(px, text, timeout=5.0):
    return px.stderr.wait_for(lambda line: text in line, timeout) is not None


def _via(start_proxy, parent_url, extra=(), **kw):
    return start_proxy(extra=["--upstream-proxy", parent_url] + list(extra), **kw)


def _tls_get(c, host, port, certfile, path="/hello"):
    tls = TLSOverSocket(c, host, cafile=certfile)
    tls.handshake()
    tc = Conn(tls)
    tc.send(request_bytes("GET", path, f"{host}:{port}"))
    return tc.read_response()


def test_connect_tunnel_goes_through_the_parent(start_proxy, parent, origins, certfile):
    PS = origins.https.port
    px = _via(start_proxy, parent.url)
    c, r = px.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200, r
        resp = _tls_get(c, "allowed.test", PS, certfile)
        assert resp.status == 200 and resp.body == HELLO_BODY
    assert parent.targets() == [f"allowed.test:{PS}"]
    req = parent.requests[0]
    assert req["method"] == "CONNECT" and req["headers"]["host"] == f"allowed.test:{PS}"
    assert "proxy-authorization" not in req["headers"]
    rec = px.log.wait_one(by(event="connect", host="allowed.test", port=PS))
    assert rec["decision"] == "allow" and rec["upstream"] == f"127.0.0.1:{parent.port}"


def test_curl_https_through_both(start_proxy, parent, origins, certfile):
    PS = origins.https.port
    px = _via(start_proxy, parent.url)
    res = curl(["-x", f"http://127.0.0.1:{px.port}", "--cacert", certfile,
                f"https://allowed.test:{PS}/hello"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY


def test_plain_http_is_tunnelled_and_pooled_per_host(start_proxy, parent, origins):
    """Plain HTTP reaches the origin in origin form inside a CONNECT tunnel:
    a pooled tunnel to one host never carries a request for another. One
    worker: the pool is a worker's, and the test counts the tunnels."""
    P = origins.http.port
    px = _via(start_proxy, parent.url, extra=["--workers", "1"])
    t = token()
    for _ in range(3):
        r = px.fetch(f"http://allowed.test:{P}/hello?t={t}", headers=[("Connection", "close")])
        assert r.status == 200 and r.body == HELLO_BODY
    r = px.fetch(f"http://other.test:{P}/hello?t={t}")
    assert r.status == 200
    assert parent.targets() == [f"allowed.test:{P}", f"other.test:{P}"]
    seen = origins.http.state.find(t)
    assert len(seen) == 4
    recs = px.log.wait(by(event="http", port=P), count=4)
    assert all(x["upstream"] == f"127.0.0.1:{parent.port}" for x in recs)
    assert {x["host"] for x in recs} == {"allowed.test", "other.test"}


def test_server_first_bytes_after_the_200_reach_the_client(start_proxy, parent, origins):
    """The parent sends its 200 and the origin's banner in one write: awf
    reads exactly the 200's head, the banner is the client's."""
    PB = origins.banner.port
    px = _via(start_proxy, parent.url)
    c, r = px.tunnel(f"allowed.test:{PB}")
    with c:
        assert r.status == 200, r
        assert c.read_exact(len(BANNER)) == BANNER


def test_credentials_become_proxy_authorization(start_proxy, origins, certfile):
    p = ParentProxy(resolve=RESOLVE, auth=("us@er", "p:ss w%rd")).start()
    try:
        PS = origins.https.port
        px = _via(start_proxy, f"http://us%40er:p%3Ass%20w%25rd@127.0.0.1:{p.port}")
        c, r = px.tunnel(f"allowed.test:{PS}")
        with c:
            assert r.status == 200, r
            assert _tls_get(c, "allowed.test", PS, certfile).body == HELLO_BODY
        want = "Basic " + base64.b64encode(b"us@er:p:ss w%rd").decode()
        assert p.requests[0]["headers"]["proxy-authorization"] == want
        # The credentials are nobody's business but the parent's.
        assert "p:ss" not in px.log.raw() and "us@er" not in px.log.raw()
    finally:
        p.stop()


def _failed(px, r, host, port, event="connect"):
    assert r.status == 502, r
    assert b"upstream_proxy_failed" in r.body
    rec = px.log.wait_one(by(event=event, host=host, port=port))
    assert rec["decision"] == "deny" and rec["reason"] == "upstream_proxy_failed", rec
    return rec


@pytest.mark.parametrize("mode", ["407", "502", "garbage", "close"])
def test_parent_failures_are_502(start_proxy, origins, mode):
    p = ParentProxy(resolve=RESOLVE, mode=mode).start()
    try:
        PS, P = origins.https.port, origins.http.port
        px = _via(start_proxy, p.url)
        c, r = px.tunnel(f"allowed.test:{PS}")
        c.close()
        rec = _failed(px, r, "allowed.test", PS)
        assert rec["upstream"] == f"127.0.0.1:{p.port}"
        r = px.fetch(f"http://allowed.test:{P}/hello")
        _failed(px, r, "allowed.test", P, event="http")
    finally:
        p.stop()


def test_wrong_credentials_are_407_from_the_parent(start_proxy, origins):
    p = ParentProxy(resolve=RESOLVE, auth=("u", "right")).start()
    try:
        PS = origins.https.port
        px = _via(start_proxy, f"http://u:wrong@127.0.0.1:{p.port}")
        c, r = px.tunnel(f"allowed.test:{PS}")
        c.close()
        _failed(px, r, "allowed.test", PS)
        assert _stderr_has(px, "answered the CONNECT with 407")
    finally:
        p.stop()


def test_parent_refusing_connections(start_proxy, origins):
    PS = origins.https.port
    px = _via(start_proxy, f"http://127.0.0.1:{origins.refused.port}")
    c, r = px.tunnel(f"allowed.test:{PS}")
    c.close()
    _failed(px, r, "allowed.test", PS)


def test_silent_parent_times_out(start_proxy, origins):
    p = ParentProxy(resolve=RESOLVE, mode="silent").start()
    try:
        PS = origins.https.port
        px = _via(start_proxy, p.url, extra=["--connect-timeout", "0.5"])
        t0 = time.monotonic()
        c, r = px.tunnel(f"allowed.test:{PS}")
        c.close()
        _failed(px, r, "allowed.test", PS)
        assert time.monotonic() - t0 < 5
    finally:
        p.stop()


def test_parent_name_resolved_through_dns_servers(start_proxy, parent, origins, certfile):
    """The parent's own name is resolved through --dns-servers."""
    PS = origins.https.port
    px = _via(start_proxy, f"http://other.test:{parent.port}")
    c, r = px.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200, r
    assert parent.targets() == [f"allowed.test:{PS}"]


def test_unresolvable_parent_is_upstream_proxy_failed(start_proxy, origins):
    PS = origins.https.port
    px = _via(start_proxy, "http://nosuch.test:3128")
    c, r = px.tunnel(f"allowed.test:{PS}")
    c.close()
    _failed(px, r, "allowed.test", PS)


def test_acl_denies_before_the_parent_sees_anything(start_proxy, parent, origins):
    PS, P = origins.https.port, origins.http.port
    px = _via(start_proxy, parent.url)
    c, r = px.tunnel(f"notallowed.test:{PS}")
    c.close()
    assert r.status == 403
    r = px.fetch(f"http://evil.test:{P}/hello")
    assert r.status == 403
    r = px.fetch(f"http://allowed.test:{P}/hello")  # one that goes
    assert r.status == 200
    assert parent.targets() == [f"allowed.test:{P}"]
    assert parent.connections == 1
    rec = px.log.wait_one(by(event="connect", host="notallowed.test"))
    assert rec["reason"] == "not_allowed" and "upstream" not in rec


def test_parent_on_a_private_address_needs_no_cidr(start_proxy, parent, origins):
    """The parent is the operator's: dialled without the address policy (here
    127.0.0.1 with no --allow-destination-cidrs). The origin's name is the
    parent's to resolve: awf does not look it up, so its address policy does
    not apply to the origin (docs/security.md)."""
    P = origins.http.port
    px = _via(start_proxy, parent.url, cidrs=None)
    r = px.fetch(f"http://allowed.test:{P}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    # Without the parent the same request is private_destination.
    direct = start_proxy(cidrs=None)
    assert direct.fetch(f"http://allowed.test:{P}/hello").status == 403


def test_debug_traces_the_parent_dial(start_proxy, parent, origins):
    PS = origins.https.port
    px = _via(start_proxy, f"http://u:secretpw@127.0.0.1:{parent.port}",
              extra=["--log-level", "debug"])
    c, r = px.tunnel(f"allowed.test:{PS}")
    c.close()
    assert r.status == 200, r
    assert _stderr_has(px, f"allowed.test:{PS} via 127.0.0.1:{parent.port}: trying")
    assert _stderr_has(px, "upstream proxy: CONNECT allowed.test (with Proxy-Authorization)")
    assert _stderr_has(px, "upstream proxy: tunnel open (200)")
    assert _stderr_has(px, f"upstream-proxy: 127.0.0.1:{parent.port} (from --upstream-proxy)"
                           ", with credentials")
    assert "secretpw" not in px.stderr.text()


def test_auto_reads_the_environment_and_no_proxy(start_proxy, parent, origins):
    P = origins.http.port
    env = dict(os.environ, https_proxy=parent.url, NO_PROXY=".other.test,localhost")
    env.pop("no_proxy", None)
    px = _via(start_proxy, "auto", env=env)
    assert px.fetch(f"http://allowed.test:{P}/hello").status == 200
    # NO_PROXY'd names go direct: awf itself resolves this one (and the tests'
    # DNS does not know it), where the parent would have answered 502.
    assert px.fetch(f"http://sub.other.test:{P}/hello").status == 502
    rec = px.log.wait_one(by(event="http", host="sub.other.test"))
    assert rec["reason"] == "dns_failure", rec
    assert px.fetch(f"http://other.test:{P}/hello").status == 200
    assert parent.targets() == [f"allowed.test:{P}"]


def test_no_flag_means_direct_even_with_proxy_variables(start_proxy, parent, origins):
    """awf-proxy reads the environment only with --upstream-proxy auto."""
    P = origins.http.port
    env = dict(os.environ, https_proxy=parent.url, HTTP_PROXY=parent.url)
    px = start_proxy(env=env)
    assert px.fetch(f"http://allowed.test:{P}/hello").status == 200
    assert parent.targets() == []


@pytest.mark.parametrize("url,msg", [
    ("https://proxy:3128", "https:// parent proxies are not supported"),
    ("socks5://proxy:1080", "the scheme must be http://"),
    ("http://proxy:3128/path", "a path"),
    ("http://proxy:99999", "bad host or port"),
    ("http://u%zz:p@proxy:3128", "bad user or password"),
])
def test_bad_urls_are_refused_at_start(proxy_bin, url, msg):
    res = subprocess.run([proxy_bin, "-d", "a.test", "--upstream-proxy", url],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 2, res
    assert "--upstream-proxy: " in res.stderr and msg in res.stderr, res.stderr
    assert "p@proxy" not in res.stderr


def test_ssl_bump_layers_its_tls_over_the_parents_tunnel(start_proxy, parent, origins, certfile,
                                                         tmp_path):
    """An intercepted host: awf's verified TLS to the origin runs inside the
    parent's CONNECT tunnel, and every request inside is judged."""
    PS = origins.https.port
    ca_out = str(tmp_path / "run-ca.pem")
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SSL_CERT_FILE"] = certfile  # the origins' certificate is awf's trust anchor
    px = _via(start_proxy, parent.url, env=env,
              extra=["--ssl-bump", "--ssl-bump-ca-out", ca_out,
                     "--allow-urls", "https://allowed.test/hello*"])
    c, r = px.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200, r
        tls = TLSOverSocket(c, "allowed.test", cafile=ca_out)
        tls.handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/hello", f"allowed.test:{PS}"))
        resp = tc.read_response()
        assert resp.status == 200 and resp.body == HELLO_BODY
        tc.send(request_bytes("GET", "/bytes?n=10", f"allowed.test:{PS}"))
        assert tc.read_response().status == 403
    assert parent.targets() == [f"allowed.test:{PS}"]
    rec = px.log.wait_one(by(event="https", status=200))
    assert rec["upstream"] == f"127.0.0.1:{parent.port}", rec


def test_client_gone_while_the_parent_is_silent(start_proxy, origins):
    """A dial waiting on the parent's answer is cancelled cleanly when the
    client leaves, and when awf-proxy stops (ASan builds check the memory)."""
    p = ParentProxy(resolve=RESOLVE, mode="silent").start()
    try:
        PS, P = origins.https.port, origins.http.port
        px = _via(start_proxy, p.url)
        with px.connect() as c:
            c.send(f"CONNECT allowed.test:{PS} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n"
                   .encode())
            deadline = time.monotonic() + 5
            while len(p.requests) < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
        c2 = px.connect()
        c2.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
        deadline = time.monotonic() + 5
        while len(p.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(p.requests) == 2
        assert px.stop() == 0  # the second dial is still waiting
        c2.close()
    finally:
        p.stop()
