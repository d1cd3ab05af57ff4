"""Planner ``mtl-a3c``: a trained agent's placement of one task, as a Plan the rest of edgeslice runs."""

from __future__ import annotations

import pytest
import torch

from edgeslice.cli import main
from edgeslice.cluster.load import resolve_cluster
from edgeslice.errors import OptionError
from edgeslice.execute.check import check_plan
from edgeslice.plan.plan import Plan
from edgeslice.planners import make_plan
from edgeslice.planners.learned.planner import _places


def _cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def test_plan_from_the_command_line_runs_the_model(capsys, tmp_path, tiny_agent, traced):
    out = tmp_path / "p.json"
    code, _, err = _cli(capsys, "plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "hetero3",
                        "--planner", "mtl-a3c", "--agent", tiny_agent, "-o", str(out))
    assert code == 0, err
    plan = Plan.load(out)
    assert plan.planner == "mtl-a3c" and dict(plan.options)["agent"] == tiny_agent
    g, gm = traced("alexnet", (3, 64, 64))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert check_plan(plan, graph=g, gm=gm, x=x)["ok"]


def test_the_plan_puts_each_block_where_the_agent_says(tiny_agent, traced):
    g, _ = traced("resnet18", (3, 32, 32))
    cluster = resolve_cluster("hetero3")
    places, starts, devices = _places(tiny_agent, g, cluster, None)
    assert devices[0] == cluster.source and len(devices) == 3 and len(starts) == 3
    plan = make_plan("mtl-a3c", g, cluster, agent=tiny_agent)
    where = {}
    for s in plan.segments:
        names = [l.name for l in g.layers]
        for i in range(names.index(s.first), names.index(s.last) + 1):
            where[i] = s.parts[0].device
    assert [where[b] for b in starts] == [devices[int(p)] for p in places]
    assert len(where) == len(g.layers)


def test_a_missing_or_bad_agent_and_a_too_small_cluster_are_one_line_errors(capsys, tmp_path, tiny_agent, traced):
    code, _, err = _cli(capsys, "plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "hetero3",
                        "--planner", "mtl-a3c", "-o", str(tmp_path / "p.json"))
    assert code != 0 and "--agent" in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    g, _ = traced("alexnet", (3, 64, 64))
    with pytest.raises(OptionError, match="not an edgeslice agent"):
        make_plan("mtl-a3c", g, resolve_cluster("hetero3"), agent=str(bad))
    from edgeslice.cluster.model import Cluster

    with pytest.raises(OptionError, match="2 edge servers.*at least 3 devices"):
        make_plan("mtl-a3c", g, Cluster.uniform(2), agent=tiny_agent)
