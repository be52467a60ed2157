"""--ssl-bump: the sandbox trusts the run's CA with no help from the command.
The host's bundle is the world's CA (SSL_CERT_FILE given to awf), so a
client that trusts the sandbox's bundle reaches the world's HTTPS origin
without --cacert: /etc/ssl/certs/ca-certificates.crt is that bundle then the
run's CA, the hashed directory finds the CA by its subject hash, the
variables name the files (an explicit -e wins; JAVA_TOOL_OPTIONS is
extended), Java's PKCS#12 truststore lists both as trustedCertEntry and
Java trusts it, everything is read-only inside, and no host file changes.
With a URL rule the host is intercepted: curl, python3, node, git and Java
accept the run CA's leaf with no option of their own."""

import hashlib
import os
import shutil

import pytest

from harness.origin import HELLO_BODY
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)
from test_awf_bins import FETCH_JAVA

require_awf()

ARGS = ["-d", "allowed.test", "--ssl-bump"]
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
RUN_CA = "/etc/awf/run-ca.crt"
P12 = "/etc/awf/truststore.p12"
BEGIN = "-----BEGIN CERTIFICATE-----"


def bump(world, *cmd, args=(), extra_env=None, **kw):
    """awf --ssl-bump with the world's CA as the host's bundle."""
    env = {"SSL_CERT_FILE": world.ca}
    env.update(extra_env or {})
    return world.awf(*cmd, args=ARGS + list(args), extra_env=env, **kw)


def test_bundle_is_the_hosts_then_the_run_ca(world):
    r = bump(world, f"cat {BUNDLE}; echo =====; cat {RUN_CA}; echo =====; "
             f"openssl x509 -noout -text -in {RUN_CA} | grep -c 'CA:TRUE'; "
             "cmp /etc/ssl/certs/ca-certificates.crt /etc/awf/ca-certificates.crt && echo same")
    assert r.rc == 0, r
    bundle, ca, rest = r.out.split("=====\n")
    with open(world.ca) as f:
        host = f.read()
    assert ca.startswith(BEGIN) and ca.count(BEGIN) == 1, r
    assert bundle == host + ("" if host.endswith("\n") else "\n") + ca, r
    assert rest.split() == ["1", "same"], r
    assert "PRIVATE KEY" not in r.out, r


def test_run_ca_differs_per_run(world):
    a, b = (bump(world, "cat", RUN_CA) for _ in range(2))
    assert a.rc == 0 and b.rc == 0, (a, b)
    assert a.out.startswith(BEGIN) and a.out != b.out


def test_clients_trust_the_bundle_without_cacert(world):
    """curl, python3 and git read the variables (or the bundle path): the
    world's origin, whose CA is only in the host's bundle under test, is
    trusted with no --cacert."""
    t = [token() for _ in range(3)]
    script = (f"curl -q -sS --max-time 10 https://allowed.test/hello?t={t[0]}; echo ==; "
              "python3 -c \"import urllib.request,sys; sys.stdout.write(urllib.request.urlopen("
              f"'https://allowed.test/hello?t={t[1]}', timeout=10).read().decode())\"; "
              f"echo ==; git ls-remote https://allowed.test/repo?t={t[2]} 2>&1 | "
              "grep -ci 'certificate'")
    r = bump(world, script + "; true")
    assert r.rc == 0, r
    curl, python, git = r.out.split("==\n")
    assert curl.encode() == HELLO_BODY and python.encode() == HELLO_BODY, r
    assert git == "0\n", r  # git reached the origin: no complaint about its certificate
    for x in t:
        assert len(world.https.state.find(x)) == 1, r


def test_hashed_directory_finds_the_run_ca(world):
    """openssl verify with only -CApath: the CA is found by its subject
    hash, and a host certificate of the directory still is."""
    r = bump(world, "h=$(openssl x509 -noout -subject_hash -in /etc/awf/run-ca.crt); "
             "readlink /etc/ssl/certs/$h.0; "
             "openssl verify -no-CAfile -no-CAstore -CApath /etc/ssl/certs /etc/awf/run-ca.crt; "
             "c=$(ls /etc/ssl/certs/*.pem 2>/dev/null | head -1); "
             "if [ -n \"$c\" ]; then openssl verify -no-CAfile -no-CAstore "
             "-CApath /etc/ssl/certs \"$c\" >/dev/null && echo host-ok; else echo host-ok; fi",
             extra_env={"SSL_CERT_FILE": ""})
    assert r.rc == 0, r
    assert r.out.splitlines() == [RUN_CA, f"{RUN_CA}: OK", "host-ok"], r


def test_variables_name_the_files(world):
    names = ["SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
             "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS", "JAVA_TOOL_OPTIONS"]
    script = "; ".join(f"printf '%s\\n' \"${n}\"" for n in names)
    r = bump(world, script)
    assert r.rc == 0, r
    got = dict(zip(names, r.out.splitlines()))
    for n in ("SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert got[n] == "/etc/awf/ca-certificates.crt", got
    assert got["SSL_CERT_DIR"] == "/etc/ssl/certs", got
    assert got["NODE_EXTRA_CA_CERTS"] == RUN_CA, got
    assert got["JAVA_TOOL_OPTIONS"] == (
        f"-Djavax.net.ssl.trustStore={P12} -Djavax.net.ssl.trustStoreType=PKCS12 "
        "-Djavax.net.ssl.trustStorePassword=changeit"), got


def test_env_all_loses_explicit_e_wins_java_options_extended(world):
    """--env-all copies the host's SSL_CERT_FILE (a bundle without the run's
    CA): awf's wins over it; -e is explicit and wins over awf's; a
    JAVA_TOOL_OPTIONS the command has keeps its value, the truststore after."""
    r = bump(world, "echo $SSL_CERT_FILE; echo $CURL_CA_BUNDLE; echo $JAVA_TOOL_OPTIONS",
             args=["--env-all", "-e", "CURL_CA_BUNDLE=/mine.pem"],
             extra_env={"JAVA_TOOL_OPTIONS": "-Xmx64m"})
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0] == "/etc/awf/ca-certificates.crt", r
    assert lines[1] == "/mine.pem", r
    assert lines[2].startswith(f"-Xmx64m -Djavax.net.ssl.trustStore={P12} "), r


def test_files_are_read_only(world):
    script = "; ".join(
        f"( {op} ) 2>/dev/null && echo WROTE {what} || echo refused"
        for op, what in ((f"echo x >> {BUNDLE}", "bundle"),
                         (f"echo x >> {RUN_CA}", "ca"),
                         (f"echo x >> {P12}", "p12"),
                         ("touch /etc/ssl/certs/new.pem", "certs-dir"),
                         ("touch /etc/awf/new", "awf-dir"),
                         (f"rm -f {RUN_CA}", "rm"),
                         ("chmod 666 /etc/awf/ca-certificates.crt", "chmod")))
    r = bump(world, script)
    assert r.rc == 0, r
    assert r.out.split() == ["refused"] * 7, r


def digest_tree(path):
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        p = os.path.join(path, name)
        h.update(name.encode() + b"\0")
        if os.path.islink(p):
            h.update(os.readlink(p).encode())
        elif os.path.isfile(p):
            with open(p, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_host_files_unchanged(world):
    def state():
        out = [digest_tree("/etc/ssl/certs")] if os.path.isdir("/etc/ssl/certs") else []
        with open(world.ca, "rb") as f:
            out.append(hashlib.sha256(f.read()).hexdigest())
        return out, sorted(os.listdir("/etc"))
    before = state()
    r = bump(world, f"cat {BUNDLE} >/dev/null; ls /etc/awf")
    assert r.rc == 0, r
    assert state() == before
    assert not os.path.exists("/etc/awf")


def test_missing_ssl_cert_file_is_an_error(world):
    r = bump(world, "true", extra_env={"SSL_CERT_FILE": "/nonexistent/bundle.pem"})
    assert r.rc == 125, r
    assert "--ssl-bump" in r.err and "/nonexistent/bundle.pem" in r.err, r


def test_without_ssl_bump_nothing_changes(world):
    r = world.awf("ls /etc/awf 2>&1; echo ${SSL_CERT_FILE:-unset}; "
                  "readlink /etc/ssl/certs/ca-certificates.crt || echo plain",
                  args=["-d", "allowed.test"], extra_env={"SSL_CERT_FILE": world.ca})
    assert r.rc == 0, r
    assert "No such file" in r.out and "unset" in r.out and "plain" in r.out, r


def need_java():
    if shutil.which("java") is None or shutil.which("keytool") is None:
        pytest.skip("java/keytool are not installed (Debian: default-jre-headless)")


def test_keytool_lists_both_as_trusted(world):
    need_java()
    r = bump(world, f"openssl x509 -noout -fingerprint -sha256 -in {RUN_CA}; "
             f"keytool -list -keystore {P12} -storetype PKCS12 -storepass changeit",
             timeout=120)
    assert r.rc == 0, r
    fp = r.out.splitlines()[0].split("=", 1)[1].strip()
    out = r.out
    assert "Your keystore contains 2 entries" in out, r
    assert out.count("trustedCertEntry") == 2, r
    assert fp in out, r


def test_java_trusts_the_store_with_no_options(world):
    """Java's own default truststore lacks the world's CA: the request works
    only through JAVA_TOOL_OPTIONS' truststore."""
    need_java()
    t = token()
    src = world.user_file("Fetch.java", FETCH_JAVA)
    r = bump(world, "java", src, f"https://allowed.test/hello?t={t}", timeout=120)
    assert r.rc == 0 and r.out.encode() == b"200 " + HELLO_BODY, r
    assert len(world.https.state.find(t)) == 1


URL_RULES = ["--allow-urls", "https://allowed.test/ok/*"]


def test_intercepted_hosts_are_trusted_by_every_client(world):
    """With a URL rule, allowed.test is intercepted: its leaf is the run
    CA's, which curl, python3, node and git trust with no option of theirs
    (a client that trusts only the world's CA refuses it); /ok/ passes to
    the origin (which has no such page: 404), /no/ gets awf's 403."""
    t = token()
    node = ("const https = require('https');"
            "https.get(process.argv[2], (r) => { console.log(r.statusCode); r.resume(); })"
            ".on('error', (e) => { console.log('ERR ' + e.message); });")
    clients = [
        ("curl", "curl -q -s --max-time 10 -o /dev/null -w '%{http_code}\\n' {url}"),
        ("python", "python3 -c \"import urllib.request as u, urllib.error as e\n"
                   "try: print(u.urlopen('{url}', timeout=10).status)\n"
                   "except e.HTTPError as x: print(x.code)\""),
        ("git", "git ls-remote {url} 2>&1 | head -1"),
    ]
    if shutil.which("node"):
        src = world.user_file("get.js", node)
        clients.append(("node", f"node {src} {{url}}"))
    lines = []
    for name, tpl in clients:
        for path in ("ok", "no"):
            cmd = tpl.replace("{url}", f"https://allowed.test/{path}/x?t={t}")
            lines.append(f"printf '{name} {path} '; ( {cmd} ) | tr -d '\\n'; echo")
    # The world's CA alone (no default paths): the leaf is not the origin's.
    lines.append("printf 'strict ok '; python3 -c \"import ssl, urllib.request as u\n"
                 f"c = ssl.create_default_context(cafile='{world.ca}')\n"
                 "try: u.urlopen('https://allowed.test/ok/x', context=c, timeout=10)\n"
                 "except Exception as x: print('refused' if 'CERTIFICATE_VERIFY_FAILED' in "
                 "str(x) else x)\"")
    r = bump(world, "; ".join(lines) + "; true", args=URL_RULES)
    assert r.rc == 0, r
    got = {tuple(x.split()[:2]): " ".join(x.split()[2:]) for x in r.out.splitlines()}
    for name, _ in clients:
        assert (name, "ok") in got and (name, "no") in got, (name, r)
        ok, no = got[(name, "ok")], got[(name, "no")]
        assert "certificate" not in ok + no and "ERR" not in ok + no, (name, r)
        assert ok.endswith("404") or "no such endpoint" in ok, (name, r)  # the origin's 404
        assert "403" in no or "denied: url_not_allowed" in no, (name, r)  # awf's answer
    assert got[("strict", "ok")] == "refused", r
    assert r.records(event="https", decision="deny", reason="url_not_allowed"), r


def test_java_trusts_an_intercepted_host(world):
    need_java()
    t = token()
    src = world.user_file("Fetch.java", FETCH_JAVA)
    r = bump(world, "java", src, f"https://allowed.test/no/x?t={t}", args=URL_RULES,
             timeout=120)
    # 403 from awf inside the TLS session: Java completed the handshake with
    # the run CA's leaf (HttpURLConnection throws on reading a 403 body).
    assert "403" in r.out + r.err and "PKIX" not in r.err, r
    assert r.records(event="https", decision="deny", reason="url_not_allowed"), r
