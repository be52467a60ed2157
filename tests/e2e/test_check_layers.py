"""scripts/check-layers on small made-up trees: a cycle between modules (by
include, and by a shared header whose functions another .c defines), a pure
file reaching <uv.h>, and an upward edge in the layer table all fail, naming
the files; an acyclic, correctly layered tree passes."""

import os
import subprocess
import sys

from harness.world import REPO

CHECKER = os.path.join(REPO, "scripts", "check-layers")

CMAKE = {
    "common/CMakeLists.txt": "add_library(awf_common STATIC buf.c)\n"
                             "target_include_directories(awf_common PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n",
    "acl/CMakeLists.txt": "add_library(awf_acl STATIC acl.c)\n"
                          "target_include_directories(awf_acl PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n",
    "proxy/CMakeLists.txt": "add_library(awf_wire STATIC sni.c)\n"
                            "target_include_directories(awf_wire PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n"
                            "add_library(awf_proxy STATIC listener.c http_proxy.c loop.c)\n"
                            "target_include_directories(awf_proxy PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})\n",
}

# Acyclic and layered: proxy -> acl -> common, a shared header (conn.h)
# declaring what one .c defines and another calls, downward only.
GOOD = dict(CMAKE, **{
    "common/buf.h": "int awf_buf_init(void);\n",
    "common/buf.c": '#include "buf.h"\nint awf_buf_init(void) { return 0; }\n',
    "acl/acl.h": '#include "buf.h"\nint awf_acl_check(const char *name);\n',
    "acl/acl.c": '#include "acl.h"\nint awf_acl_check(const char *name) { return awf_buf_init() + !name; }\n',
    "proxy/sni.h": "int awf_sni(const unsigned char *p);\n",
    "proxy/sni.c": '#include "sni.h"\n#include "buf.h"\n#include <string.h>\n'
                   "int awf_sni(const unsigned char *p) { return p[0] + awf_buf_init(); }\n",
    "proxy/loop.h": "#include <uv.h>\nint loop_run(void);\n",
    "proxy/loop.c": '#include "loop.h"\nint loop_run(void) { return 0; }\n',
    "proxy/conn.h": '#include "loop.h"\nint http_start(int fd);\n',
    "proxy/http_proxy.c": '#include "conn.h"\n#include "acl.h"\n#include "sni.h"\n'
                          "int http_start(int fd)\n{\n  return awf_acl_check(\"x\") + fd + loop_run();\n}\n",
    "proxy/listener.c": '#include "conn.h"\n/* calls http_start(0) in a comment: not a call */\n'
                        "static int accept_one(void) { return http_start(3); }\n"
                        "int listener_run(void) { return accept_one(); }\n",
})


def write_tree(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def run(root):
    return subprocess.run([sys.executable, CHECKER, "--root", str(root)],
                          capture_output=True, text=True, timeout=60)


def fails(root, changes):
    """The checker's stdout on GOOD with changes applied; it must fail."""
    write_tree(root, dict(GOOD, **changes))
    r = run(root)
    assert r.returncode == 1, r.stdout + r.stderr
    return r.stdout


def test_acyclic_layered_tree_passes(tmp_path):
    write_tree(tmp_path, GOOD)
    r = run(tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no cycle" in r.stdout


def test_include_cycle_fails_naming_it(tmp_path):
    out = fails(tmp_path, {
        "proxy/loop.h": '#include <uv.h>\n#include "conn.h"\nint loop_run(void);\n',
        "proxy/loop.c": '#include "loop.h"\nint loop_run(void) { return http_start(1); }\n'})
    assert "cycle between" in out
    assert "proxy/loop.c" in out and "proxy/http_proxy.c" in out


def test_shared_header_call_cycle_fails(tmp_path):
    # The known shape in proxy/: listener.c and http_proxy.c share conn.h and
    # each calls a function the other defines; no include forms the circle.
    out = fails(tmp_path, {
        "proxy/conn.h": '#include "loop.h"\nint http_start(int fd);\nvoid conn_close(int fd);\n',
        "proxy/listener.c": GOOD["proxy/listener.c"] + "void conn_close(int fd) { (void)fd; }\n",
        "proxy/http_proxy.c": GOOD["proxy/http_proxy.c"] + "static void done(void) { conn_close(1); }\n"})
    assert "proxy/http_proxy.c -> proxy/listener.c -> proxy/http_proxy.c" in out
    assert "calls conn_close() (declared in proxy/conn.h, defined in proxy/listener.c)" in out


def test_pure_file_including_uv_fails(tmp_path):
    out = fails(tmp_path, {
        "acl/acl.c": '#include "acl.h"\n#include <uv.h>\n' + GOOD["acl/acl.c"].split("\n", 1)[1],
        # a pure library's source reaching libuv through a project header
        "proxy/sni.c": '#include "sni.h"\n#include "loop.h"\n'
                       "int awf_sni(const unsigned char *p) { return p[0]; }\n"})
    assert "pure file acl/acl.c uses libuv/c-ares: acl/acl.c:2 includes <uv.h>" in out
    assert "pure file proxy/sni.c uses libuv/c-ares" in out
    assert "proxy/loop.h:1 includes <uv.h>" in out


def test_lower_layer_using_higher_fails(tmp_path):
    out = fails(tmp_path, {
        "proxy/wire/frame.h": "int frame_len(void);\n",
        "proxy/wire/frame.c": '#include "frame.h"\n#include "../sni.h"\nint frame_len(void) { return 0; }\n'})
    assert "layer proxy/wire uses the higher layer proxy: proxy/wire/frame.c -> proxy/sni.c" in out
