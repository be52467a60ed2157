"""Raw clients: a buffered connection with an HTTP/1.1 response parser, TLS
over any transport (MemoryBIO based, so tests control exactly which bytes go
out in which segment), and a curl wrapper."""

import os
import socket
import ssl
import subprocess
import time

DEFAULT_TIMEOUT = 10.0
RECV_SIZE = 1 << 18


class ConnectionClosed(Exception):
    """The peer closed (or reset) before the expected bytes arrived."""


class Response:
    def __init__(self, version, status, reason, headers, body, head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), as received
        self.body = body
        self.head = head        # raw bytes of the status line and headers

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Response {self.status} {self.reason!r} {len(self.body)} bytes>"


class Conn:
    """A byte stream with a read buffer. `transport` is a socket or anything
    with sendall/recv/close (TLSOverSocket)."""

    def __init__(self, transport, buf=b""):
        self.t = transport
        self.buf = bytearray(buf)
        self.eof = False
        self.reset = False

    @classmethod
    def open(cls, port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect((host, port))
        return cls(s)

    # -- context manager --------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.t.close()
        except OSError:
            pass

    @property
    def sock(self):
        return self.t

    def settimeout(self, t):
        self.t.settimeout(t)

    def send(self, data):
        self.t.sendall(data)

    def shutdown_write(self):
        self.t.shutdown(socket.SHUT_WR)

    # -- reading ----------------------------------------------------------
    def _fill(self):
        """Read more into the buffer; False at EOF (or reset)."""
        if self.eof:
            return False
        try:
            data = self.t.recv(RECV_SIZE)
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                return self.take(i + len(delim))
            if len(self.buf) > limit:
                raise ValueError(f"no {delim!r} within {limit} bytes")
            if not self._fill():
                raise ConnectionClosed(
                    f"connection closed while waiting for {delim!r}; got {bytes(self.buf[:200])!r}")

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(
                    f"connection closed after {len(self.buf)} of {n} bytes")
        return self.take(n)

    def read_some(self):
        """Whatever is buffered or the next recv; b"" at EOF."""
        if not self.buf:
            self._fill()
        return self.take(len(self.buf))

    def read_to_eof(self):
        while self._fill():
            pass
        return self.take(len(self.buf))

    def read_response(self, method="GET"):
        """Read one HTTP/1.x response. 1xx interim responses are skipped."""
        while True:
            head = self.read_until(b"\r\n\r\n", limit=1 << 17)
            lines = head[:-4].split(b"\r\n")
            parts = lines[0].split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                raise ValueError(f"bad status line {lines[0]!r}")
            version = parts[0].decode()
            status = int(parts[1])
            reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
            headers = []
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
            if 100 <= status < 200 and status != 101:
                continue
            break
        resp = Response(version, status, reason, headers, b"", head)
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        if method == "CONNECT" and 200 <= status < 300:
            return resp
        te = (resp.header("Transfer-Encoding") or "").lower()
        cl = resp.header("Content-Length")
        if "chunked" in te:
            resp.body = self._read_chunked()
        elif cl is not None:
            resp.body = self.read_exact(int(cl))
        else:
            resp.body = self.read_to_eof()
        return resp

    def _read_chunked(self):
        parts = []
        while True:
            line = self.read_until(b"\r\n", limit=4096)
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self.read_until(b"\r\n", limit=1 << 16) != b"\r\n":
                    pass
                return b"".join(parts)
            parts.append(self.read_exact(size))
            if self.read_exact(2) != b"\r\n":
                raise ValueError("chunk not followed by CRLF")

    def expect_closed(self, timeout=5.0):
        """Assert the peer closes the connection (FIN or RST) with no further
        data. Returns any unexpected data (empty when all is well)."""
        self.t.settimeout(timeout)
        extra = bytes(self.buf)
        self.buf.clear()
        try:
            while self._fill():
                extra += bytes(self.buf)
                self.buf.clear()
        except socket.timeout:
            raise AssertionError(
                f"connection still open after {timeout}s (got {extra[:200]!r})") from None
        except ssl.SSLError:
            pass
        return extra


def request_bytes(method, target, host=None, headers=(), body=None, version="HTTP/1.1"):
    """Serialize a request. `host` None means no Host header."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if host is not None:
        lines.append(b"Host: " + host.encode("latin-1"))
    for k, v in headers:
        lines.append(k.encode("latin-1") + b": " + (v if isinstance(v, bytes) else v.encode("latin-1")))
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding")
                                    for k, _ in headers):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked(data, size=65536):
    out = bytearray()
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    out += b"0\r\n\r\n"
    return bytes(out)


class TLSOverSocket:
    """A TLS client over a Conn, driven through MemoryBIOs. `start()` returns
    the ClientHello bytes without sending them, so a test can put them on the
    wire however it likes; `finish_handshake()` completes the handshake."""

    def __init__(self, conn, server_hostname, cafile=None, verify=True):
        if verify:
            ctx = ssl.create_default_context(cafile=cafile)
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        self.conn = conn
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.conn.t.sendall(data)

    def _pull(self):
        if self.conn.buf:  # bytes the Conn read past the CONNECT response
            self.incoming.write(self.conn.take(len(self.conn.buf)))
            return True
        try:
            data = self.conn.t.recv(RECV_SIZE)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    def start(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.outgoing.read()

    def finish_handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pull():
                    raise ConnectionClosed("connection closed during the TLS handshake") from None

    def handshake(self):
        self.conn.t.sendall(self.start())
        self.finish_handshake()

    # transport interface for Conn
    def sendall(self, data):
        view = memoryview(data)
        while view:
            n = self.obj.write(view[:1 << 16])
            view = view[n:]
            self._flush()

    def recv(self, n):
        while True:
            try:
                return self.obj.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                if not self._pull():
                    continue  # the next read raises SSLEOFError
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def settimeout(self, t):
        self.conn.t.settimeout(t)

    def shutdown(self, how):
        self.conn.t.shutdown(how)

    def close(self):
        self.conn.close()


def split_hello_records(hello, at):
    """Re-frame a ClientHello that sits in one TLS record into two records,
    the handshake message cut at byte `at` of the record body."""
    assert hello[0] == 0x16 and len(hello) == 5 + int.from_bytes(hello[3:5], "big")
    body = hello[5:]
    out = b""
    for piece in (body[:at], body[at:]):
        out += hello[0:3] + len(piece).to_bytes(2, "big") + piece
    return out


def send_in_pieces(sock, data, sizes, pause=0.02):
    """Send data as separate TCP segments of the given sizes (the rest last)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pos = 0
    for n in sizes:
        sock.sendall(data[pos:pos + n])
        pos += n
        time.sleep(pause)  # let each piece leave as its own segment
    if pos < len(data):
        sock.sendall(data[pos:])


def clean_env():
    """The environment without proxy variables, so curl does only what it is told."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "curl_home")}
    env["HOME"] = "/nonexistent"  # no ~/.curlrc
    return env


def curl(args, timeout=30):
    """Run curl -q (no curlrc) with args; returns CompletedProcess (bytes)."""
    cmd = ["curl", "-q", "--silent", "--show-error", "--noproxy", "", "--max-time", "20"] + list(args)
    return subprocess.run(cmd, capture_output=True, timeout=timeout, env=clean_env())
