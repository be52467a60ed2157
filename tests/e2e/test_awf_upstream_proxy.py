"""awf --upstream-proxy: the command's traffic, on both paths (the proxy
variables and the transparent redirect), leaves through a parent proxy on a
world address (harness/parent_proxy.py), named by the flag or, by default,
by awf's own proxy variables. The command's proxy variables still name
awf; what awf denies never reaches the parent."""

import socket

import pytest

from harness.origin import HELLO_BODY
from harness.parent_proxy import ParentProxy
from harness.util import token
from harness.world import ORIGIN, ORIGIN2, require_awf, world  # noqa: F401 (fixture)

require_awf()

PARENT = "198.51.100.20"
PARENT_URL = "http://parent.test:3128"


@pytest.fixture(scope="module")
def parent(world):
    world.add_host("parent.test", PARENT)

    def connect(addr):  # to the origins, from inside the world
        return world.ns.call(lambda: socket.create_connection(addr, timeout=10))

    p = world.ns.call(lambda: ParentProxy(PARENT, 3128, connect=connect, resolve={
        "allowed.test": ORIGIN, "other.test": ORIGIN2}))
    p.start()
    yield p
    p.stop()


@pytest.fixture
def fresh(parent):
    parent.requests.clear()
    return parent


def _fetch(world, url, transparent, args, env):
    t = token()
    cmd = world.curl_args(f"{url}?t={t}", transparent=transparent)
    script = "printenv HTTPS_PROXY https_proxy HTTP_PROXY http_proxy; " + \
        " ".join(f"'{a}'" for a in cmd)
    return t, world.awf("sh", "-c", script, args=["-d", "allowed.test"] + list(args),
                        extra_env=env)


@pytest.mark.parametrize("how", ["env", "flag"])
@pytest.mark.parametrize("scheme,transparent,event", [
    ("https", False, "connect"), ("http", False, "http"),
    ("https", True, "tls"), ("http", True, "http"),
])
def test_both_paths_go_through_the_parent(world, fresh, how, scheme, transparent, event):
    port = 443 if scheme == "https" else 80
    env = {"HTTPS_PROXY": PARENT_URL} if how == "env" else {}
    args = ["--upstream-proxy", PARENT_URL] if how == "flag" else []
    t, r = _fetch(world, f"{scheme}://allowed.test/hello", transparent, args, env)
    assert r.rc == 0, r
    lines = r.out.splitlines()
    # The command's own proxy variables name awf, never the parent.
    assert len(set(lines[:4])) == 1 and lines[0].startswith("http://127.0.0.1:"), r
    assert lines[4].encode() + b"\n" == HELLO_BODY, r
    assert fresh.targets() == [f"allowed.test:{port}"]
    origin = world.https if scheme == "https" else world.http
    assert len(origin.state.find(t)) == 1
    recs = r.records(event=event, host="allowed.test")
    assert recs and recs[-1]["decision"] == "allow", r
    assert recs[-1]["upstream"] == f"{PARENT}:3128", r


def test_flag_none_ignores_the_environment(world, fresh):
    t, r = _fetch(world, "https://allowed.test/hello", False, ["--upstream-proxy", "none"],
                  {"https_proxy": PARENT_URL, "HTTP_PROXY": PARENT_URL})
    assert r.rc == 0, r
    assert fresh.targets() == []
    rec = r.records(event="connect", host="allowed.test")[-1]
    assert rec["upstream"] == f"{ORIGIN}:443", r


def test_no_proxy_names_go_direct(world, fresh):
    t, r = _fetch(world, "https://allowed.test/hello", False, [],
                  {"HTTPS_PROXY": PARENT_URL, "NO_PROXY": "localhost,.allowed.test"})
    assert r.rc == 0, r
    assert fresh.targets() == []


def test_denied_never_reaches_the_parent(world, fresh):
    for transparent in (False, True):
        _, r = _fetch(world, "https://other.test/hello", transparent, [],
                      {"HTTPS_PROXY": PARENT_URL})
        assert "denied" in r.err, r
    assert fresh.targets() == []


def test_parent_failure_is_upstream_proxy_failed(world, fresh):
    fresh.mode = "502"
    try:
        _, r = _fetch(world, "http://allowed.test/hello", False, [],
                      {"HTTPS_PROXY": PARENT_URL})
    finally:
        fresh.mode = "ok"
    recs = r.records(event="http", host="allowed.test")
    assert recs and recs[-1]["reason"] == "upstream_proxy_failed", r
    assert "upstream_proxy_failed" in r.out, r


def test_bad_proxy_variable_is_refused(world):
    r = world.awf("true", args=["-d", "allowed.test"],
                  extra_env={"HTTPS_PROXY": "socks5://parent.test:1080"})
    assert r.rc == 125, r
    assert "--upstream-proxy: auto: HTTPS_PROXY: the scheme must be http://" in r.err, r
