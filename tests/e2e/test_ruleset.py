"""--ruleset-file (the reference AWF's YAML rulesets, with awf's block:,
urls:, block_urls:, ports: and url: extensions) and --check-config, for
awf-proxy (and awf's --check-config, which needs no command)."""

import os
import subprocess

import pytest

from harness.origin import HELLO_BODY
from harness.util import token, url_has

# A file as the reference AWF documents them: domain and subdomains only.
REFERENCE = """\
# agent egress
version: 1
rules:
  - domain: allowed.test
    subdomains: true
  - domain: other.test
    subdomains: false
"""


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def decision(proxy, url):
    t = token()
    r = proxy.fetch(f"{url}{'&' if '?' in url else '?'}t={t}")
    rec = proxy.log.wait_one(url_has(t))
    return r, rec["decision"], rec["reason"]


def test_reference_ruleset_admits_its_domains(start_proxy, origins, tmp_path):
    rs = write(tmp_path, "rules.yml", REFERENCE)
    p = start_proxy(allow=None, extra=["--ruleset-file", rs])
    P = origins.http.port
    r, d, why = decision(p, f"http://allowed.test:{P}/hello")
    assert (r.status, r.body, d, why) == (200, HELLO_BODY, "allow", "allowed")
    assert decision(p, f"http://a.b.allowed.test:{P}/hello")[1:] == ("allow", "allowed")
    assert decision(p, f"http://other.test:{P}/hello")[1:] == ("allow", "allowed")
    # subdomains: false admits the name alone.
    r, d, why = decision(p, f"http://x.other.test:{P}/hello")
    assert (r.status, d, why) == (403, "deny", "not_allowed")
    assert decision(p, f"http://notallowed.test:{P}/hello")[1:] == ("deny", "not_allowed")


def test_extensions_and_flags_combine(start_proxy, origins, tmp_path):
    """block:, urls:, block_urls:, a rule's url:, ports: and the flags, across
    two ruleset files."""
    P, S = origins.http.port, origins.https.port
    a = write(tmp_path, "a.yml", f"""\
version: 1
rules:
  - "*.wild.test"
  - url: http://other.test/open/*
    methods: [GET]
block:
  - domain: bad.allowed.test
urls:
  - http://other.test/also/*
""")
    b = write(tmp_path, "b.yml", f"""\
version: 1
block_urls:
  - http://other.test/open/secret*
ports: [{P}]
""")
    # --allow-ports names only the TLS origin: the HTTP origin's port comes
    # from the ruleset.
    p = start_proxy(allow="allowed.test,other.test", ports=str(S),
                    extra=["--ruleset-file", a, "--ruleset-file", b])
    assert decision(p, f"http://allowed.test:{P}/hello")[1:] == ("allow", "allowed")
    assert decision(p, f"http://x.wild.test:{P}/hello")[1:] == ("allow", "allowed")
    assert decision(p, f"http://bad.allowed.test:{P}/hello")[1:] == ("deny", "blocked")
    assert decision(p, f"http://other.test:{P}/open/x")[1:] == ("allow", "allowed")
    assert decision(p, f"http://other.test:{P}/also/y")[1:] == ("allow", "allowed")
    assert decision(p, f"http://other.test:{P}/elsewhere")[1:] == ("deny", "url_not_allowed")
    assert decision(p, f"http://other.test:{P}/open/secret1")[1:] == ("deny", "url_blocked")
    r = p.fetch(f"http://other.test:{P}/open/x", method="POST", body=b"x")
    assert r.status == 403
    # A port neither --allow-ports nor a ruleset names.
    assert decision(p, f"http://allowed.test:{origins.http6.port}/hello")[1:] == \
        ("deny", "port_not_allowed")


@pytest.mark.parametrize("text,where,what", [
    ("version: 1\nrules:\n  - domain: a..test\n", ":3:13:", "domain 'a..test': empty label"),
    ("version: 1\nrules:\n  - domain: x.test\n    subdomain: false\n", ":4:5:",
     "unknown key 'subdomain'"),
    ("version: 1\nrules:\n  - domain: x.test\n    subdomains: maybe\n", ":4:17:",
     "subdomains: expected true or false"),
    ("version: 2\n", ":1:10:", "version: '2' is not supported"),
    ("rules: [x.test]\n", ":1:1:", "version: 1 is missing"),
    ("version: 1\nurls: [https://x.test/a]\n", "", "need TLS interception: add --ssl-bump"),
])
def test_bad_ruleset_is_refused_at_start(proxy_bin, tmp_path, text, where, what):
    rs = write(tmp_path, "bad.yml", text)
    r = subprocess.run([proxy_bin, "--listen", "127.0.0.1:0", "--ruleset-file", rs],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, r.stderr
    assert f"awf-proxy: --ruleset-file: {rs}{where}" in r.stderr or not where, r.stderr
    assert what in r.stderr
    assert "listening" not in r.stderr


def test_missing_ruleset_file(proxy_bin, tmp_path):
    missing = str(tmp_path / "nope.yml")
    r = subprocess.run([proxy_bin, "--ruleset-file", missing, "--check-config"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2
    assert f"--ruleset-file: " in r.stderr and "nope.yml" in r.stderr


def check(proxy_bin, *args):
    return subprocess.run([proxy_bin, "--check-config", *args], capture_output=True, text=True,
                          timeout=20)


def test_check_config_ok(proxy_bin, dns, tmp_path):
    rs = write(tmp_path, "rules.yml", REFERENCE + "block: [bad.allowed.test]\nports: [8080]\n")
    log = tmp_path / "access.jsonl"
    r = check(proxy_bin, "--ruleset-file", rs, "-d", "x.test", "--listen", "127.0.0.1:1",
              "--dns-servers", dns.addr, "--log-file", str(log))
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("awf-proxy: configuration OK: 3 allow, 1 block, 0 URL allow, "
                           "0 URL block rules; ports 80,443,8080 (2 sources, 1 file, sha256 ")
    assert "\n" not in line
    assert "listening" not in r.stderr
    assert not log.exists()  # the log is not opened
    # The digest covers the files' bytes: a changed file changes it.
    digest = line.rsplit("sha256 ", 1)[1]
    with open(rs, "a") as f:
        f.write("# a comment\n")
    again = check(proxy_bin, "--ruleset-file", rs, "-d", "x.test", "--dns-servers", dns.addr)
    assert again.returncode == 0 and digest not in again.stdout


@pytest.mark.parametrize("args,what", [
    (["--ruleset-file", "BAD"], "--ruleset-file: "),
    (["-d", "a..b"], "--allow-domains: invalid rule 'a..b'"),
    (["--listen", "nowhere"], "--listen: 'nowhere' is not ADDR:PORT"),
    (["--allow-ports", "0"], "--allow-ports: '0' is not a port"),
    (["--dns-servers", "not-an-address"], ""),
    (["--allow-urls", "https://x.test/a"], "add --ssl-bump"),
])
def test_check_config_errors(proxy_bin, tmp_path, args, what):
    bad = write(tmp_path, "bad.yml", "version: 1\nrules: [{domain: x.test, subdomains: 1}]\n")
    args = [bad if a == "BAD" else a for a in args]
    r = check(proxy_bin, *args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert what in r.stderr
    assert r.stdout == ""


def test_awf_check_config_needs_no_command(tmp_path):
    awf = os.environ.get("AWF_BIN") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "sandbox", "awf")
    if not os.access(awf, os.X_OK):
        pytest.skip("no awf binary")
    rs = write(tmp_path, "rules.yml", REFERENCE)
    r = subprocess.run([awf, "--check-config", "--ruleset-file", rs, "-d", "x.test"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("awf: configuration OK: 3 allow, 0 block")
    bad = write(tmp_path, "bad.yml", "version: 1\nblock: [\"*\"]\n")
    r = subprocess.run([awf, "--check-config", "--ruleset-file", bad], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 125
    assert f"awf: --ruleset-file: {bad}:2:9: domain '*': a wildcard alone" in r.stderr
