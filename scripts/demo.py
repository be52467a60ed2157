"""The README's demo: awf-proxy admitting one name and denying another."""
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
from harness.dns import DNSServer  # noqa: E402


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main(binary):
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    port = origin.server_address[1]
    dns = DNSServer({"api.example.test": ["127.0.0.1"], "evil.example.net": ["127.0.0.1"]}).start()
    log = os.path.join(tempfile.mkdtemp(prefix="awf-demo-"), "access.jsonl")
    cmd = [binary, "--listen", "127.0.0.1:0", "--allow-domains", "example.test",
           "--allow-ports", str(port), "--allow-destination-cidrs", "127.0.0.1",
           "--dns-servers", dns.addr, "--log-file", log]
    print("$ " + " ".join(cmd))
    proxy = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    line = proxy.stderr.readline()
    m = re.search(r"listening on (\S+)", line)
    if not m:
        sys.exit("demo: awf-proxy did not start: " + line)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": "http://" + m.group(1)}))
    for host in ("api.example.test", "evil.example.net"):
        url = f"http://{host}:{port}/"
        try:
            with opener.open(url, timeout=10) as r:
                print(f"\nGET {url} -> {r.status}: {r.read().decode().strip()}")
        except urllib.error.HTTPError as e:
            print(f"\nGET {url} -> {e.code}: {e.read().decode().strip()}")
    proxy.send_signal(signal.SIGTERM)
    proxy.wait(timeout=10)
    print(f"\naccess log ({log}):")
    with open(log) as f:
        for entry in f:
            json.loads(entry)  # each line is one JSON object
            print(entry, end="")
    dns.stop()
    origin.shutdown()
    return proxy.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
