"""Real clients uploading to an allowed origin that refuses the upload at
once (401 before the body) and resets the connection while they are still
sending: curl, python (requests, else urllib) and a `git push` over smart
HTTP, on each of awf's paths (proxy variables: plain HTTP and CONNECT; the
transparent redirect: HTTP by Host, TLS by SNI). The proxy then writes into
a reset socket: the command must see a failed upload and go on to its next
command, awf must end with the command's own status (not die of SIGPIPE,
taking the sandbox with it), and the log must hold the decision."""

import os
import ssl

import pytest

from harness.origin import make_cert
from harness.reset import UNAUTHORIZED, ResetOrigin
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

HOST = "reject.test"
ADDR = "198.51.100.12"       # inside the world's CIDRs, a link address of its own
EXIT = 7                     # the script's status once it got past the upload
MARK = "after-upload"
SIZE = 5 * 1024 * 1024
TRIES = 3                    # uploads per run: each is a chance for the SIGPIPE

# (scheme, transparent, the log event of the upload)
PATHS = {
    "explicit-http": ("http", False, "http"),
    "connect": ("https", False, "connect"),
    "transparent-http": ("http", True, "http"),
    "transparent-tls": ("https", True, "tls"),
}

# Prints "upload-status N" or "upload-error NAME"; never raises.
PY_UPLOAD = r"""
import sys
url, ca, path, direct = sys.argv[1:5]
try:
    import requests
except ImportError:
    requests = None
if requests is not None:
    s = requests.Session()
    s.trust_env = direct != "1"
    try:
        with open(path, "rb") as f:
            r = s.post(url, data=f, verify=ca, timeout=30)
        print("upload-status", r.status_code)
    except requests.RequestException as e:
        print("upload-error", type(e).__name__)
else:
    import ssl, urllib.error, urllib.request
    handlers = [urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca))]
    if direct == "1":
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    try:
        with open(path, "rb") as f:
            req = urllib.request.Request(url, data=f, method="POST",
                                         headers={"Content-Length": str(len(open(path, "rb").read()))})
            opener.open(req, timeout=30)
        print("upload-status 200")
    except urllib.error.HTTPError as e:
        print("upload-status", e.code)
    except OSError as e:
        print("upload-error", type(e).__name__)
print("python-done")
"""


def _pkt(s):
    return b"%04x" % (len(s) + 4) + s


ZERO_ID = b"0" * 40
ADVERTISEMENT = (_pkt(b"# service=git-receive-pack\n") + b"0000"
                 + _pkt(ZERO_ID + b" capabilities^{}\0report-status delete-refs ofs-delta "
                        b"agent=awf-test\n") + b"0000")


def _reply(status, ctype, body):
    return (b"HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-cache\r\n"
            b"Connection: close\r\n\r\n" % (status, ctype, len(body)) + body)


def respond(head):
    """git's smart HTTP (the refs, and git's 4-byte probe before a big POST,
    answered normally; the pack itself refused at once and reset); anything
    else is an upload answered 401 and reset."""
    line = head.split(b"\r\n", 1)[0]
    if b"/repo.git/" not in line:
        return UNAUTHORIZED, True
    if line.startswith(b"GET ") and b"/info/refs?service=git-receive-pack" in line:
        return _reply(b"200 OK", b"application/x-git-receive-pack-advertisement",
                      ADVERTISEMENT), False
    if b"\r\ncontent-length: 4\r\n" in head.lower():
        return _reply(b"200 OK", b"application/x-git-receive-pack-result", b""), False
    return _reply(b"403 Forbidden", b"text/plain", b"pushes are not accepted here\n"), True


@pytest.fixture(scope="module")
def origins(world):
    world.add_host(HOST, ADDR)
    keys = os.path.join(world.root, "reject-keys")
    os.mkdir(keys, 0o700)
    cert, key = make_cert(keys, [HOST])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    with open(cert, "rb") as f:
        ca = world.user_file("reject-ca.pem", f.read())
    upload = world.user_file("upload.bin", os.urandom(SIZE))
    http = world.ns.call(lambda: ResetOrigin(ADDR, 80, respond=respond, wait=0.0)).start()
    https = world.ns.call(lambda: ResetOrigin(ADDR, 443, respond=respond, ssl_ctx=ctx,
                                              wait=0.0)).start()
    yield {"ca": ca, "upload": upload, "http": http, "https": https}
    http.stop()
    https.stop()


def _check(r, event, what):
    """awf outlived the reset: the command got to its next command, its
    status is awf's, and the upload's decision is in the log."""
    assert r.rc == EXIT, r
    assert MARK in r.out, r
    recs = [x for x in r.records(event=event) if x.get("host") == HOST or x.get("sni") == HOST]
    assert recs, f"no {event} record for {HOST} ({what})\n{r}"
    # admitted; an upload cut by the reset is the origin's failure (502)
    assert all(x["reason"] == "allowed" or (x["reason"], x.get("status")) ==
               ("upstream_unreachable", 502) for x in recs), r
    return recs


@pytest.mark.parametrize("path", list(PATHS))
def test_curl_upload_reset_by_origin_does_not_kill_awf(world, origins, path):
    scheme, transparent, event = PATHS[path]
    curl = world.curl_args(f"{scheme}://{HOST}/upload", "-f", "-o", "/dev/null", "-H", "Expect:",
                           "--data-binary", "@" + origins["upload"], "--cacert", origins["ca"],
                           transparent=transparent, max_time=30)
    script = (f"for i in $(seq {TRIES}); do " + " ".join(f"'{a}'" for a in curl)
              + f'; echo "upload-exit=$?"; done; echo {MARK}; exit {EXIT}')
    r = world.awf("sh", "-c", script, args=["-d", HOST], timeout=90)
    _check(r, event, "curl")
    # curl saw the refusal (22: the 401 with -f) or the reset (55/56), never success
    exits = [ln for ln in r.out.splitlines() if ln.startswith("upload-exit=")]
    assert len(exits) == TRIES and "upload-exit=0" not in exits, r


@pytest.mark.parametrize("path", list(PATHS))
def test_python_upload_reset_by_origin_does_not_kill_awf(world, origins, path):
    scheme, transparent, event = PATHS[path]
    script = (f'for i in $(seq {TRIES}); do python3 -c "$0" {scheme}://{HOST}/upload '
              f'{origins["ca"]} {origins["upload"]} {int(transparent)}; done; '
              f'echo {MARK}; exit {EXIT}')
    r = world.awf("sh", "-c", script, PY_UPLOAD, args=["-d", HOST], timeout=90)
    _check(r, event, "python")
    assert r.out.count("python-done") == TRIES, r
    outcomes = [ln for ln in r.out.splitlines() if ln.startswith("upload-")]
    assert len(outcomes) == TRIES, r
    assert all(ln in ("upload-status 401", "upload-status 502") or ln.startswith("upload-error")
               for ln in outcomes), r


@pytest.mark.parametrize("path", list(PATHS))
def test_git_push_rejected_early_does_not_kill_awf(world, origins, path):
    """Smart HTTP: the refs are advertised, git's probe is answered, and its
    pack is refused (403) and reset while git is sending it."""
    scheme, transparent, event = PATHS[path]
    env = f"GIT_SSL_CAINFO={origins['ca']} "
    if transparent:
        env += "NO_PROXY='*' no_proxy='*' "
    script = (
        "cd \"$HOME\" && rm -rf pushrepo && git init -q pushrepo && cd pushrepo && "
        f"cp {origins['upload']} big.bin && git add big.bin && "
        "git -c user.name=awf -c user.email=awf@test commit -qm big && "
        f"for i in $(seq {TRIES}); do {env}git push {scheme}://{HOST}/repo.git "
        f'HEAD:refs/heads/main; echo "push-exit=$?"; done; echo {MARK}; exit {EXIT}')
    r = world.awf("sh", "-c", script, args=["-d", HOST], timeout=120)
    recs = _check(r, event, "git push")
    exits = [ln for ln in r.out.splitlines() if ln.startswith("push-exit=")]
    assert len(exits) == TRIES and "push-exit=0" not in exits, r
    if scheme == "http":
        posts = [x for x in recs if x.get("method") == "POST"
                 and "git-receive-pack" in x.get("url", "")]
        assert posts, r
    # git got as far as sending its pack: the refusal came during the upload
    server = origins[scheme]
    assert any(h.startswith(b"POST /repo.git/git-receive-pack")
               and b"content-length: 4\r\n" not in h.lower() for h in server.heads), server.heads
