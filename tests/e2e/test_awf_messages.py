"""awf's messages: a warning when no --allow-domains was given (everything
would be denied), a suggestion for a rule written ".example.com", and what
--log-level debug shows (the effective rules, DNS servers, each resolution
and each address dialled)."""

import shlex

import pytest

from harness.world import DNS_ADDR, ORIGIN, WORLD_CIDRS, require_awf, world  # noqa: F401

require_awf()

NO_ALLOW = "awf: warning: no --allow-domains given: every destination will be denied"


@pytest.mark.parametrize("args,warned", [
    ([], True),
    (["--audit"], False),
    (["-d", "allowed.test"], False),
    (["--block-domains", "other.test"], True),
    (["--allow-ssh", "allowed.test"], False),   # SSH is a destination too
])
def test_warning_without_allow_domains(world, args, warned):
    r = world.awf("true", args=args)
    assert r.rc == 0, r
    assert r.err.count(NO_ALLOW) == (1 if warned else 0), r


def test_warning_not_given_with_a_rules_file(world):
    rules = world.user_file("rules.txt", "# the project's hosts\nallowed.test\n")
    r = world.awf("true", args=["--allow-domains-file", rules])
    assert r.rc == 0 and NO_ALLOW not in r.err, r


def test_leading_dot_rule_suggests_the_bare_name(world):
    r = world.awf("true", args=["-d", "allowed.test,.example.com"])
    assert r.rc == 125, r
    assert "invalid rule '.example.com'" in r.err, r
    assert "did you mean example.com (covers subdomains)?" in r.err, r


def test_debug_shows_rules_dns_resolutions_and_addresses(world):
    cmd = world.curl_args("http://allowed.test/hello", "-o", "/dev/null")
    cmd_t = world.curl_args("https://nosuch.gone.test/", transparent=True)
    r = world.awf("sh", "-c", shlex.join(cmd) + "; " + shlex.join(cmd_t) + "; exit 0",
                  args=["-d", "allowed.test,gone.test", "--block-domains", "bad.allowed.test",
                        "--allow-ports", "80,443,8000-8002", "--log-level", "debug"])
    assert r.rc == 0, r
    err = r.err
    # the effective rules, once, at start
    assert "debug: allow (2): " in err and "allowed.test" in err and "gone.test" in err, err
    assert "debug: block (1): bad.allowed.test" in err, err
    assert "debug: allow-ports: 80,443,8000-8002" in err, err
    assert "debug: tls-ports: 443; http-ports: 80" in err, err
    for cidr in WORLD_CIDRS.split(","):
        assert cidr in err, err
    assert f"debug: dns-servers: {DNS_ADDR}" in err, err
    # each resolution, and each address tried
    assert f"debug: resolve allowed.test: {ORIGIN}" in err, err
    assert f"debug: dial allowed.test:80: trying {ORIGIN}:80" in err, err
    assert "debug: resolve nosuch.gone.test: failed" in err, err


def test_default_level_shows_no_debug(world):
    r = world.awf(*world.curl_args("http://allowed.test/hello", "-o", "/dev/null"),
                  args=["-d", "allowed.test"])
    assert r.rc == 0, r
    assert "debug:" not in r.err, r
