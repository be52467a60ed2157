"""Host services (--enable-host-access, --allow-host-ports,
--allow-host-service-ports): the command reaches servers on the host's
loopback as host.docker.internal through awf's relay, on the named ports
only, with and without the proxy variables, logged like any connection.
"The host" is the world: awf's supervisor runs in the world's namespace, so
the host's 127.0.0.1 is the world's loopback, where these tests serve."""

import pytest

from harness.netns import PortHTTPOrigin
from harness.origin import HELLO_BODY
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)
from test_awf_net import ok, one

require_awf()

HOST_PORT = 18080       # a host service the tests allow
OTHER_PORT = 18081      # a host service listening, never allowed
DB_PORT = 5432          # a "dangerous" port: only with --allow-host-service-ports
ALIAS4 = "198.18.0.2"   # the host's address inside the sandbox
ALIAS6 = "fd00:198:18::2"
HOST_FLAGS = ["--enable-host-access", "--allow-host-ports", str(HOST_PORT)]


@pytest.fixture(scope="module")
def host(world):
    """HTTP servers on the world's loopback: the host's own services."""
    return {port: world._serve(lambda p=port: PortHTTPOrigin("127.0.0.1", p))
            for port in (HOST_PORT, OTHER_PORT, DB_PORT)}


def opened_before(r, rec):
    """The `open` record of rec's connection comes first, with its decision."""
    log = r.all_log
    opens = [x for x in log if x.get("event") == "open" and x.get("conn") == rec["conn"]]
    assert len(opens) == 1, r
    assert log.index(opens[0]) < log.index(rec), r
    assert (opens[0]["kind"], opens[0]["decision"], opens[0]["reason"]) == \
        (rec["event"], rec["decision"], rec["reason"]), r


def curl(w, url, *more, args=HOST_FLAGS, transparent=False):
    return w.awf(*w.curl_args(url, *more, transparent=transparent),
                 args=["-d", "allowed.test"] + list(args))


# -- reached ----------------------------------------------------------------------

def test_host_service_through_the_proxy_variables(world, host):
    t = token()
    r = ok(curl(world, f"http://host.docker.internal:{HOST_PORT}/hello?t={t}"))
    assert r.out.encode() == HELLO_BODY
    assert len(host[HOST_PORT].state.find(t)) == 1
    rec = one(r, event="http", host="host.docker.internal")
    assert (rec["port"], rec["decision"], rec["reason"], rec["status"], rec["upstream"]) == \
        (HOST_PORT, "allow", "host_access", 200, f"127.0.0.1:{HOST_PORT}"), r
    opened_before(r, rec)
    assert "denied" not in r.err, r


def test_host_service_without_the_proxy_relayed_as_tcp(world, host):
    """No proxy: the name resolves to the host's sandbox-side address, whose
    connections awf relays, as raw TCP, to the host's loopback."""
    t = token()
    r = ok(curl(world, f"http://host.docker.internal:{HOST_PORT}/hello?t={t}", "-4",
                transparent=True))
    assert r.out.encode() == HELLO_BODY
    assert len(host[HOST_PORT].state.find(t)) == 1
    rec = one(r, event="tcp", host="host.docker.internal")
    assert (rec["port"], rec["original_dst"], rec["decision"], rec["reason"],
            rec["upstream"]) == (HOST_PORT, f"{ALIAS4}:{HOST_PORT}", "allow", "host_access",
                                 f"127.0.0.1:{HOST_PORT}"), r
    assert rec["bytes_up"] > 0 and rec["bytes_down"] >= len(HELLO_BODY), r
    assert "duration_ms" in rec, r
    opened_before(r, rec)


def test_host_service_over_ipv6_and_the_awf_name(world, host):
    t = token()
    r = ok(curl(world, f"http://host.awf.internal:{HOST_PORT}/hello?t={t}", "-6",
                transparent=True))
    assert r.out.encode() == HELLO_BODY
    rec = one(r, event="tcp", host="host.docker.internal")
    assert (rec["original_dst"], rec["reason"], rec["upstream"]) == \
        (f"[{ALIAS6}]:{HOST_PORT}", "host_access", f"127.0.0.1:{HOST_PORT}"), r


def test_host_service_from_python_both_ways(world, host):
    t = token()
    code = ("import http.client, sys, urllib.request\n"
            f"u = 'http://host.docker.internal:{HOST_PORT}/hello?t={t}'\n"
            "a = urllib.request.urlopen(u, timeout=10).read()\n"  # HTTP_PROXY
            f"c = http.client.HTTPConnection('host.docker.internal', {HOST_PORT}, timeout=10)\n"
            f"c.request('GET', '/hello?t={t}-direct')\n"
            "b = c.getresponse().read()\n"
            "sys.stdout.write((a + b).decode())\n")
    r = ok(world.awf("python3", "-c", code, args=["-d", "allowed.test"] + HOST_FLAGS))
    assert r.out.encode() == HELLO_BODY * 2
    assert len(host[HOST_PORT].state.find(t)) == 2
    assert one(r, event="http", host="host.docker.internal")["reason"] == "host_access"
    assert one(r, event="tcp", host="host.docker.internal")["reason"] == "host_access"


def test_host_name_answered_by_awf_dns(world, host):
    """Tools that ask DNS themselves get the host's address from awf."""
    r = ok(world.awf("sh", "-c", "dig +short host.docker.internal A @127.0.0.1; "
                     "dig +short host.awf.internal AAAA @1.1.1.1",
                     args=["-d", "allowed.test"] + HOST_FLAGS))
    assert r.out.split() == [ALIAS4, ALIAS6], r
    recs = r.records(event="dns", host="host.docker.internal")
    assert recs and recs[0]["decision"] == "allow" and recs[0]["reason"] == "host_access", r


# -- refused ------------------------------------------------------------------------

def test_host_port_not_listed_refused_and_logged(world, host):
    """A host port outside --allow-host-ports: never reached, either way,
    even though something listens there and --allow-ports admits it."""
    t = token()
    url = f"http://host.docker.internal:{OTHER_PORT}/hello?t={t}"
    args = HOST_FLAGS + ["--allow-ports", f"80,443,{OTHER_PORT}", "--http-ports",
                         f"80,{OTHER_PORT}"]
    r = ok(curl(world, url, "-o", "/dev/null", "-w", "%{http_code}", args=args))
    assert r.out == "403", r
    rec = one(r, event="http", host="host.docker.internal")
    assert (rec["port"], rec["decision"], rec["reason"]) == \
        (OTHER_PORT, "deny", "host_port_not_allowed"), r
    assert f"host.docker.internal:{OTHER_PORT}" in r.err and "--allow-host-ports" in r.err, r
    r = curl(world, url, "-4", args=args, transparent=True)
    assert r.rc != 0, r
    rec = one(r, event="tcp", host="host.docker.internal")
    assert (rec["original_dst"], rec["decision"], rec["reason"]) == \
        (f"{ALIAS4}:{OTHER_PORT}", "deny", "host_port_not_allowed"), r
    assert "upstream" not in rec, r
    assert host[OTHER_PORT].state.find(t) == []


def test_host_port_not_listed_refused_over_connect(world, host):
    t = token()
    r = curl(world, f"http://host.docker.internal:{OTHER_PORT}/hello?t={t}",
             "--proxytunnel")
    assert r.rc != 0 and "403" in r.err, r
    rec = one(r, event="connect", host="host.docker.internal")
    assert (rec["decision"], rec["reason"]) == ("deny", "host_port_not_allowed"), r
    assert host[OTHER_PORT].state.find(t) == []


def test_host_port_through_connect_tunnel(world, host):
    t = token()
    r = ok(curl(world, f"http://host.docker.internal:{HOST_PORT}/hello?t={t}",
                "--proxytunnel"))
    assert r.out.encode() == HELLO_BODY
    rec = one(r, event="connect", host="host.docker.internal")
    assert (rec["decision"], rec["reason"], rec["upstream"]) == \
        ("allow", "host_access", f"127.0.0.1:{HOST_PORT}"), r


def test_without_host_access_the_name_is_not_special(world, host):
    """The name is the host's only with --enable-host-access; without it, an
    unknown name denied like any other, and the host's sandbox-side address
    is just another address."""
    t = token()
    url = f"http://host.docker.internal:{HOST_PORT}/hello?t={t}"
    assert ok(curl(world, url + "-with", transparent=True)).out.encode() == HELLO_BODY
    r = curl(world, url, args=(), transparent=True)
    assert r.rc == 6, r   # could not resolve host: NXDOMAIN from awf's DNS
    dns = r.records(event="dns", qname="host.docker.internal")
    assert dns and all(x["decision"] == "deny" and x["reason"] == "not_allowed"
                       for x in dns), r
    r = ok(curl(world, f"http://host.docker.internal/hello?t={t}", "-o", "/dev/null", "-w",
                "%{http_code}", args=()))
    assert r.out == "403", r
    assert one(r, event="http", host="host.docker.internal")["reason"] == "not_allowed"
    code = ("import socket\n"
            f"try: socket.create_connection(('{ALIAS4}', {HOST_PORT}), timeout=5)\n"
            "except OSError as e: print(type(e).__name__)\n")
    r = ok(world.awf("python3", "-c", code))
    assert r.out.strip() == "ConnectionRefusedError", r
    assert [q["path"] for q in host[HOST_PORT].state.find(t)] == [f"/hello?t={t}-with"]


# -- dangerous ports ----------------------------------------------------------------

@pytest.mark.parametrize("ports", ["5432", "8000,22", "3300-3310", "1-65535"])
def test_dangerous_host_port_refused_at_start(world, ports):
    r = world.awf("true", args=["--enable-host-access", "--allow-host-ports", ports])
    assert r.rc == 125, r
    assert "--allow-host-ports" in r.err and "--allow-host-service-ports" in r.err, r
    assert r.log == [], r


def test_host_ports_need_host_access(world):
    r = world.awf("true", args=["--allow-host-ports", str(HOST_PORT)])
    assert r.rc == 125 and "--enable-host-access" in r.err, r
    r = world.awf("true", args=["--enable-host-access", "--allow-host-ports", "0"])
    assert r.rc == 125 and "--allow-host-ports" in r.err, r


def test_dangerous_host_port_accepted_when_forced(world, host):
    """--allow-host-service-ports names a refused port on purpose (a job's
    database service container); it implies --enable-host-access."""
    t = token()
    r = ok(world.awf(*world.curl_args(f"http://host.docker.internal:{DB_PORT}/hello?t={t}",
                                      transparent=True),
                     args=["--allow-host-service-ports", str(DB_PORT)]))
    assert r.out.encode() == HELLO_BODY
    assert len(host[DB_PORT].state.find(t)) == 1
    assert "warning" in r.err and str(DB_PORT) in r.err, r
    rec = one(r, event="tcp", host="host.docker.internal")
    assert (rec["port"], rec["reason"]) == (DB_PORT, "host_access"), r
    # A range that holds it is accepted once the port itself is named.
    r = ok(world.awf("true", args=["--enable-host-access", "--allow-host-ports", "5400-5500",
                                   "--allow-host-service-ports", str(DB_PORT)]))
    r = world.awf("true", args=["--enable-host-access", "--allow-host-ports", "5400-5500",
                                "--allow-host-service-ports", "5433"])
    assert r.rc == 125 and "port 5432" in r.err, r
