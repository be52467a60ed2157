"""awf --workers N: the sandbox's listeners (made inside its network
namespace, as root, or by its PID 1, rootless) are shared by N engines on N
threads. Both paths work, every request is logged once, the run ends
cleanly, and a bad value is refused before anything runs."""

import shlex

import pytest

from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()


def test_workers_serve_both_paths_and_log_every_request_once(world):
    t = token()
    n = 12
    urls = [f"{scheme}://allowed.test/hello?t={t}-{scheme}-{mode}-{i}"
            for scheme in ("http", "https") for mode in ("proxy", "redirect")
            for i in range(n)]
    # Parallel curls: several connections open at once, over the workers.
    script = " & ".join(
        shlex.join(world.curl_args(u, "-o", "/dev/null", "-w", "%{http_code}\n",
                                   transparent="-redirect-" in u)) for u in urls) + " & wait"
    r = world.awf("sh", "-c", script, args=["-d", "allowed.test", "--workers", "3"])
    assert r.rc == 0, r
    assert r.out.split() == ["200"] * len(urls), r
    tls = [x for x in r.log if x["event"] in ("connect", "tls") and x.get("host") == "allowed.test"]
    assert len(tls) == 2 * n and len({x["conn"] for x in tls}) == 2 * n, r
    http_urls = [x["url"] for x in r.log if x["event"] == "http" and t in x.get("url", "")]
    assert len(http_urls) == len(set(http_urls)) == 2 * n, r
    assert world.http.state.find(t) and len(world.http.state.find(t)) == 2 * n
    assert len(world.https.state.find(t)) == 2 * n


@pytest.mark.parametrize("value", ["0", "many"])
def test_bad_workers_value(world, value):
    r = world.awf("true", args=["--workers", value])
    assert r.rc == 125 and "--workers" in r.err, r
