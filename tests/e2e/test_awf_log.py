"""awf's access log and its survival: a command whose connections go away
under the proxy (a client closing before reading its answer, an origin
resetting during an upload) cannot end awf (SIGPIPE), and a tunnel's `open`
record, written when it is admitted, outlives an awf that is killed."""

import json
import os
import signal

import pytest

from harness.reset import ResetOrigin
from harness.util import token
from harness.world import ORIGIN, require_awf, stop, wait_for, world  # noqa: F401 (fixture)

require_awf()

RESET_PORT = 8081   # an origin that resets every connection once it has some bytes
EXIT = 7            # what the commands below exit with when they got to the end

# Asks for a big answer through the proxy and leaves without reading it:
# half the time with a FIN, half with a RST (SO_LINGER 0).
CLOSE_EARLY = r"""
import os, socket, struct, sys, time
PROXY = ("127.0.0.1", int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1]))
for i in range(6):
    s = socket.create_connection(PROXY)
    s.sendall(b"GET http://allowed.test/bytes?n=30000000&t=%s-%d HTTP/1.1\r\n"
              b"Host: allowed.test\r\n\r\n" % (sys.argv[1].encode(), i))
    time.sleep(0.2)
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.3)
sys.exit(7)
"""

# Sends a big body to an origin that resets after its first bytes: as a
# plain-HTTP upload, then through a CONNECT tunnel (the spliced bulk path).
UPLOAD_RESET = r"""
import os, socket, sys, time
PROXY = ("127.0.0.1", int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1]))
def push(head):
    s = socket.create_connection(PROXY)
    s.sendall(head)
    if head.startswith(b"CONNECT"):
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    try:
        for _ in range(400):
            s.sendall(b"x" * 65536)
    except OSError:
        pass
    s.close()
for i in range(3):
    push(b"POST http://allowed.test:8081/up HTTP/1.1\r\nHost: allowed.test:8081\r\n"
         b"Content-Length: 26214400\r\n\r\n")
    push(b"CONNECT allowed.test:8081 HTTP/1.1\r\nHost: allowed.test:8081\r\n\r\n")
    time.sleep(0.2)
sys.exit(7)
"""

# Opens a tunnel and holds it until killed.
HOLD_TUNNEL = r"""
import os, socket, sys, time
PROXY = ("127.0.0.1", int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1]))
s = socket.create_connection(PROXY)
s.sendall(b"CONNECT %s:443 HTTP/1.1\r\nHost: %s:443\r\n\r\n" % ((sys.argv[1].encode(),) * 2))
s.recv(4096)
time.sleep(60)
"""


@pytest.fixture(scope="module")
def reset_origin(world):
    o = world.ns.call(lambda: ResetOrigin(ORIGIN, RESET_PORT)).start()
    yield o
    o.stop()


def _pairs(recs):
    """{(conn, req): [open, final]} over every record of one run."""
    out = {}
    for r in recs:
        if r["event"] in ("open", "http", "connect", "tls", "tcp"):
            out.setdefault((r["conn"], r.get("req")), []).append(r)
    return out


def test_client_closing_before_reading_does_not_kill_awf(world):
    t = token()
    r = world.awf("python3", "-c", CLOSE_EARLY, t, args=["-d", "allowed.test"], timeout=60)
    assert r.rc == EXIT, r
    recs = [x for x in r.records(event="http") if t in x.get("url", "")]
    assert len(recs) == 6, r
    # One run id on every line; the run record names the command.
    run = r.all_log[0]
    assert run["event"] == "run" and run["argv"] == ["python3", "-c", CLOSE_EARLY, t], r
    assert {x["run"] for x in r.all_log} == {run["run"]}, r
    # Each request: an open record, then its final one, joined by conn and req.
    for (conn, req), pair in _pairs(r.all_log).items():
        assert [x["event"] for x in pair] == ["open", "http"], pair
        assert pair[0]["kind"] == "http" and pair[0]["host"] == pair[1]["host"], pair


def test_origin_resetting_an_upload_does_not_kill_awf(world, reset_origin):
    r = world.awf("python3", "-c", UPLOAD_RESET,
                  args=["-d", "allowed.test", "--allow-ports", "80,443,8081"], timeout=60)
    assert r.rc == EXIT, r
    assert reset_origin.accepted >= 6, r
    assert len(r.records(event="http", port=RESET_PORT)) == 3, r
    assert len(r.records(event="connect", port=RESET_PORT)) == 3, r


@pytest.mark.parametrize("host,audit", [("allowed.test", False), ("other.test", True)])
def test_tunnel_logged_open_before_awf_is_killed(world, host, audit):
    """The tunnel's record must not wait for its end: kill awf while the
    tunnel is open and the log still names the host (and, under --audit, says
    the policy would have denied it)."""
    args = ["-d", "allowed.test"] + (["--audit"] if audit else [])
    p, log_path = world.popen("python3", "-c", HOLD_TUNNEL, host, args=args)
    try:
        def opened():
            try:
                with open(log_path, "rb") as f:
                    recs = [json.loads(x) for x in f.read().splitlines()]
            except FileNotFoundError:
                return None
            return [x for x in recs if x["event"] == "open" and x.get("host") == host] or None
        got = wait_for(opened, timeout=15)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        err = stop(p)
    assert got, f"no open record for {host} while the tunnel was up\n{err}"
    rec = got[0]
    assert (rec["kind"], rec["method"], rec["port"], rec["decision"]) == \
        ("connect", "CONNECT", 443, "allow"), rec
    if audit:
        assert rec["would_deny"] is True and rec["reason"] == "not_allowed", rec
    with open(log_path, "rb") as f:
        assert not [x for x in map(json.loads, f.read().splitlines())
                    if x["event"] == "connect"], "awf was killed: no final record"
