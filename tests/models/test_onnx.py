"""ONNX files as models (issue 13): exported zoo models trace, and their plans match onnxruntime.

The files are exported here by ``torch.onnx.export`` (the TorchScript exporter, opset 17) from five zoo
models, then read back by :mod:`edgeslice.models.onnx` — a converter of the ONNX ops CNN exporters emit
into torch modules — and traced like any model.  ``check_plan`` compares the partitioned Program with
the ONNX file itself run by onnxruntime.  Broken files and unsupported ops are one line on the command
line.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from _cli import _run, assert_user_error

pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install -e '.[onnx]' (make test installs it)")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]' (make test installs it)")

from edgeslice.execute.check import check_plan  # noqa: E402
from edgeslice.graph import trace  # noqa: E402
from edgeslice.models import load_model  # noqa: E402
from edgeslice.planners import make_plan  # noqa: E402

# VGG-16 only exports at inputs whose last map is a multiple of 7 (its adaptive pool): 224
EXPORTS = {"vgg16": ((3, 224, 224), 1), "resnet18": ((3, 64, 48), 4), "mobilenet_v2": ((3, 64, 64), 4),
           "shufflenet_v2": ((3, 64, 80), 4), "yolov3_tiny": ((3, 64, 96), 4)}


def _export(model, shape, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (torch.randn(1, *shape),), str(path), dynamo=False, opset_version=17)


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize("name", list(EXPORTS))
def test_exported_zoo_models_match_onnxruntime_under_random_plans(onnx_dir, name):
    shape, plans = EXPORTS[name]
    path = onnx_dir / f"{name}.onnx"
    _export(load_model(name), shape, path)
    g, gm = trace(str(path))  # the input shape comes from the file
    assert g.input_shape == shape and g.spec == str(path.resolve())
    x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(3))
    cuts = set()
    for seed in range(plans):
        plan = make_plan("random", g, devices=2 + seed % 3, seed=seed)
        cuts |= {s.cut for s in plan.segments}
        res = check_plan(plan, graph=g, gm=gm, x=x)
        assert res["reference"] == "onnxruntime"
        assert res["rel_err"] <= 1e-5, (name, seed, res["rel_err"])
    assert plans == 1 or {"spatial", "channel"} & cuts


def test_the_command_line_plans_and_checks_an_onnx_file(onnx_dir):
    _export(load_model("shufflenet_v2"), (3, 32, 32), onnx_dir / "s.onnx")
    r = _run(onnx_dir, ["plan", "--model", "s.onnx", "--devices", "3", "--seed", "2", "-o", "s.json"])
    assert r.returncode == 0, r
    r = _run(onnx_dir, ["check", "s.json", "--json"])
    assert r.returncode == 0 and '"reference": "onnxruntime"' in r.stdout, r


class _Softmaxed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.softmax(self.c(x), 1)


def test_a_bad_onnx_file_and_an_unsupported_op_are_one_line(onnx_dir):
    (onnx_dir / "junk.onnx").write_bytes(b"\x08\x07not really a protobuf\xff\xfe")
    assert_user_error(_run(onnx_dir, ["plan", "--model", "junk.onnx", "-o", "j.json"]), "ONNX file", "junk.onnx",
                      "cannot be read")
    _export(_Softmaxed(), (3, 8, 8), onnx_dir / "soft.onnx")
    assert_user_error(_run(onnx_dir, ["plan", "--model", "soft.onnx", "-o", "j.json"]), "is a Softmax",
                      "cannot convert", "supported ops")
    assert_user_error(_run(onnx_dir, ["plan", "--model", "missing.onnx", "-o", "j.json"]), "not found")
    assert not (onnx_dir / "j.json").exists()
