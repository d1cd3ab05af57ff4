"""The layer kinds real model code needs (issue 13), run by 4 real worker processes over gloo.

One run per zoo model that brings new kinds: ShuffleNetV2 (``slice`` from chunk, ``permute`` from its
channel shuffle), YOLOv3-tiny (nearest ``upsample``), the U-Net (bilinear ``upsample``, both
``align_corners``).  The plan is the first random plan on 4 devices that cuts a segment holding the
kind (spatially or by channels), so the kind's region rule and kernel really run on parts; the output
is compared with the whole model.
"""

from __future__ import annotations

import pytest

from edgeslice.planners import make_plan
from edgeslice.runtime.launch import run_plan


def _cut_plan(graph, kinds: set[str]):
    """The first random plan (seed order) with a non-whole segment that holds a layer of every kind in ``kinds``."""
    index = {l.name: i for i, l in enumerate(graph.layers)}
    for seed in range(200):
        plan = make_plan("random", graph, devices=4, seed=seed)
        found = set()
        for s in plan.segments:
            if s.cut == "whole":
                continue
            found |= {l.kind for l in graph.layers[index[s.first] : index[s.last] + 1]}
        if kinds <= found:
            return plan
    raise AssertionError(f"no random plan cuts a segment holding {kinds}")


@pytest.mark.parametrize("spec,shape,kinds", [
    ("shufflenet_v2", (3, 64, 48), {"slice", "permute"}),
    ("yolov3_tiny", (3, 64, 96), {"upsample"}),
    ("unet_small", (3, 48, 64), {"upsample"}),
])
def test_new_kinds_run_on_four_workers(traced, tmp_path, spec, shape, kinds):
    g, _ = traced(spec, shape)
    plan = _cut_plan(g, kinds)
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5, res["rel_err"]
    assert len({p.device for s in plan.segments for p in s.parts}) > 1
    assert sum(res["bytes_sent"].values()) == sum(res["bytes_received"].values()) > 0
