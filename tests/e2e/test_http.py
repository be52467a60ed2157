"""Plain HTTP through the proxy: forwarding, header rewriting, keep-alive,
pipelining, bodies both ways (streamed, checked by sha256)."""

import hashlib
import json
import socket
import threading
import time

import pytest

from harness.client import ConnectionClosed, chunked, curl, request_bytes
from harness.origin import HELLO_BODY, pattern, pattern_sha256
from harness.util import by, token, url_has

MiB = 1 << 20
BIG = 20 * MiB


def _echo(resp):
    assert resp.status == 200, resp
    return json.loads(resp.body)


def _headers(echo):
    """Forwarded headers as {lower-case name: [values]}."""
    out = {}
    for k, v in echo["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_allowed_get_is_forwarded(proxy, origins):
    P, t = origins.http.port, token()
    r = proxy.fetch(f"http://allowed.test:{P}/hello?t={t}")
    assert r.status == 200
    assert r.body == HELLO_BODY
    seen = origins.http.state.find(t)
    assert len(seen) == 1
    assert seen[0]["path"] == f"/hello?t={t}"  # origin-form upstream
    rec = proxy.log.wait_one(url_has(t))
    assert rec["decision"] == "allow" and rec["reason"] == "allowed" and rec["status"] == 200


def test_allowed_get_with_curl(proxy, origins):
    P = origins.http.port
    res = curl(["-x", f"http://127.0.0.1:{proxy.port}", f"http://allowed.test:{P}/hello"])
    assert res.returncode == 0, res.stderr
    assert res.stdout == HELLO_BODY


def test_subdomain_allowed(proxy, origins):
    P = origins.http.port
    for host in ("sub.allowed.test", "deep.a.b.allowed.test"):
        r = proxy.fetch(f"http://{host}:{P}/hello")
        assert r.status == 200, host
        assert r.body == HELLO_BODY


def test_denied_get_answers_403_naming_host_and_reason(proxy, origins):
    P, t = origins.http.port, token()
    r = proxy.fetch(f"http://notallowed.test:{P}/hello?t={t}")
    assert r.status == 403
    body = r.text
    assert "notallowed.test" in body
    assert str(P) in body
    assert "not_allowed" in body or "not allowed" in body
    assert "\n" not in body.rstrip("\n"), f"body is not one line: {body!r}"
    assert origins.http.state.find(t) == []
    rec = proxy.log.wait_one(url_has(t))
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed" and rec["status"] == 403


def test_denied_get_with_curl(proxy, origins):
    P = origins.http.port
    res = curl(["-o", "/dev/null", "-w", "%{http_code}", "-x", f"http://127.0.0.1:{proxy.port}",
                f"http://notallowed.test:{P}/hello"])
    assert res.stdout == b"403", (res.stdout, res.stderr)


def test_host_header_is_rewritten_to_uri_host(proxy, origins):
    """The decision is on the URI's host; a lying Host header neither grants
    access nor reaches the origin."""
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}/echo", host="evil.test")
    hdrs = _headers(_echo(r))
    assert hdrs["host"] == [f"allowed.test:{P}"]


def test_host_header_does_not_grant_access(proxy, origins):
    P, t = origins.http.port, token()
    r = proxy.fetch(f"http://notallowed.test:{P}/hello?t={t}", host=f"allowed.test:{P}")
    assert r.status == 403
    assert origins.http.state.find(t) == []
    rec = proxy.log.wait_one(url_has(t))
    assert rec["host"] == "notallowed.test"


def test_proxy_headers_are_removed(proxy, origins):
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}/echo", headers=[
        ("Proxy-Authorization", "Basic dXNlcjpwYXNz"),
        ("Proxy-Connection", "keep-alive"),
        ("X-End-To-End", "kept"),
    ])
    hdrs = _headers(_echo(r))
    assert "proxy-authorization" not in hdrs
    assert "proxy-connection" not in hdrs
    assert hdrs["x-end-to-end"] == ["kept"]


def test_hop_by_hop_headers_are_removed(proxy, origins):
    """Keep-Alive, TE and every header named in Connection are hop-by-hop
    (RFC 9110 7.6.1) and must not be forwarded."""
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}/echo", headers=[
        ("Connection", "keep-alive, X-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("X-Hop", "secret"),
        ("X-End-To-End", "kept"),
    ])
    hdrs = _headers(_echo(r))
    for name in ("keep-alive", "te", "x-hop"):
        assert name not in hdrs, f"{name} was forwarded: {hdrs}"
    assert hdrs["x-end-to-end"] == ["kept"]


def test_userinfo_does_not_fool_the_host_check(proxy, origins):
    """http://allowed.test@evil.test/ is a request for evil.test."""
    P, t = origins.http.port, token()
    r = proxy.fetch(f"http://allowed.test@evil.test:{P}/hello?t={t}", host=f"evil.test:{P}")
    assert r.status == 403
    assert origins.http.state.find(t) == []
    rec = proxy.log.wait_one(url_has(t))
    assert rec["host"] == "evil.test" and rec["decision"] == "deny"


def test_userinfo_is_not_forwarded(proxy, origins):
    P = origins.http.port
    r = proxy.fetch(f"http://user:secret@allowed.test:{P}/echo?u=1", host=f"allowed.test:{P}")
    echo = _echo(r)
    assert echo["path"] == "/echo?u=1"
    hdrs = _headers(echo)
    assert hdrs["host"] == [f"allowed.test:{P}"]
    assert "secret" not in json.dumps(echo)


def test_request_target_forwarded_verbatim(proxy, origins):
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}/echo?q=a%2Fb&x=%7E&e=")
    assert _echo(r)["path"] == "/echo?q=a%2Fb&x=%7E&e="


def test_absolute_uri_without_path(proxy, origins):
    P = origins.http.port
    r = proxy.fetch(f"http://allowed.test:{P}")
    assert r.status == 404 and r.body == b"no such endpoint\n"  # the origin's answer for "/"


def test_ipv6_only_name_allowed(start_proxy, origins):
    proxy = start_proxy(allow="ipv6only.test")
    P6 = origins.http6.port
    r = proxy.fetch(f"http://ipv6only.test:{P6}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    rec = proxy.log.wait_one(by(host="ipv6only.test"))
    assert rec["upstream"] == f"[::1]:{P6}"


def test_next_address_tried_when_one_refuses(start_proxy, origins):
    """dual.test has ::1 (nothing listens there on this port) and 127.0.0.1."""
    proxy = start_proxy(allow="dual.test")
    P = origins.http.port
    r = proxy.fetch(f"http://dual.test:{P}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    rec = proxy.log.wait_one(by(host="dual.test"))
    assert rec["upstream"] == f"127.0.0.1:{P}"


def test_keep_alive_two_requests_one_connection(proxy, origins):
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
        r1 = c.read_response()
        c.send(request_bytes("GET", f"http://allowed.test:{P}/bytes?n=1000", f"allowed.test:{P}"))
        r2 = c.read_response()
        client = "127.0.0.1:%d" % c.sock.getsockname()[1]
    assert r1.status == 200 and r1.body == HELLO_BODY
    assert r2.status == 200 and r2.body == pattern(1000)
    recs = proxy.log.wait(by(client=client), count=2)
    assert [r["status"] for r in recs] == [200, 200]


def test_keep_alive_across_hosts(proxy, origins):
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/echo", f"allowed.test:{P}"))
        e1 = _echo(c.read_response())
        c.send(request_bytes("GET", f"http://other.test:{P}/echo", f"other.test:{P}"))
        e2 = _echo(c.read_response())
    assert _headers(e1)["host"] == [f"allowed.test:{P}"]
    assert _headers(e2)["host"] == [f"other.test:{P}"]


def test_keep_alive_after_denial(proxy, origins):
    """A 403 either keeps the connection usable or announces/does a close."""
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://notallowed.test:{P}/hello", f"notallowed.test:{P}"))
        r1 = c.read_response()
        assert r1.status == 403
        closing = (r1.header("Connection") or "").lower() == "close"
        try:
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
            r2 = c.read_response()
        except (ConnectionClosed, OSError):
            assert closing, "proxy closed the connection after a 403 without Connection: close"
            return
        assert r2.status == 200 and r2.body == HELLO_BODY


def test_pipelined_requests_answered_in_order(proxy, origins):
    P = origins.http.port
    host = f"allowed.test:{P}"
    body = pattern(5000)
    reqs = (request_bytes("GET", f"http://{host}/bytes?n=10", host)
            + request_bytes("POST", f"http://{host}/upload", host, body=body)
            + request_bytes("GET", f"http://{host}/hello", host)
            + request_bytes("GET", f"http://{host}/chunked?n=70000", host))
    with proxy.connect() as c:
        c.send(reqs)
        r1, r2, r3, r4 = (c.read_response() for _ in range(4))
    assert r1.body == pattern(10)
    assert json.loads(r2.body) == {"len": 5000, "sha256": hashlib.sha256(body).hexdigest()}
    assert r3.body == HELLO_BODY
    assert r4.body == pattern(70000)


def test_head_response_has_no_body(proxy, origins):
    P = origins.http.port
    host = f"allowed.test:{P}"
    with proxy.connect() as c:
        c.send(request_bytes("HEAD", f"http://{host}/bytes?n=5000", host))
        r1 = c.read_response("HEAD")
        c.send(request_bytes("GET", f"http://{host}/hello", host))
        r2 = c.read_response()
    assert r1.status == 200 and r1.header("Content-Length") == "5000"
    assert r2.status == 200 and r2.body == HELLO_BODY


def test_no_content_response_then_next_request(proxy, origins):
    P = origins.http.port
    host = f"allowed.test:{P}"
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://{host}/status?code=204", host))
        r1 = c.read_response()
        c.send(request_bytes("GET", f"http://{host}/hello", host))
        r2 = c.read_response()
    assert r1.status == 204
    assert r2.status == 200 and r2.body == HELLO_BODY


def test_close_delimited_response(proxy, origins):
    """An upstream body that ends at EOF reaches the client whole."""
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/eof?n=300000", f"allowed.test:{P}"))
        r = c.read_response()
        assert r.status == 200
        assert r.body == pattern(300000)
        if not r.header("Content-Length") and "chunked" not in (r.header("Transfer-Encoding") or ""):
            assert c.eof  # close-delimited for the client too


def test_upstream_connection_close(proxy, origins):
    """The origin closes after its response; the client connection either
    goes on (a new upstream connection) or was told it closes."""
    P = origins.http.port
    host = f"allowed.test:{P}"
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://{host}/close", host))
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == HELLO_BODY
        closing = (r1.header("Connection") or "").lower() == "close"
        try:
            c.send(request_bytes("GET", f"http://{host}/hello", host))
            r2 = c.read_response()
        except (ConnectionClosed, OSError):
            assert closing, "client connection closed without Connection: close"
            return
        assert r2.body == HELLO_BODY


def test_http10_request_without_host(proxy, origins):
    P = origins.http.port
    with proxy.connect() as c:
        c.send(f"GET http://allowed.test:{P}/hello HTTP/1.0\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 200 and r.body == HELLO_BODY
        assert c.expect_closed() == b""


def test_connection_close_request(proxy, origins):
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}",
                             [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200 and r.body == HELLO_BODY
        assert c.expect_closed() == b""


def test_download_20mib_content_length(proxy, origins):
    P = origins.http.port
    with proxy.connect(timeout=30) as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/bytes?n={BIG}", f"allowed.test:{P}"))
        r = c.read_response()
    assert r.status == 200 and len(r.body) == BIG
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(BIG)
    rec = proxy.log.wait_one(url_has(f"/bytes?n={BIG}"))
    assert BIG <= rec["bytes_down"] < BIG + 64 * 1024


def test_download_20mib_chunked(proxy, origins):
    P = origins.http.port
    with proxy.connect(timeout=30) as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/chunked?n={BIG}", f"allowed.test:{P}"))
        r = c.read_response()
    assert r.status == 200 and len(r.body) == BIG
    assert hashlib.sha256(r.body).hexdigest() == pattern_sha256(BIG)


def test_upload_20mib_content_length(proxy, origins):
    P = origins.http.port
    body = pattern(BIG, 7)
    with proxy.connect(timeout=30) as c:
        c.send(request_bytes("POST", f"http://allowed.test:{P}/upload?cl=1", f"allowed.test:{P}",
                             body=body))
        r = c.read_response()
    assert r.status == 200
    assert json.loads(r.body) == {"len": BIG, "sha256": hashlib.sha256(body).hexdigest()}
    rec = proxy.log.wait_one(url_has("/upload?cl=1"))
    assert BIG <= rec["bytes_up"] < BIG + 64 * 1024


def test_upload_20mib_chunked(proxy, origins):
    P = origins.http.port
    body = pattern(BIG, 11)
    with proxy.connect(timeout=30) as c:
        c.send(request_bytes("POST", f"http://allowed.test:{P}/upload", f"allowed.test:{P}",
                             [("Transfer-Encoding", "chunked")]))
        c.send(chunked(body, size=100003))
        r = c.read_response()
    assert r.status == 200
    assert json.loads(r.body) == {"len": BIG, "sha256": hashlib.sha256(body).hexdigest()}


def test_upload_with_curl(proxy, origins, tmp_path):
    P = origins.http.port
    f = tmp_path / "up.bin"
    data = pattern(3 * MiB, 3)
    f.write_bytes(data)
    res = curl(["-x", f"http://127.0.0.1:{proxy.port}", "-H", "Expect:", "--data-binary", f"@{f}",
                f"http://allowed.test:{P}/upload"])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_response_body_is_streamed(proxy, origins):
    """The client gets the first half of a body while the origin still holds
    the second: the proxy does not wait for whole bodies."""
    _check_streamed_response(proxy, origins, chunked_resp=False)


def test_chunked_response_body_is_streamed(proxy, origins):
    _check_streamed_response(proxy, origins, chunked_resp=True)


def _check_streamed_response(proxy, origins, chunked_resp):
    P, t = origins.http.port, token()
    n = 4 * MiB
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/stream?id={t}&n={n}"
                             f"&chunked={int(chunked_resp)}", f"allowed.test:{P}"))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        got = bytearray()
        wanted = n // 2
        while len(got) < wanted:  # body bytes, de-chunked if need be
            if chunked_resp:
                size = int(c.read_until(b"\r\n").split(b";")[0], 16)
                got += c.read_exact(size)
                c.read_exact(2)
            else:
                got += c.read_exact(min(wanted - len(got), 65536))
        assert bytes(got[:wanted]) == pattern(wanted)
        origins.http.state.release(t)
        rest = bytearray(got[wanted:])
        if chunked_resp:
            while True:
                size = int(c.read_until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    c.read_until(b"\r\n")
                    break
                rest += c.read_exact(size)
                c.read_exact(2)
        else:
            rest += c.read_exact(n - wanted - len(rest))
        assert bytes(rest) == pattern(n - wanted, wanted)


def test_request_body_is_streamed(proxy, origins):
    """The origin receives the first half of a request body before the client
    has sent the second half."""
    P, t = origins.http.port, token()
    n = 4 * MiB
    body = pattern(n, 5)
    state = origins.http.state
    with proxy.connect() as c:
        c.send(request_bytes("POST", f"http://allowed.test:{P}/upload-stream?id={t}",
                             f"allowed.test:{P}", [("Content-Length", str(n))]))
        c.send(body[:n // 2])
        assert _wait(lambda: state.get_progress(t) >= n // 2), \
            f"origin got {state.get_progress(t)} of the first {n // 2} bytes"
        c.send(body[n // 2:])
        r = c.read_response()
    assert json.loads(r.body) == {"len": n, "sha256": hashlib.sha256(body).hexdigest()}


def test_expect_100_continue_is_relayed(proxy, origins):
    """A client that waits for 100 Continue before sending its body gets it
    (the origin sends it; the proxy passes the interim response on)."""
    P = origins.http.port
    body = pattern(200000, 9)
    with proxy.connect() as c:
        c.send(request_bytes("POST", f"http://allowed.test:{P}/upload", f"allowed.test:{P}",
                             [("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        interim = c.read_until(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100"), interim
        c.send(body)
        r = c.read_response()
    assert json.loads(r.body) == {"len": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_chunked_response_to_http10_client(proxy, origins):
    """An HTTP/1.0 client cannot read chunked encoding: the body comes
    de-chunked, delimited by the connection close."""
    P = origins.http.port
    with proxy.connect() as c:
        c.send(f"GET http://allowed.test:{P}/chunked?n=100000 HTTP/1.0\r\n\r\n".encode())
        r = c.read_response()
    assert r.status == 200
    assert "chunked" not in (r.header("Transfer-Encoding") or "").lower()
    assert r.body == pattern(100000)


def test_methods_are_forwarded(proxy, origins):
    P = origins.http.port
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        r = proxy.fetch(f"http://allowed.test:{P}/echo", method=method, body=b"x" * 10)
        echo = _echo(r)
        assert echo["method"] == method and echo["body_len"] == 10


def test_upgrade_request_keeps_the_connection_usable(proxy, origins):
    """Upgrade is hop-by-hop and never forwarded, so after a request asking
    for a websocket the connection carries plain HTTP requests on."""
    P, t1, t2 = origins.http.port, token(), token()
    host = f"allowed.test:{P}"
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://{host}/echo?t={t1}", host,
                             [("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        r1 = c.read_response()
        c.send(request_bytes("GET", f"http://{host}/hello?t={t2}", host))
        r2 = c.read_response()
        # pipelined: the next request waits behind the upgrade request
        c.send(request_bytes("GET", f"http://{host}/hello", host,
                             [("Connection", "Upgrade"), ("Upgrade", "websocket")])
               + request_bytes("GET", f"http://{host}/hello?t={t2}", host))
        r3, r4 = c.read_response(), c.read_response()
        client = "127.0.0.1:%d" % c.sock.getsockname()[1]
    assert "upgrade" not in _headers(_echo(r1))
    assert r2.status == 200 and r2.body == HELLO_BODY
    assert r3.status == 200 and r4.status == 200 and r4.body == HELLO_BODY
    recs = proxy.log.wait(by(client=client), count=4)
    assert [(r["decision"], r["status"]) for r in recs] == [("allow", 200)] * 4
    assert len(origins.http.state.find(t2)) == 2


# Blank lines before a request line are skipped (RFC 9112 2.2); the head after
# them is checked like any other.
LEADING_BLANK = {
    "empty_header_name": b": b\r\n",
    "obs_fold": b"X: a\r\n b\r\n",
}


@pytest.mark.parametrize("case", sorted(LEADING_BLANK))
def test_leading_blank_lines_do_not_skip_the_head_checks(proxy, origins, case):
    P, t = origins.http.port, token()
    data = (b"\r\n\r\n" + f"GET http://allowed.test:{P}/hello?t={t} HTTP/1.1\r\nHost: x\r\n".encode()
            + LEADING_BLANK[case] + b"\r\n")
    with proxy.connect() as c:
        c.send(data)
        r = c.read_response()
        assert r.status == 400, r
        assert c.expect_closed() == b""
    assert origins.http.state.find(t) == [], "a malformed request reached the origin"


def test_leading_blank_lines_before_a_good_request(proxy, origins):
    P = origins.http.port
    with proxy.connect() as c:
        c.send(b"\r\n\r\n" + request_bytes("GET", f"http://allowed.test:{P}/hello", "x"))
        r = c.read_response()
    assert r.status == 200 and r.body == HELLO_BODY


def test_bad_chunk_after_the_head_went_upstream_is_logged_allowed(proxy, origins):
    """The head and a first chunk reached the origin before the bad chunk
    size: the record says so (allow, with the upstream and the bytes)."""
    P, t = origins.http.port, token()
    with proxy.connect() as c:
        c.send(f"POST http://allowed.test:{P}/upload?t={t} HTTP/1.1\r\nHost: x\r\n"
               "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 400, r
        assert c.expect_closed() == b""
        client = "127.0.0.1:%d" % c.sock.getsockname()[1]
    rec = proxy.log.wait_one(by(client=client))
    assert rec["decision"] == "allow" and rec["reason"] == "allowed" and rec["status"] == 400
    assert rec["upstream"] == f"127.0.0.1:{P}" and rec["bytes_up"] > 0


class _EarlyAnswer:
    """An origin that answers 200 with half a body as soon as the head is in,
    before reading the request body (as a server refusing an upload may)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(10)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            try:
                while b"\r\n\r\n" not in self.got:
                    data = conn.recv(65536)
                    if not data:
                        return
                    self.got += data
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")
                while conn.recv(65536):
                    pass
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.thread.join(5)


def test_bad_chunk_after_the_response_began_is_not_answered_400(start_proxy, origins):
    """The origin's 200 is under way when the request body turns out bad: no
    400 head goes after its bytes; the connection is cut and the request
    logged as the allowed one it was."""
    origin = _EarlyAnswer()
    try:
        proxy = start_proxy(ports=str(origin.port))
        host = f"allowed.test:{origin.port}"
        with proxy.connect() as c:
            c.send(f"POST http://{host}/x HTTP/1.1\r\nHost: {host}\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".encode())
            head = c.read_until(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert c.read_exact(5) == b"12345"
            c.send(b"ZZ\r\n\r\n")
            rest = c.read_to_eof()
            client = "127.0.0.1:%d" % c.sock.getsockname()[1]
        assert b"HTTP/1.1 400" not in rest, rest
        rec = proxy.log.wait_one(by(client=client))
        assert rec["decision"] == "allow" and rec["status"] == 200
        assert rec["upstream"] == f"127.0.0.1:{origin.port}"
    finally:
        origin.close()
