"""Self-checks of the awf tests' world (no awf needed): when these fail, the
fault is in the rig (harness/world.py), not in awf."""

import json
import os

from harness.origin import HELLO_BODY
from harness.util import token
from harness.world import (ALT_PORT, DNS_ADDR, EXTRA_GROUP, GID, HOSTS_ONLY, ORIGIN, ORIGIN6,
                           UDP_PORT, UID, USER, bare_world)  # noqa: F401 (fixture)


def test_origins_answer_by_name(bare_world):
    w = bare_world
    for url, server, extra in (("https://allowed.test/hello", w.https, []),
                               ("http://other.test/hello", w.http2, []),
                               (f"http://allowed.test:{ALT_PORT}/hello", w.http_alt, []),
                               ("https://v6.allowed.test/hello", w.https6, ["-6"])):
        t = token()
        p = w.run(["curl", "-sS", "--max-time", "5", "--cacert", w.ca] + extra
                  + [f"{url}?t={t}"])
        assert p.returncode == 0, p.stderr
        assert p.stdout == HELLO_BODY
        assert len(server.state.find(t)) == 1, url


def test_dns_server_answers_a_and_aaaa(bare_world):
    w = bare_world
    p = w.run(["dig", "+short", f"@{DNS_ADDR}", "api.allowed.test"])
    assert p.stdout.decode().split() == [ORIGIN]
    p = w.run(["dig", "+short", "+tcp", f"@{DNS_ADDR}", "v6.allowed.test", "AAAA"])
    assert p.stdout.decode().split() == [ORIGIN6]
    p = w.run(["dig", f"@{DNS_ADDR}", "nosuch.test"])
    assert b"status: NXDOMAIN" in p.stdout


def test_etc_binds_are_the_worlds(bare_world):
    """ip netns exec binds /etc/netns/<ns>/* over /etc: awf, started the same
    way, reads this passwd/group/hosts, and the host's files are untouched."""
    w = bare_world
    p = w.run(["id", USER])
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert f"uid={UID}({USER})" in out and f"gid={GID}" in out and EXTRA_GROUP[0] in out
    p = w.run(["getent", "hosts", HOSTS_ONLY])
    assert p.stdout.decode().split()[:1] == [ORIGIN]
    p = w.run(["cat", "/etc/resolv.conf"])
    assert p.stdout.decode() == f"nameserver {DNS_ADDR}\n"
    with open("/etc/passwd") as f:
        assert f"\n{USER}:" not in f.read()


def test_udp_echo(bare_world):
    w = bare_world
    code = ("import socket\n"
            "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)\n"
            f"u.sendto(b'pong', ('{ORIGIN}', {UDP_PORT})); print(u.recv(10).decode())\n")
    before = w.udp.received
    p = w.run(["python3", "-c", code])
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().split() == ["pong"]
    assert w.udp.received == before + 1


def test_no_way_out(bare_world):
    """No default route: nothing sent in the world can leave the machine."""
    w = bare_world
    for af, addr in (("-4", "1.1.1.1"), ("-6", "2606:4700:4700::1111")):
        p = w.run(["ip", af, "route", "get", addr])
        assert p.returncode != 0, p.stdout
    p = w.run(["ip", "-j", "route", "show", "default"])
    assert json.loads(p.stdout or b"[]") == []


def test_icmp_counter_counts(bare_world):
    """The probe counter sees an echo request (so a zero elsewhere means something)."""
    w = bare_world
    before = w.icmp_echo_requests()
    code = ("import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n"
            f"s.sendto(bytes([8, 0, 0xf7, 0xff, 0, 0, 0, 0]), ('{ORIGIN}', 0))\n")
    p = w.run(["python3", "-c", code])
    assert p.returncode == 0, p.stderr
    assert w.icmp_echo_requests() == before + 1
    assert os.path.isdir(w.home) and os.stat(w.home).st_uid == UID
