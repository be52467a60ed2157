"""Rate limits on awf-proxy (--rate-limit, --bytes-limit): N requests pass,
the next gets 429 with Retry-After and the log says rate_limited, another
host is unaffected; the global form is per host; CONNECT over the limit
gets 429 instead of 200; a bytes limit refuses new requests and tunnels
once the host's bytes are spent; inside intercepted TLS the 429 is answered
in place. Limits are per minute or per hour, so no unit can come back while
a test runs: nothing here depends on the wall clock."""

import os
import subprocess

import pytest

from harness.client import Conn, TLSOverSocket, request_bytes
from harness.origin import HELLO_BODY, pattern
from harness.util import by, token, url_has


def _get(p, origins, host="allowed.test", path="/hello"):
    t = token()
    sep = "&" if "?" in path else "?"
    r = p.fetch(f"http://{host}:{origins.http.port}{path}{sep}t={t}")
    return t, r


def _assert_429(r, p, t):
    assert r.status == 429, r
    assert r.reason == "Too Many Requests", r
    retry = r.header("Retry-After")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, r
    assert b"rate_limited" in r.body, r
    rec = p.log.wait_one(url_has(t))
    assert rec["decision"] == "deny" and rec["reason"] == "rate_limited", rec
    assert rec["status"] == 429, rec
    return int(retry)


def test_requests_then_429(start_proxy, origins):
    p = start_proxy(extra=["--rate-limit", "allowed.test=3/m"])
    seen = []
    for _ in range(3):
        t, r = _get(p, origins)
        assert r.status == 200 and r.body == HELLO_BODY, r
        seen.append(t)
    t, r = _get(p, origins)
    # 3/m: a unit comes back every 20 s.
    assert 1 <= _assert_429(r, p, t) <= 20
    # The refused request never reached the origin.
    assert origins.http.state.find(t) == []
    for s in seen:
        assert len(origins.http.state.find(s)) == 1
        rec = p.log.wait_one(url_has(s))
        assert rec["decision"] == "allow" and rec["reason"] == "allowed", rec
    # Another host has no rule: unaffected.
    for _ in range(5):
        _, r = _get(p, origins, host="other.test")
        assert r.status == 200, r
    # A subdomain shares the rule's bucket (HOST matches as in --allow-domains).
    t, r = _get(p, origins, host="sub.allowed.test")
    _assert_429(r, p, t)


def test_keep_alive_requests_counted_one_by_one(start_proxy, origins):
    p = start_proxy(extra=["--rate-limit", "allowed.test=2/h"])
    P = origins.http.port
    toks = [token() for _ in range(3)]
    with p.connect() as c:
        for t in toks[:2]:
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}", f"allowed.test:{P}"))
            assert c.read_response().status == 200
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={toks[2]}",
                             f"allowed.test:{P}"))
        r = c.read_response()
        assert 1 <= _assert_429(r, p, toks[2]) <= 1800  # 2/h: one per 30 min
        c.expect_closed()  # a denial closes the connection, as the others do


def test_global_form_is_per_host(start_proxy, origins):
    p = start_proxy(extra=["--rate-limit", "2/m"])
    for host in ("allowed.test", "other.test"):
        for _ in range(2):
            _, r = _get(p, origins, host=host)
            assert r.status == 200, (host, r)
        t, r = _get(p, origins, host=host)
        _assert_429(r, p, t)
    # Each host has a bucket of its own.
    _, r = _get(p, origins, host="sub.allowed.test")
    assert r.status == 200, r


def test_host_rule_overrides_global(start_proxy, origins):
    p = start_proxy(extra=["--rate-limit", "1/m", "--rate-limit", "allowed.test=3/m"])
    for _ in range(3):
        _, r = _get(p, origins)
        assert r.status == 200, r
    t, r = _get(p, origins)
    _assert_429(r, p, t)
    _, r = _get(p, origins, host="other.test")
    assert r.status == 200, r
    t, r = _get(p, origins, host="other.test")
    _assert_429(r, p, t)


def test_connect_over_limit_gets_429(start_proxy, origins, certfile):
    p = start_proxy(extra=["--rate-limit", "allowed.test=2/m"])
    PS = origins.https.port
    for _ in range(2):
        c, r = p.tunnel(f"allowed.test:{PS}")
        with c:
            assert r.status == 200, r
            tls = TLSOverSocket(c, "allowed.test", cafile=certfile)
            tls.handshake()
            tc = Conn(tls)
            tc.send(request_bytes("GET", "/hello", f"allowed.test:{PS}"))
            assert tc.read_response().body == HELLO_BODY
    c, r = p.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 429, r
        assert int(r.header("Retry-After")) >= 1, r
        c.expect_closed()
    # A tunnel's final record is written when it closes: order by connection.
    recs = sorted(p.log.wait(by(event="connect", host="allowed.test"), count=3),
                  key=lambda x: x["conn"])
    assert [x["reason"] for x in recs] == ["allowed", "allowed", "rate_limited"], recs
    assert recs[-1]["decision"] == "deny" and recs[-1]["status"] == 429, recs
    # Another host's tunnels are not counted against it.
    c, r = p.tunnel(f"other.test:{PS}")
    with c:
        assert r.status == 200, r


def test_bytes_limit(start_proxy, origins, certfile):
    """10K/h: a 30000-byte response is relayed whole (a transfer under way is
    never cut), then the host's bytes are spent and new requests and tunnels
    get 429; another host is unaffected."""
    p = start_proxy(extra=["--bytes-limit", "allowed.test=10K/h"])
    t, r = _get(p, origins, path="/bytes?n=30000")
    assert r.status == 200 and r.body == pattern(30000), r
    t, r = _get(p, origins)
    assert _assert_429(r, p, t) >= 60  # 20K of debt at 10K an hour: far beyond a minute
    c, r = p.tunnel(f"allowed.test:{origins.https.port}")
    with c:
        assert r.status == 429, r
    rec = p.log.wait_one(by(event="connect", host="allowed.test"))
    assert rec["reason"] == "rate_limited", rec
    _, r = _get(p, origins, host="other.test", path="/bytes?n=30000")
    assert r.status == 200, r


def test_bytes_limit_counts_tunnel_bytes(start_proxy, origins, certfile):
    p = start_proxy(extra=["--bytes-limit", "allowed.test=4K/h"])
    PS = origins.https.port
    c, r = p.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200, r
        tls = TLSOverSocket(c, "allowed.test", cafile=certfile)
        tls.handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/bytes?n=20000", f"allowed.test:{PS}"))
        assert tc.read_response().body == pattern(20000)
    c, r = p.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 429, r
    t, r = _get(p, origins)
    _assert_429(r, p, t)


def test_intercepted_requests_answered_in_place(start_proxy, origins, certfile, tmp_path):
    """Inside intercepted TLS each request takes a unit (the tunnel itself
    does not); the 429 comes inside TLS and the connection stays usable."""
    ca = tmp_path / "ca.pem"
    env = dict(os.environ, SSL_CERT_FILE=certfile)
    p = start_proxy(env=env, extra=["--allow-urls", "https://allowed.test/*", "--ssl-bump",
                                    "--ssl-bump-ca-out", str(ca),
                                    "--rate-limit", "allowed.test=2/m"])
    PS = origins.https.port
    c, r = p.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200, r
        tls = TLSOverSocket(c, "allowed.test", cafile=str(ca))
        tls.handshake()
        tc = Conn(tls)
        toks = [token() for _ in range(4)]
        codes = []
        for t in toks:
            tc.send(request_bytes("GET", f"/hello?t={t}", f"allowed.test:{PS}"))
            resp = tc.read_response()
            codes.append(resp.status)
            if resp.status == 429:
                assert int(resp.header("Retry-After")) >= 1, resp
                assert b"rate_limited" in resp.body, resp
        assert codes == [200, 200, 429, 429], codes
    for t, code in zip(toks, codes):
        rec = p.log.wait_one(url_has(t))
        assert rec["event"] == "https", rec
        assert rec["reason"] == ("allowed" if code == 200 else "rate_limited"), rec
    # The bucket is empty now: a new tunnel to the host is refused at CONNECT.
    c, r = p.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 429, r


def test_audit_admits_and_says_why(start_proxy, origins):
    p = start_proxy(extra=["--rate-limit", "allowed.test=1/m", "--audit"])
    _get(p, origins)
    t, r = _get(p, origins)
    assert r.status == 200, r
    rec = p.log.wait_one(url_has(t))
    assert rec["decision"] == "allow" and rec["would_deny"] is True, rec
    assert rec["reason"] == "rate_limited", rec


@pytest.mark.parametrize("flag,value,why", [
    ("--rate-limit", "allowed.test=3/q", "not [HOST=]N/s, N/m or N/h"),
    ("--rate-limit", "allowed.test=0/m", "N from 1 to 1000000"),
    ("--rate-limit", "=3/m", "no host before '='"),
    ("--rate-limit", "a.test,b.test=3/m", "one host per entry"),
    ("--rate-limit", "https://a.test=3/m", "no scheme"),
    ("--bytes-limit", "a.test=10X/m", "from 1 to 1T"),
    ("--bytes-limit", "a.test=10M", "not [HOST=]N/s"),
])
def test_bad_value_exits_2(proxy_bin, flag, value, why):
    res = subprocess.run([proxy_bin, "-d", "a.test", flag, value], capture_output=True,
                         text=True, timeout=10)
    assert res.returncode == 2, res
    assert f"{flag}: '{value}'" in res.stderr and why in res.stderr, res.stderr
