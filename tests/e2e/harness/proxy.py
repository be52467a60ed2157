"""The awf-proxy process under test, and its JSONL access log."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.parse

from .client import Conn, request_bytes

LISTEN_RE = re.compile(r"awf-proxy: listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)\s*$")
DNS_LISTEN_RE = re.compile(r"awf-proxy: dns listening on (\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)\s*$")
SANITIZER_RE = re.compile(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"ERROR: UndefinedBehaviorSanitizer)")
START_TIMEOUT = 10.0


def default_binary(repo):
    return os.environ.get("AWF_PROXY_BIN") or os.path.join(repo, "build", "proxy", "awf-proxy")


class _LineCollector:
    """Reads a pipe line by line on a thread (so the child never blocks on a
    full pipe) and keeps every line."""

    def __init__(self, stream, name):
        self.lines = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, args=(stream,), name=name, daemon=True)
        self._thread.start()
        self.closed = False

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            with self._cond:
                self.lines.append(raw.decode("utf-8", "replace"))
                self._cond.notify_all()
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        stream.close()

    def wait_for(self, pred, timeout):
        """First line for which pred(line) is truthy, or None at EOF/timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                while seen < len(self.lines):
                    m = pred(self.lines[seen])
                    seen += 1
                    if m:
                        return m
                left = deadline - time.monotonic()
                if self.closed or left <= 0:
                    return None
                self._cond.wait(left)

    def join(self, timeout=5):
        self._thread.join(timeout)

    def text(self):
        with self._lock:
            return "".join(self.lines)


class AccessLog:
    """The proxy's JSONL log. Lines may land a moment after the response, so
    readers poll."""

    def __init__(self, path=None, collector=None):
        self.path = path
        self.collector = collector  # for --log-file -: stdout lines

    def raw(self):
        if self.collector is not None:
            return self.collector.text()
        try:
            with open(self.path, "rb") as f:
                return f.read().decode("utf-8")  # the log must be valid UTF-8
        except FileNotFoundError:
            return ""

    def records(self):
        """The final record of every decision (what a test usually wants):
        `open`, `run` and `config` records are left out; all_records() has them."""
        return [r for r in self.all_records() if r.get("event") not in ("open", "run", "config")]

    def all_records(self):
        """Every complete line, parsed. A line that is not JSON raises."""
        out = []
        for line in self.raw().split("\n")[:-1]:  # a last line without \n is incomplete
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise AssertionError(f"access log line is not JSON: {line!r}: {e}") from None
        return out

    def wait(self, pred=None, count=1, timeout=5.0, every=False):
        """Poll until at least `count` records satisfy pred; return them all.
        every: look at all_records(), open and run records included."""
        pred = pred or (lambda r: True)
        deadline = time.monotonic() + timeout
        while True:
            hits = [r for r in (self.all_records() if every else self.records()) if pred(r)]
            if len(hits) >= count:
                return hits
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"expected {count} matching log record(s), found {len(hits)}; "
                    f"log is:\n{self.raw()[-4000:]}")
            time.sleep(0.02)

    def wait_one(self, pred=None, timeout=5.0, every=False):
        return self.wait(pred, 1, timeout, every)[-1]

    def absent(self, pred, settle=0.3):
        """True if no record matches pred after a short settle period."""
        time.sleep(settle)
        return not any(pred(r) for r in self.records())


class ProxyProcess:
    def __init__(self, binary, args, log_path=None, log_stdout=False, env=None, pass_fds=(),
                 prefix=()):
        """prefix: a command to run awf-proxy through (it must exec it, keeping
        the pid: the systemd tests' socket-passing wrapper); pass_fds: fds the
        child inherits."""
        self.binary = binary
        self.args = list(args)
        self.log_path = log_path
        self.listeners = []  # (host, port) as printed
        self.dns_listeners = []  # (host, port) of --dns-listen servers
        self.proc = subprocess.Popen(
            list(prefix) + [binary] + self.args, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, pass_fds=tuple(pass_fds))
        self.stderr = _LineCollector(self.proc.stderr, "proxy-stderr")
        self.stdout = _LineCollector(self.proc.stdout, "proxy-stdout")
        self.log = AccessLog(log_path, self.stdout if log_stdout else None)
        self.returncode = None

    def wait_listening(self, count=1, timeout=START_TIMEOUT):
        """Wait for `count` "awf-proxy: listening on ADDR:PORT" lines."""
        def pred(line):
            m = LISTEN_RE.search(line)
            return m if m and self._new(m) else None

        deadline = time.monotonic() + timeout
        while len(self.listeners) < count:
            if self.stderr.wait_for(pred, max(0.0, deadline - time.monotonic())) is None:
                rc = self.proc.poll()
                state = f"exited with {rc}" if rc is not None else "still running"
                raise AssertionError(
                    f"awf-proxy did not print 'awf-proxy: listening on ADDR:PORT' "
                    f"({state}); command: {[self.binary] + self.args}\n"
                    f"stderr:\n{self.stderr.text()[-4000:]}")
        return self

    def _new(self, m, into=None):
        into = self.listeners if into is None else into
        host = m.group(1).strip("[]")
        entry = (host, int(m.group(2)))
        if entry in into:
            return False
        into.append(entry)
        return True

    def wait_dns_listening(self, count=1, timeout=START_TIMEOUT):
        """Wait for `count` "awf-proxy: dns listening on ADDR:PORT" lines."""
        def pred(line):
            m = DNS_LISTEN_RE.search(line)
            return m if m and self._new(m, self.dns_listeners) else None

        deadline = time.monotonic() + timeout
        while len(self.dns_listeners) < count:
            if self.stderr.wait_for(pred, max(0.0, deadline - time.monotonic())) is None:
                rc = self.proc.poll()
                state = f"exited with {rc}" if rc is not None else "still running"
                raise AssertionError(
                    f"awf-proxy did not print 'awf-proxy: dns listening on ADDR:PORT' "
                    f"({state}); command: {[self.binary] + self.args}\n"
                    f"stderr:\n{self.stderr.text()[-4000:]}")
        return self

    @property
    def dns_port(self):
        return self.dns_listeners[0][1]

    @property
    def host(self):
        return self.listeners[0][0]

    @property
    def port(self):
        return self.listeners[0][1]

    @property
    def pid(self):
        return self.proc.pid

    # -- clients ----------------------------------------------------------
    def connect(self, timeout=10.0, index=0):
        host, port = self.listeners[index]
        return Conn.open(port, host, timeout)

    def fetch(self, url, method="GET", headers=(), body=None, host=None, version="HTTP/1.1"):
        """One request on a fresh connection; the Host header defaults to the
        URL's authority. Returns the Response."""
        if host is None:
            host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
        with self.connect() as c:
            c.send(request_bytes(method, url, host, headers, body, version))
            return c.read_response(method)

    def tunnel(self, authority, extra=b""):
        """Send CONNECT authority (plus `extra` bytes in the same write) and read
        the answer. Returns (conn, response); the conn is the caller's to close."""
        c = self.connect()
        c.send(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode() + extra)
        return c, c.read_response("CONNECT")

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self.stderr.join()
            raise AssertionError(
                f"awf-proxy did not exit within {timeout}s (killed); stderr:\n"
                f"{self.stderr.text()[-4000:]}") from None
        self.stderr.join()
        self.stdout.join()
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal and wait; returns the exit status (negative: killed by a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def running(self):
        return self.proc.poll() is None

    def sanitizer_report(self):
        text = self.stderr.text()
        m = SANITIZER_RE.search(text)
        return text[m.start():m.start() + 4000] if m else None

    def cpu_seconds(self):
        """User+system CPU time the process used so far (from /proc)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def check_clean_exit(self):
        """The teardown contract: exit 0, no sanitizer report, a parseable log."""
        problems = []
        if self.returncode is None:
            self.stop()
        if self.returncode != 0:
            problems.append(f"awf-proxy exited with {self.returncode}, expected 0")
        report = self.sanitizer_report()
        if report:
            problems.append(f"sanitizer report on stderr:\n{report}")
        raw = self.log.raw()
        if raw and not raw.endswith("\n"):
            problems.append(f"access log ends with a partial line: {raw[-300:]!r}")
        try:
            self.log.records()
        except AssertionError as e:
            problems.append(str(e))
        if problems:
            raise AssertionError("\n".join(problems) + "\nstderr tail:\n" + self.stderr.text()[-3000:])
