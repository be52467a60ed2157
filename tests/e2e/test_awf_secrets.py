"""Secrets in awf (--secret, docs/secrets.md): the command holds a
placeholder in NAME, never the value (not with --env-all, -e NAME, an env
file holding the value, /proc/*/environ, its home or /tmp, awf's own log);
the proxy writes the value into requests to the secret's host only, on the
explicit (HTTPS_PROXY) and the transparent path, and gives the echo back as
the placeholder.

--secret turns on --ssl-bump's trust set-up: curl inside trusts the run's CA
with no option; awf itself verifies the origin against the world's
certificate (SSL_CERT_FILE in awf's environment, also the host bundle the
sandbox's starts from)."""

import codecs
import json

import pytest

from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

NAME = "API_KEY"


def _value():
    return "sk-live-" + token() + token()


def _env(world, value):
    return {NAME: value, "SSL_CERT_FILE": world.ca}


def _args(*more):
    return ["-d", "allowed.test,other.test", "--secret", f"{NAME}=allowed.test"] + list(more)


def _curl(url, tok, transparent):
    """A curl command line sending the placeholder in a header and the query."""
    noproxy = "--noproxy '*' " if transparent else ""
    return (f"curl -q -sS --max-time 10 {noproxy}-H \"Authorization: Bearer ${NAME}\" "
            f"\"{url}?t={tok}&key=${NAME}\"; echo")


def _seen(origin, tok):
    reqs = origin.state.find(tok)
    assert len(reqs) == 1, reqs
    return reqs[0]["path"], dict((k.lower(), v) for k, v in reqs[0]["headers"])


@pytest.mark.parametrize("transparent", [False, True])
def test_injected_for_its_host_only(world, transparent):
    value = _value()
    t1, t2 = token(), token()
    script = (f"printf 'PH=%s\\n' \"${NAME}\"; "
              + _curl("https://allowed.test/echo", t1, transparent) + "; "
              + _curl("https://other.test/echo", t2, transparent))
    r = world.awf(script, args=_args(), extra_env=_env(world, value))
    assert r.rc == 0, r
    ph = r.out.splitlines()[0].split("=", 1)[1]
    assert len(ph) == len(value) and ph.startswith("AWFPH"), r
    path, hdrs = _seen(world.https, t1)
    assert f"key={value}" in path and hdrs["authorization"] == f"Bearer {value}", hdrs
    path, hdrs = _seen(world.https2, t2)  # other.test: the placeholder, as sent
    assert value not in path + json.dumps(hdrs) and hdrs["authorization"] == f"Bearer {ph}"
    assert value not in r.out and r.out.count(ph) >= 3, r  # the echo comes back scrubbed
    recs = [x for x in r.records(event="https") if t1 in x.get("url", "")]
    assert len(recs) == 1 and recs[0]["secrets"] == [NAME], r
    with open(r.log_path) as f:
        assert value not in f.read()


def test_plain_http_to_its_host_refused(world):
    value = _value()
    t = token()
    r = world.awf(f"curl -q -s -o /dev/null -w '%{{http_code}}' -H \"Authorization: ${NAME}\" "
                  f"'http://allowed.test/echo?t={t}'", args=_args(), extra_env=_env(world, value))
    assert r.out == "403", r
    assert world.http.state.find(t) == []
    recs = [x for x in r.records(event="http") if t in x.get("url", "")]
    assert recs and recs[0]["reason"] == "secret_plaintext", r


def test_value_never_enters_the_sandbox(world):
    value = _value()
    copy = world.user_file(f"env-{token()}", f"COPY=x{value}y\nURL=https://u:{value}@h/\n")
    # The script finds the value without naming it: rot13 of it, decoded inside.
    enc = codecs.encode(value, "rot13")
    script = ("env; echo ---; cat /proc/self/environ | tr '\\0' '\\n'; echo ---; "
              "for f in /proc/[0-9]*/environ; do cat \"$f\" 2>/dev/null | tr '\\0' '\\n'; done; "
              "echo ---; "
              f"V=$(printf %s '{enc}' | tr 'A-Za-z' 'N-ZA-Mn-za-m'); "
              "find \"$HOME\" /tmp -xdev -type f -size -1024k -exec grep -lsF -e \"$V\" {} + "
              "2>/dev/null | sed 's/^/FOUND /'; echo end")
    r = world.awf(script, args=_args("--env-all", "-e", NAME, "--env-file", copy),
                  extra_env=_env(world, value))
    assert r.rc == 0, r
    assert r.out.rstrip().endswith("end"), r
    assert value not in r.out, r
    found = [ln for ln in r.out.splitlines() if ln.startswith("FOUND ")]
    # The env file the test itself put in the home holds it; nothing else may.
    assert found == [f"FOUND {copy}"], found
    env_lines = r.out.split("---")[0].splitlines()
    ph = [ln for ln in env_lines if ln.startswith(f"{NAME}=")][0].split("=", 1)[1]
    assert len(ph) == len(value) and ph.startswith("AWFPH")
    assert f"COPY=x{ph}y" in env_lines and f"URL=https://u:{ph}@h/" in env_lines
    with open(r.log_path) as f:
        assert value not in f.read()
    assert value not in r.err


def test_secret_file_read_as_the_caller(world):
    value = _value()
    path = world.user_file(f"key-{token()}", value + "\n", mode=0o600)
    t = token()
    r = world.awf(f"printf '%s' \"${NAME}\" | wc -c; "
                  + _curl("https://allowed.test/echo", t, False),
                  args=_args("--secret-file", f"{NAME}={path}"),
                  extra_env={"SSL_CERT_FILE": world.ca})
    assert r.rc == 0, r
    assert r.out.splitlines()[0].strip() == str(len(value)), r
    _, hdrs = _seen(world.https, t)
    assert hdrs["authorization"] == f"Bearer {value}", hdrs


def test_short_value_refused(world):
    r = world.awf("true", args=_args(), extra_env={NAME: "abc"})
    assert r.rc == 125 and f"secret {NAME}" in r.err and "3 bytes" in r.err, r
