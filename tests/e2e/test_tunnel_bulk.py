"""Bulk tunnels: once a read fills awf-proxy's whole read buffer, the tunnel
is relayed with splice(2) through pipes. The bytes, the half-close, the log's
byte counts and a client that resets mid-transfer must all behave as on the
copying path."""

import hashlib
import socket
import struct
import threading

from harness.origin import pattern, pattern_sha256
from harness.util import by

MiB = 1 << 20


def _tunnel(proxy, port):
    c, r = proxy.tunnel(f"allowed.test:{port}")
    assert r.status == 200, r
    c.settimeout(30)
    return c


def test_spliced_upload_counts_every_byte(proxy, origins):
    n = 24 * MiB
    data = pattern(n, 7)
    c = _tunnel(proxy, origins.digest.port)
    with c:
        c.send(data)
        c.shutdown_write()
        reply = c.read_to_eof()
    assert reply == b"%d %s\n" % (n, hashlib.sha256(data).hexdigest().encode())
    rec = proxy.log.wait_one(by(event="connect", port=origins.digest.port))
    assert rec["bytes_up"] == n
    assert rec["bytes_down"] == len(reply)


def test_parallel_spliced_echoes(proxy, origins):
    """Several bulk tunnels at once, each echoing while it sends."""
    n = 6 * MiB
    results, errors = {}, []

    def one(k):
        try:
            c = _tunnel(proxy, origins.echo.port)
            with c:
                def writer():
                    for off in range(0, n, MiB):
                        c.send(pattern(MiB, k * n + off))
                    c.shutdown_write()
                t = threading.Thread(target=writer, daemon=True)
                t.start()
                got = c.read_to_eof()
                t.join(30)
            results[k] = hashlib.sha256(got).hexdigest(), len(got)
        except Exception as e:  # reported below, with the tunnel's number
            errors.append((k, e))

    threads = [threading.Thread(target=one, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for k in range(4):
        want = hashlib.sha256(b"".join(pattern(MiB, k * n + off)
                                       for off in range(0, n, MiB))).hexdigest()
        assert results[k] == (want, n), k
    recs = proxy.log.wait(by(event="connect", port=origins.echo.port), count=4)
    assert all(r["bytes_up"] == n and r["bytes_down"] == n for r in recs)


def test_client_reset_during_spliced_transfer(proxy, origins):
    """A client that resets mid-transfer: the tunnel is closed and logged,
    and the proxy goes on serving."""
    c = _tunnel(proxy, origins.echo.port)
    c.send(pattern(8 * MiB, 1))  # echoed back, never read: both ways fill up
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    rec = proxy.log.wait_one(by(event="connect", port=origins.echo.port), timeout=10)
    assert rec["decision"] == "allow" and rec["bytes_up"] > 0
    c2 = _tunnel(proxy, origins.digest.port)
    with c2:
        c2.send(pattern(3 * MiB))
        c2.shutdown_write()
        assert c2.read_to_eof() == b"%d %s\n" % (3 * MiB, pattern_sha256(3 * MiB).encode())
