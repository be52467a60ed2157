"""The static flavour (scripts/build static) against the dynamic one.

- Both builds install the identical ruleset in the sandbox's network
  namespace, although the dynamic awf hands nft text to libnftables and the
  static one sends its own nf_tables netlink messages (sandbox/nft_netlink.c):
  `nft -j list ruleset` taken inside each sandbox, handles dropped, is equal.
- The static binaries need nothing at run time (test_static_needs_no_libraries).

The two builds: AWF_DYNAMIC_BIN (default build/sandbox/awf) and
AWF_STATIC_BIN (default build-static/sandbox/awf), whichever AWF_BIN is.
scripts/test static sets both; a binary asked for by name that is missing
fails the test, a default one that was not built skips it."""
import json
import os
import subprocess

import pytest

from harness.util import token
from harness.world import REPO, require_awf, wait_for, world  # noqa: F401 (fixture)
from test_awf_host import _exe, sandbox_pids

require_awf()


def _build(var, default):
    path = os.environ.get(var) or os.path.join(REPO, default)
    if not os.access(path, os.X_OK):
        if os.environ.get(var):
            pytest.fail(f"{var}={path} is not an executable", pytrace=False)
        pytest.skip(f"{path} not built ({var} unset)")
    return os.path.abspath(path)


@pytest.fixture(scope="module")
def builds():
    return {"dynamic": _build("AWF_DYNAMIC_BIN", "build/sandbox/awf"),
            "static": _build("AWF_STATIC_BIN", "build-static/sandbox/awf")}


def _flavour(awf_bin):
    out = subprocess.run([awf_bin, "--version"], capture_output=True, text=True).stdout
    return out.split("; ", 1)[1]


def sandbox_ruleset(world, awf_bin, args):
    """`nft -j list ruleset` in the network namespace of a sandbox that awf_bin
    started with args, handles dropped."""
    t = token()
    ready, go = (os.path.join(world.home, f"{w}-{t}") for w in ("ready", "go"))
    saved, world.awf_bin = world.awf_bin, awf_bin
    try:
        p, _ = world.popen("sh", "-c", f"echo up > {ready}; while [ ! -e {go} ]; do "
                           "sleep 0.02; done", args=args)
    finally:
        world.awf_bin = saved
    try:
        assert wait_for(lambda: os.path.exists(ready), timeout=20), p.communicate(timeout=5)
        pid = next(x for x in sandbox_pids(go)
                   if os.path.basename(_exe(x) or "") in ("sh", "dash", "bash"))
        out = subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-j", "list", "ruleset"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    finally:
        world.user_file(f"go-{t}", "")
        try:
            p.wait(20)
        finally:
            if p.poll() is None:
                p.kill()
    items = json.loads(out)["nftables"]
    for item in items:
        for body in item.values():
            body.pop("handle", None)
    return [i for i in items if "metainfo" not in i]


CONFIGS = {
    "defaults": ["-d", "allowed.test"],
    "one_port": ["-d", "allowed.test", "--allow-ports", "443"],
    "one_range": ["-d", "allowed.test", "--allow-ports", "8000-8999"],
    "all_ports": ["-d", "allowed.test", "--allow-ports", "1-65535"],
    "many_ranges": ["-d", "allowed.test", "--allow-ports",
                    "21,80,443,1000-1010,8080,8443,9000-9100,65000-65535"],
    "ssh_and_host_access": ["-d", "allowed.test", "--allow-ssh", "allowed.test",
                            "--enable-host-access", "--allow-ports", "80,443,8080"],
}


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_both_backends_install_the_same_ruleset(world, builds, config):
    assert "nftables: libnftables" in _flavour(builds["dynamic"])
    assert "nftables: netlink" in _flavour(builds["static"])
    dyn = sandbox_ruleset(world, builds["dynamic"], CONFIGS[config])
    sta = sandbox_ruleset(world, builds["static"], CONFIGS[config])
    assert any("rule" in i for i in dyn), dyn  # the listing is a ruleset
    assert sta == dyn
