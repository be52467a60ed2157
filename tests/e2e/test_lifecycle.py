"""The process: command line (bad flags exit 2), listeners, signals (SIGTERM
and SIGINT drain and exit 0 with no lost log line, SIGHUP reopens the log),
--max-connections and --max-connections-per-client."""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from harness.client import Conn, ConnectionClosed, request_bytes
from harness.origin import HELLO_BODY
from harness.util import by, token, url_has


def _run(proxy_bin, dns, args, timeout=10):
    """Run awf-proxy to completion (it must exit by itself)."""
    try:
        res = subprocess.run([proxy_bin] + args, capture_output=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"awf-proxy {args} did not exit within {timeout}s")
    return res.returncode, (res.stdout + res.stderr).decode("utf-8", "replace")


def test_version(proxy_bin, dns):
    rc, out = _run(proxy_bin, dns, ["--version"])
    assert rc == 0, out
    assert re.search(r"\d+\.\d+\.\d+", out), out


def test_help(proxy_bin, dns):
    rc, out = _run(proxy_bin, dns, ["--help"])
    assert rc == 0, out
    for flag in ("--allow-domains", "--listen", "--log-file", "--allow-ports", "--dns-servers"):
        assert flag in out


BAD_ARGS = [
    (["--allow-domains", "git hub.com"], "git hub.com"),
    (["--allow-domains", "*"], "*"),
    (["--allow-domains", "*.*"], "*.*"),
    (["--allow-domains", "ok.test,github.com:443"], "github.com:443"),
    (["--allow-domains", "a;b.com"], "a;b.com"),
    (["--allow-domains", '"quoted.com"'], "quoted.com"),
    (["--allow-domains", "back\\slash.com"], "slash.com"),
    (["--allow-domains", "hash#tag.com"], "hash#tag.com"),
    (["--allow-domains", "ok.test,a..b.com"], "a..b.com"),
    (["--allow-domains", "ctl\x01char.com"], "char.com"),
    (["--allow-domains", "a" * 64 + ".com"], "a" * 64),
    (["--block-domains", "*"], "*"),
    (["-d", "tab\tin.com"], "in.com"),
    (["--allow-ports", "abc"], "abc"),
    (["--allow-ports", "0"], "0"),
    (["--allow-ports", "65536"], "65536"),
    (["--allow-ports", "90-80"], "90-80"),
    (["--allow-destination-cidrs", "10.0.0.0/33"], "10.0.0.0/33"),
    (["--allow-destination-cidrs", "not-a-cidr"], "not-a-cidr"),
    (["--dns-servers", "not-an-ip"], "not-an-ip"),
    (["--listen", "nonsense"], "nonsense"),
    (["--listen", "127.0.0.1:99999"], "99999"),
    (["--log-level", "loud"], "loud"),
    (["--max-connections", "abc"], "abc"),
    (["--max-connections-per-client", "-5"], "-5"),
    (["--max-connections-per-client", "1x"], "1x"),
    (["--header-timeout", "abc"], "abc"),
    (["--idle-timeout", "-1"], "-1"),
    (["--frobnicate"], "frobnicate"),
    (["--allow-domains"], "allow-domains"),
    (["--allow-domains-file", "/nonexistent/awf-rules.txt"], "/nonexistent/awf-rules.txt"),
    (["stray-argument"], "stray-argument"),
]


@pytest.mark.parametrize("args,needle", BAD_ARGS, ids=[repr(a) for a, _ in BAD_ARGS])
def test_bad_arguments_exit_2(proxy_bin, dns, args, needle):
    base = ["--listen", "127.0.0.1:0", "--dns-servers", dns.addr]
    rc, out = _run(proxy_bin, dns, base + args)
    assert rc == 2, f"exit {rc}, output: {out}"
    assert needle in out, f"the message does not name {needle!r}: {out}"


def test_bad_rules_file_names_file_and_line(proxy_bin, dns, tmp_path):
    rules = tmp_path / "rules.txt"
    rules.write_text("# rules\nallowed.test\nbad entry.test\n")
    rc, out = _run(proxy_bin, dns, ["--listen", "127.0.0.1:0", "--dns-servers", dns.addr,
                                    "--allow-domains-file", str(rules)])
    assert rc == 2, out
    assert "bad entry.test" in out and ":3" in out, out


def test_listen_address_in_use(proxy_bin, dns):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        rc, out = _run(proxy_bin, dns, ["--listen", f"127.0.0.1:{port}", "--dns-servers", dns.addr])
    assert rc != 0
    assert str(port) in out, out


def test_two_listeners(start_proxy, origins):
    proxy = start_proxy(listen=("127.0.0.1:0", "127.0.0.1:0"))
    assert len(proxy.listeners) == 2 and proxy.listeners[0] != proxy.listeners[1]
    P = origins.http.port
    for i in range(2):
        with proxy.connect(index=i) as c:
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
            assert c.read_response().body == HELLO_BODY


def test_ipv6_listener(start_proxy, origins):
    proxy = start_proxy(listen=("[::1]:0",))
    assert proxy.host == "::1"
    P = origins.http.port
    with proxy.connect() as c:
        c.send(request_bytes("GET", f"http://allowed.test:{P}/hello", f"allowed.test:{P}"))
        assert c.read_response().body == HELLO_BODY
        client = "[::1]:%d" % c.sock.getsockname()[1]
    assert proxy.log.wait_one()["client"] == client


# -- signals ---------------------------------------------------------------------

def _wait_refused(port, timeout=5.0):
    """Poll until connecting to the port is refused (the listener is closed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = socket.socket()
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        finally:
            s.close()
        time.sleep(0.05)
    return False


def _held_requests(proxy, origins, ids):
    """Start one client per id on /hold?id=; returns (threads, results)."""
    P = origins.http.port
    results = {}

    def client(i):
        try:
            with proxy.connect(timeout=20) as c:
                c.send(request_bytes("GET", f"http://allowed.test:{P}/hold?id={i}",
                                     f"allowed.test:{P}"))
                results[i] = c.read_response()
        except (ConnectionClosed, OSError) as e:
            results[i] = e

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in ids]
    for th in threads:
        th.start()
    for i in ids:
        assert origins.http.state.wait_arrived(i, 10), f"request {i} never reached the origin"
    return threads, results


def test_sigterm_drains_open_requests_and_loses_no_line(start_proxy, origins):
    proxy = start_proxy(grace="10")
    P, t = origins.http.port, token()
    for j in range(5):  # completed before the signal
        assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-done{j}").status == 200
    ids = [f"{t}-held{i}" for i in range(6)]
    threads, results = _held_requests(proxy, origins, ids)

    proxy.send_signal(signal.SIGTERM)
    assert _wait_refused(proxy.port), "still accepting connections after SIGTERM"
    assert proxy.running(), "exited without waiting for open requests"
    for i in ids:
        origins.http.state.release(i)
    for th in threads:
        th.join(20)
    for i in ids:
        r = results.get(i)
        assert not isinstance(r, Exception) and r is not None, f"{i}: {r!r}"
        assert r.status == 200 and r.body == f"held {i}\n".encode()
    assert proxy.wait(15) == 0
    recs = proxy.log.records()
    for j in range(5):
        assert len([r for r in recs if r.get("url", "").endswith(f"t={t}-done{j}")]) == 1
    for i in ids:
        hits = [r for r in recs if r.get("url", "").endswith(f"id={i}")]
        assert len(hits) == 1, f"log line for {i}: {hits}"
        assert hits[0]["status"] == 200


def test_sigterm_grace_expiry_closes_and_logs(start_proxy, origins):
    proxy = start_proxy(grace="0.5")
    t = token()
    ids = [f"{t}-stuck"]
    threads, results = _held_requests(proxy, origins, ids)
    tc, tr = proxy.tunnel(f"allowed.test:{origins.echo.port}")
    with tc:
        assert tr.status == 200
        tc.send(b"ping")
        assert tc.read_exact(4) == b"ping"
        proxy.send_signal(signal.SIGTERM)
        assert proxy.wait(15) == 0
        assert tc.expect_closed() == b""
    for th in threads:
        th.join(10)
    assert isinstance(results[ids[0]], Exception), "the held request should have been cut"
    recs = proxy.log.records()
    assert any(r.get("url", "").endswith(f"id={ids[0]}") for r in recs), recs
    assert any(r.get("event") == "connect" and r.get("port") == origins.echo.port for r in recs)


def test_sigint_exits_0(start_proxy, origins):
    proxy = start_proxy()
    t = token()
    assert proxy.fetch(f"http://allowed.test:{origins.http.port}/hello?t={t}").status == 200
    proxy.log.wait_one(url_has(t))
    assert proxy.stop(signal.SIGINT) == 0


def test_sighup_reopens_log(start_proxy, origins):
    """Rename the log, SIGHUP: later requests go to a new file at the original
    path, none is lost, none goes to the old file once the new one is in use."""
    proxy = start_proxy()
    P, t = origins.http.port, token()
    assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-0").status == 200
    proxy.log.wait_one(url_has(f"{t}-0"))
    rotated = proxy.log_path + ".1"
    os.rename(proxy.log_path, rotated)
    proxy.send_signal(signal.SIGHUP)
    # The reopen is asynchronous: keep making requests until one lands in the
    # new file (reopen may also create the file before any request).
    n = 1
    deadline = time.monotonic() + 5
    while True:
        assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-{n}").status == 200
        n += 1
        try:
            if t in proxy.log.raw():
                break
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, "nothing written at the original path after SIGHUP"
        time.sleep(0.05)
    for i in range(n, n + 3):
        assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-{i}").status == 200
    n += 3

    def ids():
        with open(rotated) as f:
            old_recs = [r for r in map(json.loads, f) if r["event"] != "open"]
        new_recs = proxy.log.records()
        return ([r["url"].rsplit("-", 1)[1] for r in old_recs if t in r.get("url", "")],
                [r["url"].rsplit("-", 1)[1] for r in new_recs if t in r.get("url", "")])

    deadline = time.monotonic() + 5
    while sum(map(len, ids())) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    old_ids, new_ids = ids()
    assert "0" in old_ids
    assert sorted(old_ids + new_ids, key=int) == [str(i) for i in range(n)], "lost or doubled lines"
    assert max(map(int, old_ids)) < min(map(int, new_ids)), "old file written after the new one"
    assert proxy.running()


def test_max_connections_pauses_accepting(start_proxy, origins):
    """With two requests in flight and --max-connections 2, a third client is
    not served (and the proxy does not spin) until one of them ends."""
    proxy = start_proxy(extra=["--max-connections", "2"])
    P, t = origins.http.port, token()
    state = origins.http.state
    held = [f"{t}-1", f"{t}-2"]
    conns = [proxy.connect() for _ in held]
    try:
        for c, key in zip(conns, held):
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hold?id={key}", f"allowed.test:{P}"))
            assert state.wait_arrived(key, 5)
        with proxy.connect() as c3:  # the kernel completes the handshake
            c3.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}-3",
                                  f"allowed.test:{P}"))
            cpu0 = proxy.cpu_seconds()
            c3.settimeout(0.5)
            with pytest.raises(TimeoutError):
                c3.sock.recv(1)  # not served while two connections are open
            assert proxy.cpu_seconds() - cpu0 < 0.3, "the proxy spins while at the limit"
            assert state.find(f"{t}-3") == []
            state.release(held[0])
            assert conns[0].read_response().status == 200
            conns[0].close()
            c3.settimeout(10)
            assert c3.read_response().body == HELLO_BODY
    finally:
        state.release(held[1])
        for c in conns:
            c.close()


def _hold(host, port, n, source=None):
    """n idle connections to the proxy, from `source` if given; a connection
    the proxy reset before connect() returned is a closed socket."""
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if source:
            s.bind((source, 0))
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionResetError:
            s.close()
        out.append(s)
    return out


def _split_reset(socks, want_reset, timeout=10.0):
    """Wait until `want_reset` of socks have been reset (or closed) by the
    proxy; returns (open, reset)."""
    reset = {i for i, s in enumerate(socks) if s.fileno() < 0}
    for s in socks:
        if s.fileno() >= 0:
            s.setblocking(False)
    deadline = time.monotonic() + timeout
    while len(reset) < want_reset and time.monotonic() < deadline:
        for i, s in enumerate(socks):
            if i in reset:
                continue
            try:
                if s.recv(1) == b"":
                    reset.add(i)
            except BlockingIOError:
                pass
            except ConnectionResetError:
                reset.add(i)
        time.sleep(0.05)
    return [s for i, s in enumerate(socks) if i not in reset], [socks[i] for i in reset]


def _served(proxy, port, t, source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.settimeout(10)
    s.connect((proxy.host, proxy.port))
    with Conn(s) as c:
        c.send(request_bytes("GET", f"http://allowed.test:{port}/hello?t={t}",
                             f"allowed.test:{port}"))
        return c.read_response()


def _served_soon(proxy, port, t):
    """_served, retried while the proxy has not yet seen closed connections end."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return _served(proxy, port, t)
        except (ConnectionResetError, ConnectionClosed):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_one_client_cannot_starve_shared_proxy(start_proxy, origins):
    """One client filling the global cap with idle connections must not lock
    the others out: with --max-connections 600 the default per-client limit
    is a fair share (75); that client's connections beyond it are reset at
    once, never counted, so accepting never pauses; a client from another
    address (127.0.0.2) is served; the refusals are logged (event tcp, reason
    client_limit) at most once a second, not once per connection."""
    proxy = start_proxy(extra=["--max-connections", "600"])
    P, t = origins.http.port, token()
    started = time.monotonic()
    flood = _hold(proxy.host, proxy.port, 600)
    try:
        held, reset = _split_reset(flood, 600 - 75)
        r = _served(proxy, P, f"{t}-b", source="127.0.0.2")
        assert r.status == 200 and r.body == HELLO_BODY
        assert (len(held), len(reset)) == (75, 600 - 75)
        for s in reset:
            s.close()
        # More from the flooding client are still reset, and logged sparingly.
        more, gone = _split_reset(_hold(proxy.host, proxy.port, 50), 50)
        assert (len(more), len(gone)) == (0, 50)
        for s in gone:
            s.close()
        elapsed = time.monotonic() - started
        recs = proxy.log.wait(by(reason="client_limit"))
        assert 1 <= len(recs) <= int(elapsed) + 2, recs
        for rec in recs:
            assert (rec["event"], rec["decision"]) == ("tcp", "deny")
            assert rec["client"].startswith("127.0.0.1:")
        rec = proxy.log.wait_one(url_has(f"{t}-b"))
        assert rec["client"].startswith("127.0.0.2:") and rec["decision"] == "allow"
    finally:
        for s in flood:
            s.close()
    # Its connections closed, the client is served again.
    assert _served_soon(proxy, P, f"{t}-a").status == 200


def test_max_connections_per_client_flag(start_proxy, origins):
    """--max-connections-per-client N: the N+1th connection of one client is
    reset; another client is unaffected; a closed one frees a slot."""
    proxy = start_proxy(extra=["--max-connections-per-client", "3"])
    P, t = origins.http.port, token()
    socks = _hold(proxy.host, proxy.port, 5)
    try:
        held, reset = _split_reset(socks, 2)
        assert (len(held), len(reset)) == (3, 2)
        assert _served(proxy, P, f"{t}-b", source="127.0.0.2").status == 200
        held[0].close()
        assert _served_soon(proxy, P, f"{t}-a").status == 200
    finally:
        for s in socks:
            s.close()


def test_help_lists_max_connections_per_client(proxy_bin):
    out = subprocess.run([proxy_bin, "--help"], capture_output=True, text=True, timeout=10).stdout
    assert "--max-connections-per-client N" in out


def test_sigterm_right_after_the_listening_line_still_drains(proxy_bin, dns):
    """A supervisor may send SIGTERM the moment it reads "listening on": the
    handlers must already be in place (exit 0 and "exited cleanly"), not the
    default action that kills the proxy without its drain."""
    for _ in range(20):
        p = subprocess.Popen([proxy_bin, "--listen", "127.0.0.1:0", "--dns-listen", "127.0.0.1:0",
                              "--dns-listen", "[::1]:0", "-d", "allowed.test",
                              "--dns-servers", dns.addr],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
        line = p.stderr.readline()
        assert b"listening on" in line, line
        p.send_signal(signal.SIGTERM)
        err = line + p.stderr.read()
        assert p.wait(10) == 0, err
        assert b"exited cleanly" in err, err
