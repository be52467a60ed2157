"""Secrets the proxy injects (--secret, docs/secrets.md), through awf-proxy:
clients hold a placeholder (--secret-placeholders-out); the proxy writes the
real value in its place only in requests dialled to the secret's host (over
interception, which --secret implies), never to another allowed host, never
because a Host header or SNI names the secret's host, never through a
redirect; an echo of the value comes back as the placeholder; the log names
secrets, never their values."""

import hashlib
import json
import os
import signal
import stat
import subprocess
import urllib.parse

import pytest

from harness.client import curl
from harness.util import both, by, token, url_has

NAME = "API_KEY"


@pytest.fixture
def value():
    return "sk-test-" + token() + token()  # 32 bytes: letters, digits, '-'


@pytest.fixture
def secret_proxy(start_proxy, certfile, value, tmp_path):
    """Factory: awf-proxy with --secret API_KEY=allowed.test (value from its
    environment), trusting the origins' certificate; returns (proxy, the
    placeholder, the run CA's path)."""

    def _start(*extra, secret=f"{NAME}=allowed.test"):
        ca = str(tmp_path / "ca.pem")
        out = str(tmp_path / "placeholders")
        env = dict(os.environ, SSL_CERT_FILE=certfile)
        env[NAME] = value
        p = start_proxy(env=env, extra=["--secret", secret, "--ssl-bump-ca-out", ca,
                                        "--secret-placeholders-out", out] + list(extra))
        lines = open(out).read().splitlines()
        ph = dict(line.split("=", 1) for line in lines)[NAME]
        return p, ph, ca

    return _start


def _curl(p, ca, url, *more):
    r = curl(["-x", f"http://{p.host}:{p.port}", "--cacert", ca, *more, url])
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def _seen(origin, tok):
    """What the origin received for the request carrying tok: its path and headers."""
    reqs = origin.state.find(tok)
    assert len(reqs) == 1, reqs
    return reqs[0]["path"], dict((k.lower(), v) for k, v in reqs[0]["headers"])


def test_placeholder_file_and_shape(secret_proxy, value, tmp_path):
    p, ph, _ = secret_proxy()
    out = tmp_path / "placeholders"
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert len(ph) == len(value) and ph.startswith("AWFPH") and ph != value
    assert all(c.isalnum() or c in "-_" for c in ph), ph
    p2, ph2, _ = secret_proxy()
    assert ph2 != ph  # distinct per run


def test_injected_in_header_and_query_echo_scrubbed(secret_proxy, origins, value):
    p, ph, ca = secret_proxy()
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}&key={ph}",
                         "-H", f"Authorization: Bearer {ph}", "-H", f"x-api-key: {ph}")
    assert rc == 0, err
    path, hdrs = _seen(origins.https, t)
    assert f"key={value}" in path
    assert hdrs["authorization"] == f"Bearer {value}" and hdrs["x-api-key"] == value
    # The origin echoed the value: the client gets the placeholder in its place.
    assert value not in out and ph in out
    echoed = json.loads(out)
    assert dict(echoed["headers"])["Authorization"] == f"Bearer {ph}", out
    rec = p.log.wait_one(both(by(event="https"), url_has(t)))
    assert rec["secrets"] == [NAME] and rec["decision"] == "allow", rec
    assert "secrets_misdirected" not in rec
    opened = p.log.wait_one(both(by(event="open"), url_has(t)), every=True)
    assert opened["secrets"] == [NAME], opened
    assert value not in p.log.raw()  # names only, never values (the url is the client's)


def test_other_allowed_host_gets_the_placeholder(secret_proxy, origins, value):
    p, ph, ca = secret_proxy()
    # HTTPS to another allowed host is tunnelled, not opened: the bytes are the client's.
    t = token()
    rc, out, err = _curl(p, ca, f"https://other.test:{origins.https.port}/echo?t={t}&key={ph}",
                         "-k", "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    path, hdrs = _seen(origins.https, t)
    assert value not in path + json.dumps(hdrs) and hdrs["authorization"] == f"Bearer {ph}"
    # Plain HTTP to it: the placeholder goes as is, and the record says so.
    t = token()
    rc, out, err = _curl(p, ca, f"http://other.test:{origins.http.port}/echo?t={t}&key={ph}",
                         "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    path, hdrs = _seen(origins.http, t)
    assert value not in path + json.dumps(hdrs) and f"key={ph}" in path
    rec = p.log.wait_one(both(by(event="http"), url_has(t)))
    assert rec["secrets_misdirected"] == [NAME] and "secrets" not in rec, rec


def test_strict_denies_a_misdirected_placeholder(secret_proxy, origins):
    p, ph, ca = secret_proxy("--secret-strict")
    t = token()
    rc, out, err = _curl(p, ca, f"http://other.test:{origins.http.port}/echo?t={t}",
                         "-H", f"Authorization: Bearer {ph}", "-o", "/dev/null",
                         "-w", "%{http_code}")
    assert out == "403", (out, err)
    assert origins.http.state.find(t) == []
    rec = p.log.wait_one(both(by(event="http"), url_has(t)))
    assert rec["reason"] == "secret_misdirected" and rec["decision"] == "deny", rec
    # A request without a placeholder is not affected.
    rc, out, err = _curl(p, ca, f"http://other.test:{origins.http.port}/hello?t={token()}",
                         "-o", "/dev/null", "-w", "%{http_code}")
    assert out == "200", (out, err)


def test_host_header_or_sni_naming_the_secret_host(secret_proxy, origins, value):
    p, ph, ca = secret_proxy()
    # Plain HTTP to other.test with Host: allowed.test: the URI's host is dialled.
    t = token()
    rc, out, err = _curl(p, ca, f"http://other.test:{origins.http.port}/echo?t={t}",
                         "-H", "Host: allowed.test", "-H", f"Authorization: Bearer {ph}")
    _, hdrs = _seen(origins.http, t)
    assert hdrs["authorization"] == f"Bearer {ph}", hdrs
    # Inside the secret host's intercepted TLS, a Host naming another host: refused.
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "-H", f"Host: other.test:{origins.https.port}",
                         "-H", f"Authorization: Bearer {ph}", "-o", "/dev/null",
                         "-w", "%{http_code}")
    assert out == "421", (out, err)
    assert origins.https.state.find(t) == []
    # CONNECT to other.test with an SNI naming allowed.test: refused at the hello.
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "--connect-to", f"allowed.test:{origins.https.port}:other.test:"
                         f"{origins.https.port}", "-H", f"Authorization: Bearer {ph}")
    assert rc != 0
    assert origins.https.state.find(t) == []
    assert value not in p.log.raw()


def test_redirect_to_another_host_carries_the_placeholder(secret_proxy, origins, value):
    p, ph, ca = secret_proxy()
    t, t2 = token(), token()
    to = urllib.parse.quote(f"https://other.test:{origins.https.port}/echo?u={t2}", safe="")
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/redirect?t={t}&to={to}",
                         "-k", "-L", "--location-trusted", "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    first = origins.https.state.find(f"t={t}")
    assert len(first) == 1  # the proxy passed the 302 on; it never followed it
    assert len(origins.https.state.find(f"?u={t2}")) == 1  # the client did
    _, hdrs = _seen(origins.https, f"?u={t2}")
    assert hdrs["authorization"] == f"Bearer {ph}", hdrs  # the client followed: placeholder


def test_plain_http_to_the_secret_host(secret_proxy, origins, value):
    p, ph, ca = secret_proxy()
    t = token()
    rc, out, err = _curl(p, ca, f"http://allowed.test:{origins.http.port}/echo?t={t}",
                         "-H", f"Authorization: Bearer {ph}", "-o", "/dev/null",
                         "-w", "%{http_code}")
    assert out == "403" and origins.http.state.find(t) == [], (out, err)
    assert p.log.wait_one(url_has(t))["reason"] == "secret_plaintext"
    p, ph, ca = secret_proxy("--secret-allow-plaintext")
    t = token()
    rc, out, err = _curl(p, ca, f"http://allowed.test:{origins.http.port}/echo?t={t}",
                         "-H", f"Authorization: Bearer {ph}")
    _, hdrs = _seen(origins.http, t)
    assert hdrs["authorization"] == f"Bearer {value}" and value not in out and ph in out


def test_trace_refused_on_an_intercepted_host(secret_proxy, origins):
    p, ph, ca = secret_proxy()
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "-X", "TRACE", "-o", "/dev/null", "-w", "%{http_code}")
    assert out == "405", (out, err)
    assert origins.https.state.find(t) == []
    assert p.log.wait_one(url_has(t))["reason"] == "method_not_allowed"


@pytest.mark.parametrize("in_body", [False, True])
def test_body_only_with_secret_in_body(secret_proxy, origins, value, in_body):
    p, ph, ca = secret_proxy(*(["--secret-in-body", NAME] if in_body else []))
    t = token()
    body = ("x" * 70000 + ph + "y" * 1000 + ph).encode()  # across reads and chunks
    rc, out, err = _post(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}", body)
    assert rc == 0, err
    sent = body.replace(ph.encode(), value.encode()) if in_body else body
    got = json.loads(out)
    assert got["body_len"] == len(body)
    assert got["body_sha256"] == hashlib.sha256(sent).hexdigest()
    rec = p.log.wait_one(both(by(event="https"), url_has(t)))
    assert (rec.get("secrets") == [NAME]) == in_body, rec


def _post(p, ca, url, body):
    r = subprocess.run(["curl", "-q", "--silent", "--show-error", "--noproxy", "", "--max-time",
                        "20", "-x", f"http://{p.host}:{p.port}", "--cacert", ca,
                        "--data-binary", "@-", url], input=body, capture_output=True,
                       timeout=30, env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def _run(proxy_bin, args, env):
    r = subprocess.run([proxy_bin, "--listen", "127.0.0.1:0"] + args, capture_output=True,
                       text=True, timeout=20, env=env)
    return r.returncode, r.stderr


def test_bad_secrets_refused_at_start(proxy_bin, tmp_path):
    env = {"PATH": os.environ["PATH"], "SHORT": "abc123", "OK": "a" * 20}
    rc, err = _run(proxy_bin, ["--secret", "SHORT=x.test"], env)
    assert rc == 2 and "SHORT" in err and "6 bytes" in err and "abc123" not in err, err
    rc, err = _run(proxy_bin, ["--secret", "UNSET=x.test"], env)
    assert rc == 2 and "UNSET is not set" in err, err
    rc, err = _run(proxy_bin, ["--secret", "OK="], env)
    assert rc == 2 and "no host" in err, err
    rc, err = _run(proxy_bin, ["--secret-strict"], env)
    assert rc == 2 and "needs --secret" in err, err
    rc, err = _run(proxy_bin, ["--secret-file", f"OK={tmp_path}/x"], env)
    assert rc == 2 and "--secret-file: needs --secret" in err, err
    rc, err = _run(proxy_bin, ["--secret", "OK=x.test", "--secret-file", f"K2={tmp_path}/x"], env)
    assert rc == 2 and "--secret K2=HOST" in err, err
    rc, err = _run(proxy_bin, ["--secret", "OK=x.test", "--secret-file", f"OK={tmp_path}/x"], env)
    assert rc == 2 and "--secret-file OK" in err, err  # no such file


def test_secret_file(secret_proxy, origins, tmp_path):
    from_file = "ghp_" + token() + token() + "AB"
    path = tmp_path / "key"
    path.write_text(from_file + "\n")
    p, ph, ca = secret_proxy("--secret-file", f"{NAME}={path}")
    assert len(ph) == len(from_file)
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "-H", f"Authorization: token {ph}")
    _, hdrs = _seen(origins.https, t)
    assert hdrs["authorization"] == f"token {from_file}", hdrs


def test_with_dlp_injection_goes_and_the_value_from_a_client_is_denied(secret_proxy, origins,
                                                                        value):
    p, ph, ca = secret_proxy("--dlp")
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    _, hdrs = _seen(origins.https, t)  # DLP judges what the client sent: the placeholder
    assert hdrs["authorization"] == f"Bearer {value}", hdrs
    # A client holding the real value (it never should) cannot send it anywhere.
    t = token()
    rc, out, err = _curl(p, ca, f"http://other.test:{origins.http.port}/echo?t={t}",
                         "-H", f"X-Leak: {value}", "-o", "/dev/null", "-w", "%{http_code}")
    assert out == "403" and origins.http.state.find(t) == [], (out, err)
    rec = p.log.wait_one(url_has(t))
    assert rec["reason"] == "dlp_match" and rec["dlp"] == f"secret:{NAME}", rec
    assert value not in p.log.raw()


def test_secrets_survive_a_reload(secret_proxy, origins, value):
    """SIGHUP re-reads the rules, not the secrets: the same placeholder is
    still injected for its host, which is still opened."""
    p, ph, ca = secret_proxy()
    before = len([r for r in p.log.all_records() if r.get("event") == "config"])
    p.send_signal(signal.SIGHUP)
    rec = p.log.wait(by(event="config"), count=before + 1, every=True)[before]
    assert rec.get("ok") is True, rec
    t = token()
    rc, out, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                         "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    _, hdrs = _seen(origins.https, t)
    assert hdrs["authorization"] == f"Bearer {value}", hdrs


def test_secret_from_a_ruleset(start_proxy, certfile, origins, value, tmp_path):
    """A ruleset's secrets: entry is a --secret entry: its value comes from the
    environment, the placeholder is injected for its host. A reload that
    changes the entry keeps the secrets in force and says so."""
    rs = tmp_path / "rules.yml"
    rs.write_text(f"version: 1\nrules: [allowed.test]\nsecrets:\n  - {NAME}=allowed.test\n")
    ca, out = str(tmp_path / "ca.pem"), str(tmp_path / "placeholders")
    env = dict(os.environ, SSL_CERT_FILE=certfile)
    env[NAME] = value
    p = start_proxy(env=env, extra=["--ruleset-file", str(rs), "--ssl-bump-ca-out", ca,
                                    "--secret-placeholders-out", out])
    ph = dict(line.split("=", 1) for line in open(out).read().splitlines())[NAME]
    t = token()
    rc, _, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                       "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    _, hdrs = _seen(origins.https, t)
    assert hdrs["authorization"] == f"Bearer {value}", hdrs
    rs.write_text("version: 1\nrules: [allowed.test]\nsecrets: []\n")
    p.send_signal(signal.SIGHUP)
    rec = p.log.wait(by(event="config"), count=1, every=True)[0]
    assert rec.get("ok") is True and "secrets" in rec.get("warning", ""), rec
    t = token()
    rc, _, err = _curl(p, ca, f"https://allowed.test:{origins.https.port}/echo?t={t}",
                       "-H", f"Authorization: Bearer {ph}")
    assert rc == 0, err
    _, hdrs = _seen(origins.https, t)
    assert hdrs["authorization"] == f"Bearer {value}", hdrs
