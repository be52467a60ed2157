"""Base-URL mode (--secret-endpoint, docs/secrets.md): a plain-HTTP listener
inside the sandbox, named to the command in AWF_<NAME>_URL (and the SDKs'
variables for known key names), whose requests go to the endpoint's host
over verified TLS, the path after the base, the client's own credentials
dropped and the secret's value in its header. The value never enters the
sandbox."""

import pytest

from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()


def _value():
    return "sk-live-" + token() + token()


def _seen(origin, tok):
    reqs = origin.state.find(tok)
    assert len(reqs) == 1, reqs
    return reqs[0]["path"], dict((k.lower(), v) for k, v in reqs[0]["headers"])


def _run(world, name, value, script, *more):
    args = ["-d", "allowed.test", "--secret-endpoint", f"{name}=https://allowed.test/base"]
    return world.awf(script, args=args + list(more),
                     extra_env={name: value, "SSL_CERT_FILE": world.ca})


def test_curl_reaches_the_origin_with_the_secret(world):
    value, t = _value(), token()
    script = ("printf 'URL=%s\\n' \"$AWF_API_KEY_URL\"; "
              "curl -q -sS --max-time 10 -H 'Authorization: Bearer mine' -H 'Cookie: c=1' "
              f"-H 'x-api-key: mine' \"$AWF_API_KEY_URL/echo?t={t}\"; echo")
    r = _run(world, "API_KEY", value, script)
    assert r.rc == 0, r
    assert r.out.splitlines()[0] == "URL=http://127.0.0.1:320", r
    path, hdrs = _seen(world.https, t)
    assert path == f"/base/echo?t={t}", path
    assert hdrs["authorization"] == f"Bearer {value}", hdrs
    assert "cookie" not in hdrs and "x-api-key" not in hdrs, hdrs
    assert hdrs["host"] in ("allowed.test", "allowed.test:443"), hdrs  # not 127.0.0.1
    assert value not in r.out, r
    recs = [x for x in r.records(event="https") if t in x.get("url", "")]
    assert len(recs) == 1 and recs[0]["secrets"] == ["API_KEY"], r
    assert recs[0]["url"] == f"https://allowed.test/base/echo?t={t}", recs
    with open(r.log_path) as f:
        assert value not in f.read()


def test_header_named(world):
    value, t = _value(), token()
    r = _run(world, "ANTHROPIC_API_KEY", value,
             f"curl -q -sS --max-time 10 \"$ANTHROPIC_BASE_URL/v1/messages?t={t}\" >/dev/null",
             "--secret-header", "ANTHROPIC_API_KEY=x-api-key")
    assert r.rc == 0, r
    path, hdrs = _seen(world.https, t)
    assert path == f"/base/v1/messages?t={t}" and hdrs["x-api-key"] == value, hdrs
    assert "authorization" not in hdrs, hdrs


def test_python_client_and_the_value_stays_out(world):
    value, t = _value(), token()
    py = ("import os, urllib.error, urllib.request\n"
          "base = os.environ['OPENAI_BASE_URL']\n"
          "req = urllib.request.Request(base + '/chat/completions?t=" + t + "', "
          "data=b'{}', headers={'Authorization': 'Bearer ' + os.environ['OPENAI_API_KEY']})\n"
          "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
          "except urllib.error.HTTPError as e:\n    print(e.code)\n"
          "print('BASE=' + base)\n")
    script = ("env; for f in /proc/[0-9]*/environ; do cat \"$f\" 2>/dev/null | tr '\\0' '\\n';"
              f" done; python3 -c \"$(printf %s '{py.encode().hex()}' | xxd -r -p)\"")
    r = _run(world, "OPENAI_API_KEY", value, script)
    if r.rc != 0 and "xxd" in r.err:
        pytest.skip("no xxd in the sandbox")
    assert r.rc == 0, r
    assert value not in r.out and value not in r.err, r
    assert "BASE=http://127.0.0.1:320" in r.out, r  # a base path given: no /v1 added
    path, hdrs = _seen(world.https, t)
    assert path == f"/base/chat/completions?t={t}", path
    assert hdrs["authorization"] == f"Bearer {value}", hdrs


def test_bad_endpoint_refused(world):
    r = world.awf("true", args=["--secret-endpoint", "K=http://allowed.test"],
                  extra_env={"K": _value()})
    assert r.rc == 125 and "https://" in r.err, r
    r = world.awf("true", args=["--secret-endpoint", "K=https://allowed.test",
                                "--secret-header", "K=Host"], extra_env={"K": _value()})
    assert r.rc == 125 and "--secret-header" in r.err, r


def test_host_judged_like_any_other(world):
    """The endpoint's host is not admitted by the flag: the domain rules and
    URL rules judge each request as https to it."""
    value, t = _value(), token()
    r = world.awf(f"curl -q -s -o /dev/null -w '%{{http_code}}' \"$AWF_K_URL/echo?t={t}\"",
                  args=["-d", "other.test", "--secret-endpoint", "K=https://allowed.test"],
                  extra_env={"K": value, "SSL_CERT_FILE": world.ca})
    assert r.out == "403", r
    assert world.https.state.find(t) == []
    recs = [x for x in r.records(event="https") if t in x.get("url", "")]
    assert len(recs) == 1 and recs[0]["decision"] == "deny", r


def test_not_a_proxy(world):
    """The listener takes origin-form requests for its one host: an absolute
    URI or a CONNECT is refused, never sent with the secret elsewhere."""
    value, t = _value(), token()
    script = ("printf 'CONNECT other.test:443 HTTP/1.1\\r\\nHost: other.test:443\\r\\n\\r\\n' "
              "| curl -q -s --max-time 5 telnet://127.0.0.1:320; echo; "
              f"curl -q -s -o /dev/null -w '%{{http_code}}' --max-time 5 -x \"$AWF_K_URL\" "
              f"'http://other.test/echo?t={t}'")
    r = world.awf(script, args=["-d", "allowed.test,other.test", "--secret-endpoint",
                                "K=https://allowed.test"],
                  extra_env={"K": value, "SSL_CERT_FILE": world.ca})
    assert r.out.startswith("HTTP/1.1 400") and r.out.rstrip().endswith("400"), r
    assert world.http.state.find(t) == [] and world.https.state.find(t) == []
    assert world.https2.state.find(t) == []


def test_endpoint_served_by_every_worker(world):
    """With --workers, the extra engines share the endpoint listener as an
    endpoint (not as a proxy port): every request gets the secret, whichever
    engine accepts it."""
    value = _value()
    toks = [token() for _ in range(8)]
    script = "; ".join(f"curl -q -sS --max-time 10 -o /dev/null -w '%{{http_code}}\\n' "
                       f"\"$AWF_API_KEY_URL/echo?t={t}\"" for t in toks)
    r = _run(world, "API_KEY", value, script, "--workers", "3")
    assert r.rc == 0, r
    assert r.out.split() == ["404"] * len(toks), r  # the origin has no /base/echo: it answered
    for t in toks:
        _, hdrs = _seen(world.https, t)
        assert hdrs["authorization"] == f"Bearer {value}", hdrs
