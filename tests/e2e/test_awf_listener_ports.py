"""awf's listeners inside the sandbox (explicit proxy, transparent redirect
target, DNS) never collide with the command's own servers: they sit on ports
below 1024, which the command, with no capabilities, can never bind. The
ports awf used to take (3128, 15001, 15053) are the command's, and the proxy
variables name awf's."""

import errno
import json

from harness.origin import HELLO_BODY
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

OLD_PORTS = (3128, 15001, 15053)

# Holds TCP and UDP sockets on the old listener ports (IPv4 and IPv6
# loopback), answers on its own 3128, then runs the curl commands given as
# JSON in argv[1] while it holds them.
SQUAT = r"""
import json, socket, subprocess, sys
held, out = [], {}
for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    for port in (3128, 15001, 15053):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.bind((host, port))
        s.listen()
        held.append(s)
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.bind((host, 15053))
    held.append(u)
c = socket.create_connection(("127.0.0.1", 3128))
peer, _ = held[0].accept()
peer.sendall(b"mine")
out["own"] = c.recv(16).decode()
out["curl"] = [subprocess.run(a, capture_output=True, text=True).stdout
               for a in json.loads(sys.argv[1])]
print(json.dumps(out))
"""

# Tries to take the proxy's port (from HTTP_PROXY) and a DNS port.
TAKE = r"""
import json, os, socket
port = int(os.environ["HTTP_PROXY"].rsplit(":", 1)[1])
res = {"port": port}
for host, p in (("0.0.0.0", port), ("127.0.0.1", port), ("::", port), ("127.0.0.1", 53)):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        s.bind((host, p))
        res[f"{host}:{p}"] = 0
    except OSError as e:
        res[f"{host}:{p}"] = e.errno
print(json.dumps(res))
"""


def test_command_servers_on_the_old_listener_ports(world):
    """A command that serves on 3128, 15001 and 15053 (TCP and UDP, IPv4 and
    IPv6) starts, keeps its ports, and the proxy and the redirect work."""
    t = token()
    curls = [world.curl_args(f"https://allowed.test/hello?t={t}-proxy"),
             world.curl_args(f"https://allowed.test/hello?t={t}-redirect", transparent=True)]
    r = world.awf("python3", "-c", SQUAT, json.dumps(curls), args=["-d", "allowed.test"])
    assert r.rc == 0, r
    got = json.loads(r.out)
    assert got["own"] == "mine", r
    assert got["curl"] == [HELLO_BODY.decode()] * 2, r
    assert len(world.https.state.find(t)) == 2
    assert r.records(event="connect", host="allowed.test"), r  # HTTPS_PROXY
    assert r.records(event="tls", host="allowed.test"), r      # the redirect and awf's DNS


def test_listener_ports_out_of_the_commands_reach(world):
    """The proxy's port is one the command cannot bind, on any address, so it
    can neither collide with it nor squat it."""
    r = world.awf("python3", "-c", TAKE)
    assert r.rc == 0, r
    got = json.loads(r.out)
    port = got.pop("port")
    assert port < 1024 and port not in OLD_PORTS, got
    assert got == {f"0.0.0.0:{port}": errno.EACCES, f"127.0.0.1:{port}": errno.EACCES,
                   f":::{port}": errno.EACCES, "127.0.0.1:53": errno.EACCES}, r
