"""Live reload (SIGHUP): every rule file and ruleset is read again; if all
parse, new requests and connections are judged by the new rules (a keep-alive
connection's next request too, the DNS server's next question too) while what
was already admitted keeps its decision; if one fails, the rules in force stay.
Either way one `config` event is logged. Signals in a storm coalesce."""

import signal
import subprocess
import time

import pytest

from harness.client import request_bytes
from harness.origin import HELLO_BODY
from harness.util import by, token, url_has

from test_dns import dig


def write(path, text):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)  # as an editor or a git checkout would: never a half-written file


def configs(p):
    return [r for r in p.log.all_records() if r.get("event") == "config"]


def hup_and_wait(p, count):
    """SIGHUP, then wait for the count-th config event; return it."""
    p.send_signal(signal.SIGHUP)
    return p.log.wait(by(event="config"), count=count, every=True)[count - 1]


def decision(p, host, port, path="/hello"):
    t = token()
    r = p.fetch(f"http://{host}:{port}{path}?t={t}")
    rec = p.log.wait_one(url_has(t))
    return r.status, rec["decision"], rec["reason"]


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "allow.txt"
    path.write_text("allowed.test\n")
    return path


def test_rule_added_admits_a_new_connection(start_proxy, origins, rules_file):
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules_file),
                                       "--block-domains", "bad.other.test"])
    P = origins.http.port
    assert decision(p, "other.test", P) == (403, "deny", "not_allowed")
    assert configs(p) == []  # nothing logged at start
    write(rules_file, "allowed.test\nother.test  # added\n")
    c = hup_and_wait(p, 1)
    assert c["ok"] is True
    assert (c["allow_rules"], c["block_rules"]) == (2, 1)  # the inline block stays
    assert (c["url_allow_rules"], c["url_block_rules"]) == (0, 0)
    assert c["sources"] == 2 and c["files"] == 1
    assert c["digest"].startswith("sha256:") and len(c["digest"]) == 7 + 64
    assert "error" not in c and "warning" not in c
    assert decision(p, "other.test", P) == (200, "allow", "allowed")
    assert decision(p, "bad.other.test", P) == (403, "deny", "blocked")
    assert stderr_has(p, "awf-proxy: reload: rules in force: 2 allow, 1 block")
    # A rule removed: denied again; the digest follows the file's bytes.
    write(rules_file, "allowed.test\n")
    c2 = hup_and_wait(p, 2)
    assert c2["ok"] is True and c2["allow_rules"] == 1 and c2["digest"] != c["digest"]
    assert decision(p, "other.test", P) == (403, "deny", "not_allowed")


def test_ruleset_reload_changes_domains_urls_and_ports(start_proxy, origins, tmp_path):
    P, S = origins.http.port, origins.https.port
    rs = tmp_path / "rules.yml"
    write(rs, "version: 1\nrules: [allowed.test]\n")
    p = start_proxy(allow=None, ports=str(S), extra=["--ruleset-file", str(rs)])
    assert decision(p, "allowed.test", P)[2] == "port_not_allowed"
    write(rs, f"version: 1\nrules: [allowed.test, other.test]\n"
              f"urls: [http://other.test/hello*]\nports: [{P}]\n")
    c = hup_and_wait(p, 1)
    assert c["ok"] is True and c["allow_rules"] == 2 and c["url_allow_rules"] == 1
    assert c["ports"] == ",".join(str(x) for x in sorted([P, S]))
    assert decision(p, "allowed.test", P) == (200, "allow", "allowed")
    assert decision(p, "other.test", P, "/hello") == (200, "allow", "allowed")
    assert decision(p, "other.test", P, "/no") == (403, "deny", "url_not_allowed")


def stderr_has(p, text, timeout=5.0):
    return p.stderr.wait_for(lambda line: text in line, timeout) is not None


@pytest.mark.parametrize("broken,line,what,prefix", [
    ("version: 1\nrules:\n  - domain: other..test\n", 3, "empty label", "--ruleset-file: "),
    ("version: 1\nrules: [other.test\n", 3, "not YAML", "--ruleset-file: "),
    ("version: 1\nurls: [https://other.test/x]\n", 0, "add --ssl-bump", "'https://other.test/x'"),
    (None, 0, "No such file", "--ruleset-file: "),  # the file is gone
])
def test_broken_file_keeps_the_rules_in_force(start_proxy, origins, tmp_path, broken, line, what,
                                              prefix):
    P = origins.http.port
    rs = tmp_path / "rules.yml"
    write(rs, "version: 1\nrules: [allowed.test]\n")
    p = start_proxy(allow=None, extra=["--ruleset-file", str(rs)])
    if broken is None:
        rs.unlink()
    else:
        write(rs, broken)
    c = hup_and_wait(p, 1)
    assert c["ok"] is False, c
    assert what in c["error"] and c["error"].startswith(prefix), c
    if line:
        assert c["file"] == str(rs) and c["line"] == line
        assert f"{rs}:{line}:" in c["error"]
    for k in ("allow_rules", "digest", "ports"):
        assert k not in c
    assert p.running()
    assert stderr_has(p, "awf-proxy: reload: the rules in force stay: " + prefix)
    # The old rules judge as before.
    assert decision(p, "allowed.test", P) == (200, "allow", "allowed")
    assert decision(p, "other.test", P) == (403, "deny", "not_allowed")
    # Fixed: the next SIGHUP applies it.
    write(rs, "version: 1\nrules: [allowed.test, other.test]\n")
    assert hup_and_wait(p, 2)["ok"] is True
    assert decision(p, "other.test", P) == (200, "allow", "allowed")


def test_keep_alive_next_request_uses_the_new_rules(start_proxy, origins, rules_file):
    """A connection opened before the reload: its next request is judged by
    the new rules (in both directions)."""
    P = origins.http.port
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules_file)])
    with p.connect() as conn:
        t1 = token()
        conn.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t1}",
                                f"allowed.test:{P}"))
        r = conn.read_response()
        assert r.status == 200 and r.body == HELLO_BODY
        write(rules_file, "other.test\n")
        hup_and_wait(p, 1)
        t2 = token()
        conn.send(request_bytes("GET", f"http://other.test:{P}/hello?t={t2}", f"other.test:{P}"))
        assert conn.read_response().status == 200
        t3 = token()
        conn.send(request_bytes("GET", f"http://allowed.test:{P}/hello?t={t3}",
                                f"allowed.test:{P}"))
        assert conn.read_response().status == 403
    recs = [p.log.wait_one(url_has(t)) for t in (t1, t2, t3)]
    assert len({r["conn"] for r in recs}) == 1  # one connection throughout
    assert [(r["decision"], r["reason"]) for r in recs] == [
        ("allow", "allowed"), ("allow", "allowed"), ("deny", "not_allowed")]


def test_tunnel_in_flight_keeps_its_decision(start_proxy, origins, rules_file):
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules_file)])
    c, r = p.tunnel(f"allowed.test:{origins.echo.port}")
    with c:
        assert r.status == 200
        c.send(b"before")
        assert c.read_exact(6) == b"before"
        write(rules_file, "other.test\n")
        hup_and_wait(p, 1)
        c.send(b"after")  # admitted before the reload: still relayed
        assert c.read_exact(5) == b"after"
        c2, r2 = p.tunnel(f"allowed.test:{origins.echo.port}")  # a new one is judged anew
        with c2:
            assert r2.status == 403


def test_dns_server_answers_by_the_new_rules(start_proxy, rules_file):
    p = start_proxy(allow=None, dns_listen=("127.0.0.1:0",),
                    extra=["--allow-domains-file", str(rules_file)])
    assert dig(p, "other.test", "A")[0] == "NXDOMAIN"
    assert dig(p, "allowed.test", "A")[0] == "NOERROR"
    write(rules_file, "other.test\n")
    hup_and_wait(p, 1)
    status, _flags, answers = dig(p, "other.test", "A")
    assert status == "NOERROR" and answers[0][3] == "127.0.0.1"
    assert dig(p, "allowed.test", "A")[0] == "NXDOMAIN"


def test_sighup_storm_coalesces(start_proxy, origins, rules_file):
    P = origins.http.port
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules_file)])
    write(rules_file, "allowed.test\nother.test\n")
    for _ in range(200):
        p.send_signal(signal.SIGHUP)
    p.log.wait(by(event="config"), count=1, every=True)
    time.sleep(0.6)  # room for the coalesced reloads to run
    n = len(configs(p))
    assert 1 <= n <= 5, n  # at most one every 200 ms, whatever the signals
    assert all(c["ok"] for c in configs(p))
    assert p.running()
    assert decision(p, "other.test", P) == (200, "allow", "allowed")
    # The last signal is always followed by a reload that reads the file after it.
    write(rules_file, "allowed.test\n")
    p.send_signal(signal.SIGHUP)
    p.log.wait(by(event="config"), count=n + 1, every=True)
    assert decision(p, "other.test", P) == (403, "deny", "not_allowed")


def test_reload_outside_the_bump_ca_constraints_is_flagged(start_proxy, tmp_path):
    """--ssl-bump's CA is made at start with name constraints for the https://
    rules' domains: a reload naming another domain is applied but flagged."""
    rs = tmp_path / "rules.yml"
    write(rs, "version: 1\nurls: [https://allowed.test/x/*]\n")
    p = start_proxy(extra=["--ssl-bump", "--ruleset-file", str(rs)])
    write(rs, "version: 1\nurls: [https://allowed.test/x/*, https://sub.allowed.test/y]\n")
    c = hup_and_wait(p, 1)
    assert c["ok"] is True and "warning" not in c
    write(rs, "version: 1\nurls: [https://allowed.test/x/*, https://other.test/y]\n")
    c = hup_and_wait(p, 2)
    assert c["ok"] is True and c["url_allow_rules"] == 2
    assert c["warning"].startswith("other.test: outside the name constraints")
    assert stderr_has(p, "awf-proxy: warning: reload: other.test: outside")


def test_inline_rules_are_not_reread(start_proxy, origins):
    """Only files are read again; a reload with no file changes nothing but
    still logs its config event."""
    p = start_proxy()
    c = hup_and_wait(p, 1)
    assert c["ok"] is True and c["files"] == 0 and c["allow_rules"] == 2
    assert decision(p, "allowed.test", origins.http.port) == (200, "allow", "allowed")


def test_check_config_exit_codes_follow_the_file(proxy_bin, tmp_path):
    """The CI use: the same flags as the running proxy."""
    rs = tmp_path / "rules.yml"
    write(rs, "version: 1\nrules: [allowed.test]\n")
    ok = subprocess.run([proxy_bin, "--check-config", "--ruleset-file", str(rs)],
                        capture_output=True, text=True, timeout=20)
    assert ok.returncode == 0 and "1 allow" in ok.stdout
    write(rs, "version: 1\nrules: [allowed.test]\nrulez: []\n")
    bad = subprocess.run([proxy_bin, "--check-config", "--ruleset-file", str(rs)],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2
    assert f"{rs}:3:1: unknown key 'rulez'" in bad.stderr


def test_awf_logs_reads_config_events(start_proxy, rules_file):
    """`awf logs` takes config events as records, not decisions and not
    malformed lines; `show` prints them."""
    import os
    awf = os.environ.get("AWF_BIN") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "sandbox", "awf")
    if not os.access(awf, os.X_OK):
        pytest.skip("no awf binary")
    p = start_proxy(allow=None, extra=["--allow-domains-file", str(rules_file)])
    ok = hup_and_wait(p, 1)
    rules_file.write_text("a..b\n")
    hup_and_wait(p, 2)
    stats = subprocess.run([awf, "logs", "stats", p.log.path], capture_output=True, text=True,
                           timeout=30)
    assert stats.returncode == 0 and "0 malformed lines" in stats.stdout, stats
    show = subprocess.run([awf, "logs", "show", p.log.path], capture_output=True, text=True,
                          timeout=30)
    assert show.returncode == 0, show
    assert f"config  ok    {ok['digest']}" in show.stdout
    assert "config  REFUSED --allow-domains-file: " in show.stdout
