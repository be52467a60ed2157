"""Decisions: allow rules, subdomains, wildcards, block-over-allow, protocol
prefixes, IP literals, the destination-address policy, DNS and upstream
failures, --audit."""

import pytest

from harness.origin import HELLO_BODY
from harness.util import by, token, url_has

RULES = "allowed.test,*.wild.test,api-*.example.test,https://tlsonly.test,http://plainonly.test"
BLOCK = "bad.allowed.test"


def _reason_in_body(resp, reason):
    return reason in resp.text or reason.replace("_", " ") in resp.text


@pytest.fixture
def rules_proxy(start_proxy):
    return start_proxy(allow=RULES, block=BLOCK)


@pytest.mark.parametrize("host,expect", [
    ("allowed.test", "allowed"),
    ("sub.allowed.test", "allowed"),
    ("deep.a.b.allowed.test", "allowed"),
    ("ALLOWED.Test", "allowed"),
    ("allowed.test.", "allowed"),
    ("notallowed.test", "not_allowed"),
    ("allowed.test.evil.test", "not_allowed"),
    ("other.test", "not_allowed"),
    ("wild.test", "not_allowed"),
    ("a.wild.test", "allowed"),
    ("x.y.wild.test", "allowed"),
    ("api-v1.example.test", "allowed"),
    ("api.example.test", "not_allowed"),
    ("api-.example.test", "not_allowed"),
    ("wild-1.example.test", "not_allowed"),
    ("bad.allowed.test", "blocked"),
    ("x.bad.allowed.test", "blocked"),
    ("plainonly.test", "allowed"),
    ("tlsonly.test", "not_allowed"),
])
def test_http_decision(rules_proxy, origins, host, expect):
    P, t = origins.http.port, token()
    r = rules_proxy.fetch(f"http://{host}:{P}/hello?t={t}")
    rec = rules_proxy.log.wait_one(url_has(t))
    if expect == "allowed":
        assert r.status == 200 and r.body == HELLO_BODY
        assert rec["decision"] == "allow" and rec["reason"] == "allowed"
        assert len(origins.http.state.find(t)) == 1
    else:
        assert r.status == 403
        assert _reason_in_body(r, expect), r.text
        assert rec["decision"] == "deny" and rec["reason"] == expect and rec["status"] == 403
        assert origins.http.state.find(t) == []


@pytest.mark.parametrize("host,expect", [
    ("allowed.test", "allowed"),
    ("sub.allowed.test", "allowed"),
    ("a.wild.test", "allowed"),
    ("wild.test", "not_allowed"),
    ("api-v1.example.test", "allowed"),
    ("notallowed.test", "not_allowed"),
    ("bad.allowed.test", "blocked"),
    ("tlsonly.test", "allowed"),
    ("plainonly.test", "not_allowed"),
])
def test_connect_decision(rules_proxy, origins, host, expect):
    E = origins.echo.port
    c, r = rules_proxy.tunnel(f"{host}:{E}")
    with c:
        if expect == "allowed":
            assert r.status == 200
            c.send(b"ping")
            assert c.read_exact(4) == b"ping"
        else:
            assert r.status == 403
            assert _reason_in_body(r, expect), r.text
    if expect != "allowed":
        rec = rules_proxy.log.wait_one(by(event="connect", host=host.lower()))
        assert rec["decision"] == "deny" and rec["reason"] == expect


def test_protocol_prefix_with_trailing_slash(start_proxy, origins):
    proxy = start_proxy(allow="https://tlsonly.test/,http://plainonly.test/")
    P, E = origins.http.port, origins.echo.port
    assert proxy.fetch(f"http://plainonly.test:{P}/hello").status == 200
    assert proxy.fetch(f"http://tlsonly.test:{P}/hello").status == 403
    c, r = proxy.tunnel(f"tlsonly.test:{E}")
    c.close()
    assert r.status == 200
    c, r = proxy.tunnel(f"plainonly.test:{E}")
    c.close()
    assert r.status == 403


def test_block_wins_over_identical_allow(start_proxy, origins):
    proxy = start_proxy(allow="allowed.test", block="allowed.test")
    r = proxy.fetch(f"http://sub.allowed.test:{origins.http.port}/hello")
    assert r.status == 403 and _reason_in_body(r, "blocked")


def test_empty_allowlist_denies_everything(start_proxy, origins):
    proxy = start_proxy(allow=None)
    r = proxy.fetch(f"http://allowed.test:{origins.http.port}/hello")
    assert r.status == 403
    assert proxy.log.wait_one()["reason"] == "not_allowed"


def test_repeated_allow_flags_add_up(start_proxy, origins):
    proxy = start_proxy(allow="allowed.test", extra=["-d", "other.test"])
    P = origins.http.port
    assert proxy.fetch(f"http://allowed.test:{P}/hello").status == 200
    assert proxy.fetch(f"http://other.test:{P}/hello").status == 200
    assert proxy.fetch(f"http://evil.test:{P}/hello").status == 403


def test_rules_files(start_proxy, origins, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("# allowed names\nallowed.test  # trailing comment\n\n"
                     "other.test, *.wild.test\n")
    block = tmp_path / "block.txt"
    block.write_text("bad.allowed.test\n")
    proxy = start_proxy(allow=None, extra=["--allow-domains-file", str(allow),
                                           "--block-domains-file", str(block)])
    P = origins.http.port
    for host, status in (("allowed.test", 200), ("other.test", 200), ("a.wild.test", 200),
                         ("bad.allowed.test", 403), ("evil.test", 403)):
        assert proxy.fetch(f"http://{host}:{P}/hello").status == status, host


# -- IP literals -------------------------------------------------------------

def test_ip_literal_denied_unless_listed(proxy, origins):
    P, E, t = origins.http.port, origins.echo.port, token()
    r = proxy.fetch(f"http://127.0.0.1:{P}/hello?t={t}")
    assert r.status == 403 and _reason_in_body(r, "ip_literal")
    assert proxy.log.wait_one(url_has(t))["reason"] == "ip_literal"
    c, r = proxy.tunnel(f"127.0.0.1:{E}")
    c.close()
    assert r.status == 403
    assert proxy.log.wait_one(by(event="connect", host="127.0.0.1"))["reason"] == "ip_literal"
    assert origins.http.state.find(t) == []


def test_ip_literal_listed_is_allowed(start_proxy, origins):
    proxy = start_proxy(allow="127.0.0.1")
    P, E = origins.http.port, origins.echo.port
    r = proxy.fetch(f"http://127.0.0.1:{P}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    c, r = proxy.tunnel(f"127.0.0.1:{E}")
    with c:
        assert r.status == 200
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
    # the rule admits the address only when named literally, not other names
    assert proxy.fetch(f"http://allowed.test:{P}/hello").status == 403


@pytest.mark.parametrize("rule", ["::1", "[::1]"])
def test_ipv6_literal_listed_is_allowed(start_proxy, origins, rule):
    proxy = start_proxy(allow=rule)
    P6 = origins.http6.port
    r = proxy.fetch(f"http://[::1]:{P6}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    c, r = proxy.tunnel(f"[::1]:{P6}")
    c.close()
    assert r.status == 200


def test_ip_literal_listed_but_private(start_proxy, origins):
    proxy = start_proxy(allow="127.0.0.1", cidrs=None)
    t = token()
    r = proxy.fetch(f"http://127.0.0.1:{origins.http.port}/hello?t={t}")
    assert r.status == 403 and _reason_in_body(r, "private_destination")
    assert origins.http.state.find(t) == []


# -- address policy ------------------------------------------------------------

def test_name_resolving_to_loopback_is_private_destination(start_proxy, origins):
    """Without --allow-destination-cidrs, an allowed name that resolves to
    127.0.0.1 (DNS rebinding) is refused before anything is dialled."""
    proxy = start_proxy(allow="rebind.test", cidrs=None)
    P, E, t = origins.http.port, origins.echo.port, token()
    r = proxy.fetch(f"http://rebind.test:{P}/hello?t={t}")
    assert r.status == 403 and _reason_in_body(r, "private_destination")
    rec = proxy.log.wait_one(url_has(t))
    assert rec["decision"] == "deny" and rec["reason"] == "private_destination"
    assert origins.http.state.find(t) == []

    before = origins.echo.connections
    c, r = proxy.tunnel(f"rebind.test:{E}")
    c.close()
    assert r.status == 403
    rec = proxy.log.wait_one(by(event="connect", host="rebind.test"))
    assert rec["decision"] == "deny" and rec["reason"] == "private_destination"
    assert origins.echo.connections == before


def test_ipv4_mapped_ipv6_answer_is_private(start_proxy, origins):
    proxy = start_proxy(allow="mapped.test", cidrs=None)
    r = proxy.fetch(f"http://mapped.test:{origins.http.port}/hello")
    assert r.status == 403
    assert proxy.log.wait_one()["reason"] == "private_destination"


@pytest.mark.parametrize("name", ["nat64local.test", "nat64local96.test", "sixtofour.test",
                                  "teredo.test", "teredo-public.test", "relay6to4.test"])
def test_name_resolving_to_wrapped_or_relay_address_is_private(start_proxy, origins, name):
    """A name whose only address is local-use NAT64 (64:ff9b:1::/48), 6to4 or
    Teredo wrapping an internal IPv4 address, a Teredo address at all, or the
    deprecated 6to4 relay block, is refused before anything is dialled."""
    proxy = start_proxy(allow=name, cidrs=None)
    t = token()
    r = proxy.fetch(f"http://{name}:{origins.http.port}/hello?t={t}")
    assert r.status == 403 and _reason_in_body(r, "private_destination"), r.status
    rec = proxy.log.wait_one(url_has(t))
    assert (rec["decision"], rec["reason"]) == ("deny", "private_destination")
    c, r = proxy.tunnel(f"{name}:{origins.echo.port}")
    c.close()
    assert r.status == 403
    rec = proxy.log.wait_one(by(event="connect", host=name))
    assert (rec["decision"], rec["reason"]) == ("deny", "private_destination")


def test_loopback_outside_allowed_cidr_is_private(start_proxy, origins):
    proxy = start_proxy(allow="loopback2.test", cidrs="127.0.0.1/32")
    r = proxy.fetch(f"http://loopback2.test:{origins.http.port}/hello")
    assert r.status == 403
    assert proxy.log.wait_one()["reason"] == "private_destination"


def test_only_admitted_addresses_are_dialled(start_proxy, origins):
    """partial.test has 127.0.0.2 (refused by policy) and 127.0.0.1 (admitted)."""
    proxy = start_proxy(allow="partial.test", cidrs="127.0.0.1/32")
    P = origins.http.port
    r = proxy.fetch(f"http://partial.test:{P}/hello")
    assert r.status == 200 and r.body == HELLO_BODY
    assert proxy.log.wait_one()["upstream"] == f"127.0.0.1:{P}"


# -- DNS and upstream failures -------------------------------------------------

@pytest.mark.parametrize("name", ["nxdomain.test", "nodata.test", "servfail.test"])
def test_dns_failure_is_502(start_proxy, origins, dns, name):
    proxy = start_proxy(allow=name)
    r = proxy.fetch(f"http://{name}:{origins.http.port}/hello")
    assert r.status == 502
    rec = proxy.log.wait_one()
    assert rec["decision"] == "deny" and rec["reason"] == "dns_failure" and rec["status"] == 502
    assert dns.count(name) >= 1, "the proxy did not ask the --dns-servers resolver"


def test_port_not_allowed(start_proxy, origins):
    proxy = start_proxy(ports=str(origins.http.port))
    t = token()
    r = proxy.fetch(f"http://allowed.test:{origins.https.port}/hello?t={t}")
    assert r.status == 403 and _reason_in_body(r, "port_not_allowed")
    rec = proxy.log.wait_one(url_has(t))
    assert rec["reason"] == "port_not_allowed" and rec["port"] == origins.https.port


def test_port_range(start_proxy, origins):
    lo = min(origins.ports)
    hi = max(origins.ports)
    proxy = start_proxy(ports=f"{lo}-{hi}")
    assert proxy.fetch(f"http://allowed.test:{origins.http.port}/hello").status == 200
    if lo > 1:
        assert proxy.fetch(f"http://allowed.test:{lo - 1}/hello").status == 403


def test_connection_refused_is_502(proxy, origins):
    t = token()
    r = proxy.fetch(f"http://allowed.test:{origins.refused.port}/hello?t={t}")
    assert r.status == 502
    rec = proxy.log.wait_one(url_has(t))
    assert rec["reason"] == "upstream_unreachable" and rec["status"] == 502


def test_connect_timeout_is_504(start_proxy, origins):
    proxy = start_proxy(extra=["--connect-timeout", "0.5"])
    t = token()
    r = proxy.fetch(f"http://allowed.test:{origins.blackhole.port}/hello?t={t}")
    assert r.status == 504
    rec = proxy.log.wait_one(url_has(t))
    assert rec["reason"] == "timeout" and rec["status"] == 504


# -- audit ---------------------------------------------------------------------

def test_audit_serves_denied_names_and_logs_would_deny(start_proxy, origins):
    proxy = start_proxy(allow="allowed.test", block="bad.allowed.test", extra=["--audit"])
    P, E = origins.http.port, origins.echo.port
    t1, t2, t3 = token(), token(), token()
    assert proxy.fetch(f"http://notallowed.test:{P}/hello?t={t1}").body == HELLO_BODY
    assert proxy.fetch(f"http://bad.allowed.test:{P}/hello?t={t2}").body == HELLO_BODY
    assert proxy.fetch(f"http://allowed.test:{P}/hello?t={t3}").body == HELLO_BODY
    r1 = proxy.log.wait_one(url_has(t1))
    assert r1["decision"] == "allow" and r1["would_deny"] is True and r1["reason"] == "not_allowed"
    r2 = proxy.log.wait_one(url_has(t2))
    assert r2["decision"] == "allow" and r2["would_deny"] is True and r2["reason"] == "blocked"
    r3 = proxy.log.wait_one(url_has(t3))
    assert r3["decision"] == "allow" and not r3.get("would_deny", False)

    c, r = proxy.tunnel(f"notallowed.test:{E}")
    with c:
        assert r.status == 200
        c.send(b"ping")
        assert c.read_exact(4) == b"ping"
    rec = proxy.log.wait_one(by(event="connect", host="notallowed.test"))
    assert rec["decision"] == "allow" and rec["would_deny"] is True

