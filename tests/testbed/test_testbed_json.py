"""``edgeslice testbed up|down --json``: what was made and what was removed, as one JSON object each.

``down --json`` with nothing up needs no root.  ``up --json`` needs what any
testbed needs (root, namespaces, a cgroup CPU controller) and is skipped with
the reason where that is missing.  The tests use their own tag (``t8``), so a
user's testbed — or the one tests/testbed/test_testbed.py builds — is never
touched, and they check that nothing they made survives.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from edgeslice.cli import main
from edgeslice.testbed import net

TAG = "t8"


def _namespaces() -> list[str]:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [w.split()[0] for w in r.stdout.splitlines() if w.startswith(f"es{TAG}-")]


def _json(capsys, argv) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_down_json_with_nothing_up(capsys, monkeypatch):
    monkeypatch.setattr(net, "_netns_list", lambda: [])  # nothing to find, root or not
    monkeypatch.setattr(net, "_links_with", lambda prefix: [])
    assert _json(capsys, ["testbed", "down", "--tag", TAG, "--json"]) == {"tag": TAG, "removed": []}


@pytest.mark.skipif((why := net.unavailable(TAG)) is not None, reason=f"testbed unavailable: {why}")
def test_up_then_down_json(tmp_path, capsys):
    cfile = tmp_path / "two.yaml"
    cfile.write_text("name: two\ndevices:\n  - {name: a, gflops: 5, cpus: 0.2}\n  - {name: b, gflops: 5, cpus: 0.2}\n"
                     "links:\n  default: {bandwidth_mbps: 20}\n")
    net.down(TAG)
    try:
        up = _json(capsys, ["testbed", "up", str(cfile), "--pin", "none", "--tag", TAG, "--json"])
        assert (up["tag"], up["cluster"], up["devices"], up["made"]) == (TAG, "two", ["a", "b"], True)
        assert up["cpus"] == [0.2, 0.2] and up["cpuset"] is None
        assert sorted(up["namespaces"].values()) == sorted(_namespaces()) == [f"es{TAG}-a", f"es{TAG}-b"]
        assert len(set(up["addresses"].values())) == 2
        again = _json(capsys, ["testbed", "up", str(cfile), "--pin", "none", "--tag", TAG, "--json"])
        assert again["made"] is False and again["digest"] == up["digest"]
        down = _json(capsys, ["testbed", "down", "--tag", TAG, "--json"])
        assert down["tag"] == TAG
        assert {f"namespace es{TAG}-a", f"namespace es{TAG}-b"} <= set(down["removed"])
        assert any(r.startswith("state ") for r in down["removed"])
        assert _namespaces() == []
        assert _json(capsys, ["testbed", "down", "--tag", TAG, "--json"])["removed"] == []
    finally:
        net.down(TAG)
