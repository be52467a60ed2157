"""scripts/release: the tarball, the .deb and SHA256SUMS, reproducibly.

scripts/release runs twice, each time with a fresh build directory at a
different path (AWF_DIST_BUILD_DIR) and its own dist directory: two full
static builds from the same commit must give byte-identical tarballs and
.debs, so neither the build path nor the time of the run gets into them.
Then the contents: the two stripped static binaries, the man pages, README and
NOTICE; no path of this machine in the binaries; the .deb's paths; its
binaries run after `dpkg-deb -x`.

It builds awf twice (about 10 s each on 2 cores), so it runs in the static
pass of scripts/test (AWF_BIN static) or with AWF_TEST_RELEASE=1; it needs the
static archives (scripts/install-deps) and dpkg-deb."""
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from harness.world import REPO

RELEASE = os.path.join(REPO, "scripts", "release")
MAN = ["awf.1", "awf-proxy.1", "awf-logs.1"]
UNITS = ["awf-proxy.service", "awf-proxy.socket", "awf-proxy-metrics.socket"]


def _static_awf_under_test():
    path = os.environ.get("AWF_BIN", "")
    out = subprocess.run(["file", "-L", path], capture_output=True, text=True).stdout if path else ""
    return "statically linked" in out


def _missing_toolchain():
    for f in ("/usr/lib/x86_64-linux-gnu/libc.a", "/usr/lib/x86_64-linux-gnu/libuv_a.a",
              "/usr/lib/x86_64-linux-gnu/libseccomp.a", "/usr/lib/x86_64-linux-gnu/libjansson.a"):
        if not os.path.exists(f):
            return f"{f} missing (scripts/install-deps)"
    for tool in ("dpkg-deb", "dpkg-query", "strip", "file", "strings", "sha256sum", "git"):
        if not shutil.which(tool):
            return f"{tool} not installed"
    return None


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    if not (_static_awf_under_test() or os.environ.get("AWF_TEST_RELEASE") == "1"):
        pytest.skip("builds awf twice: runs in the static pass of scripts/test or with AWF_TEST_RELEASE=1")
    why = _missing_toolchain()
    if why:
        pytest.skip(f"no static toolchain: {why}")
    runs = []
    for i in (1, 2):
        base = tmp_path_factory.mktemp(f"release{i}")
        dist, build = base / "dist", base / f"build-{i}"
        env = dict(os.environ, AWF_DIST_BUILD_DIR=str(build))
        p = subprocess.run([RELEASE, "--allow-dirty", "--dist", str(dist)], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-4000:]
        runs.append({"dist": dist, "build": build})
    return runs


def _artefacts(dist):
    tgz = [f for f in os.listdir(dist) if f.endswith(".tar.gz")]
    deb = [f for f in os.listdir(dist) if f.endswith(".deb")]
    assert len(tgz) == 1 and len(deb) == 1, os.listdir(dist)
    return tgz[0], deb[0]


def _version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(awf VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def test_release_twice_from_the_same_commit_is_byte_identical(releases):
    a, b = (r["dist"] for r in releases)
    assert sorted(os.listdir(a)) == sorted(os.listdir(b)) == sorted(
        [f"awf-{_version()}-linux-x86_64.tar.gz", f"awf_{_version()}_amd64.deb", "SHA256SUMS"])
    for name in os.listdir(a):
        with open(a / name, "rb") as fa, open(b / name, "rb") as fb:
            assert fa.read() == fb.read(), f"{name} differs between two builds of one commit"


def test_sha256sums_verify(releases):
    dist = releases[0]["dist"]
    p = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=dist,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert sorted(line.split(":")[0] for line in p.stdout.splitlines()) == sorted(_artefacts(dist)), p.stdout


def test_tarball_holds_static_binaries_man_pages_readme_notice(releases, tmp_path):
    dist = releases[0]["dist"]
    tgz, _ = _artefacts(dist)
    top = tgz[:-len(".tar.gz")]
    epoch = int(subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%ct"],
                               capture_output=True, text=True, check=True).stdout)
    with tarfile.open(dist / tgz) as t:
        members = t.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names), names  # --sort=name
        assert set(names) == {top, f"{top}/awf", f"{top}/awf-proxy", f"{top}/README.md",
                              f"{top}/NOTICE", f"{top}/man", f"{top}/man/man1",
                              f"{top}/apparmor", f"{top}/apparmor/awf", f"{top}/systemd"} | {
            f"{top}/man/man1/{m}" for m in MAN} | {
            f"{top}/systemd/{u}" for u in UNITS}, names
        for m in members:
            assert (m.uid, m.gid, m.mtime) == (0, 0, epoch), (m.name, m.uid, m.gid, m.mtime)
            exe = m.name in (f"{top}/awf", f"{top}/awf-proxy")
            assert m.mode == (0o755 if m.isdir() or exe else 0o644), (m.name, oct(m.mode))
        t.extractall(tmp_path)
    root = tmp_path / top
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for prog in ("awf", "awf-proxy"):
        path = str(root / prog)
        out = subprocess.run(["file", path], capture_output=True, text=True).stdout
        assert "statically linked" in out and ", stripped" in out, out
        v = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        assert v.returncode == 0 and v.stdout.startswith(
            f"{prog} {_version()} (commit {head}") and "; static," in v.stdout, v
    with open(root / "NOTICE") as f:
        notice = f.read()
    for lib in ("glibc", "libuv", "c-ares", "llhttp", "libcap", "libseccomp", "Jansson",
                "GNU LESSER GENERAL PUBLIC LICENSE"):
        assert lib in notice, lib
    assert "@" + "V:" not in notice  # every package version filled in


def test_no_build_path_in_the_binaries(releases, tmp_path):
    # The released (stripped) binaries and the unstripped ones of the build:
    # -ffile-prefix-map keeps the source and build paths out of the debug info too.
    dist = releases[0]["dist"]
    tgz, _ = _artefacts(dist)
    with tarfile.open(dist / tgz) as t:
        t.extractall(tmp_path)
    top = tmp_path / tgz[:-len(".tar.gz")]
    paths = [REPO, os.path.realpath(REPO), str(releases[0]["build"]), str(releases[1]["build"])]
    for r in releases:
        for b in (top / "awf", top / "awf-proxy", r["build"] / "sandbox" / "awf",
                  r["build"] / "proxy" / "awf-proxy"):
            s = subprocess.run(["strings", "-a", str(b)], capture_output=True, text=True,
                               check=True).stdout
            for p in paths:
                assert p not in s, f"{p} in {b}"


def test_deb_installs_to_usr_and_runs(releases, tmp_path):
    dist = releases[0]["dist"]
    _, deb = _artefacts(dist)
    info = subprocess.run(["dpkg-deb", "-f", str(dist / deb), "Package", "Version", "Architecture"],
                          capture_output=True, text=True, check=True).stdout
    assert info.split("\n")[:3] == ["Package: awf", f"Version: {_version()}",
                                    "Architecture: amd64"], info
    listing = subprocess.run(["dpkg-deb", "-c", str(dist / deb)], capture_output=True, text=True,
                             check=True).stdout
    files = {line.split()[-1] for line in listing.splitlines() if not line.endswith("/")}
    assert files == {"./usr/bin/awf", "./usr/bin/awf-proxy", "./usr/share/doc/awf/copyright",
                     "./usr/share/doc/awf/README.md", "./etc/apparmor.d/awf"} | {
        f"./usr/share/man/man1/{m}.gz" for m in MAN} | {
        f"./lib/systemd/system/{u}" for u in UNITS}, listing
    assert all(" root/root " in line for line in listing.splitlines()), listing
    # The AppArmor profile is a conffile, loaded by postinst only where AppArmor runs.
    ctrl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(dist / deb), str(ctrl)], check=True)
    assert (ctrl / "conffiles").read_text() == "/etc/apparmor.d/awf\n"
    postinst = (ctrl / "postinst").read_text()
    assert "apparmor_parser -r" in postinst and "/sys/kernel/security/apparmor" in postinst
    assert os.access(ctrl / "postinst", os.X_OK)
    subprocess.run(["dpkg-deb", "-x", str(dist / deb), str(tmp_path)], check=True)
    with open(os.path.join(REPO, "packaging", "apparmor", "awf"), "rb") as f:
        assert (tmp_path / "etc/apparmor.d/awf").read_bytes() == f.read()
    for u in UNITS:  # the units as contrib/systemd has them
        with open(os.path.join(REPO, "contrib", "systemd", u), "rb") as f:
            assert (tmp_path / "lib/systemd/system" / u).read_bytes() == f.read(), u
    assert "systemctl daemon-reload" in postinst
    for prog in ("awf", "awf-proxy"):
        v = subprocess.run([str(tmp_path / "usr" / "bin" / prog), "--version"],
                           capture_output=True, text=True, timeout=10)
        assert v.returncode == 0 and v.stdout.startswith(f"{prog} {_version()} "), v
    man = subprocess.run(["gzip", "-dc", str(tmp_path / "usr/share/man/man1/awf.1.gz")],
                         capture_output=True, check=True).stdout
    with open(os.path.join(REPO, "man", "awf.1"), "rb") as f:
        assert man == f.read()
