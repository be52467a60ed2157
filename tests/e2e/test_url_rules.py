"""URL rules on awf-proxy's explicit HTTP path (--allow-urls, --block-urls):
a host with allow URL rules admits only the requests one of them matches,
judged on every reading of the normalised path (no '..', '%2e%2e', '..%2F',
'..%5C' or '..;' escape), a block wins,
method lists, bad patterns and https:// patterns refused at start."""

import subprocess

import pytest

from harness.client import request_bytes
from harness.util import by, token, url_has

ALLOW_URLS = "http://allowed.test/ok/*, GET,HEAD http://allowed.test/get/*"
BLOCK_URLS = "http://allowed.test/ok/secret/*"


@pytest.fixture
def url_proxy(start_proxy):
    return start_proxy(extra=["--allow-urls", ALLOW_URLS, "--block-urls", BLOCK_URLS])


def _fetch(p, origins, path, method="GET"):
    """Send `path` byte for byte (no client normalisation); the request, the
    response and its log record."""
    t = token()
    sep = "&" if "?" in path else "?"
    r = p.fetch(f"http://allowed.test:{origins.http.port}{path}{sep}t={t}", method=method)
    return t, r, p.log.wait_one(url_has(t))


@pytest.mark.parametrize("path,method,reason", [
    ("/ok/x", "GET", "allowed"),
    ("/ok/a/../b", "GET", "allowed"),           # stays under /ok/
    ("/%6fk/x", "GET", "allowed"),              # an unreserved escape decoded
    ("/no/x", "GET", "url_not_allowed"),
    ("/ok/../no/x", "GET", "url_not_allowed"),  # sent raw: the proxy resolves it
    ("/ok/%2e%2e/no/x", "GET", "url_not_allowed"),
    ("/ok/.%2E/no/x", "GET", "url_not_allowed"),
    ("/OK/x", "GET", "url_not_allowed"),        # the path is case-sensitive
    ("/ok//../no/x", "GET", "url_not_allowed"),  # ambiguous: refused
    # read as servers may: %2F, %5C, '\\' as '/', ";params" dropped
    ("/ok/..%2Fno/x", "GET", "url_not_allowed"),
    ("/ok/..%2fno/x", "GET", "url_not_allowed"),
    ("/ok/..%5Cno/x", "GET", "url_not_allowed"),
    ("/ok/..\\no/x", "GET", "url_not_allowed"),
    ("/ok/..;/no/x", "GET", "url_not_allowed"),
    ("/ok/%2e%2e;x=1/no/x", "GET", "url_not_allowed"),
    ("/ok/a%2Fb;v=1", "GET", "allowed"),       # every reading under /ok/
    ("/ok/secret%2Fk", "GET", "url_blocked"),   # one reading is blocked
    ("/ok/secret;x/k", "GET", "url_blocked"),
    ("/ok/secret/k", "GET", "url_blocked"),     # a block wins over /ok/*
    ("/ok/x/../secret/k", "GET", "url_blocked"),
    ("/get/x", "GET", "allowed"),
    ("/get/x", "HEAD", "allowed"),
    ("/get/x", "POST", "url_not_allowed"),      # the rule names GET,HEAD only
    ("/ok/x", "POST", "allowed"),               # no method list: any method
])
def test_url_decision(url_proxy, origins, path, method, reason):
    t, r, rec = _fetch(url_proxy, origins, path, method)
    assert rec["reason"] == reason, rec
    if reason == "allowed":
        assert r.status != 403 and rec["decision"] == "allow", r.head
        assert len(origins.http.state.find(t)) == 1
    else:
        assert r.status == 403, r.head
        assert rec["decision"] == "deny" and rec["status"] == 403, rec
        if method != "HEAD":
            assert reason.replace("_", " ") in r.text or reason in r.text or \
                "--allow-urls" in r.text or "--block-urls" in r.text, r.text
        assert origins.http.state.find(t) == []


def test_host_without_url_rules_unchanged(url_proxy, origins):
    """other.test has no URL rules: the domain rule alone admits any path."""
    t = token()
    r = url_proxy.fetch(f"http://other.test:{origins.http.port}/no/../x?t={t}")
    rec = url_proxy.log.wait_one(url_has(t))
    assert r.status != 403 and rec["reason"] == "allowed", rec


def test_url_rules_do_not_admit_a_host(start_proxy, origins):
    """URL rules narrow a host the domain rules admit; they admit none."""
    p = start_proxy(allow="other.test", extra=["--allow-urls", "http://allowed.test/ok/*"])
    t = token()
    r = p.fetch(f"http://allowed.test:{origins.http.port}/ok/x?t={t}")
    rec = p.log.wait_one(url_has(t))
    assert r.status == 403 and rec["reason"] == "not_allowed", rec


def test_url_rules_file(start_proxy, origins, tmp_path):
    f = tmp_path / "urls.txt"
    f.write_text("# rules\nGET http://allowed.test/ok/*   # reads only\n")
    p = start_proxy(extra=["--allow-urls-file", str(f)])
    t, r, rec = _fetch(p, origins, "/ok/x")
    assert rec["reason"] == "allowed", rec
    t, r, rec = _fetch(p, origins, "/ok/x", method="DELETE")
    assert r.status == 403 and rec["reason"] == "url_not_allowed", rec


def test_audit_admits_and_says_why(start_proxy, origins):
    p = start_proxy(extra=["--audit", "--allow-urls", "http://allowed.test/ok/*"])
    t, r, rec = _fetch(p, origins, "/ok/../no/x")
    assert r.status != 403 and rec["decision"] == "allow", rec
    assert rec["reason"] == "url_not_allowed" and rec.get("would_deny") is True, rec


def _run(proxy_bin, args):
    res = subprocess.run([proxy_bin] + args, capture_output=True, timeout=10,
                         stdin=subprocess.DEVNULL)
    return res.returncode, res.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("flag,value,why", [
    ("--allow-urls", "allowed.test/ok/*", "'allowed.test/ok/*': a URL rule starts with http://"),
    ("--allow-urls", "http://allowed.test:8080/x", "'http://allowed.test:8080/x': a port"),
    ("--block-urls", "http://allowed.test/a/../b", "'http://allowed.test/a/../b': '.', '..'"),
    ("--allow-urls", "get http://allowed.test/", "'get': a URL rule starts"),
    ("--allow-urls", "http://a..test/", "not a valid host name"),
])
def test_bad_pattern_refused(proxy_bin, flag, value, why):
    rc, err = _run(proxy_bin, ["-d", "allowed.test", flag, value])
    assert rc == 2, err
    assert f"awf-proxy: {flag}: " in err and why in err, err


def test_bad_pattern_in_file_names_the_line(proxy_bin, tmp_path):
    f = tmp_path / "urls.txt"
    f.write_text("http://allowed.test/ok/*\nftp://allowed.test/\n")
    rc, err = _run(proxy_bin, ["-d", "allowed.test", "--allow-urls-file", str(f)])
    assert rc == 2, err
    assert f"{f}:2: 'ftp://allowed.test/'" in err, err


@pytest.mark.parametrize("flag", ["--allow-urls", "--block-urls"])
def test_https_pattern_needs_ssl_bump(proxy_bin, flag):
    rc, err = _run(proxy_bin, ["-d", "allowed.test", flag, "https://allowed.test/ok/*"])
    assert rc == 2, err
    assert "'https://allowed.test/ok/*'" in err and "--ssl-bump" in err, err
    assert "add --ssl-bump" in err, err


def test_raw_tunnel_to_url_ruled_host_refused(url_proxy, origins):
    """A CONNECT tunnel carrying plain HTTP to a host with URL rules would
    pass requests no rule judged: refused at its first bytes (regression:
    the tunnel used to relay them raw, and /no/x reached the origin)."""
    P = origins.http.port
    t = token()
    inner = request_bytes("GET", f"/no/x?t={t}", f"allowed.test:{P}")
    c, r = url_proxy.tunnel(f"allowed.test:{P}", extra=inner)
    with c:
        assert r.status == 200
        assert c.read_to_eof() == b""  # closed, nothing relayed
    rec = url_proxy.log.wait_one(by(event="connect", host="allowed.test", port=P))
    assert rec["decision"] == "deny" and rec["reason"] == "url_not_allowed", rec
    assert rec["bytes_up"] == 0, rec
    assert not origins.http.state.find(t)
