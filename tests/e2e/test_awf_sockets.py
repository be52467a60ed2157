"""What the command's sockets can reach beyond its network namespace:
netlink protocols that report on the whole machine, and the host's UNIX
sockets in the shared /tmp and $HOME."""

import json

from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

NETLINK_PROBE = """
import errno, json, socket
out = {}
for name, proto in (("route", 0), ("sock_diag", 4), ("uevent", 15), ("audit", 9),
                    ("generic", 16)):
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto).close()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def test_host_uevents_not_heard(world):
    """A NETLINK_KOBJECT_UEVENT socket would receive the host's device events
    (every namespace the initial user namespace owns gets them): refused like
    a missing family, as are audit and generic netlink; the sandbox's own
    routes and sockets (ROUTE, SOCK_DIAG) still answer."""
    r = world.awf("python3", "-c", NETLINK_PROBE)
    assert r.rc == 0, r
    assert json.loads(r.out) == {"route": "ok", "sock_diag": "ok", "uevent": "EAFNOSUPPORT",
                                 "audit": "EAFNOSUPPORT", "generic": "EAFNOSUPPORT"}, r
