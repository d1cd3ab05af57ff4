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
