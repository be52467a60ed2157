"""Request smuggling through `Connection` (issue 10 item 1), and the
differential invariant behind its fix: what awf-proxy sends upstream, parsed
again by an independent parser, is exactly the sequence of requests it judged
and logged.

The attack: `Connection: Content-Length` makes Content-Length hop-by-hop, so
a proxy that drops it while still framing the body by it sends the body raw,
and the origin parses it as a second request nobody judged. awf-proxy
refuses such a request (400) before anything goes upstream, and regenerates
the framing of every message it forwards from what it parsed."""

import socket
import threading
import time

import pytest

from harness.client import Conn, request_bytes
from harness.origin import HELLO_BODY
from harness.util import by, token


def smuggling_request(target, host, smuggled, connection="Content-Length", method="POST"):
    """A request whose body is `smuggled`, framed by a Content-Length its
    Connection header nominates."""
    head = request_bytes(method, target, host, [("Connection", connection),
                                                ("Content-Length", str(len(smuggled)))])
    return head + smuggled


def smuggled_get(path, host):
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


# -- an independent HTTP/1.1 parser (strict, for what a proxy should send) -------

class Malformed(Exception):
    pass


def _split_head(buf, pos):
    end = buf.find(b"\r\n\r\n", pos)
    if end < 0:
        return None, pos
    lines = buf[pos:end].split(b"\r\n")
    return lines, end + 4


def _headers(lines):
    out = []
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name or b"\t" in name:
            raise Malformed(f"bad header line {line!r}")
        out.append((name.decode("latin-1").lower(), value.strip(b" \t").decode("latin-1")))
    return out


def _body_length(buf, pos, headers):
    """(body length, end offset) of a body at pos, or None if incomplete."""
    te = [v for k, v in headers if k == "transfer-encoding"]
    cl = [v for k, v in headers if k == "content-length"]
    if te and cl:
        raise Malformed("both Transfer-Encoding and Content-Length")
    if te:
        if te != ["chunked"]:
            raise Malformed(f"Transfer-Encoding {te}")
        total = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size_txt = buf[pos:eol]
            if not size_txt or any(c not in b"0123456789abcdefABCDEF" for c in size_txt):
                raise Malformed(f"chunk size {size_txt!r}")
            size = int(size_txt, 16)
            pos = eol + 2
            if size == 0:
                if buf[pos:pos + 2] != b"\r\n":
                    if len(buf) < pos + 2:
                        return None
                    raise Malformed("trailer or junk after the last chunk")
                return total, pos + 2
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size:pos + size + 2] != b"\r\n":
                raise Malformed("chunk not followed by CRLF")
            total += size
            pos += size + 2
    if cl:
        if len(cl) != 1 or not cl[0].isdigit():
            raise Malformed(f"Content-Length {cl}")
        n = int(cl[0])
        return (n, pos + n) if len(buf) >= pos + n else None
    return 0, pos


HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
       "trailer", "upgrade"}


def parse_requests(buf):
    """Complete requests in buf: [(method, target, host, body_len, raw_len)],
    plus the length of an incomplete tail."""
    out, pos = [], 0
    while pos < len(buf):
        lines, body_at = _split_head(buf, pos)
        if lines is None:
            break
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not parts[1].startswith(b"/"):
            raise Malformed(f"request line {lines[0]!r}")
        headers = _headers(lines[1:])
        hosts = [v for k, v in headers if k == "host"]
        if len(hosts) != 1:
            raise Malformed(f"Host headers {hosts}")
        if any(k in HOP for k, _ in headers):
            raise Malformed(f"hop-by-hop header sent upstream: {headers}")
        body = _body_length(buf, body_at, headers)
        if body is None:
            break
        out.append((parts[0].decode(), parts[1].decode("latin-1"), hosts[0], body[0],
                    body[1] - pos))
        pos = body[1]
    return out, len(buf) - pos


class RawOrigin:
    """An origin that records the raw bytes of each connection and answers
    every request parse_requests finds with `response` (HEAD: its head)."""

    def __init__(self, response=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"):
        self.response = response
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.streams = []        # raw bytes per connection
        self.requests = []       # parsed, in arrival order over all connections
        self.errors = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def connections(self):
        with self.lock:
            return len(self.streams)

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                idx = len(self.streams)
                self.streams.append(b"")
            threading.Thread(target=self._conn, args=(conn, idx), daemon=True).start()

    def _conn(self, conn, idx):
        buf, answered = b"", 0
        with conn:
            conn.settimeout(10)
            try:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                    with self.lock:
                        self.streams[idx] = buf
                    try:
                        reqs, _ = parse_requests(buf)
                    except Malformed as e:
                        with self.lock:
                            self.errors.append(str(e))
                        return
                    for r in reqs[answered:]:
                        with self.lock:
                            self.requests.append(r)
                        head, _, _ = self.response.partition(b"\r\n\r\n")
                        conn.sendall(head + b"\r\n\r\n" if r[0] == "HEAD" else self.response)
                    answered = len(reqs)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def raw_origin():
    o = RawOrigin()
    yield o
    o.stop()


def _exchange(proxy, data, reads, timeout=5.0):
    """Send data on a new client connection, read `reads` responses (methods),
    then close. Returns the responses."""
    out = []
    with proxy.connect(timeout=timeout) as c:
        c.send(data)
        for m in reads:
            out.append(c.read_response(m))
    return out


# -- the attack, on the explicit proxy --------------------------------------------

@pytest.mark.parametrize("connection", ["Content-Length", "close, content-length",
                                        "keep-alive,CONTENT-LENGTH", "Transfer-Encoding",
                                        "Host"])
def test_smuggle_connection_content_length_explicit(proxy, origins, connection):
    P = origins.http.port
    tok = token()
    data = smuggling_request(f"http://allowed.test:{P}/hello", f"allowed.test:{P}",
                             smuggled_get(f"/smuggled?{tok}", "evil.test"), connection)
    with proxy.connect() as c:
        c.send(data)
        r = c.read_response()
        time.sleep(0.2)  # a smuggled request would reach the origin by now
        assert origins.http.state.find(tok) == []
        assert r.status == 400, r
        c.expect_closed()
    rec = proxy.log.wait_one(by(event="http", method="POST"))
    assert rec["decision"] == "deny" and rec["reason"] == "bad_request"
    assert rec["status"] == 400 and rec["bytes_up"] == 0
    assert origins.http.state.find(tok) == []


def test_smuggle_connection_content_length_http_only_rule(start_proxy, origins):
    """An http://-only rule admits the outer request; the smuggled one would
    have been judged by nobody."""
    P = origins.http.port
    proxy = start_proxy(allow="http://allowed.test")
    tok = token()
    data = smuggling_request(f"http://allowed.test:{P}/hello", f"allowed.test:{P}",
                             smuggled_get(f"/smuggled?{tok}", "evil.test"))
    r = _exchange(proxy, data, ["POST"])[0]
    assert r.status == 400
    assert origins.http.state.find(tok) == []
    assert proxy.log.wait_one(by(event="http"))["reason"] == "bad_request"


def test_smuggle_connection_content_length_poisons_pooled_upstream(proxy, origins):
    """Client A smuggles a held request into an upstream connection the pool
    then hands to client B: B would get the smuggled request's response."""
    P = origins.http.port
    state = origins.http.state
    key = token()
    host = f"allowed.test:{P}"
    data = smuggling_request(f"http://allowed.test:{P}/hello", host,
                             smuggled_get(f"/hold?id={key}", host), "close, Content-Length")
    a = _exchange(proxy, data, ["POST"])[0]
    tok = token()
    with proxy.connect() as b:
        b.send(request_bytes("GET", f"http://allowed.test:{P}/hello?{tok}", host,
                             [("Connection", "close")]))
        state.wait_arrived(key, timeout=1.0)
        state.release(key)
        r = b.read_response()
    assert r.status == 200 and r.body == HELLO_BODY, r  # B got its own answer
    assert state.find(key) == []
    assert len(state.find(tok)) == 1
    assert a.status == 400


# -- the response side ----------------------------------------------------------------

@pytest.mark.parametrize("connection", ["Content-Length", "Transfer-Encoding"])
def test_smuggle_connection_content_length_in_response(start_proxy, connection):
    """A response whose Connection nominates its own framing header: 502, and
    the upstream connection is not reused."""
    if connection == "Content-Length":
        resp = b"HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello"
    else:
        resp = (b"HTTP/1.1 200 OK\r\nConnection: Transfer-Encoding\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    o = RawOrigin(resp)
    try:
        proxy = start_proxy(ports=str(o.port))
        url, host = f"http://allowed.test:{o.port}/x", f"allowed.test:{o.port}"
        for _ in range(2):
            r = _exchange(proxy, request_bytes("GET", url, host, [("Connection", "close")]),
                          ["GET"])[0]
            assert r.status == 502, r
        assert o.connections == 2  # nothing was pooled
        recs = proxy.log.wait(by(event="http"), count=2)
        assert [x["status"] for x in recs] == [502, 502]
    finally:
        o.stop()


# -- the differential invariant ----------------------------------------------------------

def test_smuggle_differential_upstream_bytes_match_access_log(start_proxy, raw_origin):
    """Requests of every framing, pipelined, with hop-by-hop noise and the
    attack: the requests the origin parses out of the raw bytes it got are
    exactly the allowed ones in the access log: method, target, Host and the
    bytes sent (head and body)."""
    P = raw_origin.port
    proxy = start_proxy(ports=str(P))
    base, host = f"http://allowed.test:{P}", f"allowed.test:{P}"
    body = b"x" * 1000
    cases = [
        (request_bytes("GET", base + "/a?q=1", host), ["GET"]),
        (request_bytes("POST", base + "/b", host, body=body), ["POST"]),
        (request_bytes("PUT", base + "/c", host, [("Transfer-Encoding", "chunked")],
                       b"3\r\nabc\r\n10\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n"), ["PUT"]),
        (request_bytes("HEAD", base + "/d", host, [("Connection", "keep-alive, Upgrade"),
                                                   ("Upgrade", "websocket"),
                                                   ("Keep-Alive", "timeout=5")]), ["HEAD"]),
        (request_bytes("POST", base + "/e", host, [("Connection", "X-Private"),
                                                   ("X-Private", "drop me")], b"12345"),
         ["POST"]),
        (request_bytes("GET", base + "/f1", host) + request_bytes("POST", base + "/f2", host,
                                                                  body=b"zz")
         + request_bytes("GET", base + "/f3", host, [("Connection", "close")]),
         ["GET", "POST", "GET"]),
        (smuggling_request(base + "/g", host, smuggled_get("/smuggled", "evil.test")), ["POST"]),
        (smuggling_request(base + "/h", host, b"0\r\n\r\n" + smuggled_get("/smuggled2", host),
                           "Transfer-Encoding"), ["POST"]),
        (request_bytes("GET", base + "/i", host, [("Content-Length", "0")]), ["GET"]),
    ]
    for data, reads in cases:
        _exchange(proxy, data, reads)
    recs = [r for r in proxy.log.wait(by(event="http"), count=len(cases) + 2)
            if r["decision"] == "allow"]
    assert raw_origin.errors == []
    logged = []
    for r in recs:
        path = r["url"][len(base):]
        logged.append((r["method"], path, f"{r['host']}:{r['port']}", r["bytes_up"]))
    with raw_origin.lock:
        seen = [(m, t, h, raw) for m, t, h, _, raw in raw_origin.requests]
        tails = [parse_requests(s)[1] for s in raw_origin.streams]
    assert seen == logged
    assert tails == [0] * len(tails)
    assert len(logged) == 9  # the two attacks were refused, nothing of them left
