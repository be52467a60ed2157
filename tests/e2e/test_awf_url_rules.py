"""URL rules in awf (--allow-urls, --block-urls) on both plain-HTTP paths:
the proxy variables and the transparent redirect of port 80. Paths are sent
as written (curl --path-as-is); awf judges every reading of
the normalised path (%2F, %5C as '/', ";params" dropped). Bad and
https:// patterns are refused at start with 125."""

import pytest

from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

RULES = ["-d", "allowed.test",
         "--allow-urls", "http://allowed.test/ok/*, GET http://allowed.test/get/*",
         "--block-urls", "http://allowed.test/ok/secret/*"]

CASES = [  # (method, path, http status, log reason)
    ("GET", "/ok/x", "404", "allowed"),  # passed on: the origin has no /ok/x
    ("GET", "/no/x", "403", "url_not_allowed"),
    ("GET", "/ok/../no/x", "403", "url_not_allowed"),
    ("GET", "/ok/%2e%2e/no/x", "403", "url_not_allowed"),
    ("GET", "/ok/..%2Fno/x", "403", "url_not_allowed"),
    ("GET", "/ok/..%5Cno/x", "403", "url_not_allowed"),
    ("GET", "/ok/..;/no/x", "403", "url_not_allowed"),
    ("GET", "/ok/secret/x", "403", "url_blocked"),
    ("GET", "/get/x", "404", "allowed"),
    ("POST", "/get/x", "403", "url_not_allowed"),
]


@pytest.mark.parametrize("transparent", [False, True])
def test_url_rules_both_paths(world, transparent):
    toks = [token() for _ in CASES]
    script = " ; ".join(
        f"printf '%s ' {t}; curl -q -s --path-as-is --max-time 5 -X {m} "
        + ("--noproxy '*' " if transparent else "")
        + f"-o /dev/null -w '%{{http_code}}\\n' 'http://allowed.test{p}?t={t}'"
        for t, (m, p, _, _) in zip(toks, CASES))
    r = world.awf(script + "; true", args=RULES)
    assert r.rc == 0, r
    got = dict(line.split() for line in r.out.splitlines())
    for t, (m, p, code, reason) in zip(toks, CASES):
        assert got[t] == code, (m, p, r)
        recs = [x for x in r.records(event="http") if t in x.get("url", "")]
        assert len(recs) == 1 and recs[0]["reason"] == reason, (m, p, r)
        assert recs[0]["decision"] == ("allow" if reason == "allowed" else "deny"), r
        assert (len(world.http.state.find(t)) == 1) == (reason == "allowed"), (m, p)


def test_bad_pattern_exits_125(world):
    r = world.awf("true", args=["-d", "allowed.test", "--allow-urls", "http://allowed.test:81/x"])
    assert r.rc == 125, r
    assert "--allow-urls: 'http://allowed.test:81/x': a port" in r.err, r


def test_https_pattern_needs_ssl_bump(world):
    r = world.awf("true", args=["-d", "allowed.test", "--allow-urls", "https://allowed.test/ok/*"])
    assert r.rc == 125, r
    assert "'https://allowed.test/ok/*'" in r.err and "--ssl-bump" in r.err, r
    assert "add --ssl-bump" in r.err, r
