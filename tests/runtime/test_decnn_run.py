"""DeCNN plans (issue 14) on 4 real worker processes: the all-to-all at each shuffle and the reduced FC over gloo.

Batch 1 and 2; the outputs are compared with the whole model, and the bytes each worker sent are the
Program's exact channel sets (the launcher checks sent == received).
"""

from __future__ import annotations

import pytest

from edgeslice.planners import make_plan
from edgeslice.program import lower
from edgeslice.runtime.launch import run_plan


@pytest.mark.parametrize("spec,batch", [("resnet18_decoupled", 2), ("resnet50_decoupled", 1)])
def test_decnn_plan_runs_on_four_workers(traced, tmp_path, spec, batch):
    g, _ = traced(spec, (3, 64, 64), batch)
    plan = make_plan("decnn", g, devices=4, stem="split")
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5, res["rel_err"]
    prog = lower(plan, g)
    for d in plan.devices:  # every device sent exactly its Program transfers, twice
        assert res["bytes_sent"][d] == 2 * sum(t.nbytes for t in prog.transfers if t.src == d)


@pytest.mark.parametrize("sink", ["d0", "d3"])
def test_inter_sample_overlap_runs_every_task_once_and_verifies(traced, tmp_path, sink):
    """With --overlap a device runs a later request's ready tasks while one waits; the sink on another device
    than the source also exercises the 'request finished' tokens, waited for by threads."""
    import json
    from collections import Counter
    from dataclasses import replace

    from edgeslice.cluster.model import Cluster
    from edgeslice.program.program import ComputeTask
    from edgeslice.runtime.worker import read_events

    g, _ = traced("resnet18_decoupled", (3, 32, 32))
    cluster = replace(Cluster.uniform(4), sink=sink)
    plan = make_plan("decnn", g, cluster)
    path = tmp_path / "plan.json"
    plan.save(path)
    out = tmp_path / "run"
    res = run_plan(str(path), requests=6, inflight=3, overlap=True, out=str(out), timeout=60)
    assert res["ok"] and res["overlap"] is True, res["rel_err"]
    prog = lower(plan, g)
    seen = Counter()
    for r in range(4):
        rep = json.loads((out / f"report-{r}.json").read_text())
        assert rep["overlap"] is True
        seen.update((e["req"], e["task"]) for e in read_events(out, rep) if e["kind"] == "compute")
    want = Counter((q, t.id) for q in range(6) for t in prog.tasks if isinstance(t, ComputeTask))
    assert seen == want
