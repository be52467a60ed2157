"""Small HTTPS clients in the languages the TLS-interception tests drive
(Python urllib, Node's https module, Java's HttpURLConnection), each taking
URLs on the command line and printing one line per URL: the HTTP status, or
`ERR <what>` when no response came. Paths are sent as written (no client
normalisation of '..'). Trust and proxy come from the environment the way
each runtime reads them (SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, Java's system
properties); Node and Java get the proxy explicitly (neither reads
HTTPS_PROXY): Node's `--proxy HOST:PORT`, Java's -Dhttps.proxyHost/Port."""

import os
import shutil
import subprocess

# urllib honours HTTPS_PROXY / NO_PROXY and ssl's default verify paths
# (SSL_CERT_FILE); it sends the path as given.
PY_GET = """\
import sys, urllib.error, urllib.request
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            r.read()
            print(r.status, flush=True)
    except urllib.error.HTTPError as e:
        e.read()
        print(e.code, flush=True)
    except Exception as e:  # noqa: BLE001 (the test reads the line)
        print("ERR", type(e).__name__, str(e).replace("\\n", " ")[:200], flush=True)
"""

# The certificate a TLS server shows: sha256 of its DER and its issuer's CN,
# verified against the default trust store (SSL_CERT_FILE). Through the proxy
# in HTTPS_PROXY (CONNECT) unless it is unset.
PY_PEER_CERT = """\
import hashlib, os, socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
if proxy:
    phost, _, pport = proxy.split("//")[-1].rstrip("/").rpartition(":")
    sock = socket.create_connection((phost, int(pport)), timeout=10)
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\\r\\nHost: {host}:{port}\\r\\n\\r\\n".encode())
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        data = sock.recv(1)
        if not data:
            sys.exit("proxy closed: " + repr(head))
        head += data
    if b" 200" not in head.split(b"\\r\\n")[0]:
        sys.exit("proxy refused: " + repr(head))
else:
    sock = socket.create_connection((host, port), timeout=10)
tls = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
print(hashlib.sha256(tls.getpeercert(True)).hexdigest(), issuer.get("commonName"))
"""

# Node: https.request per URL (raw path), through a CONNECT tunnel when
# `--proxy HOST:PORT` comes first; NODE_EXTRA_CA_CERTS adds trust. Run as
# `node -e NODE_GET -- [--proxy HOST:PORT] URL...`.
NODE_GET = """\
const http = require('http'), https = require('https'), tls = require('tls');
let args = process.argv.slice(1), proxy = null;
if (args[0] === '--proxy') { proxy = args[1]; args = args.slice(2); }
function get(url) {
  return new Promise((resolve) => {
    const m = /^https:\\/\\/([^\\/:]+)(?::(\\d+))?(\\/.*)$/.exec(url);
    const host = m[1], port = m[2] || '443', path = m[3];
    const done = (line) => { console.log(line); resolve(); };
    const go = (createConnection) => {
      // createConnection is used only without an agent option.
      const opts = createConnection ? {createConnection} : {agent: false};
      const req = https.request({host, port, path, timeout: 10000, ...opts}, (res) => {
        res.resume(); res.on('end', () => done(String(res.statusCode)));
      });
      req.on('error', (e) => done('ERR ' + (e.code || e.message)));
      req.end();
    };
    if (!proxy) return go(undefined);
    const [phost, pport] = proxy.split(':');
    const c = http.request({host: phost, port: pport, method: 'CONNECT',
                            path: host + ':' + port});
    c.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return done('ERR CONNECT ' + res.statusCode);
      }
      go(() => tls.connect({socket, servername: host}));
    });
    c.on('error', (e) => done('ERR ' + (e.code || e.message)));
    c.end();
  });
}
(async () => { for (const u of args) await get(u); })();
"""

GET_JAVA = """\
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;

public class Get {
    public static void main(String[] args) {
        for (String url : args) {
            try {
                HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
                c.setConnectTimeout(10000);
                c.setReadTimeout(10000);
                int status = c.getResponseCode();
                InputStream in = status < 400 ? c.getInputStream() : c.getErrorStream();
                if (in != null) {
                    in.readAllBytes();
                    in.close();
                }
                System.out.println(status);
            } catch (Exception e) {
                System.out.println("ERR " + e.getClass().getSimpleName() + " " + e.getMessage());
            }
        }
    }
}
"""


def have_java():
    return all(shutil.which(t) for t in ("java", "javac", "keytool"))


def compile_java(directory):
    """Get.class in directory (javac once: `java -cp directory Get URL...`)."""
    src = os.path.join(directory, "Get.java")
    with open(src, "w") as f:
        f.write(GET_JAVA)
    subprocess.run(["javac", "-d", directory, src], check=True, capture_output=True, timeout=120)
    for name in ("Get.java", "Get.class"):
        os.chmod(os.path.join(directory, name), 0o644)
    return directory


def java_truststore(pem, path):
    """A PKCS12 truststore (password changeit) holding the certificate in pem."""
    if os.path.exists(path):
        os.unlink(path)
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "awf-e2e", "-file", pem,
                    "-keystore", path, "-storetype", "PKCS12", "-storepass", "changeit"],
                   check=True, capture_output=True, timeout=60)
    return path
