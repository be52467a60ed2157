"""Rate limits in awf (--rate-limit, --bytes-limit) on both paths: the proxy
variables (http_proxy: 429 with Retry-After; HTTPS_PROXY: the CONNECT gets
the 429) and the transparent redirect (plain HTTP: 429; TLS: refused at the
ClientHello, logged). Limits are per minute or per hour, so no unit comes
back during a run; bad values exit 125."""

import pytest

from harness.netns import PortHTTPOrigin
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()


def _run(w, scheme, transparent, args, n=3, host="allowed.test", path="/hello"):
    """n curls to one URL in one awf run; [(token, http_code, connect_code)]."""
    toks = [token() for _ in range(n)]
    sep = "&" if "?" in path else "?"
    script = " ; ".join(
        f"printf '%s ' {t}; curl -q -s --max-time 5 --cacert {w.ca} "
        + ("--noproxy '*' " if transparent else "")
        + f"-D /tmp/h-{t} -o /dev/null -w '%{{http_code}} %{{http_connect}}\\n' "
        + f"'{scheme}://{host}{path}{sep}t={t}'; grep -i '^retry-after:' /tmp/h-{t} | tr -d '\\r'"
        for t in toks)
    r = w.awf(script + "; true", args=["-d", "allowed.test,other.test"] + list(args))
    assert r.rc == 0, r
    out = []
    retry = {}
    for line in r.out.splitlines():
        parts = line.split()
        if parts and parts[0].lower() == "retry-after:":
            retry[out[-1][0]] = int(parts[1])
        else:
            out.append((parts[0], parts[1], parts[2]))
    return out, retry, r


@pytest.mark.parametrize("transparent", [False, True])
def test_http_429_both_paths(world, transparent):
    got, retry, r = _run(world, "http", transparent, ["--rate-limit", "allowed.test=2/m"])
    assert [code for _, code, _ in got] == ["200", "200", "429"], r
    t = got[2][0]
    assert 1 <= retry[t] <= 30, r  # 2/m: one unit every 30 s
    assert len(retry) == 1, r
    assert world.http.state.find(t) == []
    recs = [x for x in r.records(event="http") if t in x.get("url", "")]
    assert len(recs) == 1 and recs[0]["reason"] == "rate_limited", r
    assert recs[0]["decision"] == "deny" and recs[0]["status"] == 429, r
    if transparent:  # the redirect's record names where the command aimed
        assert recs[0].get("original_dst"), r
    assert "rate_limited" in r.err, r  # the end-of-run summary lists it


def test_https_connect_429(world):
    got, _, r = _run(world, "https", False, ["--rate-limit", "allowed.test=2/m"])
    assert [(code, conn) for _, code, conn in got] == \
        [("200", "200"), ("200", "200"), ("000", "429")], r
    recs = sorted(r.records(event="connect", host="allowed.test"), key=lambda x: x["conn"])
    assert [x["reason"] for x in recs] == ["allowed", "allowed", "rate_limited"], r
    assert world.https.state.find(got[2][0]) == []


def test_https_transparent_refused_at_sni(world):
    got, _, r = _run(world, "https", True, ["--rate-limit", "allowed.test=2/m"])
    assert [code for _, code, _ in got] == ["200", "200", "000"], r
    recs = sorted(r.records(event="tls", host="allowed.test"), key=lambda x: x["conn"])
    assert [x["reason"] for x in recs] == ["allowed", "allowed", "rate_limited"], r
    assert recs[2]["decision"] == "deny", r
    assert world.https.state.find(got[2][0]) == []


def test_global_form_and_other_host(world):
    """The global form counts each host on its own: other.test still has its
    two after allowed.test spent its own."""
    toks = [token() for _ in range(5)]
    urls = ["allowed.test"] * 3 + ["other.test"] * 2
    script = " ; ".join(
        f"curl -q -s --max-time 5 -o /dev/null -w '%{{http_code}}\\n' 'http://{h}/hello?t={t}'"
        for h, t in zip(urls, toks))
    r = world.awf(script + "; true", args=["-d", "allowed.test,other.test", "--rate-limit", "2/h"])
    assert r.rc == 0, r
    assert r.out.split() == ["200", "200", "429", "200", "200"], r


def test_bytes_limit(world):
    """A transfer under way is relayed whole; after it the host's bytes are
    spent and the next request is refused."""
    got, _, r = _run(world, "http", False, ["--bytes-limit", "allowed.test=1K/h"], n=2,
                     path="/bytes?n=5000")
    assert [code for _, code, _ in got] == ["200", "429"], r
    recs = [x for x in r.records(event="http") if got[1][0] in x.get("url", "")]
    assert recs and recs[0]["reason"] == "rate_limited", r


def test_host_services_not_limited(world):
    """--enable-host-access: the host's services are not the internet's hosts
    and are not limited, even by the global form."""
    port = 18090
    world._serve(lambda: PortHTTPOrigin("127.0.0.1", port))
    script = " ; ".join(
        f"curl -q -s --max-time 5 -o /dev/null -w '%{{http_code}}\\n' "
        f"'http://host.docker.internal:{port}/hello?t={token()}'" for _ in range(3))
    r = world.awf(script + "; true", args=["-d", "allowed.test", "--rate-limit", "1/h",
                                           "--enable-host-access", "--allow-host-ports",
                                           str(port)])
    assert r.rc == 0, r
    assert r.out.split() == ["200", "200", "200"], r


@pytest.mark.parametrize("flag,value,why", [
    ("--rate-limit", "allowed.test=5/d", "not [HOST=]N/s, N/m or N/h"),
    ("--bytes-limit", "allowed.test=5Q/m", "from 1 to 1T"),
])
def test_bad_value_exits_125(world, flag, value, why):
    r = world.awf("true", args=["-d", "allowed.test", flag, value])
    assert r.rc == 125, r
    assert f"{flag}: '{value}'" in r.err and why in r.err, r
