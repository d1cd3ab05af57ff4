"""edgeslice from Python: the API gives what the commands' ``--json`` print, takes modules, and refuses clearly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from torch import nn

import edgeslice
from edgeslice.cli import main
from edgeslice.errors import EdgesliceError


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(torch.relu(self.bn(self.conv(x)))), 1))


def test_import_is_light_and_plan_stays_the_function():
    code = ("import sys, edgeslice; assert 'torch' not in sys.modules; import edgeslice.plan.validate; "
            "from edgeslice.plan import Plan; assert callable(edgeslice.plan); print(edgeslice.__version__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == edgeslice.__version__


def test_the_issue_example():
    p = edgeslice.plan("alexnet", "local4", planner="aofl")
    assert edgeslice.check(p)["ok"] is True


def test_a_module_plans_with_an_example_input_or_a_shape():
    net = Tiny().train()
    x = torch.randn(2, 3, 16, 16)
    p = edgeslice.plan(net, edgeslice.load_cluster("local4"), planner="random", example_input=x, seed=2)
    assert not net.training  # traced for inference
    assert p.model.spec == "<module Tiny>" and p.model.input_shape == (3, 16, 16) and p.model.batch == 2
    assert p == edgeslice.plan(net, "local4", planner="random", input_shape=(3, 16, 16), batch=2, seed=2)
    assert edgeslice.check(p, model=net)["ok"]
    assert edgeslice.simulate(p, model=net)["latency_s"] > 0
    g, gm = edgeslice.trace(net, example_input=x)
    assert g.spec == "<module Tiny>" and g.batch == 2
    with pytest.raises(EdgesliceError, match="pass the module again with model="):
        edgeslice.check(p)
    with pytest.raises(EdgesliceError, match="file.py:factory"):
        edgeslice.run(p)


@pytest.mark.parametrize("call,match", [
    (lambda: edgeslice.trace(Tiny()), "give input_shape"),
    (lambda: edgeslice.plan(42), "model must be an nn.Module"),
    (lambda: edgeslice.plan("alexnet", planner="nope", input_shape=(3, 64, 64)), "unknown planner 'nope'"),
    (lambda: edgeslice.plan("alexnet", "local4", devices=3, input_shape=(3, 64, 64)), "disagrees with cluster"),
    (lambda: edgeslice.plan(Tiny(), input_shape=(3, 16, 16), example_input=torch.zeros(1, 3, 8, 8)), "disagrees"),
    (lambda: edgeslice.load_cluster("no-such-cluster"), "unknown cluster"),
    (lambda: edgeslice.check(123), "plan must be a Plan"),
    (lambda: edgeslice.simulate("missing.json"), "cannot read plan file"),
])
def test_errors_are_one_line(call, match):
    with pytest.raises(EdgesliceError, match=match) as exc:
        call()
    assert "\n" not in str(exc.value)


def test_simulate_and_check_give_what_the_commands_print(tmp_path, capsys):
    p = edgeslice.plan("alexnet", "pi4x4", planner="ftp", input_shape=(3, 96, 96), n=2, m=2, layers=3)
    path = tmp_path / "p.json"
    p.save(path)
    sim = edgeslice.simulate(str(path), requests=2, interval=0.01)
    assert main(["simulate", str(path), "--requests", "2", "--interval", "0.01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(sim))
    assert sim.timeline.latency_s == sim["latency_s"] and sim.cluster.name == "pi4x4"
    assert main(["check", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == edgeslice.check(p)
    other = edgeslice.simulate(p, edgeslice.load_cluster("pi4x4"))
    assert other["latency_s"] == pytest.approx(sim.timeline.latencies[0])
