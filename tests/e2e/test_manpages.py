"""The man pages (man/*.1) and --help agree: every option --help lists is
documented in the man page's option list and every option there is in
--help, for awf, awf logs and awf-proxy; the pages render without groff
warnings, and `cmake --install` puts them in share/man/man1."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from harness.world import REPO

MAN = os.path.join(REPO, "man")
FLAG = re.compile(r"(?<![\w-])(--?[a-z0-9][a-z0-9-]*)")


def binary(var, default):
    path = os.environ.get(var) or os.path.join(REPO, "build", default)
    if not os.access(path, os.X_OK):
        if os.environ.get(var):
            raise RuntimeError(f"{var}={path} is not an executable")
        pytest.skip(f"no binary at {path}")
    return path


def help_flags(argv):
    """The options of a --help text: the flags that start an option line."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    flags = set()
    for line in out.splitlines():
        m = re.match(r"^\s+((?:-\w, )?--[a-z0-9-]+)", line)
        if m:
            flags.update(FLAG.findall(m.group(1)))
    assert flags, out
    return flags


def man_flags(page):
    """The options a man page lists: the tag line after each .TP in OPTIONS."""
    text = open(os.path.join(MAN, page)).read()
    opts = re.search(r"^\.SH OPTIONS\n(.*?)^\.SH ", text, re.S | re.M).group(1)
    flags = set()
    lines = opts.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line == ".TP":
            tag = re.sub(r"\\f[BIRP]", "", lines[i + 1]).replace("\\-", "-")
            tag = re.sub(r"^\.B[IR]* ", "", tag)
            flags.update(f for f in FLAG.findall(tag) if not f.startswith("--") or len(f) > 2)
    assert flags, page
    return flags


CASES = [
    ("awf.1", ("AWF_BIN", "sandbox/awf"), ["--help"]),
    ("awf-logs.1", ("AWF_BIN", "sandbox/awf"), ["logs", "--help"]),
    ("awf-proxy.1", ("AWF_PROXY_BIN", "proxy/awf-proxy"), ["--help"]),
]


@pytest.mark.parametrize("page,binvar,args", CASES, ids=[c[0] for c in CASES])
def test_help_and_man_page_list_the_same_options(page, binvar, args):
    helped = help_flags([binary(*binvar)] + args)
    documented = man_flags(page)
    assert helped - documented == set(), f"in --help but not in man/{page}"
    assert documented - helped == set(), f"in man/{page} but not in --help"


@pytest.mark.parametrize("page", ["awf.1", "awf-logs.1", "awf-proxy.1"])
def test_man_page_renders_without_warnings(page):
    if shutil.which("groff") is None:
        pytest.skip("groff not installed")
    p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", os.path.join(MAN, page)],
                       capture_output=True, text=True, timeout=30,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"})
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_cmake_install_puts_the_man_pages_in_man1():
    build = os.path.dirname(os.path.dirname(binary("AWF_BIN", "sandbox/awf")))
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        pytest.skip(f"{build} is not a CMake build directory")
    with tempfile.TemporaryDirectory() as prefix:
        subprocess.run(["cmake", "--install", build, "--prefix", prefix], check=True,
                       capture_output=True, timeout=120)
        for page in ("awf.1", "awf-proxy.1", "awf-logs.1"):
            installed = os.path.join(prefix, "share", "man", "man1", page)
            assert open(installed).read() == open(os.path.join(MAN, page)).read()
