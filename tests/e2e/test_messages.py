"""awf-proxy's messages to people who use it wrongly: a rule written as
".example.com", a request for a path sent as to a web server, a listener
beyond loopback with no --allow-clients (an open proxy); and --allow-clients
itself (clients outside it reset at accept, logged without flooding)."""

import socket
import subprocess
import time

import pytest

from harness.client import Conn
from harness.origin import HELLO_BODY
from harness.util import by, token


def _run(proxy_bin, args, timeout=10):
    res = subprocess.run([proxy_bin] + args, capture_output=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    return res.returncode, res.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("flag", ["-d", "--block-domains"])
def test_leading_dot_rule_suggests_the_bare_name(proxy_bin, flag):
    rc, err = _run(proxy_bin, [flag, "ok.test,.example.com"])
    assert rc == 2, err
    assert "invalid rule '.example.com'" in err, err
    assert "did you mean example.com (covers subdomains)?" in err, err


def test_origin_form_request_is_told_this_is_a_forward_proxy(proxy, origins):
    t = token()
    with proxy.connect() as c:
        c.send(f"GET /hello?t={t} HTTP/1.1\r\nHost: allowed.test:{origins.http.port}\r\n\r\n"
               .encode())
        resp = c.read_response()
        client = "127.0.0.1:%d" % c.sock.getsockname()[1]
    assert resp.status == 400, resp.head
    body = resp.body.decode()
    assert "not_a_proxy_request" in body and "forward proxy" in body, body
    assert "HTTP_PROXY=" in body and "curl -x" in body, body
    rec = proxy.log.wait_one(by(client=client))
    assert (rec["event"], rec["decision"], rec["reason"], rec["status"]) == \
        ("http", "deny", "not_a_proxy_request", 400), rec
    assert origins.http.state.find(t) == []


OPEN_PROXY = "is not a loopback address and no --allow-clients was given"


def test_listener_beyond_loopback_warns_of_an_open_proxy(start_proxy):
    p = start_proxy(listen=("0.0.0.0:0",))
    assert OPEN_PROXY in p.stderr.text() and "--listen 0.0.0.0:" in p.stderr.text()


@pytest.mark.parametrize("listen,clients", [(("0.0.0.0:0",), "127.0.0.0/8"),
                                            (("127.0.0.1:0",), None),
                                            (("[::1]:0",), None)])
def test_no_open_proxy_warning(start_proxy, listen, clients):
    extra = ["--allow-clients", clients] if clients else []
    p = start_proxy(listen=listen, extra=extra)
    assert OPEN_PROXY not in p.stderr.text(), p.stderr.text()


def _connect_from(port, source):
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def test_allow_clients_resets_others_and_logs_them_once_a_second(start_proxy, origins):
    p = start_proxy(extra=["--allow-clients", "127.0.0.2/32,::1"])
    url = f"http://allowed.test:{origins.http.port}/hello"
    # a listed client is served
    s = _connect_from(p.port, "127.0.0.2")
    with Conn(s) as c:
        c.send(f"GET {url} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode())
        resp = c.read_response()
    assert resp.status == 200 and resp.body == HELLO_BODY
    # others are reset before anything is read
    for _ in range(5):
        s = None
        try:
            s = _connect_from(p.port, "127.0.0.3")
            s.sendall(f"GET {url} HTTP/1.1\r\nHost: allowed.test\r\n\r\n".encode())
            got = s.recv(100)
        except ConnectionResetError:
            got = None
        finally:
            if s:
                s.close()
        assert not got, got
    p.log.wait(lambda r: r.get("reason") == "client_not_allowed", count=1)
    time.sleep(0.3)
    recs = [r for r in p.log.records() if r.get("reason") == "client_not_allowed"]
    assert len(recs) == 1, recs  # five refusals within a second: one line
    assert recs[0]["event"] == "tcp" and recs[0]["decision"] == "deny", recs
    assert recs[0]["client"].startswith("127.0.0.3:"), recs
    assert "127.0.0.3" in p.stderr.text() and "--allow-clients" in p.stderr.text()
    # a second later the next refusal is logged again
    time.sleep(1.1)
    try:
        _connect_from(p.port, "127.0.0.4").close()
    except ConnectionResetError:
        pass
    p.log.wait(lambda r: r.get("reason") == "client_not_allowed", count=2)


@pytest.mark.parametrize("value,why", [("", "the list is empty"), (" , ", "the list is empty"),
                                       ("10.0.0.0/33", "10.0.0.0/33"),
                                       ("example.com", "example.com")])
def test_allow_clients_bad_value_exit_2(proxy_bin, value, why):
    rc, err = _run(proxy_bin, ["--allow-clients", value])
    assert rc == 2 and "--allow-clients" in err and why in err, err
