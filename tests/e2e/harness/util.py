"""Small helpers shared by the test files."""

import threading
import uuid

LOOPBACK_CIDRS = "127.0.0.0/8,::1"


def token():
    """A unique marker to put in a URL, to find the request at the origin and in the log."""
    return uuid.uuid4().hex[:12]


def by(**fields):
    """Log-record predicate: every given field equals the given value."""
    return lambda r: all(r.get(k) == v for k, v in fields.items())


def url_has(text):
    """Log-record predicate: the url field contains text."""
    return lambda r: isinstance(r.get("url"), str) and text in r["url"]


def both(*preds):
    return lambda r: all(p(r) for p in preds)


class SocketLoop:
    """A socket served by a daemon thread running self._loop() until stop();
    the loop polls self._stop between timeouts of 0.2 s."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        raise NotImplementedError

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
