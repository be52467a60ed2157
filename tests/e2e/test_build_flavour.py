"""--version of both programs: the version of CMakeLists.txt's project(), the
git commit, and a build flavour that tells the truth about the binary."""
import os
import re
import subprocess

from harness.world import require_awf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINE = re.compile(r"^(awf|awf-proxy) (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}(-dirty)?|unknown); "
                  r"(static|dynamic), nftables: (libnftables|netlink), "
                  r"sanitizers: (none|address,undefined)\)\n$")


def _project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(awf VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def _is_static(path):
    # The ELF has no PT_INTERP (no dynamic loader): `file` says "statically linked".
    out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout
    return "statically linked" in out or "static-pie linked" in out


def test_version_names_version_commit_and_flavour(proxy_bin):
    awf_bin = require_awf()
    for prog, path in (("awf", awf_bin), ("awf-proxy", proxy_bin)):
        p = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        m = LINE.match(p.stdout)
        assert p.returncode == 0 and m and m.group(1) == prog, p
        assert m.group(2) == _project_version()
        assert (m.group(5) == "static") == _is_static(path), (p.stdout, path)
        if m.group(5) == "static":
            assert m.group(6) == "netlink"  # there is no static libnftables
        sanitized = "__asan_init" in subprocess.run(["nm", "-D", path], capture_output=True,
                                                    text=True).stdout
        assert (m.group(7) != "none") == sanitized, p.stdout
