"""Lowering: a hand-worked halo, a golden Program in text form, and text round trips."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from edgeslice.execute.check import check_plan
from edgeslice.graph import trace_module
from edgeslice.plan import ModelRef, Part, Plan, Segment
from edgeslice.planners import make_plan
from edgeslice.program import Program, TransferTask, lower

GOLDEN = Path(__file__).parent / "golden"


def _ref(g):
    return ModelRef(g.spec, g.input_shape, g.batch, g.fingerprint)


def test_vgg16_two_strip_halo_by_hand(traced):
    """VGG-16's first two 3x3 convs cut into two 112-row strips on 224x224.

    conv2 (features_2) needs rows [0,112) → conv1 must make rows [0,113) for the
    top strip and [111,224) for the bottom one: 226 rows instead of 224, so the
    halo costs 2 rows × 224 cols × 64 channels × (2·3·3·3 = 54 FLOPs) = 1,548,288
    FLOPs.  Bytes: conv1's rows [111,224) read input rows [110,224), so the
    bottom strip on d1 receives 114 rows (114·224·3·4 = 306,432 B) and sends back features_3 rows [112,224)
    (112·224·64·4 = 6,422,528 B) to d0, which runs the rest.
    """
    g, gm = traced("vgg16", (3, 224, 224))
    names = [l.name for l in g.layers]
    assert [g.layer(n).kind for n in names[:4]] == ["conv", "act", "conv", "act"]
    plan = Plan(_ref(g), ("d0", "d1"), "d0", "d0", (
        Segment(names[0], names[3], "spatial", (Part("d0", rows=(0, 112), cols=(0, 224)), Part("d1", rows=(112, 224), cols=(0, 224)))),
        Segment(names[4], names[-1], "whole", (Part("d0"),)),
    ))
    prog = lower(plan, g)
    assert prog.flops - g.flops == 2 * 224 * 64 * 54 == 1_548_288
    assert sorted(t.nbytes for t in prog.transfers) == [114 * 224 * 3 * 4, 112 * 224 * 64 * 4]
    assert prog.bytes_transferred == 306_432 + 6_422_528
    top = prog.task_by_id["s0p0"]
    assert [s.region[1] for s in top.steps] == [(0, 113), (0, 113), (0, 112), (0, 112)]
    assert top.needs[0].region == ((0, 3), (0, 114), (0, 224))


class Tiny(nn.Module):
    """Every construct the region algebra knows, small enough for a readable golden file."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.side = nn.Conv2d(8, 4, 1)
        self.gap = nn.AdaptiveAvgPool2d((2, 2))
        self.fc1 = nn.Linear(48, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = self.pool(self.act(self.bn(self.stem(x))))
        y = self.grouped(x) + x
        z = torch.cat([y, self.side(y)], 1)
        return self.fc2(self.fc1(torch.flatten(self.gap(z), 1)))


def _tiny():
    torch.manual_seed(0)
    return trace_module(Tiny().eval(), (3, 9, 8), spec="tiny")


def _tiny_plan(g):
    n = [l.name for l in g.layers]
    i = {name: k for k, name in enumerate(n)}
    return Plan(_ref(g), ("d0", "d1", "d2"), "d0", "d1", (
        Segment(n[0], "pool", "spatial", (Part("d0", rows=(0, 2), cols=(0, 4)), Part("d1", rows=(2, 5), cols=(0, 2)), Part("d2", rows=(2, 5), cols=(2, 4)))),
        Segment(n[i["pool"] + 1], "add", "channel", (Part("d1", channels=(0, 4)), Part("d2", channels=(4, 8)))),
        Segment(n[i["add"] + 1], "flatten", "whole", (Part("d0"),)),
        Segment("fc1", "fc1", "input", (Part("d1", inputs=(0, 20)), Part("d2", inputs=(20, 48)))),
        Segment("fc2", "fc2", "channel", (Part("d0", channels=(0, 2)), Part("d1", channels=(2, 5)))),
    ))


def test_tiny_golden_program():
    g, gm = _tiny()
    assert [l.kind for l in g.layers] == ["conv", "batchnorm", "act", "maxpool", "conv", "binary", "conv", "cat",
                                          "adaptive_avgpool", "flatten", "linear", "linear"]
    plan = _tiny_plan(g)
    text = lower(plan, g).to_text()
    path = GOLDEN / "tiny_program.txt"
    if os.environ.get("EDGESLICE_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), "Program text changed; re-run with EDGESLICE_UPDATE_GOLDEN=1 and review the diff"
    assert check_plan(plan, graph=g, gm=gm)["rel_err"] <= 1e-5
    assert check_plan(plan, graph=g, gm=gm, seed=3)["ok"]


def test_golden_text_round_trips():
    text = (GOLDEN / "tiny_program.txt").read_text()
    prog = Program.from_text(text)
    assert prog.to_text() == text
    g, _ = _tiny()
    assert prog == lower(_tiny_plan(g), g)


@pytest.mark.parametrize("spec,shape", [("resnet50", (3, 64, 64)), ("googlenet", (3, 64, 64)), ("yolov2", (3, 96, 96)),
                                        ("mobilenet_v2", (3, 48, 40)), ("vgg16", (3, 40, 56))])
def test_random_programs_round_trip_through_text(traced, spec, shape):
    g, _ = traced(spec, shape, 2)
    for seed in range(10):
        prog = lower(make_plan("random", g, devices=4, seed=seed), g)
        assert Program.from_text(prog.to_text()) == prog


def test_transfers_are_exact_intersections(traced):
    """No transfer moves an element its consumer does not read, and none is sent twice."""
    g, _ = traced("resnet18", (3, 64, 64))
    for seed in range(15):
        prog = lower(make_plan("random", g, devices=3, seed=seed), g)
        sent = [(t.src, t.dst, t.tensor, t.region, t.source) for t in prog.transfers]
        assert len(sent) == len(set(sent))
        used = {p.task for t in prog.tasks for n in getattr(t, "needs", ()) + ((t.need,) if hasattr(t, "need") else ()) for p in n.pieces}
        assert all(t.id in used for t in prog.transfers)
        for t in prog.transfers:
            assert isinstance(t, TransferTask) and t.src != t.dst
            assert t.nbytes == g.batch * 4 * math.prod(hi - lo for lo, hi in t.region)
