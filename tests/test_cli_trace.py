"""``simulate --trace`` and ``run --trace``: Chrome trace files with one slice per timeline event and paired flows.

The output path is checked before any work starts, and a finished run's
results are printed even when its trace cannot be written.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

import edgeslice
from edgeslice.cli import main


@pytest.fixture(scope="module")
def plan2(tmp_path_factory):
    """A random alexnet plan over two identical devices, with transfers between them: (Plan, path)."""
    p = edgeslice.plan("alexnet", planner="random", input_shape=(3, 64, 64), devices=2, seed=0)
    path = tmp_path_factory.mktemp("plan") / "p.json"
    p.save(path)
    return p, str(path)


def _check_trace(path, processes, program, requests):
    """Each process holds one X slice per task and request; every transfer has one flow from its link to its destination."""
    events = json.loads(path.read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert list(names.values()) == processes
    tasks = {t.id: t for t in (*program.computes, *program.transfers)}
    for pid in names:
        rows = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == pid}
        xs = [e for e in events if e["ph"] == "X" and e["pid"] == pid]
        assert all(x["dur"] >= 0 for x in xs), [x for x in xs if x["dur"] < 0]  # measured sends too (clock before isend)
        assert Counter((x["args"]["request"], x["args"]["task"]) for x in xs) == Counter(
            (r, t) for r in range(requests) for t in tasks)
        transfers = {x["name"]: x for x in xs if x["cat"] == "transfer"}
        starts = {e["id"]: e for e in events if e["ph"] == "s" and e["pid"] == pid}
        ends = Counter(e["id"] for e in events if e["ph"] == "f" and e["pid"] == pid)
        assert len(starts) == requests * len(program.transfers) > 0 and ends == Counter(list(starts))
        for f in (e for e in events if e["ph"] == "f" and e["pid"] == pid):
            s = starts[f["id"]]
            t = tasks[transfers[s["name"]]["args"]["task"]]
            assert rows[s["tid"]].startswith(f"{t.src}->{t.dst}")  # from the send on its link ...
            assert rows[f["tid"]] == t.dst  # ... to the receiving device


def test_simulate_trace(plan2, tmp_path, capsys):
    p, path = plan2
    trace = tmp_path / "sim.trace.json"
    assert main(["simulate", path, "--requests", "2", "--interval", "0.001", "--trace", str(trace), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    sim = edgeslice.simulate(p, requests=2, interval=0.001)
    assert out == json.loads(json.dumps(sim))
    assert len([e for e in json.loads(trace.read_text())["traceEvents"] if e["ph"] == "X"]) == len(sim.timeline.events)
    _check_trace(trace, [f"predicted (random on {sim['cluster']})"], sim.program, 2)


def test_run_trace_has_measured_and_predicted(plan2, tmp_path, capsys):
    p, path = plan2
    trace = tmp_path / "run.trace.json"
    assert main(["run", path, "--requests", "2", "--timeout", "60", "--out", str(tmp_path / "run"),
                 "--trace", str(trace), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["ok"] and len(res["latencies_s"]) == 2
    _check_trace(trace, ["measured", "predicted"], edgeslice.simulate(p).program, 2)


@pytest.mark.parametrize("command", ["simulate", "run"])
def test_an_unwritable_trace_path_fails_before_any_work(plan2, tmp_path, capsys, monkeypatch, command):
    import edgeslice.runtime.launch as launch

    def never(*a, **k):
        raise AssertionError("the run started")

    monkeypatch.setattr(launch, "launch", never)
    _, path = plan2
    assert main([command, path, "--trace", str(tmp_path / "no" / "such" / "t.json"), "--out", str(tmp_path / "run")]
                if command == "run" else [command, path, "--trace", str(tmp_path / "no" / "t.json")]) == 2
    cap = capsys.readouterr()
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and "cannot write the trace file" in err[0] and "No such file" in err[0]
    assert cap.out == "" and not (tmp_path / "run").exists()


def test_a_failed_trace_write_keeps_the_run_results(plan2, tmp_path, capsys, monkeypatch):
    """The run is done when the trace is written: its results are printed first, the failure after, exit status 2."""
    import edgeslice.runtime.launch as launch
    import edgeslice.viz.trace as viz

    p, path = plan2
    tl = edgeslice.simulate(p).timeline
    result = {"model": "alexnet", "ok": True, "rel_err": 0.0}
    monkeypatch.setattr(launch, "launch", lambda *a, **k: tmp_path)
    monkeypatch.setattr(launch, "collect", lambda *a, **k: {**result, "_timelines": (tl, tl)})

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(viz, "write_trace", full)
    assert main(["run", path, "--trace", str(tmp_path / "t.json"), "--json"]) == 2
    cap = capsys.readouterr()
    assert json.loads(cap.out) == result
    err = cap.err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "results above are complete" in err[0]
