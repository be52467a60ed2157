"""An origin that gives up on what it is sent: it reads a connection's first
bytes, optionally answers at once (a 401 to an upload, before its body), and
closes with a RST (SO_LINGER 0) while the client is still sending. The
proxy between them then writes into a reset socket: EPIPE, which must never
become a SIGPIPE that ends the proxy (and, in awf, the sandbox with it).

Plain TCP, or TLS with `ssl_ctx` (the handshake is completed first). A
`respond(head)` hook decides per request: (answer bytes, reset?), for
servers that answer some requests normally (git's smart HTTP)."""

import socket
import ssl
import threading
import time

from .util import SocketLoop

HEAD_MAX = 65536
LINGER_RST = b"\1\0\0\0\0\0\0\0"   # struct linger {1, 0}

UNAUTHORIZED = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"awf-test\"\r\n"
                b"Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\n"
                b"unauthorized\n")


def read_head(conn):
    """Bytes up to the end of a request head (or what came before EOF/limit)."""
    buf = b""
    while b"\r\n\r\n" not in buf and len(buf) < HEAD_MAX:
        chunk = conn.recv(16384)
        if not chunk:
            break
        buf += chunk
    return buf


class ResetOrigin(SocketLoop):
    """Accepts; reads once (or, with an answer, a request head and answers
    it); waits `wait` seconds (long enough for the proxy's writes to back
    up, so the reset finds a write queued behind the one that failed); then
    closes with a RST."""

    def __init__(self, host, port, answer=None, ssl_ctx=None, wait=0.5, respond=None, delay=0.0):
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(16)
        super().__init__(sock)
        self.answer = answer
        self.ssl_ctx = ssl_ctx
        self.wait = wait
        self.respond = respond
        self.delay = delay
        self.accepted = 0
        self.heads = []            # request heads seen (answering modes)
        self._lock = threading.Lock()

    def _loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        reset = True
        try:
            c.settimeout(5)
            if self.ssl_ctx is not None:
                c = self.ssl_ctx.wrap_socket(c, server_side=True)
            if self.answer is None and self.respond is None:
                c.recv(65536)
            else:
                head = read_head(c)
                with self._lock:
                    self.heads.append(head)
                answer, reset = (self.respond(head) if self.respond
                                 else (self.answer, True))
                if answer:
                    time.sleep(self.delay)
                    c.sendall(answer)
                if reset:
                    # As a web server does after refusing a request: the
                    # answer, a FIN, then (the body still coming) a RST.
                    # The proxy stops reading at the FIN and keeps writing.
                    c.shutdown(socket.SHUT_WR)
            if reset:
                time.sleep(self.wait)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
            else:
                time.sleep(0.05)
        except (OSError, ssl.SSLError):
            pass
        try:
            c.close()
        except OSError:
            pass
