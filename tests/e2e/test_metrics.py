"""--metrics-listen: the Prometheus text format on GET /metrics, parsed with a
real parser (prometheus_client), whose counters move as requests go
through; GET /healthz (503 once a shutdown started); other paths, methods
and malformed requests refused; the number of scrape connections bounded."""

import http.client
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness.util import by

parser = pytest.importorskip("prometheus_client.parser")

METRICS_RE = re.compile(r"awf-proxy: metrics listening on ([0-9.]+):(\d+)\s*$")


def _metrics_port(p):
    m = p.stderr.wait_for(METRICS_RE.search, 10)
    assert m, p.stderr.text()
    return int(m.group(2))


@pytest.fixture
def mproxy(start_proxy):
    p = start_proxy(extra=["--metrics-listen", "127.0.0.1:0"])
    p.metrics_port = _metrics_port(p)
    return p


def _get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def scrape(port):
    """{(sample name, sorted labels): value}, and the families by name."""
    status, headers, body = _get(port, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4"), headers
    samples, families = {}, {}
    for fam in parser.text_string_to_metric_families(body.decode("utf-8")):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, families


def val(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_scrape(port, pred, timeout=5.0):
    """Scrape until pred(samples) holds (records are counted as they are
    written, a moment after the response)."""
    deadline = time.monotonic() + timeout
    while True:
        samples, _ = scrape(port)
        if pred(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def test_counters_move_with_requests(mproxy, origins, proxy_bin):
    port = mproxy.metrics_port
    before, families = scrape(port)
    # Every family is there with its type, before any traffic.
    types = {n: f.type for n, f in families.items()}
    for name, typ in [("awf_build_info", "gauge"), ("awf_requests", "counter"),
                      ("awf_connections", "counter"), ("awf_connections_active", "gauge"),
                      ("awf_tunnels_active", "gauge"), ("awf_relayed_bytes", "counter"),
                      ("awf_upstream_connect_seconds", "histogram"),
                      ("awf_dns_lookup_seconds", "histogram"),
                      ("awf_dns_cache_hits", "counter"), ("awf_dns_cache_misses", "counter"),
                      ("awf_log_lines", "counter"), ("awf_log_lines_dropped", "counter"),
                      ("awf_rule_reloads", "counter"), ("awf_rule_reload_failures", "counter"),
                      ("awf_denied_hosts_top", "gauge")]:
        assert types.get(name) == typ, (name, types)
    version = subprocess.run([proxy_bin, "--version"], capture_output=True,
                             text=True).stdout.split()[1]
    build = [k for k in before if k[0] == "awf_build_info"]
    assert len(build) == 1 and dict(build[0][1])["version"] == version, build

    P = origins.http.port
    for _ in range(2):
        assert mproxy.fetch(f"http://allowed.test:{P}/hello").status == 200
    for _ in range(3):
        assert mproxy.fetch(f"http://denied.test:{P}/x").status == 403
    mproxy.log.wait(by(event="http", host="allowed.test"), count=2)
    mproxy.log.wait(by(event="http", host="denied.test"), count=3)

    def moved(s):
        return (val(s, "awf_requests_total", event="http", decision="deny", reason="not_allowed")
                - val(before, "awf_requests_total", event="http", decision="deny",
                      reason="not_allowed") >= 3)

    after = wait_scrape(port, moved)
    d = lambda name, **lab: val(after, name, **lab) - val(before, name, **lab)  # noqa: E731
    assert d("awf_requests_total", event="http", decision="allow", reason="allowed") == 2
    assert d("awf_requests_total", event="http", decision="deny", reason="not_allowed") == 3
    assert d("awf_connections_accepted_total") == 5
    assert d("awf_relayed_bytes_total", direction="down") > 0
    assert d("awf_relayed_bytes_total", direction="up") > 0
    assert val(after, "awf_denied_hosts_top", host="denied.test") == 3
    assert val(after, "awf_denied_hosts_top", host="allowed.test") == 0
    # One lookup of allowed.test (a miss), then the cache (a hit); a connect
    # per request that was not served from the upstream pool.
    assert d("awf_dns_cache_misses_total") >= 1
    assert d("awf_dns_lookup_seconds_count") >= 1
    assert d("awf_dns_cache_hits_total") + d("awf_dns_cache_misses_total") >= 2
    assert d("awf_upstream_connect_seconds_count") >= 1
    assert val(after, "awf_upstream_connect_seconds_bucket", le="+Inf") == \
        val(after, "awf_upstream_connect_seconds_count")
    # Each record written is a log line (5 final records, their open records).
    assert d("awf_log_lines_total") >= 5
    assert val(after, "awf_log_lines_dropped_total") == 0
    for state in ("accepted", "http", "tunnel_hello", "tunnel", "draining", "closing"):
        assert ("awf_connections_active", (("state", state),)) in after


def test_tunnel_gauge_and_connect_counter(mproxy, origins):
    port = mproxy.metrics_port
    c, r = mproxy.tunnel(f"allowed.test:{origins.echo.port}")
    with c:
        assert r.status == 200
        c.send(b"ping\n")
        assert c.read_exact(5) == b"ping\n"
        s = wait_scrape(port, lambda s: val(s, "awf_tunnels_active") == 1)
        assert val(s, "awf_tunnels_active") == 1
        assert val(s, "awf_connections_active", state="tunnel") == 1
    s = wait_scrape(port, lambda s: val(s, "awf_connections_total", event="connect",
                                        decision="allow", reason="allowed") == 1
                    and val(s, "awf_tunnels_active") == 0)
    assert val(s, "awf_tunnels_active") == 0
    assert val(s, "awf_connections_total", event="connect", decision="allow",
               reason="allowed") == 1
    assert val(s, "awf_relayed_bytes_total", direction="up") >= 5


def test_healthz_and_refusals(mproxy):
    port = mproxy.metrics_port
    assert _get(port, "/healthz")[::2] == (200, b"ok\n")
    status, headers, body = _get(port, "/metrics", "HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    assert _get(port, "/metrics?x=1")[0] == 200
    assert _get(port, "/nope")[0] == 404
    assert _get(port, "/")[0] == 404
    status, headers, _ = _get(port, "/metrics", "POST")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert _get(port, "/healthz", "DELETE")[0] == 405
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400 ")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
        assert s.recv(100).startswith(b"HTTP/1.1 431 ")


def test_scrape_connections_bounded(mproxy):
    port = mproxy.metrics_port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(16)]
    try:
        extra = socket.create_connection(("127.0.0.1", port), timeout=5)
        with extra:
            try:  # closed at once: over the bound (a FIN, or a reset)
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert extra.recv(100) == b""
            except ConnectionResetError:
                pass
        # The proxy itself is not affected.
        assert mproxy.fetch("http://denied.test:1/").status == 403
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 5
    while True:  # the idle ones close; scrapes work again
        try:
            if _get(port, "/healthz")[0] == 200:
                break
        except (ConnectionError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_healthz_503_while_shutting_down(mproxy, origins):
    port = mproxy.metrics_port
    c, r = mproxy.tunnel(f"allowed.test:{origins.echo.port}")  # keeps the drain going
    with c:
        assert r.status == 200
        mproxy.send_signal(signal.SIGTERM)
        assert mproxy.stderr.wait_for(lambda l: "finishing open connections" in l, 5)
        status, _, body = _get(port, "/healthz")
        assert (status, body) == (503, b"shutting down\n")
        assert _get(port, "/metrics")[0] == 200  # still scraped while draining
    assert mproxy.wait(15) == 0


def test_promtool_lint(mproxy, origins):
    """Prometheus's own linter accepts a scrape (when promtool is installed)."""
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian: prometheus)")
    assert mproxy.fetch(f"http://denied.test:{origins.http.port}/").status == 403
    mproxy.log.wait_one(by(event="http", host="denied.test"))
    _, _, body = _get(mproxy.metrics_port, "/metrics")
    res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                         timeout=30)
    assert res.returncode == 0 and not res.stdout.strip(), res


def test_rule_reloads_counted(start_proxy, tmp_path):
    """SIGHUP re-reads the rules files: a reload that takes effect and one
    that is refused (a bad rule) each move their counter."""
    rules = tmp_path / "allow.txt"
    rules.write_text("allowed.test\n")
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules),
                                       "--metrics-listen", "127.0.0.1:0"])
    port = _metrics_port(p)
    s, _ = scrape(port)
    assert val(s, "awf_rule_reloads_total") == 0 and val(s, "awf_rule_reload_failures_total") == 0
    rules.write_text("allowed.test\nother.test\n")
    p.send_signal(signal.SIGHUP)
    s = wait_scrape(port, lambda s: val(s, "awf_rule_reloads_total") == 1)
    assert val(s, "awf_rule_reloads_total") == 1
    rules.write_text("bad..name\n")
    p.send_signal(signal.SIGHUP)
    s = wait_scrape(port, lambda s: val(s, "awf_rule_reload_failures_total") == 1)
    assert val(s, "awf_rule_reload_failures_total") == 1
    assert val(s, "awf_rule_reloads_total") == 1


@pytest.mark.parametrize("value", ["nope", "127.0.0.1", "1.2.3.4:99999"])
def test_bad_metrics_listen(proxy_bin, value):
    res = subprocess.run([proxy_bin, "--metrics-listen", value], capture_output=True, timeout=10)
    assert res.returncode == 2, res
    assert b"metrics-listen" in res.stderr
