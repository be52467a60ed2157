"""The host's own binaries run in the sandbox and reach an allowed origin:
python3 (proxy variables), node and Java (no proxy support: the transparent
path), curl in sh pipelines; /proc/self/exe is the real binary."""

import os
import shutil

import pytest

from harness.origin import HELLO_BODY, sha256
from harness.util import token
from harness.world import require_awf, world  # noqa: F401 (fixture)

require_awf()

ALLOW = ["-d", "allowed.test"]

FETCH_JAVA = """\
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection();
        c.setConnectTimeout(10000);
        c.setReadTimeout(10000);
        int status = c.getResponseCode();
        try (InputStream in = c.getInputStream()) {
            System.out.print(status + " " + new String(in.readAllBytes(), "UTF-8"));
        }
    }
}
"""


def test_python3_urllib_uses_the_proxy(world):
    t = token()
    code = ("import ssl, urllib.request\n"
            f"ctx = ssl.create_default_context(cafile='{world.ca}')\n"
            f"print(urllib.request.urlopen('https://api.allowed.test/hello?t={t}', "
            "context=ctx, timeout=10).read().decode(), end='')\n")
    r = world.awf("python3", "-c", code, args=ALLOW)
    assert r.rc == 0 and r.out.encode() == HELLO_BODY, r
    assert len(world.https.state.find(t)) == 1
    assert r.records(event="connect", host="api.allowed.test", decision="allow"), r


def test_node_https_transparent(world):
    if shutil.which("node") is None:
        pytest.skip("node is not installed (Debian: nodejs, scripts/install-deps)")
    t = token()
    code = ("const https = require('https'); const fs = require('fs');\n"
            f"https.get('https://allowed.test/hello?t={t}', {{ca: fs.readFileSync('{world.ca}')}},"
            " (res) => { let b = ''; res.on('data', (d) => b += d);"
            " res.on('end', () => process.stdout.write(res.statusCode + ' ' + b)); })"
            ".on('error', (e) => { console.error(e.message); process.exit(3); });\n")
    r = world.awf("node", "-e", code, args=ALLOW)
    assert r.rc == 0 and r.out.encode() == b"200 " + HELLO_BODY, r
    assert len(world.https.state.find(t)) == 1
    assert r.records(event="tls", host="allowed.test", decision="allow"), r


def test_java_https_without_proxy_settings(world):
    if shutil.which("java") is None or shutil.which("keytool") is None:
        pytest.skip("java/keytool are not installed (Debian: default-jre-headless)")
    t = token()
    src = world.user_file("Fetch.java", FETCH_JAVA)
    trust = world.truststore()
    r = world.awf("java", f"-Djavax.net.ssl.trustStore={trust}",
                  "-Djavax.net.ssl.trustStorePassword=changeit", src,
                  f"https://allowed.test/hello?t={t}", args=ALLOW, timeout=120)
    assert r.rc == 0 and r.out.encode() == b"200 " + HELLO_BODY, r
    assert len(world.https.state.find(t)) == 1
    assert r.records(event="tls", host="allowed.test", decision="allow"), r


def test_sh_pipelines(world):
    t = token()
    script = (f"curl -sS --cacert {world.ca} https://allowed.test/hello?t={t} | sha256sum | "
              "cut -d' ' -f1; printf 'b\\na\\nc\\n' | sort | tr -d '\\n' | wc -c; "
              "seq 1 1000 | awk '{s+=$1} END {print s}'")
    r = world.awf(script, args=ALLOW)
    assert r.rc == 0, r
    assert r.out.split() == [sha256(HELLO_BODY), "3", "500500"], r


def test_pipeline_status_is_the_last_commands(world):
    r = world.awf("true | false", args=ALLOW)
    assert r.rc == 1, r


def test_proc_self_exe_is_the_real_binary(world):
    py = os.path.realpath("/usr/bin/python3")
    code = "import os; print(os.readlink('/proc/self/exe'))"
    r = world.awf("sh", "-c", f"readlink /proc/self/exe; python3 -c \"{code}\"")
    assert r.rc == 0, r
    assert r.out.split() == [os.path.realpath(shutil.which("readlink", path="/usr/bin:/bin")),
                             py], r
