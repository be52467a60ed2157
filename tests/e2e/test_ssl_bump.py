"""TLS interception in awf-proxy (--ssl-bump, https:// URL rules) with the
real clients: curl, Python's urllib, Node's https module, git over https and
Java, each through the explicit proxy (CONNECT) and trusting only the per-run
CA that --ssl-bump-ca-out wrote. The origins' certificates come from the
module's own test CA, which the proxy trusts through SSL_CERT_FILE; one
origin has a self-signed certificate, one a certificate for another name.

/ok/* passes, /no/* and /ok/../no/* get 403 inside the TLS session (the
connection stays usable), an upstream that fails verification gives 502,
and an allowed host without URL rules is tunnelled untouched."""

import json
import os
import shutil
import ssl
import subprocess

import pytest

from harness.origin import (TLSOrigin, make_ca, make_cert, make_git_repos, pattern,
                            pattern_sha256, sha256)
from harness.tlsclients import (NODE_GET, PY_GET, PY_PEER_CERT, compile_java, have_java,
                                java_truststore)
from harness.util import token, url_has

TEST_CA_CN = "awf e2e test CA"
ALLOW_URLS = ("https://allowed.test/ok/*, https://badcert.allowed.test/*, "
              "https://wrongname.allowed.test/*")
BLOCK_URLS = "https://allowed.test/ok/secret/*"
# The machine's own trust settings must not leak into the processes under test.
CA_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
          "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH")


def _der_sha256(pem_path):
    with open(pem_path) as f:
        return sha256(ssl.PEM_cert_to_DER_cert(f.read()))


class TLSWorld:
    """The module's CA and origins: `good` (a leaf the CA issued for
    allowed.test, *.allowed.test and other.test; serves git), `bad`
    (self-signed for badcert.allowed.test), `wrong` (a leaf the CA issued
    for elsewhere.test only)."""

    def __init__(self, d):
        self.dir = d
        self.ca = make_ca(d)
        good = make_cert(d, ["allowed.test", "*.allowed.test", "other.test"], ca=self.ca,
                         prefix="good")
        self.good_sha = _der_sha256(good[0])
        self.good = TLSOrigin(*good).start()
        self.good.git_root = make_git_repos(os.path.join(d, "git"),
                                            ["ok/repo.git", "no/repo.git"])
        self.bad = TLSOrigin(*make_cert(d, ["badcert.allowed.test"], prefix="bad")).start()
        self.wrong = TLSOrigin(*make_cert(d, ["elsewhere.test"], ca=self.ca, prefix="wrong",
                                          ips=False)).start()
        self.java = None
        if have_java():
            os.mkdir(os.path.join(d, "java"))
            self.java = compile_java(os.path.join(d, "java"))

    def stop(self):
        for o in (self.good, self.bad, self.wrong):
            o.stop()


@pytest.fixture(scope="module")
def tlsw(tmp_path_factory):
    w = TLSWorld(str(tmp_path_factory.mktemp("ssl-bump")))
    yield w
    w.stop()


def _proxy_env(cafile):
    env = {k: v for k, v in os.environ.items() if k not in CA_ENV and "proxy" not in k.lower()}
    env["SSL_CERT_FILE"] = cafile
    return env


@pytest.fixture
def bump(start_proxy, tlsw, tmp_path):
    """awf-proxy with --ssl-bump and the module's URL rules, trusting the
    test CA upstream; .ca_out is the run CA's certificate."""
    ca_out = str(tmp_path / "run-ca.pem")
    ports = ",".join(str(o.port) for o in (tlsw.good, tlsw.bad, tlsw.wrong))
    p = start_proxy(ports=ports, env=_proxy_env(tlsw.ca[0]),
                    extra=["--ssl-bump", "--ssl-bump-ca-out", ca_out,
                           "--allow-urls", ALLOW_URLS, "--block-urls", BLOCK_URLS])
    p.ca_out = ca_out
    return p


def _client_env(p, tmp_path, cafile=None):
    cafile = cafile or p.ca_out
    proxy = f"http://127.0.0.1:{p.port}"
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
            "LANG": "C.UTF-8", "SSL_CERT_FILE": cafile, "NODE_EXTRA_CA_CERTS": cafile,
            "GIT_SSL_CAINFO": cafile, "HTTPS_PROXY": proxy, "https_proxy": proxy,
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}


def _run(argv, env, timeout=60):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _base(tlsw, host="allowed.test", origin=None):
    return f"https://{host}:{(origin or tlsw.good).port}"


# (path, expected status, log reason); 404: the origin answered (it has no /ok/x)
CASES = [
    ("/ok/x", 404, "allowed"),
    ("/no/x", 403, "url_not_allowed"),
    ("/ok/../no/x", 403, "url_not_allowed"),   # sent raw: the proxy resolves it
    ("/ok/secret/x", 403, "url_blocked"),
    ("/ok/y", 404, "allowed"),                 # after three refusals, same connection
]


def _check_requests(p, tlsw, toks, cases, method="GET"):
    """The origin saw exactly the allowed requests; one `https` record each."""
    for t, (path, code, reason) in zip(toks, cases):
        rec = p.log.wait_one(url_has(t))
        assert rec["event"] == "https", rec
        assert rec["method"] == method and rec["status"] == code, (path, rec)
        assert rec["reason"] == reason, (path, rec)
        assert rec["decision"] == ("allow" if reason == "allowed" else "deny"), rec
        assert rec["url"].startswith(f"https://allowed.test:{tlsw.good.port}/"), rec
        assert isinstance(rec.get("bytes_up"), int) and isinstance(rec.get("bytes_down"), int), rec
        assert len(tlsw.good.state.find(t)) == (1 if reason == "allowed" else 0), (path, reason)


def test_ca_out_is_the_run_ca_certificate_never_the_key(bump, start_proxy, tlsw, tmp_path):
    with open(bump.ca_out) as f:
        pem = f.read()
    assert "BEGIN CERTIFICATE" in pem and "PRIVATE KEY" not in pem, pem
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", bump.ca_out],
                          capture_output=True, text=True, check=True).stdout
    assert "CA:TRUE" in text and "prime256v1" in text, text
    # valid now, and for at most a day (and a few minutes)
    assert subprocess.run(["openssl", "x509", "-noout", "-checkend", "0", "-in",
                           bump.ca_out], capture_output=True).returncode == 0
    assert subprocess.run(["openssl", "x509", "-noout", "-checkend", str(86400 + 600), "-in",
                           bump.ca_out], capture_output=True).returncode == 1, text
    # per run: another proxy has another CA
    other = str(tmp_path / "run-ca-2.pem")
    start_proxy(ports=str(tlsw.good.port), env=_proxy_env(tlsw.ca[0]),
                extra=["--ssl-bump", "--ssl-bump-ca-out", other, "--allow-urls", ALLOW_URLS])
    assert _der_sha256(other) != _der_sha256(bump.ca_out)


def test_curl_one_connection_denied_requests_leave_it_usable(bump, tlsw, tmp_path):
    toks = [token() for _ in CASES]
    argv = ["curl", "-q", "-sS", "--path-as-is", "--max-time", "20", "--cacert", bump.ca_out,
            "-x", f"http://127.0.0.1:{bump.port}",
            "-w", "%{http_code} %{num_connects} %{http_version}\\n"]
    for i, (t, (path, _, _)) in enumerate(zip(toks, CASES)):
        argv += ["-o", str(tmp_path / f"body-{i}"), f"{_base(tlsw)}{path}?t={t}"]
    r = _run(argv, _client_env(bump, tmp_path))
    assert r.returncode == 0, r
    got = [line.split() for line in r.stdout.splitlines()]
    assert [int(g[0]) for g in got] == [c for _, c, _ in CASES], r
    # one connection (and one CONNECT) for all of them: denials keep it open
    assert [g[1] for g in got] == ["1"] + ["0"] * (len(CASES) - 1), r
    assert {g[2] for g in got} == {"1.1"}, r
    body = (tmp_path / "body-1").read_text()
    assert "url_not_allowed" in body or "--allow-urls" in body or "not allowed" in body, body
    _check_requests(bump, tlsw, toks, CASES)
    tunnels = bump.log.wait(lambda rec: rec.get("event") == "connect")
    assert len(tunnels) == 1, tunnels
    assert tunnels[0]["host"] == "allowed.test" and tunnels[0].get("intercepted") is True, tunnels


def test_curl_http2_falls_back_to_http11(bump, tlsw, tmp_path):
    t = token()
    r = _run(["curl", "-q", "-sS", "--http2", "--max-time", "20", "--cacert", bump.ca_out,
              "-x", f"http://127.0.0.1:{bump.port}", "-o", "/dev/null",
              "-w", "%{http_version} %{http_code}", f"{_base(tlsw)}/ok/h2?t={t}"],
             _client_env(bump, tmp_path))
    assert (r.returncode, r.stdout) == (0, "1.1 404"), r
    rec = bump.log.wait_one(url_has(t))
    assert rec["event"] == "https" and rec["reason"] == "allowed", rec
    assert len(tlsw.good.state.find(t)) == 1


def _client_argv(client, bump, tlsw, tmp_path, urls):
    if client == "python":
        return ["python3", "-c", PY_GET] + urls
    if client == "node":
        if shutil.which("node") is None:
            pytest.skip("node is not installed (Debian: nodejs, scripts/install-deps)")
        return ["node", "-e", NODE_GET, "--", "--proxy", f"127.0.0.1:{bump.port}"] + urls
    if tlsw.java is None:
        pytest.skip("java/javac/keytool are not installed (Debian: default-jdk-headless)")
    trust = java_truststore(bump.ca_out, str(tmp_path / "trust.p12"))
    return (["java", "-Dhttps.proxyHost=127.0.0.1", f"-Dhttps.proxyPort={bump.port}",
             f"-Djavax.net.ssl.trustStore={trust}", "-Djavax.net.ssl.trustStorePassword=changeit",
             "-cp", tlsw.java, "Get"] + urls)


@pytest.mark.parametrize("client", ["python", "node", "java"])
def test_client_through_the_proxy(bump, tlsw, tmp_path, client):
    """Each client trusts the run CA only: every answer below came through
    an intercepted connection."""
    cases = CASES[:3]
    toks = [token() for _ in cases]
    urls = [f"{_base(tlsw)}{path}?t={t}" for t, (path, _, _) in zip(toks, cases)]
    r = _run(_client_argv(client, bump, tlsw, tmp_path, urls), _client_env(bump, tmp_path),
             timeout=120)
    assert r.returncode == 0, r
    assert r.stdout.split() == [str(c) for _, c, _ in cases], r
    _check_requests(bump, tlsw, toks, cases)


def test_git_clone_over_https(bump, tlsw, tmp_path):
    env = _client_env(bump, tmp_path)
    ok = _run(["git", "clone", "-q", f"{_base(tlsw)}/ok/repo.git", str(tmp_path / "ok")], env)
    assert ok.returncode == 0, ok
    assert (tmp_path / "ok" / "README").read_text() == "ok/repo.git\n"
    no = _run(["git", "clone", "-q", f"{_base(tlsw)}/no/repo.git", str(tmp_path / "no")], env)
    assert no.returncode != 0 and "403" in no.stderr, no
    assert tlsw.good.state.find("/ok/repo.git/info/refs")
    assert tlsw.good.state.find("/ok/repo.git/git-upload-pack")
    assert tlsw.good.state.find("/no/repo.git") == []
    rec = bump.log.wait_one(url_has("/no/repo.git/info/refs"))
    assert rec["event"] == "https" and rec["status"] == 403, rec
    assert rec["reason"] == "url_not_allowed", rec
    rec = bump.log.wait_one(url_has("/ok/repo.git/git-upload-pack"))
    assert rec["method"] == "POST" and rec["reason"] == "allowed", rec


@pytest.mark.parametrize("which,host", [("bad", "badcert.allowed.test"),
                                        ("wrong", "wrongname.allowed.test")])
def test_upstream_that_fails_verification_gets_502(bump, tlsw, tmp_path, which, host):
    origin = getattr(tlsw, which)
    t = token()
    r = _run(["curl", "-q", "-sS", "--max-time", "20", "--cacert", bump.ca_out,
              "-x", f"http://127.0.0.1:{bump.port}", "-o", "/dev/null", "-w", "%{http_code}",
              f"{_base(tlsw, host, origin)}/x?t={t}"], _client_env(bump, tmp_path))
    assert (r.returncode, r.stdout) == (0, "502"), r
    rec = bump.log.wait_one(url_has(t))
    assert rec["event"] == "https" and rec["status"] == 502, rec
    assert rec["reason"] == "upstream_tls_verify_failed", rec
    assert origin.state.find(t) == []


def test_host_without_url_rules_is_tunnelled_untouched(bump, tlsw, tmp_path):
    """other.test is allowed but named by no URL rule: the client sees the
    origin's own certificate (trusting the test CA only), while allowed.test
    shows one the run CA issued."""
    port = str(tlsw.good.port)
    r = _run(["python3", "-c", PY_PEER_CERT, "other.test", port],
             _client_env(bump, tmp_path, cafile=tlsw.ca[0]))
    assert r.returncode == 0 and r.stdout == f"{tlsw.good_sha} {TEST_CA_CN}\n", r
    rec = bump.log.wait_one(lambda x: x.get("event") == "connect" and x.get("host") == "other.test")
    assert rec["decision"] == "allow" and not rec.get("intercepted"), rec

    r = _run(["python3", "-c", PY_PEER_CERT, "allowed.test", port], _client_env(bump, tmp_path))
    assert r.returncode == 0, r
    sha, _, issuer = r.stdout.strip().partition(" ")
    assert sha != tlsw.good_sha and issuer != TEST_CA_CN, r
    rec = bump.log.wait_one(lambda x: x.get("event") == "connect"
                            and x.get("host") == "allowed.test")
    assert rec.get("intercepted") is True, rec
    assert not [x for x in bump.log.records() if x.get("event") == "https"
                and "other.test" in x.get("url", "")]


def test_request_for_another_host_inside_is_refused(bump, tlsw, tmp_path):
    """The connection was admitted and verified for allowed.test: a request
    in it naming other.test gets 421 and never reaches an origin."""
    t = token()
    r = _run(["curl", "-q", "-sS", "--max-time", "20", "--cacert", bump.ca_out,
              "-x", f"http://127.0.0.1:{bump.port}", "-H", f"Host: other.test:{tlsw.good.port}",
              "-o", "/dev/null", "-w", "%{http_code}", f"{_base(tlsw)}/ok/x?t={t}"],
             _client_env(bump, tmp_path))
    assert (r.returncode, r.stdout) == (0, "421"), r
    rec = bump.log.wait_one(url_has(t))
    assert rec["event"] == "https" and rec["reason"] == "host_mismatch", rec
    assert tlsw.good.state.find(t) == []


def test_large_bodies_both_ways(start_proxy, tlsw, tmp_path):
    """20 MiB up and 20 MiB down inside one intercepted connection, intact
    (chunked and sized): the relay inside TLS keeps every byte."""
    ca_out = str(tmp_path / "run-ca.pem")
    p = start_proxy(ports=str(tlsw.good.port), env=_proxy_env(tlsw.ca[0]),
                    extra=["--ssl-bump", "--ssl-bump-ca-out", ca_out, "--allow-urls",
                           "https://allowed.test/upload*, https://allowed.test/bytes*, "
                           "https://allowed.test/chunked*"])
    p.ca_out = ca_out
    n = 20 << 20
    up = tmp_path / "up.bin"
    up.write_bytes(pattern(n))
    base = _base(tlsw)
    opts = ["--max-time", "60", "--cacert", ca_out, "-x", f"http://127.0.0.1:{p.port}",
            "-w", "%{num_connects}\\n"]
    r = _run(["curl", "-q", "-sS"] + opts + ["--data-binary", f"@{up}", "-o",
              str(tmp_path / "up.json"), f"{base}/upload?t={token()}", "--next"]
             + opts + ["-o", str(tmp_path / "down1"), f"{base}/bytes?n={n}", "--next"]
             + opts + ["-o", str(tmp_path / "down2"), f"{base}/chunked?n={n}"],
             _client_env(p, tmp_path), timeout=120)
    assert r.returncode == 0, r
    assert r.stdout.split() == ["1", "0", "0"], r  # one connection
    got = json.loads((tmp_path / "up.json").read_text())
    assert got == {"len": n, "sha256": pattern_sha256(n)}, got
    for name in ("down1", "down2"):
        assert sha256((tmp_path / name).read_bytes()) == pattern_sha256(n), name


def test_origin_sessions_are_resumed(start_proxy, tlsw, tmp_path):
    """The proxy's second TLS connection to an origin resumes the session of
    its first (a ticket kept per verified name), so a new intercepted
    connection costs no second certificate chain: `openssl s_server -www`
    says New, then Reused."""
    cert, key = make_cert(str(tmp_path), ["allowed.test"], ca=tlsw.ca, prefix="resume")
    srv = subprocess.Popen(["openssl", "s_server", "-www", "-cert", cert, "-key", key,
                            "-accept", "127.0.0.1:0", "-naccept", "4"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = None
        for line in srv.stdout:  # "ACCEPT 127.0.0.1:PORT"
            if line.startswith("ACCEPT"):
                port = int(line.rsplit(":", 1)[1])
                break
        assert port, "openssl s_server did not say where it listens"
        p = start_proxy(ports=str(port), env=_proxy_env(tlsw.ca[0]),
                        extra=["--ssl-bump", "--ssl-bump-ca-out", str(tmp_path / "ca.pem"),
                               "--allow-urls", "https://allowed.test/*"])
        env = _client_env(p, tmp_path, str(tmp_path / "ca.pem"))
        got = []
        for _ in range(3):
            r = _run(["curl", "-q", "-sS", "--max-time", "10", f"https://allowed.test:{port}/"],
                     env)
            assert r.returncode == 0, r.stderr
            got += [x.split(",")[0] for x in r.stdout.splitlines()
                    if x.startswith(("New,", "Reused,"))]
        assert got == ["New", "Reused", "Reused"], got
    finally:
        srv.kill()
        srv.wait()
