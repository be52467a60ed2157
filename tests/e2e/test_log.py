"""The JSONL access log, field by field; escaping of hostile input; the log on
stdout; many writers at once."""

import datetime
import json
import re
import threading

from harness.client import Conn, TLSOverSocket, request_bytes
from harness.origin import HELLO_BODY, pattern
from harness.util import by, token, url_has

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
MiB = 1 << 20


def _check_ts(ts):
    assert isinstance(ts, str) and TS_RE.match(ts), f"ts not RFC 3339 UTC with ms: {ts!r}"
    when = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 3600, f"ts {ts} is not about now ({now})"


def _check_common(rec, client):
    _check_ts(rec["ts"])
    assert rec["client"] == client
    assert isinstance(rec["duration_ms"], int) and rec["duration_ms"] >= 0
    assert rec["decision"] in ("allow", "deny")
    assert isinstance(rec["reason"], str) and rec["reason"]


def _client(conn):
    return "127.0.0.1:%d" % conn.sock.getsockname()[1]


def test_http_allow_record(proxy, origins):
    P, t = origins.http.port, token()
    with proxy.connect() as c:
        req = request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}", f"allowed.test:{P}")
        c.send(req)
        r = c.read_response()
        client = _client(c)
    assert r.status == 200
    rec = proxy.log.wait_one(url_has(t))
    _check_common(rec, client)
    assert rec["event"] == "http"
    assert rec["method"] == "GET"
    assert rec["host"] == "allowed.test"
    assert rec["port"] == P
    assert rec["url"].endswith(f"/hello?t={t}")
    assert rec["decision"] == "allow" and rec["reason"] == "allowed"
    assert rec["status"] == 200
    assert rec["upstream"] == f"127.0.0.1:{P}"
    assert 0 < rec["bytes_up"] < 4096
    assert len(HELLO_BODY) <= rec["bytes_down"] < 4096
    assert "sni" not in rec
    assert not rec.get("would_deny", False)


def test_http_deny_record(proxy, origins):
    P, t = origins.http.port, token()
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://notallowed.test:{P}/x?t={t}", f"notallowed.test:{P}"))
        assert c.read_response().status == 403
        client = _client(c)
    rec = proxy.log.wait_one(url_has(t))
    _check_common(rec, client)
    assert rec["event"] == "http" and rec["method"] == "GET"
    assert rec["host"] == "notallowed.test" and rec["port"] == P
    assert rec["decision"] == "deny" and rec["reason"] == "not_allowed" and rec["status"] == 403
    assert "upstream" not in rec


def test_connect_record(proxy, origins, certfile):
    PS = origins.https.port
    with proxy.connect() as c:
        c.send(f"CONNECT allowed.test:{PS} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode())
        assert c.read_response("CONNECT").status == 200
        client = _client(c)
        tls = TLSOverSocket(c, "allowed.test", cafile=certfile)
        tls.handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", f"/bytes?n={MiB}", f"allowed.test:{PS}"))
        assert len(tc.read_response().body) == MiB
    rec = proxy.log.wait_one(by(event="connect", client=client))
    _check_common(rec, client)
    assert rec["method"] == "CONNECT"
    assert rec["host"] == "allowed.test" and rec["port"] == PS
    assert rec["sni"] == "allowed.test"
    assert rec["decision"] == "allow" and rec["reason"] == "allowed" and rec["status"] == 200
    assert rec["upstream"] == f"127.0.0.1:{PS}"
    assert "url" not in rec
    assert 0 < rec["bytes_up"] < 64 * 1024
    assert MiB < rec["bytes_down"] < MiB + 64 * 1024


def test_bad_request_record(proxy, origins):
    with proxy.connect() as c:
        c.send(b"GET http://allowed.test/no-host HTTP/1.1\r\n\r\n")
        assert c.read_response().status == 400
        client = _client(c)
    rec = proxy.log.wait_one(by(client=client))
    _check_common(rec, client)
    assert rec["decision"] == "deny" and rec["reason"] == "bad_request" and rec["status"] == 400


def test_bytes_counted_for_large_bodies(proxy, origins):
    P = origins.http.port
    body = pattern(3 * MiB)
    up = proxy.fetch(f"http://allowed.test:{P}/upload?b=1", method="POST", body=body)
    assert json.loads(up.body)["len"] == len(body)
    down = proxy.fetch(f"http://allowed.test:{P}/bytes?n={2 * MiB}")
    assert len(down.body) == 2 * MiB
    rup = proxy.log.wait_one(url_has("/upload?b=1"))
    assert 3 * MiB <= rup["bytes_up"] < 3 * MiB + 8192
    assert 0 < rup["bytes_down"] < 8192
    rdown = proxy.log.wait_one(url_has(f"/bytes?n={2 * MiB}"))
    assert 2 * MiB <= rdown["bytes_down"] < 2 * MiB + 8192
    assert 0 < rdown["bytes_up"] < 8192


def _raw_line_for(proxy, client):
    for line in proxy.log.raw().split("\n"):
        if f'"{client}"' in line:
            return line
    raise AssertionError(f"no raw log line for {client}")


def test_json_escaping_of_quotes_and_backslashes_in_url(proxy, origins):
    """Quotes and backslashes in the target (accepted by the parser) go into
    the url field escaped, and come back out of json.loads unchanged."""
    P, t = origins.http.port, token()
    target = f'http://allowed.test:{P}/echo?t={t}&q="quoted"\\back%00\\"'
    with proxy.connect() as c:
        c.send(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: allowed.test:%d\r\n\r\n" % P)
        r = c.read_response()
        client = _client(c)
    rec = proxy.log.wait_one(by(client=client))
    if r.status == 200:
        assert rec["url"] == target
    else:
        assert r.status == 400


def test_json_escaping_of_hostile_sni(proxy, origins):
    """An SNI of quotes, backslash, NUL, ESC and invalid UTF-8 (patched into a
    real ClientHello): the tunnel is refused and the line is valid JSON with
    no raw control byte."""
    PS = origins.https.port
    hostile = b'e"\\\x00\xff\x1b.ts'
    assert len(hostile) == len(b"evil.test")
    c, r = proxy.tunnel(f"allowed.test:{PS}")
    with c:
        assert r.status == 200
        tls = TLSOverSocket(c, "evil.test", verify=False)
        hello = tls.start()
        assert hello.count(b"evil.test") == 1
        c.send(hello.replace(b"evil.test", hostile))
        c.expect_closed()  # whatever came back, the tunnel must end
        client = _client(c)
    rec = proxy.log.wait_one(by(client=client))
    assert rec["decision"] == "deny"
    line = _raw_line_for(proxy, client)
    assert not any(ord(ch) < 0x20 for ch in line), f"raw control byte in log line: {line!r}"
    if "sni" in rec:
        assert rec["sni"] == hostile.decode("utf-8", "replace")


def test_json_escaping_of_control_bytes_in_url(proxy, origins):
    P, t = origins.http.port, token()
    target = f"http://allowed.test:{P}/a?t={t}&c=".encode() + bytes(range(1, 32)) + b"\x7f"
    with proxy.connect() as c:
        c.send(b"GET " + target + b" HTTP/1.1\r\nHost: allowed.test:%d\r\n\r\n" % P)
        try:
            c.read_response()
        except Exception:
            pass  # a bare CR/LF among the bytes may end the line early: only the log matters here
        client = _client(c)
    proxy.log.wait_one(by(client=client))
    line = _raw_line_for(proxy, client)
    assert not any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in line), \
        f"raw control byte in log line: {line!r}"
    json.loads(line)


def test_json_escaping_of_hostile_connect_target(proxy, origins):
    with proxy.connect() as c:
        c.send(b'CONNECT "ev\\il\x01\x1b[31m\xff.test:443 HTTP/1.1\r\nHost: x\r\n\r\n')
        try:
            r = c.read_response("CONNECT")
            assert r.status in (400, 403)
        except Exception:
            pass
        client = _client(c)
    proxy.log.wait_one(by(client=client))
    line = _raw_line_for(proxy, client)
    assert not any(ord(ch) < 0x20 for ch in line), f"raw control byte in log line: {line!r}"


def test_log_to_stdout(start_proxy, origins):
    proxy = start_proxy(log="-")
    P, t = origins.http.port, token()
    assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}").status == 200
    assert proxy.fetch(f"http://notallowed.test:{P}/hello?t={t}").status == 403
    recs = proxy.log.wait(url_has(t), count=2)
    assert [r["decision"] for r in recs] == ["allow", "deny"]
    for line in proxy.stdout.lines:
        json.loads(line)  # nothing but JSON on stdout
    assert any("listening on" in line for line in proxy.stderr.lines)


def test_log_file_is_appended_to(start_proxy, origins, tmp_path):
    path = tmp_path / "access-0.jsonl"  # the name the fixture gives its first proxy
    path.write_text('{"previous":"line"}\n')
    proxy = start_proxy()
    assert proxy.log_path == str(path)
    assert proxy.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200
    recs = proxy.log.wait(count=2)
    assert recs[0] == {"previous": "line"}
    assert recs[1]["status"] == 200


def test_debug_diagnostics_stay_out_of_the_log(start_proxy, origins):
    proxy = start_proxy(extra=["--log-level", "debug"])
    P = origins.http.port
    proxy.fetch(f"http://allowed.test:{P}/hello")
    proxy.fetch(f"http://notallowed.test:{P}/hello")
    proxy.log.wait(count=2)
    # the run record, then an open and a final record per request: all JSON
    assert len(proxy.log.raw().splitlines()) == len(proxy.log.all_records()) == 5


def test_concurrent_requests_give_whole_lines(proxy, origins):
    P = origins.http.port
    t = token()
    errors = []

    def worker(i):
        try:
            for j in range(10):  # a connection each: keep-alive is tested elsewhere
                with proxy.connect() as c:
                    c.send(request_bytes("GET", f"http://allowed.test:{P}/bytes?n=3000&t={t}-{i}-{j}",
                                         f"allowed.test:{P}"))
                    assert c.read_response().body == pattern(3000)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    recs = proxy.log.wait(url_has(t), count=160)
    assert len(recs) == 160
    assert {r["url"].rsplit("t=", 1)[1] for r in recs} == {f"{t}-{i}-{j}" for i in range(16)
                                                           for j in range(10)}


def test_bad_request_on_a_reused_connection_is_logged(proxy, origins):
    """A 400 for bytes refused before a new message began (a bare LF in the
    second request line) still gets its record, without the previous URL."""
    P, t1, t2 = origins.http.port, token(), token()
    with proxy.connect() as c:
        c.send(f"GET http://allowed.test:{P}/hello?t={t1} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert c.read_response().status == 200
        c.send(f"GET http://allowed.test:{P}/hello?t={t2} HTTP/1.1\nHost: x\r\n\r\n".encode())
        assert c.read_response().status == 400
        client = _client(c)
    recs = proxy.log.wait(by(client=client), count=2)
    assert [r["status"] for r in recs] == [200, 400]
    bad = recs[1]
    _check_common(bad, client)
    assert bad["decision"] == "deny" and bad["reason"] == "bad_request"
    assert "url" not in bad and "upstream" not in bad and "host" not in bad
    assert bad["bytes_up"] == 0 and bad["bytes_down"] == 0
    assert origins.http.state.find(t2) == []


# -- open records, conn, req, run --------------------------------------------------

def _joined(recs):
    """{(conn, req): [records]} of the open and final records."""
    out = {}
    for r in recs:
        if r["event"] != "run":
            out.setdefault((r["conn"], r.get("req")), []).append(r)
    return out


def test_open_then_final_record_joined_by_conn_and_req(proxy, origins):
    """Each decision is logged when made (open) and at the end; on a
    keep-alive connection every request is a decision of its own."""
    P, t = origins.http.port, token()
    with proxy.connect() as c:
        for i in range(2):
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}-{i}",
                                 f"allowed.test:{P}"))
            assert c.read_response().status == 200
        c.send(request_bytes("GET", f"http://notallowed.test:{P}/x?t={t}-2",
                             f"notallowed.test:{P}"))
        assert c.read_response().status == 403
    proxy.log.wait(url_has(t), count=3)
    recs = [r for r in proxy.log.all_records() if t in r.get("url", "")]
    pairs = _joined(recs)
    assert len(pairs) == 3, recs
    assert len({conn for conn, _ in pairs}) == 1, recs  # one client connection
    assert sorted(req for _, req in pairs) == [1, 2, 3], recs
    for (conn, req), (op, fin) in sorted(pairs.items(), key=lambda kv: kv[0][1]):
        assert (op["event"], op["kind"], fin["event"]) == ("open", "http", "http"), (op, fin)
        for k in ("client", "method", "host", "port", "url", "decision", "reason", "run"):
            assert op[k] == fin[k], (k, op, fin)
        for k in ("status", "upstream", "bytes_up", "bytes_down", "duration_ms"):
            assert k not in op, op
    assert [p[1]["decision"] for _, p in sorted(pairs.items(), key=lambda kv: kv[0][1])] == \
        ["allow", "allow", "deny"]


def test_connect_open_record_written_while_the_tunnel_is_up(proxy, origins, certfile):
    """A tunnel's open record is in the log before the tunnel ends."""
    PS = origins.https.port
    with proxy.connect() as c:
        c.send(f"CONNECT allowed.test:{PS} HTTP/1.1\r\nHost: allowed.test:{PS}\r\n\r\n".encode())
        assert c.read_response("CONNECT").status == 200
        client = _client(c)
        op = proxy.log.wait_one(by(event="open", client=client), every=True)
        assert (op["kind"], op["method"], op["host"], op["port"], op["decision"]) == \
            ("connect", "CONNECT", "allowed.test", PS, "allow"), op
        assert proxy.log.absent(by(event="connect", client=client), settle=0.1)
        tls = TLSOverSocket(c, "allowed.test", cafile=certfile)
        tls.handshake()
        tc = Conn(tls)
        tc.send(request_bytes("GET", "/bytes?n=10", f"allowed.test:{PS}"))
        assert len(tc.read_response().body) == 10
    fin = proxy.log.wait_one(by(event="connect", client=client))
    assert (fin["conn"], fin["req"]) == (op["conn"], op["req"])


def test_upstream_only_when_a_connection_was_made(proxy, origins):
    """A dial that failed names no upstream (nothing was connected)."""
    t = token()
    r = proxy.fetch(f"http://allowed.test:{origins.refused.port}/x?t={t}")
    assert r.status == 502
    rec = proxy.log.wait_one(url_has(t))
    assert rec["reason"] == "upstream_unreachable" and "upstream" not in rec, rec


def test_run_ids_tell_runs_sharing_a_file_apart(start_proxy, origins, tmp_path):
    P = origins.http.port
    runs = []
    for i in range(2):
        proxy = start_proxy(extra=["--log-file", str(tmp_path / "shared.jsonl")], log=None)
        proxy.log.path = str(tmp_path / "shared.jsonl")  # for the teardown's checks
        assert proxy.fetch(f"http://allowed.test:{P}/hello?i={i}").status == 200
        proxy.stop()
    with open(tmp_path / "shared.jsonl") as f:
        recs = [json.loads(line) for line in f]
    starts = [r for r in recs if r["event"] == "run"]
    assert len(starts) == 2 and all(re.fullmatch(r"[0-9a-f]{16}", r["run"]) for r in starts)
    assert starts[0]["run"] != starts[1]["run"]
    assert all(r["version"] for r in starts) and "argv" not in starts[0]
    # Every line carries its run's id: the run record comes first, the rest follow.
    cur = None
    for r in recs:
        if r["event"] == "run":
            cur = r["run"]
        assert r["run"] == cur, recs
    assert {r["run"] for r in recs if r["event"] == "http"} == {s["run"] for s in starts}
