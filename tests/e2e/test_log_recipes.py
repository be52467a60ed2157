"""The jq recipes of docs/access-log.md ("Reading the log"), run as written
over a real log that two awf-proxy runs share: what each prints is checked,
so a recipe that stops matching the log's format fails here."""

import json
import os
import re
import shutil
import subprocess

import pytest

from harness.client import request_bytes
from harness.util import token

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "access-log.md")


def recipes():
    """The `jq` lines of the sh block under "## Reading the log"."""
    with open(DOC) as f:
        text = f.read()
    section = text.split("## Reading the log", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.startswith("jq ")]


def run(recipe, log):
    # The recipes name the log access.jsonl; they run from its directory.
    p = subprocess.run(["sh", "-c", recipe], cwd=os.path.dirname(log), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (recipe, p.stderr)
    return p.stdout.decode()


def test_access_log_jq_recipes(start_proxy, origins, tmp_path):
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (Debian: scripts/install-deps)")
    got = recipes()
    assert len(got) == 4, f"the recipes changed: update this test\n{got}"
    log = str(tmp_path / "access.jsonl")
    P, PS, t = origins.http.port, origins.https.port, token()

    first = start_proxy(extra=["--log-file", log], log=None)
    first.log.path = log
    assert first.fetch(f"http://allowed.test:{P}/hello?t={t}").status == 200
    assert first.fetch(f"http://notallowed.test:{P}/x?t={t}").status == 403
    first.stop()
    second = start_proxy(extra=["--log-file", log, "--audit"], log=None)
    second.log.path = log
    assert second.fetch(f"http://notallowed.test:{P}/hello?t={t}").status == 200
    # A tunnel still open when the recipes run: its open record stands alone.
    with second.connect() as c:
        c.send(request_bytes("CONNECT", f"other.test:{PS}", f"other.test:{PS}"))
        assert c.read_response("CONNECT").status == 200
        second.log.wait_one(lambda r: r.get("kind") == "connect", every=True)

        denied = [json.loads(x) for x in run(got[0], log).splitlines()]
        assert [(d["host"], d["reason"]) for d in denied] == [("notallowed.test", "not_allowed")]
        assert set(denied[0]) == {"ts", "host", "reason"}

        assert run(got[1], log).split() == ["1", "notallowed.test"]

        unfinished = [json.loads(x) for x in run(got[2], log).splitlines()]
        runs = [json.loads(x) for x in run(got[3], log).splitlines()]
        assert len(runs) == 2 and runs[0]["run"] != runs[1]["run"], runs
        assert unfinished == [{"run": runs[1]["run"], "kind": "connect", "host": "other.test",
                               "port": PS}], unfinished
