"""The plan carries its cluster: later commands predict with exactly what the planner saw.

A calibrated cluster file keeps the bundled cluster's ``name:`` (``testbed4``)
but not its speeds; before plans carried their cluster, ``simulate`` looked the
name up again and predicted with the uncalibrated bundled file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeslice.cli import main
from edgeslice.cluster.load import EXAMPLES_DIR

PLAN = ["plan", "--model", "alexnet", "--input", "3x96x96", "--planner", "aofl"]


def _calibrated(folder: Path, name: str = "cal.yaml") -> Path:
    """testbed4.yaml with other device speeds (as `testbed profile` would measure), same name."""
    text = (EXAMPLES_DIR / "testbed4.yaml").read_text()
    assert text.count("gflops: 7.8") == 4 and "\nname: testbed4\n" in text
    for speed in ("3.1", "21", "17.5", "26"):
        text = text.replace("gflops: 7.8", f"gflops: {speed}", 1)
    f = folder / name
    f.write_text(text)
    return f


def _cli(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys, *args) -> dict:
    code, out, err = _cli(capsys, *args)
    assert code == 0, err
    return json.loads(out)


def test_simulate_predicts_with_the_cluster_the_plan_was_made_for(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cal = _calibrated(tmp_path)
    planned = _json(capsys, *PLAN, "--cluster", str(cal), "-o", "p.json", "--json")
    sim = _json(capsys, "simulate", "p.json", "--json")
    assert sim["predicted_latency_s"] == pytest.approx(planned["predicted_latency_s"], rel=1e-12, abs=0)
    assert sim["latency_s"] == sim["predicted_latency_s"] and sim["cluster"] == "testbed4"
    bundled = _json(capsys, "simulate", "p.json", "--cluster", "testbed4", "--json")  # what the name alone gives
    assert abs(bundled["predicted_latency_s"] - planned["predicted_latency_s"]) > 0.05 * planned["predicted_latency_s"]
    plan = json.loads((tmp_path / "p.json").read_text())
    assert plan["version"] == 2 and plan["cluster"]["name"] == "testbed4"
    assert [d["gflops"] for d in plan["cluster"]["devices"]] == [3.1, 21.0, 17.5, 26.0]
    cal.unlink()  # the plan needs no cluster file any more
    again = _json(capsys, "simulate", "p.json", "--json")
    assert again["predicted_latency_s"] == sim["predicted_latency_s"]
    code, out, err = _cli(capsys, "show", "p.json")
    assert code == 0 and "cluster testbed4 (the plan's own): d0 3.1 GFLOP/s" in out


def test_the_plan_carries_its_profiles_content(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prof = {"format": "edgeslice-profile", "batch": 1, "effective_gflops": 4.0, "layers": {}}
    (tmp_path / "prof.json").write_text(json.dumps(prof))
    (tmp_path / "c.yaml").write_text("name: local4\ndevices:\n  - {name: d0, gflops: 10, profile: prof.json}\n"
                                     "  - {name: d1, gflops: 10, profile: prof.json, scale: 0.5}\n"
                                     "links:\n  default: {bandwidth_mbps: 200}\n")
    planned = _json(capsys, *PLAN, "--cluster", "c.yaml", "-o", "p.json", "--json")
    (tmp_path / "prof.json").write_text(json.dumps({**prof, "effective_gflops": 400.0}))  # a later re-profile
    sim = _json(capsys, "simulate", "p.json", "--json")
    assert sim["predicted_latency_s"] == pytest.approx(planned["predicted_latency_s"], rel=1e-12, abs=0)
    now = _json(capsys, "simulate", "p.json", "--cluster", "c.yaml", "--json")  # --cluster: the file as it is now
    assert now["predicted_latency_s"] < 0.5 * sim["predicted_latency_s"]


@pytest.mark.parametrize("command", ["simulate", "show", "run"])
def test_a_cluster_override_without_a_device_of_the_plan_is_one_line(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    _json(capsys, *PLAN, "--cluster", str(_calibrated(tmp_path)), "-o", "p.json", "--json")
    (tmp_path / "three.yaml").write_text("name: three\ndevices:\n  - {name: d0, gflops: 5}\n  - {name: d1, gflops: 5}\n"
                                         "  - {name: d2, gflops: 5}\n")
    code, out, err = _cli(capsys, command, "p.json", "--cluster", "three.yaml")
    assert code == 2 and out == ""
    line = err.strip()
    assert "\n" not in line and line.startswith("edgeslice: error:") and "Traceback" not in err
    assert "device 'd3'" in line and "cluster 'three'" in line and "d0, d1, d2" in line and "--cluster" in line


def test_an_old_format_plan_naming_its_cluster_still_works(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _json(capsys, *PLAN, "--cluster", "testbed4", "-o", "p.json", "--json")
    d = json.loads((tmp_path / "p.json").read_text())
    d["version"], d["cluster"] = 1, "testbed4"  # what version 1 wrote: the bundled cluster's name
    (tmp_path / "old.json").write_text(json.dumps(d, indent=2))
    old = _json(capsys, "simulate", "old.json", "--json")
    new = _json(capsys, "simulate", "p.json", "--json")
    assert old["predicted_latency_s"] == new["predicted_latency_s"] and old["cluster"] == "testbed4"
    d["cluster"] = None  # version 1 without a cluster: identical devices, as before
    (tmp_path / "none.json").write_text(json.dumps(d))
    assert _json(capsys, "simulate", "none.json", "--json")["cluster"] == "uniform4"
