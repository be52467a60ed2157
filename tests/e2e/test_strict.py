"""Strict HTTP: request smuggling and malformed requests get 400 and a
closed connection, nothing reaches the origin; oversize heads get 431, slow
heads 408; idle keep-alive connections are closed."""

import time

import pytest

from harness.client import ConnectionClosed, request_bytes
from harness.origin import HELLO_BODY
from harness.util import by, token


def _abs(P, t, headers, body=b"", method="GET", path="/hello", host=True):
    """An absolute-form request to allowed.test with raw header lines."""
    head = f"{method} http://allowed.test:{P}{path}?t={t} HTTP/1.1\r\n".encode()
    if host:
        head += f"Host: allowed.test:{P}\r\n".encode()
    return head + headers + b"\r\n" + body


def _smuggled(P, t):
    return f"GET http://allowed.test:{P}/hello?t={t}-smuggled HTTP/1.1\r\nHost: allowed.test:{P}\r\n\r\n".encode()


# name -> builder(P, PS, t) -> bytes; every request carries t in its target
MALFORMED = {
    "cl_and_te": lambda P, PS, t: _abs(
        P, t, b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        b"0\r\n\r\n" + _smuggled(P, t), method="POST", path="/upload"),
    "te_and_cl": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: chunked\r\nContent-Length: 60\r\n",
        b"0\r\n\r\n" + _smuggled(P, t), method="POST", path="/upload"),
    "duplicate_content_length": lambda P, PS, t: _abs(
        P, t, b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello", method="POST", path="/upload"),
    "conflicting_content_length": lambda P, PS, t: _abs(
        P, t, b"Content-Length: 5\r\nContent-Length: 0\r\n", b"hello", method="POST", path="/upload"),
    "content_length_list": lambda P, PS, t: _abs(
        P, t, b"Content-Length: 1, 1\r\n", b"x", method="POST", path="/upload"),
    "content_length_sign": lambda P, PS, t: _abs(
        P, t, b"Content-Length: +1\r\n", b"x", method="POST", path="/upload"),
    "space_before_colon": lambda P, PS, t: _abs(P, t, b"X-Foo : bar\r\n"),
    "space_before_colon_te": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n", method="POST", path="/upload"),
    "empty_header_name": lambda P, PS, t: _abs(P, t, b": value\r\n"),
    "bad_header_name_char": lambda P, PS, t: _abs(P, t, b"X(Foo): bar\r\n"),
    "bare_cr_in_value": lambda P, PS, t: _abs(P, t, b"X-Foo: a\rb\r\n"),
    "bare_cr_line_end": lambda P, PS, t: _abs(P, t, b"X-Foo: a\rX-Bar: b\r\n"),
    "bare_lf_line_end": lambda P, PS, t: _abs(P, t, b"X-Foo: a\nX-Bar: b\r\n"),
    "bare_lf_request_line": lambda P, PS, t: (
        f"GET http://allowed.test:{P}/hello?t={t} HTTP/1.1\nHost: allowed.test:{P}\r\n\r\n".encode()),
    "nul_in_value": lambda P, PS, t: _abs(P, t, b"X-Foo: a\x00b\r\n"),
    "nul_in_name": lambda P, PS, t: _abs(P, t, b"X-F\x00oo: b\r\n"),
    "obs_fold_space": lambda P, PS, t: _abs(P, t, b"X-Foo: a\r\n b\r\n"),
    "obs_fold_tab": lambda P, PS, t: _abs(P, t, b"X-Foo: a\r\n\tb\r\n"),
    "te_not_chunked_last": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n", method="POST", path="/upload"),
    "te_unknown": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n", method="POST", path="/upload"),
    "two_host_headers": lambda P, PS, t: _abs(P, t, f"Host: allowed.test:{P}\r\n".encode()),
    "two_different_hosts": lambda P, PS, t: _abs(P, t, b"Host: evil.test\r\n"),
    "missing_host_http11": lambda P, PS, t: _abs(P, t, b"", host=False),
    "origin_form": lambda P, PS, t: (
        f"GET /hello?t={t} HTTP/1.1\r\nHost: allowed.test:{P}\r\n\r\n".encode()),
    "https_absolute_uri": lambda P, PS, t: (
        f"GET https://allowed.test:{PS}/hello?t={t} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode()),
    "empty_uri_host": lambda P, PS, t: (
        f"GET http://:{P}/hello?t={t} HTTP/1.1\r\nHost: allowed.test:{P}\r\n\r\n".encode()),
    "bad_uri_port": lambda P, PS, t: (
        f"GET http://allowed.test:99999/hello?t={t} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode()),
    "connect_without_port": lambda P, PS, t: (
        f"CONNECT allowed.test HTTP/1.1\r\nHost: allowed.test\r\nX-T: {t}\r\n\r\n".encode()),
    "connect_with_scheme": lambda P, PS, t: (
        f"CONNECT http://allowed.test:{PS} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode()),
    "connect_with_path": lambda P, PS, t: (
        f"CONNECT allowed.test:{PS}/x HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode()),
    "garbage_request_line": lambda P, PS, t: b"HELLO THERE\r\n\r\n",
    "no_http_version": lambda P, PS, t: f"GET http://allowed.test:{P}/hello?t={t}\r\n\r\n".encode(),
}

# Body errors: the head was valid and may already have gone upstream.
MALFORMED_BODY = {
    "oversize_chunk_size": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffff\r\nabc\r\n", method="POST",
        path="/upload"),
    "chunk_size_overflow_17_digits": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: chunked\r\n", b"10000000000000000\r\nabc\r\n", method="POST",
        path="/upload"),
    "bad_chunk_size_char": lambda P, PS, t: _abs(
        P, t, b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n", method="POST", path="/upload"),
}


def _expect_400_and_close(proxy, data):
    with proxy.connect() as c:
        c.send(data)
        try:
            r = c.read_response()
        except ConnectionClosed:
            pytest.fail("proxy closed the connection without answering 400")
        assert r.status == 400, r
        extra = c.expect_closed()
        assert extra == b"", f"data after the 400: {extra[:200]!r}"
        return "127.0.0.1:%d" % c.sock.getsockname()[1]


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_400_and_closed(proxy, origins, case):
    t = token()
    client = _expect_400_and_close(proxy, MALFORMED[case](origins.http.port, origins.https.port, t))
    rec = proxy.log.wait_one(by(client=client))
    reason = "not_a_proxy_request" if case == "origin_form" else "bad_request"
    assert rec["status"] == 400 and rec["decision"] == "deny" and rec["reason"] == reason
    assert origins.http.state.find(t) == [], "a malformed request reached the origin"
    assert origins.https.state.find(t) == []


@pytest.mark.parametrize("case", sorted(MALFORMED_BODY))
def test_malformed_body_is_400_and_closed(proxy, origins, case):
    t = token()
    client = _expect_400_and_close(proxy, MALFORMED_BODY[case](origins.http.port, origins.https.port, t))
    rec = proxy.log.wait_one(by(client=client))
    assert rec["status"] == 400


def test_smuggling_after_a_good_request(proxy, origins):
    """A valid request, then a CL.CL one on the same connection: the first is
    served, the second refused, nothing smuggled through."""
    P, t1, t2 = origins.http.port, token(), token()
    good = request_bytes("GET", f"http://allowed.test:{P}/hello?t={t1}", f"allowed.test:{P}")
    bad = MALFORMED["duplicate_content_length"](P, origins.https.port, t2)
    with proxy.connect() as c:
        c.send(good + bad)
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == HELLO_BODY
        r2 = c.read_response()
        assert r2.status == 400
        assert c.expect_closed() == b""
    assert len(origins.http.state.find(t1)) == 1
    assert origins.http.state.find(t2) == []


def test_te_cl_body_not_reinterpreted(proxy, origins):
    """The classic CL.TE desync: even split across writes, the smuggled
    request never reaches the origin."""
    P, t = origins.http.port, token()
    data = MALFORMED["cl_and_te"](P, origins.https.port, t)
    with proxy.connect() as c:
        cut = data.index(b"\r\n\r\n") + 4
        c.send(data[:cut])
        time.sleep(0.05)
        try:
            c.send(data[cut:])
        except OSError:
            pass  # already closed: fine
        r = c.read_response()
        assert r.status == 400
    assert origins.http.state.find(t) == []


# -- size and time limits ---------------------------------------------------------

def _send_tolerant(conn, data):
    """Send, accepting that the proxy may answer and close before the client
    has sent everything (the answer is still there to read)."""
    try:
        conn.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def test_header_block_over_64k_is_431(proxy, origins):
    P, t = origins.http.port, token()
    data = _abs(P, t, b"X-Big: " + b"a" * (70 * 1024) + b"\r\n")
    with proxy.connect() as c:
        _send_tolerant(c, data)
        try:
            r = c.read_response()
        except ConnectionClosed:
            pytest.fail("connection closed (or reset) before a 431 arrived")
        assert r.status == 431
        c.expect_closed()
        client = "127.0.0.1:%d" % c.sock.getsockname()[1]
    assert proxy.log.wait_one(by(client=client))["status"] == 431
    assert origins.http.state.find(t) == []


def test_many_headers_over_64k_is_431(proxy, origins):
    P, t = origins.http.port, token()
    lines = b"".join(b"X-H%04d: %s\r\n" % (i, b"v" * 60) for i in range(1200))
    with proxy.connect() as c:
        _send_tolerant(c, _abs(P, t, lines))
        r = c.read_response()
        assert r.status == 431
    assert origins.http.state.find(t) == []


def test_header_block_under_64k_is_forwarded(proxy, origins):
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}/hello", headers=[("X-Big", "b" * 60000)])
    assert r.status == 200 and r.body == HELLO_BODY


def test_slow_header_block_is_408(start_proxy, origins):
    """Slowloris: bytes keep trickling in, but the head is never complete
    within --header-timeout."""
    proxy = start_proxy(extra=["--header-timeout", "1"])
    P = origins.http.port
    with proxy.connect() as c:
        c.send(f"GET http://allowed.test:{P}/hello HTTP/1.1\r\nHost: allowed.test:{P}\r\n".encode())
        c.settimeout(0.2)
        deadline = time.monotonic() + 10
        got = b""
        send_failed = False
        while time.monotonic() < deadline and b"\r\n\r\n" not in got:
            if not send_failed:
                try:
                    c.send(b"X")  # one header byte at a time, never a CRLF
                except OSError:
                    send_failed = True
            try:
                data = c.sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                break
            if not data:
                break
            got += data
        assert got.startswith(b"HTTP/1.1 408"), f"expected a 408, got {got[:200]!r}"
        c.buf += got[got.index(b"\r\n\r\n") + 4:]
        c.settimeout(5)
        c.expect_closed()
    assert proxy.log.wait_one(by(status=408))["decision"] == "deny"


def test_idle_keep_alive_connection_is_closed(start_proxy, origins):
    proxy = start_proxy(extra=["--idle-timeout", "0.5"])
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
        assert c.read_response().body == HELLO_BODY
        assert c.expect_closed(timeout=10) == b""


def test_idle_timeout_spares_a_request_in_flight(start_proxy, origins):
    """While the upstream takes its time, the client connection is not idle."""
    proxy = start_proxy(extra=["--idle-timeout", "0.3"])
    P, t = origins.http.port, token()
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hold?id={t}", f"allowed.test:{P}"))
        assert origins.http.state.wait_arrived(t, 5)
        time.sleep(1.0)  # well past the idle timeout
        origins.http.state.release(t)
        r = c.read_response()
    assert r.status == 200 and r.body == f"held {t}\n".encode()


def test_read_timeout_before_response_is_504(start_proxy, origins):
    proxy = start_proxy(extra=["--read-timeout", "0.5"])
    P, t = origins.http.port, token()
    r = proxy.fetch(f"http://allowed.test:{P}/hold?id={t}")
    assert r.status == 504
    rec = proxy.log.wait_one(by(status=504))
    assert rec["reason"] == "timeout" and rec["url"].endswith(f"/hold?id={t}")


def test_read_timeout_mid_response_cuts_the_connection(start_proxy, origins):
    """The response has started, then the upstream goes silent: the client
    connection is cut (a status can no longer be sent)."""
    proxy = start_proxy(extra=["--read-timeout", "0.5"])
    P, t = origins.http.port, token()
    n = 200000
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/stream?id={t}&n={n}",
                             f"allowed.test:{P}"))
        with pytest.raises(ConnectionClosed):
            c.read_response()  # half the body, then EOF well before the rest
    assert proxy.log.wait_one(lambda r: r.get("url", "").endswith(f"id={t}&n={n}"))
