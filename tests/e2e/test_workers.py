"""awf-proxy --workers N: N event loops on N threads, each with a socket of
one SO_REUSEPORT group per listening address. Many concurrent connections,
plain HTTP (keep-alive and not) and CONNECT tunnels mixed, are all served;
the one access log has every request exactly once, in whole lines, and a
connection's lines in its order; SIGTERM drains every worker; SIGHUP reopens
the log for all of them and reloads the rules on every one;
--max-connections and --max-connections-per-client count across workers."""

import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.client import ConnectionClosed, request_bytes
from harness.origin import HELLO_BODY
from harness.util import by, token, url_has


def listening_sockets(port):
    """TCP sockets in LISTEN on `port` (any address), from /proc/net/tcp{,6}."""
    n = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                    n += 1
    return n


def whole_lines(raw):
    """Every line of the log parsed; the file ends in a newline."""
    assert raw.endswith("\n"), raw[-200:]
    return [json.loads(line) for line in raw.split("\n")[:-1]]


def wait_records(proxy, pred, count, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        hits = [r for r in proxy.log.records() if pred(r)]
        if len(hits) >= count or time.monotonic() > deadline:
            return hits
        time.sleep(0.05)


def keepalive_client(proxy, P, t, i, n):
    """n requests on one connection; returns the statuses."""
    out = []
    with proxy.connect(timeout=20) as c:
        for j in range(n):
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}-k{i}-{j}",
                                 f"allowed.test:{P}"))
            r = c.read_response()
            out.append(r.status if r.body == HELLO_BODY else -1)
    return out


def close_client(proxy, P, t, i):
    r = proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-c{i}")
    return [r.status if r.body == HELLO_BODY else -1]


def tunnel_client(proxy, echo_port, i):
    c, r = proxy.tunnel(f"allowed.test:{echo_port}")
    with c:
        if r.status != 200:
            return [r.status]
        msg = f"ping-{i}".encode()
        c.send(msg)
        return [200 if c.read_exact(len(msg)) == msg else -1]


@pytest.mark.parametrize("workers", [2, 4])
def test_many_connections_mixed_all_served_logged_once_in_order(start_proxy, origins,
                                                                 workers):
    proxy = start_proxy(extra=["--workers", str(workers)])
    assert listening_sockets(proxy.port) == workers
    P, E, t = origins.http.port, origins.echo.port, token()
    KEEP, PER, CLOSE, TUNNELS = 24, 4, 48, 24
    jobs = ([(keepalive_client, (proxy, P, t, i, PER)) for i in range(KEEP)] +
            [(close_client, (proxy, P, t, i)) for i in range(CLOSE)] +
            [(tunnel_client, (proxy, E, i)) for i in range(TUNNELS)])
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = [f.result(timeout=60) for f in [pool.submit(fn, *a) for fn, a in jobs]]
    assert all(s == 200 for statuses in results for s in statuses), results

    want = KEEP * PER + CLOSE + TUNNELS
    mine = wait_records(proxy, lambda r: t in r.get("url", "") or
                        (r.get("event") == "connect" and r.get("port") == E), want)
    assert len(mine) == want, f"{len(mine)} of {want} logged"
    recs = whole_lines(proxy.log.raw())  # every line whole JSON, none cut or merged
    finals = [r for r in recs if r["event"] == "http" and t in r.get("url", "")]
    urls = [r["url"] for r in finals]
    assert len(urls) == len(set(urls)) == KEEP * PER + CLOSE, "a request logged twice or not"
    # A keep-alive connection: one conn id, its requests in order, each
    # request's open record before its final one.
    for i in range(KEEP):
        mine = [r for r in recs if f"{t}-k{i}-" in r.get("url", "")]
        assert len({r["conn"] for r in mine}) == 1, mine
        seq = [(r["event"], int(r["url"].rsplit("-", 1)[1])) for r in mine]
        assert seq == [(e, j) for j in range(PER) for e in ("open", "http")], seq
    conns = [r["conn"] for r in recs if r["event"] in ("http", "connect")
             and (t in r.get("url", "") or r.get("port") == E)]
    ids = {r["conn"] for r in recs if r["event"] == "connect" and r.get("port") == E}
    assert len(ids) == TUNNELS and len(set(conns)) == KEEP + CLOSE + TUNNELS


def test_sigterm_drains_every_worker(start_proxy, origins):
    proxy = start_proxy(grace="10", extra=["--workers", "4"])
    P, t = origins.http.port, token()
    ids = [f"{t}-held{i}" for i in range(8)]
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
    proxy.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while listening_sockets(proxy.port) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listening_sockets(proxy.port) == 0, "a worker still listens after SIGTERM"
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
    for i in ids:
        hits = [r for r in recs if r.get("url", "").endswith(f"id={i}")]
        assert len(hits) == 1 and hits[0]["status"] == 200, hits


def test_sighup_reopens_the_log_for_every_worker(start_proxy, origins):
    """Rename the log and SIGHUP: whatever worker serves them, later requests
    land at the original path; no line is lost or doubled across the two."""
    proxy = start_proxy(extra=["--workers", "4"])
    P, t = origins.http.port, token()
    for i in range(8):
        assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t}-{i}").status == 200
    wait_records(proxy, url_has(t), 8)
    rotated = proxy.log_path + ".1"
    os.rename(proxy.log_path, rotated)
    proxy.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while not os.path.exists(proxy.log_path):
        assert time.monotonic() < deadline, "the log was not reopened"
        time.sleep(0.02)
    n = 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda i: proxy.fetch(
            f"http://allowed.test:{P}/hello?t={t}-{i}").status, range(8, n)))
    assert got == [200] * (n - 8)
    new = wait_records(proxy, url_has(t), n - 8)
    with open(rotated) as f:
        old = [r for r in whole_lines(f.read()) if r["event"] == "http"]
    whole_lines(proxy.log.raw())
    old_ids = [int(r["url"].rsplit("-", 1)[1]) for r in old if t in r.get("url", "")]
    new_ids = [int(r["url"].rsplit("-", 1)[1]) for r in new]
    assert sorted(old_ids + new_ids) == list(range(n)), "lost or doubled lines"
    assert set(range(8, n)) <= set(new_ids), "a line after the reopen went to the old file"
    assert proxy.running()


def hold_idle(host, port, n):
    """n idle connections; one the proxy reset before connect() returned is a
    closed socket."""
    out = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect((host, port))
        except ConnectionResetError:
            s.close()
        out.append(s)
    return out


def count_reset(socks, want, timeout=10.0):
    """Wait until `want` of socks were reset or closed by the proxy (or the
    timeout); returns how many were."""
    reset = {i for i, s in enumerate(socks) if s.fileno() < 0}
    for s in socks:
        if s.fileno() >= 0:
            s.setblocking(False)
    deadline = time.monotonic() + timeout
    while len(reset) < want and time.monotonic() < deadline:
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
    return len(reset)


def test_max_connections_per_client_counts_across_workers(start_proxy, origins):
    """Four workers, a limit of 3: a client's 12 connections, spread over the
    workers by the kernel, get 3 held and 9 reset (per-worker tables would
    hold up to 12)."""
    proxy = start_proxy(extra=["--workers", "4", "--max-connections-per-client", "3"])
    socks = hold_idle(proxy.host, proxy.port, 12)
    try:
        assert count_reset(socks, 9) == 9
        time.sleep(0.5)  # and no more than that
        assert count_reset(socks, 10, timeout=0.2) == 9
    finally:
        for s in socks:
            s.close()
    t = token()
    deadline = time.monotonic() + 10
    while True:  # the closed ones are released on their workers
        try:
            r = proxy.fetch(f"http://allowed.test:{origins.http.port}/hello?t={t}")
            break
        except (ConnectionResetError, ConnectionClosed):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert r.status == 200


def test_max_connections_is_a_total_and_any_worker_resumes(start_proxy, origins):
    """--max-connections 2 with four workers: a third client waits whichever
    worker the kernel gave it, and is served once a connection on any worker
    ends."""
    proxy = start_proxy(extra=["--workers", "4", "--max-connections", "2"])
    P, t = origins.http.port, token()
    state = origins.http.state
    held = [f"{t}-1", f"{t}-2"]
    conns = [proxy.connect() for _ in held]
    try:
        for c, key in zip(conns, held):
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hold?id={key}",
                                 f"allowed.test:{P}"))
            assert state.wait_arrived(key, 5)
        waiting = [proxy.connect() for _ in range(4)]
        for i, c in enumerate(waiting):
            c.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t}-w{i}",
                                 f"allowed.test:{P}", [("Connection", "close")]))
        time.sleep(0.5)
        assert not any(state.find(f"{t}-w{i}") for i in range(4)), "served over the cap"
        state.release(held[0])
        assert conns[0].read_response().status == 200
        conns[0].close()
        for c in waiting:  # one at a time (each closes): held[1] keeps the other place
            c.settimeout(10)
            assert c.read_response().body == HELLO_BODY
            c.close()
    finally:
        state.release(held[1])
        for c in conns:
            c.close()


def test_a_second_proxy_on_the_same_port_fails(start_proxy, proxy_bin, dns):
    """SO_REUSEPORT would let a second awf-proxy (the same user) join the
    first's group and take a share of its clients under its own rules: it
    must fail as with one worker."""
    first = start_proxy(extra=["--workers", "2"])
    res = subprocess.run([proxy_bin, "--workers", "2", "--listen", f"127.0.0.1:{first.port}",
                          "--dns-servers", dns.addr], capture_output=True, text=True,
                         timeout=10, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and "address already in use" in res.stderr, res
    assert listening_sockets(first.port) == 2


def test_one_worker_is_one_loop(start_proxy, origins):
    proxy = start_proxy(extra=["--workers", "1"])
    assert listening_sockets(proxy.port) == 1
    assert proxy.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200
    assert len(os.listdir(f"/proc/{proxy.pid}/task")) == 1


def test_default_is_the_cpus_the_process_may_use(start_proxy):
    proxy = start_proxy()
    assert listening_sockets(proxy.port) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-1", "x", "257"])
def test_bad_workers_value_exits_2(proxy_bin, value):
    res = subprocess.run([proxy_bin, "--workers", value], capture_output=True, text=True,
                         timeout=10, stdin=subprocess.DEVNULL)
    assert res.returncode == 2 and "--workers" in res.stderr and value in res.stderr, res


def spread_statuses(proxy, P, host, n, t):
    """n requests, each on a new connection (new source ports: the kernel
    spreads them over the workers), 8 at a time; their statuses."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda i: proxy.fetch(
            f"http://{host}:{P}/hello?t={t}-{i}").status, range(n)))


def hup_config(proxy, count):
    """SIGHUP, then the count-th config event."""
    proxy.send_signal(signal.SIGHUP)
    return proxy.log.wait(by(event="config"), count=count, every=True)[count - 1]


def test_sighup_reload_reaches_every_worker(start_proxy, origins, tmp_path):
    """Four workers: after a reload every connection, whichever worker the
    kernel gives it, is judged by the new rules; a reload that fails changes
    nothing on any of them. Several reloads in a row (each frees the set
    before it once every worker has switched) leave every worker on the last."""
    rules = tmp_path / "allow.txt"
    rules.write_text("allowed.test\n")
    proxy = start_proxy(allow=None, extra=["--workers", "4", "--allow-domains-file", str(rules)])
    P, n = origins.http.port, 48
    assert spread_statuses(proxy, P, "other.test", n, token()) == [403] * n
    tmp = tmp_path / "allow.tmp"
    tmp.write_text("allowed.test\nother.test\n")
    tmp.replace(rules)
    assert hup_config(proxy, 1)["ok"] is True
    assert spread_statuses(proxy, P, "other.test", n, token()) == [200] * n
    rules.write_text("bad..name\n")  # refused: the rules in force stay, on every worker
    assert hup_config(proxy, 2)["ok"] is False
    assert spread_statuses(proxy, P, "other.test", n, token()) == [200] * n
    for i in range(3, 7):  # back and forth: each reload frees the set before it
        tmp.write_text("allowed.test\n" if i % 2 else "allowed.test\nother.test\n")
        tmp.replace(rules)
        assert hup_config(proxy, i)["ok"] is True
        time.sleep(0.25)  # reloads start at most every 200 ms: no coalescing here
    assert spread_statuses(proxy, P, "other.test", n, token()) == [200] * n
    assert spread_statuses(proxy, P, "allowed.test", n, token()) == [200] * n
    assert proxy.running()


def test_metrics_sum_every_worker(start_proxy, origins):
    """Four workers: a scrape counts the requests whichever worker served
    them, the log lines every worker's writer handed over, and the lookups of
    every worker's resolver."""
    from test_metrics import _metrics_port, val, wait_scrape
    proxy = start_proxy(extra=["--workers", "4", "--metrics-listen", "127.0.0.1:0"])
    port = _metrics_port(proxy)
    P, n, t = origins.http.port, 48, token()
    assert spread_statuses(proxy, P, "allowed.test", n, t) == [200] * n
    assert spread_statuses(proxy, P, "blocked.test", 8, t) == [403] * 8
    wait_records(proxy, url_has(t), n + 8)

    def done(s):
        return (val(s, "awf_requests_total", event="http", decision="allow", reason="allowed") == n
                and val(s, "awf_log_lines_total") >= n + 8)
    s = wait_scrape(port, done)
    assert val(s, "awf_requests_total", event="http", decision="allow", reason="allowed") == n
    assert val(s, "awf_requests_total", event="http", decision="deny",
               reason="not_allowed") == 8
    assert val(s, "awf_connections_accepted_total") >= n + 8
    assert val(s, "awf_log_lines_total") == len(proxy.log.all_records())
    # each allowed request looked allowed.test up (a hit or a miss) in the
    # resolver of the worker that served it
    assert val(s, "awf_dns_cache_hits_total") + val(s, "awf_dns_cache_misses_total") >= n
    assert val(s, "awf_dns_cache_misses_total") >= 2, "one worker's resolver only"


def test_metrics_served_until_every_worker_drained(start_proxy, origins):
    """SIGTERM with one tunnel open: whichever of the four workers holds it
    (the first engine, with the metrics server, is usually idle and done at
    once), /healthz says 503 and /metrics is scraped until it ends. Three
    proxies, so the tunnel lands off the first engine at least once (all but
    certainly)."""
    from test_metrics import _get, _metrics_port
    for _ in range(3):
        proxy = start_proxy(extra=["--workers", "4", "--metrics-listen", "127.0.0.1:0"])
        port = _metrics_port(proxy)
        c, r = proxy.tunnel(f"allowed.test:{origins.echo.port}")
        with c:
            assert r.status == 200
            proxy.send_signal(signal.SIGTERM)
            assert proxy.stderr.wait_for(lambda line: "finishing open connections" in line, 5)
            time.sleep(0.2)  # an idle first engine has finished by now
            assert _get(port, "/healthz")[:3:2] == (503, b"shutting down\n")
            assert _get(port, "/metrics")[0] == 200
            c.send(b"still")
            assert c.read_exact(5) == b"still"
        assert proxy.wait(15) == 0
