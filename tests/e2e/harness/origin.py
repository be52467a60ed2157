"""Origin servers the proxy talks to, all on loopback ephemeral ports.

HTTPOrigin serves HTTP/1.1 (keep-alive) with test endpoints (and git's smart
HTTP when given a git_root); TLSOrigin is the same over TLS with a throwaway
certificate (self-signed, or issued by a throwaway CA: make_ca, make_cert);
TCPOrigin is a raw TCP server (echo, digest-after-EOF, server-speaks-first
banner)."""

import hashlib
import json
import os
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELLO_BODY = b"hello from origin\n"
BANNER = b"BANNER awf-e2e\r\n"
GATE_MAX_WAIT = 30.0  # a held request never pins a thread forever

_BLOCK = bytes(range(256)) * 256  # 64 KiB


def pattern(n, offset=0):
    """n bytes of a deterministic, non-repeating-per-byte-position pattern."""
    out = bytearray()
    pos = offset % len(_BLOCK)
    while len(out) < n:
        take = min(n - len(out), len(_BLOCK) - pos)
        out += _BLOCK[pos:pos + take]
        pos = 0
    return bytes(out)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def pattern_sha256(n):
    h = hashlib.sha256()
    done = 0
    while done < n:
        take = min(n - done, 1 << 20)
        h.update(pattern(take, done))
        done += take
    return h.hexdigest()


class OriginState:
    """What an origin saw: requests, connections, SNI names; plus gates that
    tests open to release held responses."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = []      # dicts: method, path, version, headers, conn
        self.sni_seen = []
        self._conns = 0
        self._gates = {}
        self._arrived = {}
        self.progress = {}      # upload-stream id -> bytes received so far

    def new_conn(self):
        with self._lock:
            self._conns += 1
            return self._conns

    @property
    def connections(self):
        with self._lock:
            return self._conns

    def record(self, entry):
        with self._lock:
            self.requests.append(entry)

    def find(self, token):
        """Requests whose path contains token."""
        with self._lock:
            return [r for r in self.requests if token in r["path"]]

    def _event(self, table, key):
        with self._lock:
            ev = table.get(key)
            if ev is None:
                ev = table[key] = threading.Event()
            return ev

    def gate(self, key):
        return self._event(self._gates, key)

    def arrived(self, key):
        return self._event(self._arrived, key)

    def release(self, key):
        self.gate(key).set()

    def wait_arrived(self, key, timeout=5.0):
        return self.arrived(key).wait(timeout)

    def release_all(self):
        with self._lock:
            gates = list(self._gates.values())
        for g in gates:
            g.set()

    def set_progress(self, key, n):
        with self._lock:
            self.progress[key] = n

    def get_progress(self, key):
        with self._lock:
            return self.progress.get(key, 0)


class OriginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awf-e2e-origin"
    sys_version = ""

    def version_string(self):
        return self.server_version
    timeout = 30  # idle upstream connections eventually go away

    def setup(self):
        super().setup()
        self.conn_id = self.server.state.new_conn()

    def log_message(self, *args):
        pass

    # -- dispatch ---------------------------------------------------------
    def do_GET(self):
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def _dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        self.query = dict(urllib.parse.parse_qsl(url.query))
        self.server.state.record({
            "method": self.command,
            "path": self.path,
            "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "conn": self.conn_id,
        })
        route = {
            "/hello": self._hello, "/echo": self._echo, "/bytes": self._bytes,
            "/chunked": self._chunked, "/upload": self._upload, "/hold": self._hold,
            "/stream": self._stream, "/upload-stream": self._upload_stream,
            "/eof": self._eof, "/close": self._close, "/status": self._status,
            "/slow": self._slow, "/redirect": self._redirect,
        }.get(url.path)
        if route is None and self.server.git_root and ".git/" in url.path:
            route = lambda: self._git(url)  # noqa: E731
        if route is None:
            self._drain_body()
            self._send(404, b"no such endpoint\n")
            return
        route()

    # -- body helpers -----------------------------------------------------
    def _body_chunks(self, on_progress=None):
        """Yield the request body (Content-Length or chunked)."""
        te = self.headers.get("Transfer-Encoding", "")
        total = 0
        if "chunked" in te.lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("EOF in chunk size")
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, 1 << 18))
                    if not data:
                        raise ConnectionError("EOF in chunk")
                    left -= len(data)
                    total += len(data)
                    if on_progress:
                        on_progress(total)
                    yield data
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length", "0") or 0)
            while left:
                data = self.rfile.read1(min(left, 1 << 18))
                if not data:
                    raise ConnectionError("EOF in body")
                left -= len(data)
                total += len(data)
                if on_progress:
                    on_progress(total)
                yield data

    def _drain_body(self):
        h = hashlib.sha256()
        n = 0
        for data in self._body_chunks():
            h.update(data)
            n += len(data)
        return n, h.hexdigest()

    def _send(self, code, body, headers=(), content_type="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, obj):
        self._send(200, json.dumps(obj).encode() + b"\n", content_type="application/json")

    def _n(self, default=0):
        return int(self.query.get("n", default))

    # -- endpoints --------------------------------------------------------
    def _hello(self):
        self._drain_body()
        self._send(200, HELLO_BODY)

    def _echo(self):
        n, digest = self._drain_body()
        self._send_json({
            "method": self.command, "path": self.path, "version": self.request_version,
            "headers": [[k, v] for k, v in self.headers.items()],
            "conn": self.conn_id, "body_len": n, "body_sha256": digest,
        })

    def _bytes(self):
        self._drain_body()
        n = self._n()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        done = 0
        while done < n:
            take = min(n - done, 1 << 18)
            self.wfile.write(pattern(take, done))
            done += take

    def _chunked(self):
        self._drain_body()
        n = self._n()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD":
            return
        sizes = [1, 7, 4096, 65536, 100000, 262144]
        done = i = 0
        while done < n:
            take = min(n - done, sizes[i % len(sizes)])
            i += 1
            self.wfile.write(b"%x\r\n" % take + pattern(take, done) + b"\r\n")
            done += take
        self.wfile.write(b"0\r\n\r\n")

    def _upload(self):
        n, digest = self._drain_body()
        self._send_json({"len": n, "sha256": digest})

    def _upload_stream(self):
        key = self.query.get("id", "")
        state = self.server.state
        h = hashlib.sha256()
        n = 0
        for data in self._body_chunks(lambda total: state.set_progress(key, total)):
            h.update(data)
            n += len(data)
        self._send_json({"len": n, "sha256": h.hexdigest()})

    def _hold(self):
        self._drain_body()
        key = self.query.get("id", "")
        state = self.server.state
        state.arrived(key).set()
        state.gate(key).wait(GATE_MAX_WAIT)
        self._send(200, b"held " + key.encode() + b"\n")

    def _stream(self):
        """Send half the body, wait for the test to open the gate, send the rest:
        proves the proxy streams instead of buffering the whole body."""
        self._drain_body()
        key = self.query.get("id", "")
        n = self._n()
        chunked = self.query.get("chunked") == "1"
        half = n // 2
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()

        def emit(data):
            if chunked:
                self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
            else:
                self.wfile.write(data)

        emit(pattern(half, 0))
        self.wfile.flush()
        self.server.state.arrived(key).set()
        self.server.state.gate(key).wait(GATE_MAX_WAIT)
        emit(pattern(n - half, half))
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _eof(self):
        """No Content-Length, no chunking: the body ends when the connection closes."""
        self._drain_body()
        n = self._n(1000)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(pattern(n))
        self.close_connection = True

    def _close(self):
        self._drain_body()
        self._send(200, HELLO_BODY, headers=[("Connection", "close")])
        self.close_connection = True

    def _status(self):
        self._drain_body()
        code = int(self.query.get("code", "200"))
        self.send_response(code)
        if code in (204, 304) or code < 200:
            self.end_headers()
            return
        body = b"status %d\n" % code
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _git(self, url):
        """Git's smart HTTP: `git http-backend` as a CGI over the repositories
        under server.git_root (e.g. <root>/ok/repo.git for /ok/repo.git/...)."""
        body = b"".join(self._body_chunks())
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
               "HOME": self.server.git_root, "GIT_PROJECT_ROOT": self.server.git_root,
               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": urllib.parse.unquote(url.path),
               "QUERY_STRING": url.query, "REQUEST_METHOD": self.command,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
               "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                           timeout=30)
        head, _, out = p.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, out = p.stdout.partition(b"\n\n")
        code, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.lower() == "status":
                code = int(v.split()[0])
            elif k:
                headers.append((k, v.strip()))
        if p.returncode != 0 and not head:
            code, out = 500, p.stderr
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def _redirect(self):
        """302 to ?to=URL."""
        self._drain_body()
        self._send(302, b"moved\n", headers=[("Location", self.query.get("to", "/"))])

    def _slow(self):
        self._drain_body()
        time.sleep(int(self.query.get("ms", "200")) / 1000.0)
        self._send(200, b"slow\n")


class HTTPOrigin(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, host="127.0.0.1"):
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.state = OriginState()
        self.git_root = None  # a directory of repositories: git smart HTTP under it
        super().__init__((host, 0), OriginHandler)
        self.host = host
        self.port = self.server_address[1]
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"origin-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.state.release_all()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def handle_error(self, request, client_address):
        pass  # clients (the proxy) may close mid-response; that is the test's business


class TLSOrigin(HTTPOrigin):
    """HTTPOrigin over TLS. The handshake runs in the per-connection thread,
    so a client that never finishes it cannot stall accept()."""

    def __init__(self, certfile, keyfile, host="127.0.0.1"):
        super().__init__(host)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        ctx.sni_callback = self._on_sni
        self.ssl_ctx = ctx

    def _on_sni(self, _sslobj, name, _ctx):
        with self.state._lock:
            self.state.sni_seen.append(name)
        return None

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class _TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        srv = self.server
        srv.count_conn()
        sock = self.request
        sock.settimeout(30)
        try:
            srv.mode_fn(sock)
        except OSError:
            pass


def _mode_echo(sock):
    while True:
        data = sock.recv(1 << 18)
        if not data:
            sock.shutdown(socket.SHUT_WR)
            return
        sock.sendall(data)


def _mode_digest(sock):
    """Read until the client half-closes, then answer "<len> <sha256>\\n"."""
    h = hashlib.sha256()
    n = 0
    while True:
        data = sock.recv(1 << 18)
        if not data:
            break
        h.update(data)
        n += len(data)
    sock.sendall(b"%d %s\n" % (n, h.hexdigest().encode()))
    sock.shutdown(socket.SHUT_WR)


def _mode_banner(sock):
    sock.sendall(BANNER)
    _mode_echo(sock)


class TCPOrigin(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    MODES = {"echo": _mode_echo, "digest": _mode_digest, "banner": _mode_banner}

    def __init__(self, mode, host="127.0.0.1"):
        self.mode_fn = self.MODES[mode]
        self.mode = mode
        self._lock = threading.Lock()
        self._conns = 0
        super().__init__((host, 0), _TCPHandler)
        self.port = self.server_address[1]
        self._thread = None

    def count_conn(self):
        with self._lock:
            self._conns += 1

    @property
    def connections(self):
        with self._lock:
            return self._conns

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=f"tcp-{self.mode}-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

    def handle_error(self, request, client_address):
        pass


class RefusingPort:
    """A port where connections are refused: bound but never listening, so no
    one else can take it while the session runs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class BlackholePort:
    """A listener whose accept queue is full and never drained: the kernel
    drops further SYNs, so a connect() to it hangs until the caller times out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def close(self):
        self.filler.close()
        self.sock.close()


def _openssl(argv, input=None):
    subprocess.run(["openssl"] + argv, input=input, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=30)


def make_git_repos(root, paths):
    """Bare repositories at root/<path> (e.g. "ok/repo.git"), each with one
    commit holding README (its text: the path). Returns root."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
           "HOME": root, "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@allowed.test",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@allowed.test"}
    for path in paths:
        repo = os.path.join(root, path)
        work = repo + ".work"
        for argv in (["git", "init", "-q", "-b", "main", work],
                     ["git", "-C", work, "commit", "-q", "--allow-empty", "-m", "init"]):
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
        with open(os.path.join(work, "README"), "w") as f:
            f.write(path + "\n")
        for argv in (["git", "-C", work, "add", "README"],
                     ["git", "-C", work, "commit", "-q", "-m", "readme"],
                     ["git", "clone", "-q", "--bare", work, repo]):
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=30)
        subprocess.run(["rm", "-rf", work], check=True, timeout=30)
    return root


def make_ca(directory, name="awf e2e test CA", prefix="ca"):
    """A throwaway certificate authority (P-256): a self-signed CA certificate
    (basicConstraints CA:TRUE, keyCertSign) to issue origin certificates with.
    Returns (certfile, keyfile)."""
    cert = os.path.join(directory, f"{prefix}-cert.pem")
    key = os.path.join(directory, f"{prefix}-key.pem")
    _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-addext", "subjectKeyIdentifier=hash"])
    return cert, key


def make_cert(directory, names, ca=None, prefix="origin", ips=True):
    """A throwaway certificate (P-256) for `names` via the openssl CLI: issued
    by `ca` ((certfile, keyfile) from make_ca) as a server leaf, or without
    `ca` self-signed. ips: 127.0.0.1 and ::1 in the names too.
    Returns (certfile, keyfile)."""
    cert = os.path.join(directory, f"{prefix}-cert.pem")
    key = os.path.join(directory, f"{prefix}-key.pem")
    san = ",".join([f"DNS:{n}" for n in names] + (["IP:127.0.0.1", "IP:::1"] if ips else []))
    if ca is None:
        _openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj",
                  f"/CN={names[0]}", "-addext", f"subjectAltName={san}"])
        return cert, key
    csr = os.path.join(directory, f"{prefix}.csr")
    ext = os.path.join(directory, f"{prefix}.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "authorityKeyIdentifier=keyid\n"
                f"subjectAltName={san}\n")
    _openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={names[0]}"])
    _openssl(["x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-out", cert,
              "-days", "2", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
              "-extfile", ext])
    os.unlink(csr)
    os.unlink(ext)
    return cert, key
