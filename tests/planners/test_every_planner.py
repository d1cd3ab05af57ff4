"""Every planner on every zoo model: its plan computes the model's output, or it refuses clearly."""

from __future__ import annotations

import pytest
import torch

from edgeslice.cluster.load import resolve_cluster
from edgeslice.cost import ClusterCost
from edgeslice.errors import EdgesliceError
from edgeslice.execute.check import check_plan
from edgeslice.planners import make_plan, planners
from edgeslice.planners._shared.common import evaluate

SMALL = {"vgg16": (3, 32, 32), "alexnet": (3, 64, 64), "resnet18": (3, 32, 32), "resnet50": (3, 32, 32),
         "mobilenet_v2": (3, 32, 32), "googlenet": (3, 32, 32), "yolov2": (3, 64, 64)}


@pytest.mark.parametrize("spec", list(SMALL))
def test_every_planner_on_every_model(traced, tiny_agent, spec):
    g, gm = traced(spec, SMALL[spec])
    cluster = resolve_cluster("hetero3")
    cost = ClusterCost(cluster)
    x = torch.randn(1, *SMALL[spec], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = gm(x)
    for name in planners():
        try:
            plan = make_plan(name, g, cluster, cost, **({"agent": tiny_agent} if name == "mtl-a3c" else {}))
        except EdgesliceError as exc:
            # the only planner allowed to refuse a zoo model is the exhaustive one, and it must say why
            assert name in ("bruteforce", "fl-bf"), f"{name} refused {spec}: {exc}"
            assert spec in str(exc) and "layers" in str(exc)
            continue
        assert set(p.device for s in plan.segments for p in s.parts) <= set(cluster.names)
        res = check_plan(plan, graph=g, gm=gm, x=x, reference=ref)
        assert res["ok"], f"{name} on {spec}: rel_err {res['rel_err']:.3g}"
        assert evaluate(plan, g, cluster, cost) > 0


def test_search_planners_never_lose_to_their_own_baselines(traced):
    """ftp and aofl search spaces contain 'everything on the gateway'; they never do worse than local there."""
    g, _ = traced("vgg16", (3, 224, 224))
    for cname in ("pi4x4", "hetero3", "iot-edge"):
        cluster = resolve_cluster(cname)
        cost = ClusterCost(cluster)
        local = evaluate(make_plan("local", g, cluster, cost), g, cluster, cost)
        aofl = evaluate(make_plan("aofl", g, cluster, cost), g, cluster, cost)
        assert aofl <= local + 1e-12
