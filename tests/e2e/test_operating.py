"""The examples of docs/operating.md, run as written where this machine has
the tool: the logrotate block rotates a running awf-proxy's log without
losing a line (only its path and its postrotate command adapted to the
test), and promtool accepts the Prometheus scrape configuration."""

import os
import re
import shutil
import subprocess

import pytest

from harness.util import token

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "operating.md")


def section_block(heading, lang=""):
    """The first fenced block (```lang) under `## heading`."""
    with open(DOC) as f:
        text = f.read()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```" + re.escape(lang) + r"\n(.*?)```", section, re.S)
    assert m, f"no ```{lang} block under ## {heading}"
    return m.group(1)


def test_logrotate_snippet(start_proxy, origins, tmp_path):
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not os.access(logrotate, os.X_OK):
        pytest.skip("logrotate not installed")
    p = start_proxy()
    conf = section_block("Log rotation")
    assert "/var/log/awf-proxy/access.jsonl {" in conf
    assert "systemctl reload awf-proxy.service" in conf
    conf = conf.replace("/var/log/awf-proxy/access.jsonl", p.log_path)
    conf = re.sub(r"systemctl reload awf-proxy\.service[^\n]*", f"kill -HUP {p.pid}", conf)
    (tmp_path / "logrotate.conf").write_text(conf)
    P = origins.http.port
    t1, t2 = token(), token()
    assert p.fetch(f"http://allowed.test:{P}/hello?t={t1}").status == 200
    p.log.wait_one(lambda r: r.get("event") == "http" and t1 in r.get("url", ""))
    res = subprocess.run([logrotate, "-f", "-s", str(tmp_path / "state"),
                          str(tmp_path / "logrotate.conf")], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    rotated = p.log_path + ".1"  # delaycompress: the newest rotation stays plain
    assert os.path.exists(rotated), os.listdir(tmp_path)
    assert t1 in open(rotated).read()
    assert p.fetch(f"http://allowed.test:{P}/hello?t={t2}").status == 200
    rec = p.log.wait_one(lambda r: r.get("event") == "http" and t2 in r.get("url", ""))
    assert rec["decision"] == "allow"
    assert t2 not in open(rotated).read()  # the reopened path took it


@pytest.fixture
def prom_conf(tmp_path):
    path = tmp_path / "prometheus.yml"
    conf = section_block("Metrics", "yaml")
    assert "job_name: awf-proxy" in conf
    path.write_text(conf)
    return path


def test_prometheus_scrape_config_valid(prom_conf):
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool not installed (Debian: prometheus)")
    res = subprocess.run([promtool, "check", "config", str(prom_conf)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
