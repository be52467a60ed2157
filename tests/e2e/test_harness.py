"""Self-checks of the harness (no awf-proxy needed): when these fail, the
fault is in the test rig, not in the proxy."""

import hashlib
import socket
import struct

from harness.client import Conn, TLSOverSocket, chunked, request_bytes
from harness.dns import QTYPE_A, QTYPE_AAAA
from harness.origin import HELLO_BODY, pattern, pattern_sha256


def _dns_query(port, name, qtype, tcp=False):
    q = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    q += struct.pack("!HH", qtype, 1)
    if tcp:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(struct.pack("!H", len(q)) + q)
            n = struct.unpack("!H", s.recv(2))[0]
            reply = b""
            while len(reply) < n:
                reply += s.recv(n - len(reply))
    else:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(q, ("127.0.0.1", port))
            reply = s.recv(4096)
    qid, flags, _qd, ancount = struct.unpack("!HHHH", reply[:8])
    assert qid == 0x1234
    addrs = []
    pos = 12 + len(q) - 12
    for _ in range(ancount):
        _ptr, rtype, _cls, _ttl, rdlen = struct.unpack("!HHHIH", reply[pos:pos + 12])
        rdata = reply[pos + 12:pos + 12 + rdlen]
        addrs.append(socket.inet_ntop(socket.AF_INET if rtype == QTYPE_A else socket.AF_INET6, rdata))
        pos += 12 + rdlen
    return flags & 0xF, addrs


def test_dns_answers(dns):
    assert _dns_query(dns.port, "allowed.test", QTYPE_A) == (0, ["127.0.0.1"])
    assert _dns_query(dns.port, "Deep.A.B.Allowed.Test", QTYPE_A) == (0, ["127.0.0.1"])
    assert _dns_query(dns.port, "allowed.test", QTYPE_AAAA) == (0, [])
    assert _dns_query(dns.port, "ipv6only.test", QTYPE_AAAA) == (0, ["::1"])
    assert _dns_query(dns.port, "ipv6only.test", QTYPE_A, tcp=True) == (0, [])
    assert _dns_query(dns.port, "nxdomain.test", QTYPE_A) == (3, [])
    assert _dns_query(dns.port, "servfail.test", QTYPE_A, tcp=True) == (2, [])
    before = dns.count("allowed.test", QTYPE_A)
    _dns_query(dns.port, "ALLOWED.test", QTYPE_A)
    assert dns.count("allowed.test", QTYPE_A) == before + 1


def test_http_origin_endpoints(origins):
    port = origins.http.port
    with Conn.open(port) as c:
        c.send(request_bytes("GET", "/hello", "allowed.test"))
        assert c.read_response().body == HELLO_BODY
        c.send(request_bytes("GET", "/bytes?n=100000", "allowed.test"))
        assert c.read_response().body == pattern(100000)
        c.send(request_bytes("GET", "/chunked?n=300001", "allowed.test"))
        r = c.read_response()
        assert r.header("Transfer-Encoding") == "chunked" and r.body == pattern(300001)
        body = pattern(123457)
        c.send(request_bytes("POST", "/upload", "allowed.test",
                             [("Transfer-Encoding", "chunked")], chunked(body, 5000)))
        assert c.read_response().text.find(hashlib.sha256(body).hexdigest()) > 0
        c.send(request_bytes("HEAD", "/bytes?n=10", "allowed.test"))
        assert c.read_response("HEAD").header("Content-Length") == "10"
    assert pattern_sha256(3 << 20) == hashlib.sha256(pattern(3 << 20)).hexdigest()


def test_tls_origin(origins, certfile):
    with Conn.open(origins.https.port) as raw:
        tls = TLSOverSocket(raw, "allowed.test", cafile=certfile)
        tls.handshake()
        c = Conn(tls)
        c.send(request_bytes("GET", "/hello", "allowed.test"))
        assert c.read_response().body == HELLO_BODY
    assert "allowed.test" in origins.https.state.sni_seen


def test_tcp_origins(origins):
    with Conn.open(origins.digest.port) as c:
        c.send(b"x" * 1000)
        c.shutdown_write()
        assert c.read_to_eof() == b"1000 %s\n" % hashlib.sha256(b"x" * 1000).hexdigest().encode()
    with Conn.open(origins.banner.port) as c:
        assert c.read_until(b"\r\n") == b"BANNER awf-e2e\r\n"
    with Conn.open(origins.echo.port) as c:
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
    s = socket.socket()
    s.settimeout(5)
    try:
        s.connect(("127.0.0.1", origins.refused.port))
        raise AssertionError("refusing port accepted a connection")
    except ConnectionRefusedError:
        pass
    finally:
        s.close()
