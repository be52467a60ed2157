"""A small parent ("corporate") HTTP proxy for the --upstream-proxy tests.

It answers CONNECT (a tunnel to the named host and port) and absolute-form
requests ("GET http://host:port/path", forwarded in origin form with
Connection: close), records every request head it was sent, optionally
demands Basic credentials (407 otherwise), and has failure modes:

  ok       behave
  407      answer every request 407 Proxy Authentication Required
  502      answer every request 502 Bad Gateway
  garbage  answer with bytes that are not an HTTP response
  close    close the connection without a word
  silent   read the request, then say nothing until stop()

Names are resolved through `resolve` (a dict name -> address, since the
tests' names exist only in the tests' DNS); an IP literal is used as is.
`connect((addr, port))` makes the connection to the origin (default
socket.create_connection; a world's parent connects from inside the world).

After a CONNECT's 200 the first bytes the origin sends (within 50 ms) go out
in the same write as the 200: a client that reads past the 200's head would
swallow them (the banner test catches that)."""

import base64
import select
import socket
import threading

from .util import SocketLoop


class ParentProxy(SocketLoop):
    def __init__(self, host="127.0.0.1", port=0, resolve=None, auth=None, mode="ok",
                 connect=None):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(fam, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
        super().__init__(sock)
        self.host = host
        self.port = sock.getsockname()[1]
        self.resolve = dict(resolve or {})
        self.auth = auth  # (user, password) or None
        self.mode = mode
        self.connect = connect or (lambda addr: socket.create_connection(addr, timeout=10))
        self.requests = []  # dicts: method, target, headers (lower-case names), peer
        self.connections = 0
        self._lock = threading.Lock()
        self._conns = []

    @property
    def url(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}"

    def targets(self, method=None):
        with self._lock:
            return [r["target"] for r in self.requests if method in (None, r["method"])]

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with self._lock:
                self.connections += 1
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn, peer), daemon=True).start()

    def stop(self):
        super().stop()
        with self._lock:
            for c in self._conns:
                try:
                    c.close()
                except OSError:
                    pass

    # -- one client connection --------------------------------------------
    def _read_head(self, conn):
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None, b""
            buf += data
        head, rest = buf.split(b"\r\n\r\n", 1)
        return head, rest

    def _serve(self, conn, peer):
        conn.settimeout(30)
        try:
            with conn:
                head, rest = self._read_head(conn)
                if head is None:
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                with self._lock:
                    self.requests.append({"method": method, "target": target,
                                          "headers": headers, "peer": peer})
                if self._refuse(conn, headers):
                    return
                if method == "CONNECT":
                    self._connect(conn, target, rest)
                else:
                    self._forward(conn, method, target, lines[1:], rest)
        except OSError:
            pass

    def _refuse(self, conn, headers):
        """The failure modes and the credentials check: True when handled."""
        m = self.mode
        if m == "close":
            return True
        if m == "silent":
            self._stop.wait()
            return True
        if m == "garbage":
            conn.sendall(b"SSH-2.0-not-a-proxy\r\n\r\n")
            return True
        if m == "502":
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return True
        if self.auth is not None:
            want = "Basic " + base64.b64encode(
                f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
            if headers.get("proxy-authorization") != want:
                m = "407"
        if m == "407":
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"corp\"\r\n"
                         b"Content-Length: 0\r\n\r\n")
            return True
        return False

    def _dial(self, host, port):
        if host.startswith("["):
            host = host[1:-1]
        addr = self.resolve.get(host, host)
        return self.connect((addr, int(port)))

    def _connect(self, conn, target, rest):
        host, _, port = target.rpartition(":")
        try:
            up = self._dial(host, port)
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with up:
            early = b""
            if select.select([up], [], [], 0.05)[0]:
                early = up.recv(65536)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n" + early)
            if rest:
                up.sendall(rest)
            self._relay(conn, up)

    def _forward(self, conn, method, target, header_lines, rest):
        rest_of_url = target.split("://", 1)[1]
        authority, slash, path = rest_of_url.partition("/")
        host, _, port = authority.rpartition(":")
        if not host:
            host, port = authority, "80"
        lines = [f"{method} /{path if slash else ''} HTTP/1.1"]
        lines += [ln for ln in header_lines
                  if ln.split(":", 1)[0].strip().lower() not in
                  ("proxy-authorization", "connection", "proxy-connection")]
        lines.append("Connection: close")
        with self._dial(host, port) as up:
            up.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + rest)
            self._relay(conn, up)

    @staticmethod
    def _relay(a, b):
        socks = [a, b]
        while True:
            r, _, _ = select.select(socks, [], [], 30)
            if not r:
                return
            for s in r:
                data = s.recv(65536)
                other = b if s is a else a
                if not data:
                    try:
                        other.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    socks.remove(s)
                    if not socks:
                        return
                    continue
                other.sendall(data)
