"""A tiny authoritative DNS server on 127.0.0.1 (UDP and TCP, same port).

It answers A and AAAA queries from a zone dict, so awf-proxy (given
--dns-servers 127.0.0.1:PORT) never reaches the machine's own resolver.
Zone keys are lower-case names or "*.suffix" wildcards; values are lists of
addresses, or the strings "NXDOMAIN" / "SERVFAIL". Unknown names get NXDOMAIN.
Every query is counted per (name, qtype)."""

import collections
import ipaddress
import socket
import socketserver
import struct
import threading

QTYPE_A = 1
QTYPE_AAAA = 28
QTYPE_NAMES = {QTYPE_A: "A", QTYPE_AAAA: "AAAA"}

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4

DEFAULT_TTL = 60


class Query:
    __slots__ = ("qid", "flags", "name", "qtype", "question")

    def __init__(self, qid, flags, name, qtype, question):
        self.qid = qid
        self.flags = flags
        self.name = name          # as sent (case preserved), no trailing dot
        self.qtype = qtype
        self.question = question  # raw question section bytes, echoed back


def parse_query(msg):
    """Parse a DNS query; returns a Query or None when it is unusable."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if flags & 0x8000 or qdcount != 1:
        return None
    pos = 12
    labels = []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None  # queries never use compression
        labels.append(msg[pos:pos + n].decode("latin-1"))
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[pos:pos + 4])
    pos += 4
    return Query(qid, flags, ".".join(labels), qtype, msg[12:pos])


class Zone:
    """Name -> answers, with "*.suffix" wildcards (longest suffix wins)."""

    def __init__(self, records):
        self._records = {}
        for name, value in records.items():
            self._records[name.lower().rstrip(".")] = value

    def set(self, name, value):
        """Add or replace one name's answers (a list of addresses, or "NXDOMAIN")."""
        self._records[name.lower().rstrip(".")] = value

    def lookup(self, name):
        name = name.lower().rstrip(".")
        if name in self._records:
            return self._records[name]
        labels = name.split(".")
        for i in range(1, len(labels)):
            value = self._records.get("*." + ".".join(labels[i:]))
            if value is not None:
                return value
        return "NXDOMAIN"


def build_response(query, zone, ttl=DEFAULT_TTL):
    value = zone.lookup(query.name)
    answers = []
    if value == "NXDOMAIN":
        rcode = RCODE_NXDOMAIN
    elif value == "SERVFAIL":
        rcode = RCODE_SERVFAIL
    else:
        rcode = RCODE_NOERROR
        for addr in value:
            ip = ipaddress.ip_address(addr)
            if query.qtype == QTYPE_A and ip.version == 4:
                answers.append(ip.packed)
            elif query.qtype == QTYPE_AAAA and ip.version == 6:
                answers.append(ip.packed)
    # QR, opcode copied, AA, RD copied, RA, rcode
    flags = 0x8000 | (query.flags & 0x7800) | 0x0400 | (query.flags & 0x0100) | 0x0080 | rcode
    out = [struct.pack("!HHHHHH", query.qid, flags, 1, len(answers), 0, 0), query.question]
    for rdata in answers:
        out.append(struct.pack("!HHHIH", 0xC00C, query.qtype, 1, ttl, len(rdata)))
        out.append(rdata)
    return b"".join(out)


def build_error(msg, rcode):
    """FORMERR/NOTIMP for messages we cannot parse, keeping the id."""
    qid = struct.unpack("!H", msg[:2])[0] if len(msg) >= 2 else 0
    return struct.pack("!HHHHHH", qid, 0x8000 | rcode, 0, 0, 0, 0)


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(5)
        dns = self.server.dns
        buf = b""
        while True:
            while len(buf) < 2:
                data = self.request.recv(4096)
                if not data:
                    return
                buf += data
            n = struct.unpack("!H", buf[:2])[0]
            while len(buf) < 2 + n:
                data = self.request.recv(4096)
                if not data:
                    return
                buf += data
            msg, buf = buf[2:2 + n], buf[2 + n:]
            reply = dns.answer(msg, "tcp")
            self.request.sendall(struct.pack("!H", len(reply)) + reply)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class DNSServer:
    def __init__(self, records, ttl=DEFAULT_TTL):
        self.zone = Zone(records)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._counts = collections.Counter()
        self.log = []  # (transport, name, qtype)
        self._udp = None
        self._tcp = None
        self._threads = []
        self._stopping = threading.Event()
        self.port = None

    # -- lifecycle --------------------------------------------------------
    def start(self):
        # UDP and TCP on one port: take a UDP port, then try to bind TCP to it.
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp = _TCPServer(("127.0.0.1", port), _TCPHandler)
            except OSError:
                udp.close()
                continue
            break
        else:
            raise RuntimeError("could not bind DNS server UDP+TCP on one port")
        tcp.dns = self
        udp.settimeout(0.2)
        self._udp, self._tcp, self.port = udp, tcp, port
        t1 = threading.Thread(target=self._udp_loop, name="dns-udp", daemon=True)
        t2 = threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.2},
                              name="dns-tcp", daemon=True)
        self._threads = [t1, t2]
        t1.start()
        t2.start()
        return self

    def stop(self):
        self._stopping.set()
        self._tcp.shutdown()
        self._tcp.server_close()
        for t in self._threads:
            t.join(timeout=5)
        self._udp.close()

    @property
    def addr(self):
        return f"127.0.0.1:{self.port}"

    # -- serving ----------------------------------------------------------
    def _udp_loop(self):
        while not self._stopping.is_set():
            try:
                msg, peer = self._udp.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(msg, "udp")
            try:
                self._udp.sendto(reply, peer)
            except OSError:
                pass

    def answer(self, msg, transport):
        q = parse_query(msg)
        if q is None:
            return build_error(msg, RCODE_FORMERR)
        with self._lock:
            self._counts[(q.name.lower().rstrip("."), q.qtype)] += 1
            self.log.append((transport, q.name, q.qtype))
        if (q.flags >> 11) & 0xF:
            return build_error(msg, RCODE_NOTIMP)
        return build_response(q, self.zone, self.ttl)

    # -- observation ------------------------------------------------------
    def count(self, name, qtype=None):
        """Queries seen for a name (any case), optionally of one qtype."""
        name = name.lower().rstrip(".")
        with self._lock:
            return sum(n for (qn, qt), n in self._counts.items()
                       if qn == name and (qtype is None or qt == qtype))

    def total(self):
        with self._lock:
            return sum(self._counts.values())
