"""The upstream pool: an idle keep-alive connection to an origin serves the
next request to that host and port from any client connection; a pooled
connection the origin dropped is replaced, for a bodyless GET, by a fresh one.

The pool is a worker's (awf-proxy --workers): these tests count upstream
connections across client connections, so they run one worker."""

import socket
import threading

import pytest

from harness.client import request_bytes
from harness.origin import HELLO_BODY
from harness.util import by


@pytest.fixture
def proxy(start_proxy):
    """One worker: its pool serves every client connection."""
    return start_proxy(extra=("--workers", "1"))


def _fetch_close(proxy, url, host, method="GET", body=None):
    """One request with Connection: close on a new client connection."""
    with proxy.connect() as c:
        c.send(request_bytes(method, url, host, [("Connection", "close")], body))
        return c.read_response(method)


def test_connection_per_request_clients_share_one_upstream(proxy, origins):
    P = origins.http.port
    before = origins.http.state.connections
    for _ in range(5):
        r = _fetch_close(proxy, f"http://allowed.test:{P}/hello", f"allowed.test:{P}")
        assert r.status == 200 and r.body == HELLO_BODY
    assert origins.http.state.connections - before == 1
    recs = proxy.log.wait(by(event="http", host="allowed.test", port=P), count=5)
    assert all(r["upstream"] == f"127.0.0.1:{P}" and r["status"] == 200 for r in recs)


def test_pool_is_per_host_name(proxy, origins):
    P = origins.http.port
    before = origins.http.state.connections
    for host in ("allowed.test", "other.test", "allowed.test", "other.test"):
        r = _fetch_close(proxy, f"http://{host}:{P}/hello", f"{host}:{P}")
        assert r.status == 200
    assert origins.http.state.connections - before == 2


class OneShotOrigin:
    """Answers the first request of each connection (keep-alive), then reads
    the next one and closes without a word: a server that timed out an idle
    connection just as a request arrived."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _read_request(self, conn, buf):
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None, b""
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        self.requests += 1
        return head, rest

    def _conn(self, conn):
        with conn:
            conn.settimeout(10)
            try:
                head, rest = self._read_request(conn, b"")
                if head is None:
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                self._read_request(conn, rest)
            except OSError:
                pass

    def stop(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def parked(start_proxy):
    """A proxy whose pool holds one connection to a OneShotOrigin."""
    o = OneShotOrigin()
    try:
        proxy = start_proxy(ports=str(o.port), extra=("--workers", "1"))
        url, host = f"http://allowed.test:{o.port}/x", f"allowed.test:{o.port}"
        assert _fetch_close(proxy, url, host).body == b"ok"
        yield proxy, o, url, host
    finally:
        o.stop()


def test_pooled_connection_dropped_by_origin_is_replaced_for_a_get(parked):
    proxy, o, url, host = parked
    r = _fetch_close(proxy, url, host)  # the pooled connection dies under it
    assert r.status == 200 and r.body == b"ok"
    assert o.connections == 2 and o.requests == 3
    recs = proxy.log.wait(by(event="http", port=o.port), count=2)
    assert [x["status"] for x in recs] == [200, 200]


def test_pooled_connection_dropped_by_origin_fails_a_post(parked):
    """A request with a body was sent once and is gone: 502, not a resend."""
    proxy, o, url, host = parked
    r = _fetch_close(proxy, url, host, method="POST", body=b"data")
    assert r.status == 502
    assert o.connections == 1 and o.requests == 2
