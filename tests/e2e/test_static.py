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
from harness.world import (ORIGIN, REPO, only_root, require_awf, wait_for,
                           world)  # noqa: F401 (fixture)
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


# -- the static binaries need no shared library ---------------------------------

BUSYBOX = "/bin/busybox"  # busybox-static: the sandboxed command needs no library either
# Run by busybox's own (static) shell in a private mount namespace: every
# library directory becomes an empty tmpfs, then the shell checks that libc
# is gone and execs awf. A dynamic program cannot start there.
NO_LIBS = ("for d in /usr/lib /usr/lib64 /usr/lib32 /usr/libx32 /usr/local/lib /lib /lib64; do "
           "  [ -d \"$d\" ] && [ ! -L \"$d\" ] && { " + BUSYBOX + " mount -t tmpfs none \"$d\" || exit 90; }; "
           "done; "
           "for f in /lib64/ld-linux-x86-64.so.2 /usr/lib/x86_64-linux-gnu/libc.so.6; do "
           "  [ -e \"$f\" ] && exit 91; "
           "done; exec \"$@\"")
NO_LIBS_PRE = ["unshare", "-m", "--propagation", "private", BUSYBOX, "sh", "-c", NO_LIBS, "sh"]

# One run: an allowed request, a denied one, a filtered DNS answer, an allowed
# one, and an exit status of the command's choosing. The requests go to the
# origin's address with the host in the header (busybox's wget crashes in
# Debian 12's busybox-static; nc needs no resolver), judged by awf as usual.
def _get(host):
    return (f"printf 'GET /hello HTTP/1.0\\r\\nHost: {host}\\r\\n\\r\\n' | "
            f"{BUSYBOX} nc -w 5 {ORIGIN} 80 | {BUSYBOX} tail -n 1")


SCRIPT = (f"{_get('allowed.test')}; echo allowed=$?; "
          f"{_get('other.test')}; echo denied=$?; "
          f"{BUSYBOX} nslookup other.test; echo dns_denied=$?; "
          f"{BUSYBOX} nslookup allowed.test; echo dns_allowed=$?; exit 7")


def _decisions(records):
    return sorted((r.get("event"), r.get("host") or r.get("qname") or "",
                   r.get("decision") or "", r.get("reason") or "")
                  for r in records if r.get("event") != "run")


def _run(world, awf_bin, pre=()):
    saved, world.awf_bin = world.awf_bin, awf_bin
    try:
        return world.awf(BUSYBOX, "sh", "-c", SCRIPT, args=["-d", "allowed.test"], pre=pre)
    finally:
        world.awf_bin = saved


def test_static_needs_no_libraries(world, builds):
    only_root(world, "the drop to the test user (setpriv) needs the libraries this hides; "
                     "the static build rootless is test_both_backends_install_the_same_ruleset")
    if not os.access(BUSYBOX, os.X_OK) or "statically linked" not in subprocess.run(
            ["file", "-L", BUSYBOX], capture_output=True, text=True).stdout:
        pytest.fail(f"{BUSYBOX} is not busybox-static (scripts/install-deps)", pytrace=False)
    # The control: without its libraries the dynamic build cannot even start.
    ctl = _run(world, builds["dynamic"], pre=NO_LIBS_PRE)
    assert ctl.rc not in (0, 7, 90, 91) and "allowed=" not in ctl.out, ctl
    dyn = _run(world, builds["dynamic"])
    sta = _run(world, builds["static"], pre=NO_LIBS_PRE)
    assert dyn.rc == 7 and sta.rc == 7, (dyn, sta)
    assert "hello from origin\nallowed=0\n" in sta.out, sta
    assert "hello from origin\ndenied" not in sta.out, sta
    assert "NXDOMAIN" in sta.out and "dns_allowed=0" in sta.out, sta
    assert sta.out == dyn.out, (sta, dyn)
    got = _decisions(sta.log)
    assert ("http", "allowed.test", "allow", "allowed") in got, got
    assert any(d[1] == "other.test" and d[2] == "deny" for d in got), got
    assert got == _decisions(dyn.log)


def test_static_proxy_starts_without_libraries(builds):
    proxy = os.path.join(os.path.dirname(os.path.dirname(builds["static"])), "proxy", "awf-proxy")
    p = subprocess.run(NO_LIBS_PRE + [proxy, "--version"], capture_output=True, text=True,
                       timeout=20)
    assert p.returncode == 0 and "; static, nftables: netlink" in p.stdout, p
    dyn = os.path.join(os.path.dirname(os.path.dirname(builds["dynamic"])), "proxy", "awf-proxy")
    ctl = subprocess.run(NO_LIBS_PRE + [dyn, "--version"], capture_output=True, text=True,
                         timeout=20)
    assert ctl.returncode != 0 and "awf-proxy" not in ctl.stdout, ctl
