"""--dlp on awf-proxy: a request whose URL (as sent or percent-decoded),
a header or a plain-HTTP body carries a token-shaped string is denied
(dlp_match) and never reaches the origin whole; so are a CONNECT target,
a redirected TLS server name or Host, and a DNS question that carry one.
The log names the kind, never the text. Each case also runs without --dlp,
where the same request reaches the origin: the test would fail if DLP were
off."""

import os
import shutil
import ssl
import subprocess

import pytest

from harness.client import Conn, ConnectionClosed, TLSOverSocket, request_bytes
from harness.util import by, token

GH = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GH_ESCAPED = "%67hp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS = "AKIAIOSFODNN7EXAMPLE"
ANTHROPIC = "sk-ant-api03-abcdefghijABCDEFGHIJ0123456789_-xyzXYZ"
AWS_LABEL = AWS.lower()                       # as a DNS name carries it
GH_SPLIT = "ghp_a1b2c3d4e5f6g7h8.i9j0k1l2m3n4o5p6q7r8"  # across two labels

DNS = ("127.0.0.1:0",)


def _dlp(start_proxy, on, extra=(), **kw):
    return start_proxy(extra=(["--dlp"] if on else []) + list(extra), **kw)


def _no_secret_in_log(p, *secrets):
    raw = p.log.raw()
    for s in secrets:
        assert s not in raw, f"{s} in the access log"
        assert s.lower() not in raw.lower(), f"{s} in the access log"


@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("where,kind", [
    ("query", "github_token"),
    ("escaped", "github_token"),
    ("path", "aws_access_key_id"),
    ("header", "anthropic_key"),
    ("host", "aws_access_key_id"),
])
def test_request_carrying_a_token(start_proxy, origins, on, where, kind):
    p = _dlp(start_proxy, on)
    t = token()
    port = origins.http.port
    url, headers = f"http://allowed.test:{port}/hello?t={t}", []
    if where == "query":
        url += f"&k={GH}"
    elif where == "escaped":
        url += f"&k={GH_ESCAPED}"
    elif where == "path":
        url = f"http://allowed.test:{port}/hello/{AWS}?t={t}"
    elif where == "header":
        headers = [("x-api-key", ANTHROPIC)]
    elif where == "host":
        url = f"http://{AWS_LABEL}.allowed.test:{port}/hello?t={t}"
    r = p.fetch(url, headers=headers)
    rec = p.log.wait_one(both_event_http(t))
    if not on:
        assert r.status in (200, 404) and rec["reason"] == "allowed", rec
        assert len(origins.http.state.find(t)) == 1
        return
    assert r.status == 403, r.head
    assert "dlp_match" in r.text
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == kind and rec["status"] == 403, rec
    assert origins.http.state.find(t) == []
    _no_secret_in_log(p, GH, AWS, ANTHROPIC, GH_ESCAPED)
    open_rec = [x for x in p.log.records() if x.get("event") == "open" and t in x.get("url", "")]
    assert open_rec == []  # denied at once: no open record


def both_event_http(t):
    return lambda r: r.get("event") == "http" and t in r.get("url", "")


@pytest.mark.parametrize("at_end", [False, True])
def test_body_on_plain_http_cut(start_proxy, origins, at_end):
    """A token in a body: the head went upstream, so no 403 can follow; both
    connections are cut and the bytes that carried the token never leave.
    At the body's very end too, where only the end decides an AWS id."""
    p = _dlp(start_proxy, True)
    t = token()
    filler = b"x" * 200000
    body = filler + b"&token=" + AWS.encode() + (b"" if at_end else b"&" + filler)
    with p.connect() as c:
        c.send(request_bytes("POST", f"http://allowed.test:{origins.http.port}/upload-stream"
                             f"?id={t}", f"allowed.test:{origins.http.port}",
                             [("Content-Type", "text/plain")], body))
        with pytest.raises((ConnectionClosed, ConnectionError)):
            c.read_response("POST")
    rec = p.log.wait_one(both_event_http(t))
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == "aws_access_key_id"
    got = origins.http.state.get_progress(t) or 0
    assert got <= len(filler) + 7, (got, len(filler))  # never the token's bytes
    _no_secret_in_log(p, AWS)


def test_body_without_dlp_reaches_origin(start_proxy, origins):
    p = _dlp(start_proxy, False)
    t = token()
    body = b"token=" + AWS.encode()
    r = p.fetch(f"http://allowed.test:{origins.http.port}/upload?t={t}", method="POST",
                body=body)
    assert r.status == 200 and b'"len": %d' % len(body) in r.body, r.body


def test_clean_body_and_request_pass(start_proxy, origins):
    """An ordinary request with a large body (chunked) passes with --dlp."""
    p = _dlp(start_proxy, True)
    t = token()
    body = (b"eyJhbGciOiJIUzI1NiJ9 is not a JWT; AKIA alone is not a key; ghp_short. " * 5000)
    r = p.fetch(f"http://allowed.test:{origins.http.port}/upload?t={t}", method="POST",
                headers=[("Authorization", "Bearer not-a-token")], body=body)
    assert r.status == 200 and b'"len": %d' % len(body) in r.body, r.body
    rec = p.log.wait_one(both_event_http(t))
    assert rec["reason"] == "allowed" and "dlp" not in rec, rec


def test_audit_admits_and_names_the_kind(start_proxy, origins):
    p = _dlp(start_proxy, True, extra=["--audit"])
    t = token()
    r = p.fetch(f"http://allowed.test:{origins.http.port}/hello?t={t}&k={GH}")
    assert r.status == 200
    rec = p.log.wait_one(both_event_http(t))
    assert rec["decision"] == "allow" and rec["would_deny"] is True, rec
    assert rec["reason"] == "dlp_match" and rec["dlp"] == "github_token", rec
    _no_secret_in_log(p, GH)


@pytest.mark.parametrize("on", [True, False])
def test_connect_target(start_proxy, origins, on):
    p = _dlp(start_proxy, on)
    host = f"{AWS_LABEL}.allowed.test"
    c, r = p.tunnel(f"{host}:{origins.https.port}")
    c.close()
    if not on:
        assert r.status == 200
        return
    assert r.status == 403, r.head
    rec = p.log.wait_one(by(event="connect"))
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == "aws_access_key_id" and AWS_LABEL not in rec["host"], rec
    assert rec["host"].endswith(".allowed.test")
    _no_secret_in_log(p, AWS)


# -- DNS (--dns-listen) -------------------------------------------------------------

def _dig(p, name):
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(p.dns_port), "+time=3", "+tries=1",
                          name, "A"], capture_output=True, text=True, timeout=30).stdout
    return out


@pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")
@pytest.mark.parametrize("on", [True, False])
@pytest.mark.parametrize("name,kind", [
    (f"{AWS_LABEL}.allowed.test", "aws_access_key_id"),
    (f"{GH_SPLIT}.allowed.test", "github_token"),
])
def test_dns_question(start_proxy, dns, on, name, kind):
    p = _dlp(start_proxy, on, dns_listen=DNS)
    before = dns.count(name)
    out = _dig(p, name)
    if not on:
        assert "status: NOERROR" in out, out
        assert dns.count(name) > before
        return
    assert "status: NXDOMAIN" in out and "dlp_match" in out, out
    assert dns.count(name) == before  # never asked upstream
    rec = p.log.wait_one(by(event="dns"))
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == kind and rec["qname"].endswith(".allowed.test"), rec
    first = name.split(".")[0]
    assert first not in rec["qname"] and first not in rec["host"], rec
    _no_secret_in_log(p, AWS, first)


# -- transparent (network namespace) ---------------------------------------------------

from test_transparent import (SOMEWHERE, client_hello, expect_denied_hello,  # noqa: E402
                              netns_ok, rewrite_hello, tp_certs, world)  # noqa: F401

_ = (netns_ok, tp_certs, world)  # fixtures


@pytest.mark.parametrize("on", [True, False])
def test_transparent_http(world, on):
    p = world.start_proxy(extra=["--dlp"] if on else [])
    tok = token()
    res = world.curl(["--resolve", f"allowed.test:80:{SOMEWHERE}", "-w", "%{http_code}",
                      "-o", "/dev/null", "-H", f"Authorization: Bearer {GH}",
                      f"http://allowed.test/hello?{tok}"])
    if not on:
        assert res.stdout == b"200", res
        assert world.http.state.find(tok)
        return
    assert res.stdout == b"403", (res.stdout, res.stderr)
    assert not world.http.state.find(tok)
    rec = p.log.wait_one(by(event="http", host="allowed.test"))
    assert rec["reason"] == "dlp_match" and rec["dlp"] == "github_token", rec
    _no_secret_in_log(p, GH)


@pytest.mark.parametrize("on", [True, False])
def test_transparent_tls_server_name(world, on):
    p = world.start_proxy(extra=["--dlp"] if on else [])
    name = f"{AWS_LABEL}.allowed.test"
    hello = rewrite_hello(client_hello("allowed.test"), names=[name.encode()])
    if not on:
        with world.connect(SOMEWHERE, 443) as c:
            c.send(hello)
            got = c.read_some()
        assert got[:1] == b"\x16", got[:16]  # a ServerHello: admitted
        return
    expect_denied_hello(world, hello)
    rec = p.log.wait_one(by(event="tls"))
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == "aws_access_key_id", rec
    _no_secret_in_log(p, AWS)
    assert name not in world.https.state.sni_seen


def test_flag_in_help(proxy_bin):
    out = subprocess.run([proxy_bin, "--help"], capture_output=True, text=True).stdout
    assert "--dlp" in out


# -- inside TLS that --ssl-bump opens ----------------------------------------------------

def _bumped(start_proxy, certfile, tmp_path):
    ca = str(tmp_path / "ca.pem")
    env = dict(os.environ, SSL_CERT_FILE=certfile)
    p = start_proxy(extra=["--dlp", "--ssl-bump", "--ssl-bump-ca-out", ca,
                           "--allow-urls", "https://allowed.test/*"], env=env)
    return p, ca


def _bumped_conn(p, ca, origins):
    c, r = p.tunnel(f"allowed.test:{origins.https.port}")
    assert r.status == 200, r.head
    tls = TLSOverSocket(c, "allowed.test", cafile=ca)
    tls.handshake()
    return c, Conn(tls)


def test_intercepted_header_denied_inside_tls(start_proxy, origins, certfile, tmp_path):
    p, ca = _bumped(start_proxy, certfile, tmp_path)
    c, tc = _bumped_conn(p, ca, origins)
    with c:
        t = token()
        tc.send(request_bytes("GET", f"/hello?t={t}", "allowed.test",
                              [("Authorization", f"Bearer {GH}")]))
        r = tc.read_response()
        assert r.status == 403 and "dlp_match" in r.text, r.head
        t2 = token()  # the connection stays usable
        tc.send(request_bytes("GET", f"/hello?t={t2}", "allowed.test", [("Connection", "close")]))
        assert tc.read_response().status == 200
    assert origins.https.state.find(t) == [] and len(origins.https.state.find(t2)) == 1
    rec = p.log.wait_one(lambda x: x.get("event") == "https" and t in x.get("url", ""))
    assert rec["reason"] == "dlp_match" and rec["dlp"] == "github_token", rec
    _no_secret_in_log(p, GH)


def test_intercepted_body_cut(start_proxy, origins, certfile, tmp_path):
    p, ca = _bumped(start_proxy, certfile, tmp_path)
    c, tc = _bumped_conn(p, ca, origins)
    t = token()
    filler = b"y" * 100000
    body = filler + b'{"key":"' + ANTHROPIC.encode() + b'"}'
    with c:
        tc.send(request_bytes("POST", f"/upload-stream?id={t}", "allowed.test",
                              [("Content-Type", "application/json")], body))
        with pytest.raises((ConnectionClosed, ConnectionError, ssl.SSLError)):
            tc.read_response("POST")
    rec = p.log.wait_one(lambda x: x.get("event") == "https" and t in x.get("url", ""))
    assert rec["decision"] == "deny" and rec["reason"] == "dlp_match", rec
    assert rec["dlp"] == "anthropic_key"
    assert (origins.https.state.get_progress(t) or 0) <= len(filler) + 8
