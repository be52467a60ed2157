"""--dlp (alias --enable-dlp) in awf: a request carrying a token is denied
(dlp_match) on both plain-HTTP paths, the proxy variables and the
transparent redirect of port 80; a DNS question carrying one gets no
answer and never reaches the upstream resolver. Without the flag the same
requests reach the origin, so each test fails if DLP were off."""

import pytest

from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

def _log_text(r):
    with open(r.log_path, encoding="utf-8") as f:
        return f.read()


GH = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
AWS_LABEL = "akiaiosfodnn7example"


@pytest.mark.parametrize("flag", ["--dlp", "--enable-dlp", None])
@pytest.mark.parametrize("transparent", [False, True])
def test_http_both_paths(world, flag, transparent):
    toks = [token(), token(), token()]
    curl = ("curl -q -s --max-time 5 " + ("--noproxy '*' " if transparent else "")
            + "-o /dev/null -w '%{http_code}\\n' ")
    script = " ; ".join([
        f"printf '%s ' {toks[0]}; {curl} 'http://allowed.test/hello?t={toks[0]}&k={GH}'",
        f"printf '%s ' {toks[1]}; {curl} -H 'Authorization: token {GH}' "
        f"'http://allowed.test/hello?t={toks[1]}'",
        f"printf '%s ' {toks[2]}; {curl} 'http://allowed.test/hello?t={toks[2]}'",
    ])
    args = ["-d", "allowed.test"] + ([flag] if flag else [])
    r = world.awf(script + "; true", args=args)
    assert r.rc == 0, r
    got = dict(line.split() for line in r.out.splitlines())
    for i, t in enumerate(toks):
        carries = i < 2
        denied = carries and flag is not None
        assert got[t] == ("403" if denied else "200"), (i, r)
        assert (len(world.http.state.find(t)) == 1) == (not denied), (i, r)
        recs = [x for x in r.records(event="http") if t in x.get("url", "")]
        assert len(recs) == 1, (i, r)
        if denied:
            assert recs[0]["reason"] == "dlp_match" and recs[0]["dlp"] == "github_token", r
        else:
            assert recs[0]["reason"] == "allowed" and "dlp" not in recs[0], r
    if flag:
        assert GH not in _log_text(r), "the token is in the access log"


@pytest.mark.parametrize("on", [True, False])
def test_dns_question(world, on):
    name = f"{AWS_LABEL}.allowed.test"
    before = world.dns.count(name)
    r = world.awf(f"getent hosts {name} >/dev/null; echo rc=$?",
                  args=["-d", "allowed.test"] + (["--dlp"] if on else []))
    assert r.rc == 0, r
    if not on:
        assert "rc=0" in r.out, r
        assert world.dns.count(name) > before
        return
    assert "rc=2" in r.out, r
    assert world.dns.count(name) == before
    recs = [x for x in r.records(event="dns") if x.get("reason") == "dlp_match"]
    assert recs and all(x["dlp"] == "aws_access_key_id" for x in recs), r
    assert AWS_LABEL not in _log_text(r), "the token is in the access log"


def test_https_connect_target(world):
    """A token in the name an HTTPS client asks for: the CONNECT (proxy
    variables) and the SNI (transparent) are denied; nothing reaches the
    origin."""
    name = f"{AWS_LABEL}.allowed.test"
    script = (f"curl -q -s --max-time 5 -o /dev/null 'https://{name}/hello'; echo a=$?; "
              f"curl -q -s --max-time 5 --noproxy '*' --resolve {name}:443:198.51.100.10 "
              f"-o /dev/null 'https://{name}/hello'; echo b=$?")
    before = len(world.https.state.sni_seen)
    r = world.awf(script, args=["-d", "allowed.test", "--dlp"])
    assert r.rc == 0, r
    assert "a=0" not in r.out and "b=0" not in r.out, r
    assert name not in world.https.state.sni_seen[before:]
    kinds = {(x["event"], x.get("reason")) for x in r.records()
             if x.get("event") in ("connect", "tls")}
    assert ("connect", "dlp_match") in kinds and ("tls", "dlp_match") in kinds, r
    assert AWS_LABEL not in _log_text(r)
