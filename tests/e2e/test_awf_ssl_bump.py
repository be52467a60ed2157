"""TLS interception in awf (--ssl-bump, https:// URL rules), on the explicit
path (the sandbox's proxy variables: CONNECT) and the transparent one (port
443 redirected, SNI), with the real clients and no trust configured by
hand: curl, Python's urllib, Node's https module, git over https and Java
must trust the run's CA through what awf sets up (the bundle over the
standard paths, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, GIT_SSL_CAINFO,
JAVA_TOOL_OPTIONS). awf verifies the origins against its own SSL_CERT_FILE:
the world's CA. One awf run per path drives every client, so the module
stays quick.

/ok/* passes, /no/* and /ok/../no/* get 403 inside the TLS session (the
connection stays usable), an upstream that fails verification gives 502,
an allowed host without URL rules is tunnelled untouched, and the CA key is
nowhere the command can read."""

import os
import re
import shlex
import shutil
import ssl

import pytest

from harness.netns import PortTLSOrigin
from harness.origin import make_cert, make_git_repos, sha256
from harness.tlsclients import NODE_GET, PY_GET, PY_PEER_CERT, compile_java, have_java
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

TEST_CA_CN = "awf e2e test CA"
BADCERT = ("badcert.allowed.test", "198.51.100.12")     # self-signed
WRONGNAME = ("wrongname.allowed.test", "198.51.100.13")  # the world's CA, for another name
RULES = ["-d", "allowed.test,other.test", "--ssl-bump",
         "--allow-urls", f"https://allowed.test/ok/*, https://{BADCERT[0]}/*, "
                         f"https://{WRONGNAME[0]}/*",
         "--block-urls", "https://allowed.test/ok/secret/*"]

CURL_CASES = [  # (path, status, log reason); 404: the origin answered
    ("/ok/x", 404, "allowed"),
    ("/no/x", 403, "url_not_allowed"),
    ("/ok/../no/x", 403, "url_not_allowed"),  # sent raw (--path-as-is)
    ("/ok/secret/x", 403, "url_blocked"),
    ("/ok/y", 404, "allowed"),                # after three refusals, same connection
]
CLIENT_CASES = CURL_CASES[:3]
CLIENTS = ["py", "node", "java"]
PROXY_VARS = "HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy"


def _der_sha256(pem_path):
    with open(pem_path) as f:
        return sha256(ssl.PEM_cert_to_DER_cert(f.read()))


class Bump:
    """The module's additions to the world: the bad-certificate origins,
    git repositories on allowed.test, the client programs in the home."""

    def __init__(self, w):
        self.world = w
        w.add_host(*BADCERT)
        w.add_host(*WRONGNAME)
        d = w.keys
        bad = make_cert(d, [BADCERT[0]], prefix="badcert")
        wrong = make_cert(d, ["elsewhere.test"], ca=w.test_ca, prefix="wrongname", ips=False)
        self.bad = w._serve(lambda: PortTLSOrigin(BADCERT[1], 443, *bad))
        self.wrong = w._serve(lambda: PortTLSOrigin(WRONGNAME[1], 443, *wrong))
        w.https.git_root = make_git_repos(os.path.join(w.root, "git"),
                                          ["ok/repo.git", "no/repo.git"])
        self.leaf_sha = _der_sha256(w.certfile)
        self.get_py = w.user_file("get.py", PY_GET)
        self.peer_py = w.user_file("peer.py", PY_PEER_CERT)
        self.get_js = w.user_file("get.js", NODE_GET)
        self.java = None
        if have_java():
            self.java = compile_java(w.user_dir("java"))
        self.node = shutil.which("node") is not None

    def env(self):
        """awf verifies the origins against the world's CA; the sandbox's
        bundle is built from it too."""
        return {"SSL_CERT_FILE": self.world.ca}


@pytest.fixture(scope="module")
def bump(world):
    return Bump(world)


def _script(bump, transparent, toks):
    """One shell script running every client; each output line starts with
    its tag. toks: tag -> tokens for the tag's cases."""
    q = shlex.quote
    lines = ["cd \"$(mktemp -d)\" || exit 1", "PORT=${HTTPS_PROXY##*:}"]
    if transparent:
        lines.append(f"unset {PROXY_VARS}")
    curl = "curl -q -sS --max-time 20 " + ("--noproxy '*' " if transparent else "")

    def urls(tag, cases):
        return " ".join(q(f"https://allowed.test{path}?t={t}")
                        for t, (path, _, _) in zip(toks[tag], cases))

    outs = " ".join(f"-o /dev/null {q(f'https://allowed.test{p}?t={t}')}"
                    for t, (p, _, _) in zip(toks["curl"], CURL_CASES))
    lines.append(curl + "--path-as-is -w 'curl %{http_code} %{num_connects} %{http_version}\\n' "
                 + outs)
    lines.append(curl + "--http2 -o /dev/null -w 'h2 %{http_version} %{http_code}\\n' "
                 + q(f"https://allowed.test/ok/h2?t={toks['h2'][0]}"))
    for tag, host in (("bad", BADCERT[0]), ("wrong", WRONGNAME[0])):
        lines.append(curl + f"-o /dev/null -w '{tag} %{{http_code}}\\n' "
                     + q(f"https://{host}/x?t={toks[tag][0]}"))
    lines.append(f"python3 {bump.get_py} {urls('py', CLIENT_CASES)} | sed 's/^/py /'")
    if bump.node:
        proxy = "" if transparent else "--proxy 127.0.0.1:$PORT "
        lines.append(f"node -e \"$(cat {bump.get_js})\" -- {proxy}{urls('node', CLIENT_CASES)}"
                     " | sed 's/^/node /'")
    if bump.java:
        proxy = "" if transparent else "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=$PORT "
        lines.append(f"java {proxy}-cp {bump.java} Get {urls('java', CLIENT_CASES)}"
                     " | sed 's/^/java /'")
    lines += [
        "git clone -q https://allowed.test/ok/repo.git ok 2>&1 && echo \"gitok $(cat ok/README)\"",
        "git clone -q https://allowed.test/no/repo.git no >gitno.txt 2>&1; "
        "echo \"gitno $? $(tr '\\n' ' ' < gitno.txt)\"",
        f"python3 {bump.peer_py} other.test 443 2>&1 | sed 's/^/peer-other /'",
        f"python3 {bump.peer_py} allowed.test 443 2>&1 | sed 's/^/peer-allowed /'",
        "true",
    ]
    return "\n".join(lines)


def _tagged(out):
    got = {}
    for line in out.splitlines():
        tag, _, rest = line.partition(" ")
        got.setdefault(tag, []).append(rest)
    return got


def _check_https(r, world, tok, path, code, reason):
    recs = [x for x in r.records(event="https") if tok in x.get("url", "")]
    assert len(recs) == 1, (path, tok, r)
    rec = recs[0]
    assert rec["method"] == "GET" and rec["status"] == code and rec["reason"] == reason, rec
    assert rec["decision"] == ("allow" if reason == "allowed" else "deny"), rec
    assert rec["url"].startswith("https://allowed.test/"), rec
    assert isinstance(rec.get("bytes_up"), int) and isinstance(rec.get("bytes_down"), int), rec
    assert len(world.https.state.find(tok)) == (1 if reason == "allowed" else 0), (path, reason)


@pytest.mark.parametrize("transparent", [False, True], ids=["explicit", "transparent"])
def test_clients_through_awf(world, bump, transparent):
    toks = {"curl": [token() for _ in CURL_CASES], "h2": [token()], "bad": [token()],
            "wrong": [token()]}
    for tag in CLIENTS:
        toks[tag] = [token() for _ in CLIENT_CASES]
    r = world.awf("sh", "-c", _script(bump, transparent, toks), args=RULES,
                  extra_env=bump.env(), timeout=180)
    assert r.rc == 0, r
    got = _tagged(r.out)

    curl = [line.split() for line in got.get("curl", [])]
    assert [int(c[0]) for c in curl] == [c for _, c, _ in CURL_CASES], r
    # one connection for all five: a denied request leaves it usable
    assert [c[1] for c in curl] == ["1"] + ["0"] * (len(CURL_CASES) - 1), r
    assert {c[2] for c in curl} == {"1.1"}, r
    for t, (path, code, reason) in zip(toks["curl"], CURL_CASES):
        _check_https(r, world, t, path, code, reason)

    assert got.get("h2") == ["1.1 404"], r  # ALPN: http/1.1 only; curl falls back
    _check_https(r, world, toks["h2"][0], "/ok/h2", 404, "allowed")

    for tag, origin in (("bad", bump.bad), ("wrong", bump.wrong)):
        assert got.get(tag) == ["502"], (tag, r)
        recs = [x for x in r.records(event="https") if toks[tag][0] in x.get("url", "")]
        assert len(recs) == 1 and recs[0]["status"] == 502, (tag, r)
        assert recs[0]["reason"] == "upstream_tls_verify_failed", (tag, recs)
        assert origin.state.find(toks[tag][0]) == []

    for tag in CLIENTS:
        if (tag == "node" and not bump.node) or (tag == "java" and not bump.java):
            continue
        assert got.get(tag) == [str(c) for _, c, _ in CLIENT_CASES], (tag, r)
        for t, (path, code, reason) in zip(toks[tag], CLIENT_CASES):
            _check_https(r, world, t, path, code, reason)

    assert got.get("gitok") == ["ok/repo.git"], r
    gitno = got.get("gitno", ["?"])[0]
    assert not gitno.startswith("0 ") and "403" in gitno, r
    assert any("/ok/repo.git/git-upload-pack" in x.get("url", "") and x["reason"] == "allowed"
               and x["method"] == "POST" for x in r.records(event="https")), r
    assert any("/no/repo.git/info/refs" in x.get("url", "") and x["status"] == 403
               and x["reason"] == "url_not_allowed" for x in r.records(event="https")), r
    assert world.https.state.find("/no/repo.git") == []

    # other.test has no URL rule: the origin's own certificate, the world's CA
    assert got.get("peer-other") == [f"{bump.leaf_sha} {TEST_CA_CN}"], r
    peer = got.get("peer-allowed", ["? ?"])[0]
    sha, _, issuer = peer.partition(" ")
    assert re.fullmatch("[0-9a-f]{64}", sha) and sha != bump.leaf_sha, r
    assert issuer != TEST_CA_CN, r

    event = "tls" if transparent else "connect"
    tunnels = r.records(event=event)
    other = [x for x in tunnels if x.get("host") == "other.test" or x.get("sni") == "other.test"]
    assert other and all(not x.get("intercepted") for x in other), r
    bumped = [x for x in tunnels if x.get("intercepted") is True]
    assert bumped and all(x.get("sni", x.get("host")) != "other.test" for x in bumped), r
    assert not [x for x in r.records(event="https") if "other.test" in x.get("url", "")], r


KEY_HUNT = r"""
found() { echo "key $1"; }
PK=PRIVATE; PK="$PK KEY"  # not the words themselves: this script is in /proc/*/cmdline
for v in SSL_CERT_FILE CURL_CA_BUNDLE REQUESTS_CA_BUNDLE NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO; do
    eval f=\$$v
    [ -n "$f" ] && grep -qs 'BEGIN CERTIFICATE' "$f" && echo "bundle $v"
done
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
    grep -qs 'BEGIN CERTIFICATE' "$f" && echo "bundle $f"
done
for f in $(grep -rls "$PK" /etc/ssl /etc/pki /run /var /dev/shm "$HOME" \
           "$SSL_CERT_FILE" "$CURL_CA_BUNDLE" "$REQUESTS_CA_BUNDLE" "$NODE_EXTRA_CA_CERTS" \
           "$GIT_SSL_CAINFO" 2>/dev/null); do
    found "$f"
done
for f in $(find /tmp -xdev -type f -newer "$MARK" 2>/dev/null); do
    grep -qs "$PK" "$f" && found "$f"
done
for f in /proc/[0-9]*/environ /proc/[0-9]*/cmdline; do
    grep -qs "$PK" "$f" && found "$f"
done
ts=$(printf '%s' "$JAVA_TOOL_OPTIONS" | sed -n 's/.*-Djavax.net.ssl.trustStore=\([^ ]*\).*/\1/p')
pw=$(printf '%s' "$JAVA_TOOL_OPTIONS" \
     | sed -n 's/.*-Djavax.net.ssl.trustStorePassword=\([^ ]*\).*/\1/p')
if [ -n "$ts" ] && command -v keytool >/dev/null; then
    echo "truststore $ts"
    JAVA_TOOL_OPTIONS= keytool -list -keystore "$ts" -storetype PKCS12 \
        -storepass "${pw:-changeit}" </dev/null >ks.txt 2>&1
    echo "java-entries $(grep -c trustedCertEntry ks.txt) $(grep -c PrivateKeyEntry ks.txt)"
fi
python3 -c '
import errno
for name in ("mem", "environ"):
    try:
        open("/proc/1/" + name, "rb").read(1)
        print("proc1", name, "ok")
    except OSError as e:
        print("proc1", name, errno.errorcode[e.errno])
'
true
"""


def test_ca_key_is_not_readable_inside(world, bump):
    """The run's CA certificate is in the bundles, its key in none of them,
    nor in any file or environment the command can read; the sandbox's
    PID 1 cannot be read (awf's engine is in no namespace the command sees)."""
    mark = world.user_file("mark-" + token(), "")
    r = world.awf("sh", "-c", "cd \"$(mktemp -d)\" || exit 1" + KEY_HUNT, args=RULES,
                  extra_env=dict(bump.env(), MARK=mark))
    assert r.rc == 0, r
    got = _tagged(r.out)
    assert "key" not in got, r
    assert {"SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
            "GIT_SSL_CAINFO", "/etc/ssl/certs/ca-certificates.crt"} <= set(got.get("bundle", [])), r
    if bump.java:
        assert len(got.get("truststore", [])) == 1, r  # from JAVA_TOOL_OPTIONS
        trusted, keys = got["java-entries"][0].split()
        assert int(trusted) >= 1 and keys == "0", r
    assert got.get("proc1") == ["mem EACCES", "environ EACCES"], r


def test_trusted_bundle_holds_the_run_ca(world, bump):
    """The sandbox's bundle is the host's (awf's SSL_CERT_FILE: the world's
    CA) plus one more: the run's CA, which issued what allowed.test shows."""
    script = (f"python3 {bump.peer_py} allowed.test 443; "
              "grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"; "
              "cmp -s \"$SSL_CERT_FILE\" /etc/ssl/certs/ca-certificates.crt; echo same=$?")
    r = world.awf("sh", "-c", script, args=RULES, extra_env=bump.env())
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert len(lines) == 3, r
    assert lines[0].partition(" ")[2] not in ("", TEST_CA_CN), r
    assert lines[1] == "2", r  # the world's CA and the run's
    assert lines[2] == "same=0", r


def test_upstream_verified_against_awfs_own_trust(world, bump):
    """Without SSL_CERT_FILE awf trusts the host's system store, which does
    not know the world's CA: even the good origin is refused with 502."""
    t = token()
    r = world.awf("curl", "-q", "-sS", "--max-time", "20", "-o", "/dev/null", "-w",
                  "%{http_code}", f"https://allowed.test/ok/x?t={t}", args=RULES)
    assert (r.rc, r.out) == (0, "502"), r
    recs = [x for x in r.records(event="https") if t in x.get("url", "")]
    assert len(recs) == 1 and recs[0]["reason"] == "upstream_tls_verify_failed", r
    assert world.https.state.find(t) == []
