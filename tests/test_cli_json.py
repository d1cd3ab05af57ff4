"""``--version``, and ``--json`` on ``show`` and ``profile``: one JSON object a script can read (testbed: tests/testbed)."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

import edgeslice
from edgeslice.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"edgeslice {version('edgeslice')}"
    assert edgeslice.__version__ == version("edgeslice")


def test_show_json(tmp_path, capsys):
    p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 96, 96), devices=3, seed=1)
    p.save(tmp_path / "p.json")
    assert main(["show", str(tmp_path / "p.json"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    chk = edgeslice.check(p)
    assert (d["model"], d["input"], d["batch"], d["planner"]) == ("alexnet", [3, 96, 96], 1, "random")
    assert d["devices"] == list(p.devices) and (d["source"], d["sink"]) == (p.source, p.sink)
    assert [(s["first"], s["last"], s["cut"], len(s["parts"])) for s in d["segments"]] == [
        (s.first, s.last, s.cut, len(s.parts)) for s in p.segments]
    parts = [q for s in d["segments"] for q in s["parts"]]
    assert sum(q["flops"] for q in parts) == d["flops_program"] == chk["flops_program"]
    assert 0 < sum(q["bytes_in"] for q in parts) <= d["bytes_moved"] == chk["bytes_transferred"]  # the rest goes to the sink
    assert (d["flops_model"], d["transfers"]) == (chk["flops_model"], chk["transfers"])
    for q in parts:
        assert q["device"] in p.devices and q["outs"] and q["reads"]
        assert all(o["region"].startswith("[") and isinstance(o["partial"], bool) for o in q["outs"])
        assert all(r["tensor"] and r["region"].startswith("[") for r in q["reads"])
    first = d["segments"][0]["parts"][0]
    assert first["reads"][0]["tensor"] == "input"


def test_profile_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["profile", "--model", "alexnet", "--input", "3x64x64", "--repeat", "1", "-o", "prof.json", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    prof = json.loads((tmp_path / "prof.json").read_text())
    assert d["output"] == "prof.json" and d["layers"] == len(prof["layers"]) > 0
    assert {k: v for k, v in d.items() if k not in ("output", "layers")} == {k: v for k, v in prof.items() if k != "layers"}
    assert d["model"] == "alexnet" and d["total_s"] > 0 and d["effective_gflops"] > 0
