"""CONNECT tunnels: TLS end to end, SNI checks, bytes sent with the CONNECT
head, half-close, large transfers both ways, idle timeout."""

import hashlib
import ssl
import threading

import pytest

from harness.client import (Conn, ConnectionClosed, TLSOverSocket, curl, request_bytes,
                            send_in_pieces, split_hello_records)
from harness.origin import BANNER, HELLO_BODY, pattern, pattern_sha256
from harness.util import by

MiB = 1 << 20
BIG = 20 * MiB
TLS_FAILURES = (ConnectionClosed, ssl.SSLError, ConnectionError, OSError)


def _connect_ok(r):
    assert r.status == 200, r
    assert r.version == "HTTP/1.1"
    assert "established" in r.reason.lower(), r.reason


def _tls(conn, host, certfile):
    tls = TLSOverSocket(conn, host, cafile=certfile)
    tls.handshake()
    return Conn(tls)


def test_connect_tls_end_to_end(proxy, origins, certfile):
    PS = origins.https.port
    c, r = proxy.tunnel(f"allowed.test:{PS}")
    with c:
        _connect_ok(r)
        tc = _tls(c, "allowed.test", certfile)
        tc.send(request_bytes("GET", "/hello", f"allowed.test:{PS}"))
        resp = tc.read_response()
        assert resp.status == 200 and resp.body == HELLO_BODY
        tc.send(request_bytes("GET", "/bytes?n=100000", f"allowed.test:{PS}"))
        assert tc.read_response().body == pattern(100000)
    assert "allowed.test" in origins.https.state.sni_seen
    rec = proxy.log.wait_one(by(event="connect", host="allowed.test", port=PS))
    assert rec["sni"] == "allowed.test"
    assert rec["decision"] == "allow" and rec["reason"] == "allowed"


def test_connect_tls_with_python_ssl_socket(proxy, origins, certfile):
    """The standard library's own ssl.wrap_socket over the tunnel socket."""
    PS = origins.https.port
    c, r = proxy.tunnel(f"sub.allowed.test:{PS}")
    with c:
        _connect_ok(r)
        assert not c.buf
        ctx = ssl.create_default_context(cafile=certfile)
        with ctx.wrap_socket(c.sock, server_hostname="sub.allowed.test") as s:
            tc = Conn(s)
            tc.send(request_bytes("GET", "/hello", f"sub.allowed.test:{PS}",
                                  [("Connection", "close")]))
            assert tc.read_response().body == HELLO_BODY


def test_connect_with_curl(proxy, origins, certfile):
    PS = origins.https.port
    res = curl(["-x", f"http://127.0.0.1:{proxy.port}", "--cacert", certfile,
                f"https://allowed.test:{PS}/hello"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY


def test_proxytunnel_plain_http_with_curl(proxy, origins):
    P = origins.http.port
    res = curl(["-x", f"http://127.0.0.1:{proxy.port}", "--proxytunnel",
                f"http://allowed.test:{P}/hello"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY


def test_connect_denied(proxy, origins):
    PS = origins.https.port
    c, r = proxy.tunnel(f"notallowed.test:{PS}")
    with c:
        assert r.status == 403
        assert "notallowed.test" in r.text and str(PS) in r.text
        assert "not_allowed" in r.text or "not allowed" in r.text
    rec = proxy.log.wait_one(by(event="connect", host="notallowed.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed" and rec["status"] == 403
    assert rec["method"] == "CONNECT"


def test_connect_denied_with_curl(proxy, origins, certfile):
    PS = origins.https.port
    res = curl(["-x", f"http://127.0.0.1:{proxy.port}", "--cacert", certfile,
                f"https://notallowed.test:{PS}/hello"])
    assert res.returncode == 56, (res.returncode, res.stderr)  # CONNECT tunnel failed
    assert b"403" in res.stderr


def _sni_mismatch(proxy, origins, send):
    PS = origins.https.port
    c, r = proxy.tunnel(f"allowed.test:{PS}")
    with c:
        _connect_ok(r)
        tls = TLSOverSocket(c, "evil.test", verify=False)
        send(c.sock, tls.start())
        with pytest.raises(TLS_FAILURES):
            tls.finish_handshake()
    assert "evil.test" not in origins.https.state.sni_seen
    rec = proxy.log.wait_one(by(event="connect", sni="evil.test"))
    assert rec["host"] == "allowed.test" and rec["port"] == PS
    assert rec["decision"] == "deny" and rec["reason"] == "sni_mismatch"


def test_sni_mismatch_closes_tunnel(proxy, origins):
    _sni_mismatch(proxy, origins, lambda sock, hello: sock.sendall(hello))


def test_sni_mismatch_in_split_hello(proxy, origins):
    """The SNI check holds when the ClientHello arrives a few bytes at a time."""
    _sni_mismatch(proxy, origins, lambda sock, hello: send_in_pieces(sock, hello, [1, 4, 6, 40, 100]))


def test_sni_mismatch_hello_across_records(proxy, origins):
    """...and when the handshake message is split across two TLS records."""
    _sni_mismatch(proxy, origins, lambda sock, hello: sock.sendall(split_hello_records(hello, 60)))


def _tls_roundtrip(proxy, origins, certfile, authority, sni, send):
    c, r = proxy.tunnel(authority)
    with c:
        _connect_ok(r)
        tls = TLSOverSocket(c, sni, cafile=certfile)
        send(c.sock, tls.start())
        tls.finish_handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/hello", authority))
        assert tc.read_response().body == HELLO_BODY


def test_sni_equal_hello_split_across_segments(proxy, origins, certfile):
    PS = origins.https.port
    _tls_roundtrip(proxy, origins, certfile, f"allowed.test:{PS}", "allowed.test",
                   lambda sock, hello: send_in_pieces(sock, hello, [1, 2, 3, 5, 50]))


def test_sni_equal_hello_across_records(proxy, origins, certfile):
    PS = origins.https.port
    _tls_roundtrip(proxy, origins, certfile, f"allowed.test:{PS}", "allowed.test",
                   lambda sock, hello: sock.sendall(split_hello_records(hello, 20)))


def test_sni_match_ignores_case(proxy, origins, certfile):
    PS = origins.https.port
    _tls_roundtrip(proxy, origins, certfile, f"ALLOWED.Test:{PS}", "allowed.test",
                   lambda sock, hello: sock.sendall(hello))


def test_client_hello_in_same_segment_as_connect(proxy, origins, certfile):
    """Bytes after the CONNECT head, in the same write, are forwarded."""
    PS = origins.https.port
    with proxy.connect() as c:
        tls = TLSOverSocket(c, "allowed.test", cafile=certfile)
        hello = tls.start()
        c.send(f"CONNECT allowed.test:{PS} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode()
               + hello)
        _connect_ok(c.read_response("CONNECT"))
        tls.finish_handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/hello", f"allowed.test:{PS}"))
        assert tc.read_response().body == HELLO_BODY
    rec = proxy.log.wait_one(by(event="connect", host="allowed.test", port=PS))
    assert rec["sni"] == "allowed.test" and rec["decision"] == "allow"


def test_plain_bytes_in_same_segment_as_connect(proxy, origins):
    P = origins.http.port
    inner = request_bytes("GET", "/hello", f"allowed.test:{P}")
    c, r = proxy.tunnel(f"allowed.test:{P}", extra=inner)
    with c:
        _connect_ok(r)
        assert c.read_response().body == HELLO_BODY


def test_server_speaks_first(proxy, origins):
    """A protocol where the server talks first (SMTP, SSH) is not held back
    waiting for a ClientHello."""
    c, r = proxy.tunnel(f"allowed.test:{origins.banner.port}")
    with c:
        _connect_ok(r)
        assert c.read_until(b"\r\n") == BANNER
        c.send(b"ping\n")
        assert c.read_until(b"\n") == b"ping\n"


def test_half_close_through_tunnel(proxy, origins):
    """The client's FIN reaches the origin, whose reply after EOF still
    reaches the client."""
    c, r = proxy.tunnel(f"allowed.test:{origins.digest.port}")
    data = pattern(100000, 1)
    with c:
        _connect_ok(r)
        c.send(data)
        c.shutdown_write()
        reply = c.read_to_eof()
    assert reply == b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
    rec = proxy.log.wait_one(by(event="connect", port=origins.digest.port))
    assert len(data) <= rec["bytes_up"] < len(data) + 4096
    assert len(reply) <= rec["bytes_down"] < len(reply) + 4096


def test_tunnel_upload_20mib_with_half_close(proxy, origins):
    c, r = proxy.tunnel(f"allowed.test:{origins.digest.port}")
    data = pattern(BIG, 3)
    with c:
        c.settimeout(30)
        _connect_ok(r)
        c.send(data)
        c.shutdown_write()
        reply = c.read_to_eof()
    assert reply == b"%d %s\n" % (BIG, hashlib.sha256(data).hexdigest().encode())


def test_tunnel_20mib_both_ways_at_once(proxy, origins):
    """Echo 20 MiB while sending: needs backpressure without deadlock."""
    c, r = proxy.tunnel(f"allowed.test:{origins.echo.port}")
    errors = []

    def writer():
        try:
            done = 0
            while done < BIG:
                n = min(BIG - done, 1 << 20)
                c.send(pattern(n, done))
                done += n
            c.shutdown_write()
        except OSError as e:
            errors.append(e)

    with c:
        c.settimeout(30)
        _connect_ok(r)
        t = threading.Thread(target=writer, daemon=True)
        t.start()
        got = c.read_to_eof()
        t.join(30)
    assert not errors, errors
    assert len(got) == BIG
    assert hashlib.sha256(got).hexdigest() == pattern_sha256(BIG)


def test_tunnel_tls_download_20mib(proxy, origins, certfile):
    PS = origins.https.port
    c, r = proxy.tunnel(f"allowed.test:{PS}")
    with c:
        c.settimeout(30)
        _connect_ok(r)
        tc = _tls(c, "allowed.test", certfile)
        tc.send(request_bytes("GET", f"/bytes?n={BIG}", f"allowed.test:{PS}"))
        resp = tc.read_response()
    assert len(resp.body) == BIG
    assert hashlib.sha256(resp.body).hexdigest() == pattern_sha256(BIG)
    rec = proxy.log.wait_one(by(event="connect", port=PS))
    assert rec["bytes_down"] > BIG


def test_tunnel_idle_timeout(start_proxy, origins):
    proxy = start_proxy(extra=["--tunnel-idle-timeout", "0.5"])
    c, r = proxy.tunnel(f"allowed.test:{origins.echo.port}")
    with c:
        _connect_ok(r)
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
        assert c.expect_closed(timeout=10) == b""
    rec = proxy.log.wait_one(by(event="connect", port=origins.echo.port))
    assert rec["bytes_up"] >= 4 and rec["bytes_down"] >= 4


def test_connect_port_not_allowed(start_proxy, origins):
    proxy = start_proxy(ports=str(origins.http.port))
    before = origins.echo.connections
    c, r = proxy.tunnel(f"allowed.test:{origins.echo.port}")
    with c:
        assert r.status == 403
        assert "port_not_allowed" in r.text or "port not allowed" in r.text
    assert origins.echo.connections == before
    rec = proxy.log.wait_one(by(event="connect", port=origins.echo.port))
    assert rec["decision"] == "deny" and rec["reason"] == "port_not_allowed"


def test_connect_refused_upstream(proxy, origins):
    c, r = proxy.tunnel(f"allowed.test:{origins.refused.port}")
    with c:
        assert r.status == 502
    rec = proxy.log.wait_one(by(event="connect", port=origins.refused.port))
    assert rec["reason"] == "upstream_unreachable" and rec["status"] == 502


def test_connect_nxdomain(start_proxy, origins):
    proxy = start_proxy(allow="nxdomain.test")
    c, r = proxy.tunnel(f"nxdomain.test:{origins.echo.port}")
    with c:
        assert r.status == 502
    rec = proxy.log.wait_one(by(event="connect", host="nxdomain.test"))
    assert rec["reason"] == "dns_failure" and rec["status"] == 502


def test_sni_must_name_an_ip_literal_connect_target(start_proxy, origins):
    """CONNECT to an admitted IP literal cannot carry a ClientHello for some
    other name (domain fronting through an allowed address)."""
    proxy = start_proxy(allow="127.0.0.1")
    PS = origins.https.port
    c, r = proxy.tunnel(f"127.0.0.1:{PS}")
    with c:
        _connect_ok(r)
        tls = TLSOverSocket(c, "evil.test", verify=False)
        c.send(tls.start())
        with pytest.raises(TLS_FAILURES):
            tls.finish_handshake()
    assert "evil.test" not in origins.https.state.sni_seen
    rec = proxy.log.wait_one(by(event="connect", sni="evil.test"))
    assert rec["decision"] == "deny" and rec["reason"] in ("sni_mismatch", "not_allowed")
