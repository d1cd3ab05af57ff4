"""Every zoo model, 30-50 random plans each: the partitioned output equals the whole model's.

Per model: 40 plans at a small input (20 for the four in ``FEWER``), 6 at batch 2 and 4 (VGG-16: 2) at a large
non-square input (3×375×1242, as for KITTI frames; YOLOv2 needs multiples of
32 there, so 3×384×1248, as do YOLOv3-tiny and the U-Net).  The random planner mixes whole, spatial (strips and
unequal grids), channel and partial-sum cuts over 2–4 devices.  The reference
is computed once per input; each plan runs through lower → in-process execute.
"""

from __future__ import annotations

import pytest
import torch

from edgeslice.execute.check import check_plan
from edgeslice.planners import make_plan

SMALL = {
    "vgg16": (3, 64, 64),
    "alexnet": (3, 96, 80),
    "resnet18": (3, 64, 48),
    "resnet50": (3, 64, 64),
    "mobilenet_v2": (3, 64, 72),
    "googlenet": (3, 64, 64),
    "yolov2": (3, 128, 96),
    "shufflenet_v2": (3, 64, 80),  # channel split (slice) and shuffle (permute)
    "yolov3_tiny": (3, 64, 96),  # nearest up-sampling, two heads flattened
    "unet_small": (3, 48, 64),  # bilinear up-sampling both ways, skip concats
}
LARGE = {name: (3, 375, 1242) for name in SMALL}
LARGE["yolov2"] = LARGE["yolov3_tiny"] = LARGE["unet_small"] = (3, 384, 1248)

CONFIGS = [("small", 1, 40), ("small", 2, 6), ("large", 1, 4)]
# VGG-16 at 3×375×1242 is 120 GFLOPs a plan: two large plans of it, not four
LARGE_COUNT = {"vgg16": 2}
# the newest models are deeper (ShuffleNetV2: 211 layers) or wider at full resolution (the U-Net), and YOLOv2's
# 128x96 plans cost 4x the others': fewer small plans
FEWER = {"shufflenet_v2": 20, "unet_small": 20, "yolov3_tiny": 20, "yolov2": 20}


@pytest.mark.parametrize("spec", list(SMALL))
@pytest.mark.parametrize("size,batch,count", CONFIGS, ids=lambda v: str(v))
def test_random_plans_match_model(traced, spec, size, batch, count):
    shape = SMALL[spec] if size == "small" else LARGE[spec]
    if size == "small" and batch == 1:
        count = FEWER.get(spec, count)
    if size == "large":
        count = LARGE_COUNT.get(spec, count)
    graph, gm = traced(spec, shape, batch)
    x = torch.randn((batch, *shape), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = gm(x)
    cuts_seen = set()
    base = {"small": 0, "large": 1000}[size] + 100 * batch
    for i in range(count):
        seed = base + i
        plan = make_plan("random", graph, devices=2 + seed % 3, seed=seed)
        cuts_seen |= {s.cut for s in plan.segments}
        res = check_plan(plan, graph=graph, gm=gm, x=x, reference=ref)
        assert res["rel_err"] <= 1e-5, f"{spec} seed {seed}: rel_err {res['rel_err']:.3g}"
        assert res["flops_program"] >= res["flops_model"]
        if not any(s.cut == "spatial" for s in plan.segments):
            assert res["flops_program"] == res["flops_model"], f"{spec} seed {seed}: recomputation without a spatial cut"
    if count >= 20:
        # the fuzzer really mixes the kinds of cut on every model
        want = {"whole", "spatial", "channel"} | ({"input"} if any(l.kind == "linear" for l in graph.layers) else set())
        assert want <= cuts_seen, f"{spec}: only drew {sorted(cuts_seen)}"
