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


MODEL_FILE = '''
import torch
import torch.nn.functional as F
from torch import nn


class Gate(nn.Module):
    """Squeeze-excitation as written in the wild, and a U-Net-style pad: mean, unflatten, expand_as, pad."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 8)
        self.down = nn.Conv2d(8, 8, 3, stride=2)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.out = nn.Conv2d(16, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        s = torch.sigmoid(self.fc(y.mean((2, 3)))).view(y.size(0), -1, 1, 1)
        y = y * s.expand_as(y)
        z = self.up(self.down(y))
        dy, dx = y.size(2) - z.size(2), y.size(3) - z.size(3)
        z = F.pad(z, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.out(torch.cat([y, z], 1))


def make():
    return Gate()
'''


def test_gates_and_padding_run_on_four_workers(tmp_path):
    from edgeslice.graph import trace

    (tmp_path / "gate.py").write_text(MODEL_FILE)
    g, _ = trace(f"{tmp_path / 'gate.py'}:make", (3, 21, 17))
    kinds = {"mean", "unflatten", "expand", "pad"}
    assert kinds <= {l.kind for l in g.layers}
    plan = _cut_plan(g, {"expand", "pad"})
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5, res["rel_err"]
