"""Sizes a machine cannot hold, and inputs a model cannot take: refused in one line before any tensor is built.

A ``3x100000x100000`` AlexNet input (120 GB of input alone) used to end in an allocation traceback.  Now
the layer analysis runs on fake tensors (nothing allocated, so ``layers`` lists it), planning refuses it
by device memory, and ``check`` and ``run`` estimate what this machine must hold
(``program.memory.host_bytes``) and refuse with the figures before building anything.
"""

from __future__ import annotations

import json
import re

import pytest
from _cli import _run, assert_user_error

HUGE = "3x100000x100000"


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """A valid plan for the huge input, on a cluster whose devices claim enough memory for it."""
    work = tmp_path_factory.mktemp("huge")
    from importlib.resources import files

    text = (files("edgeslice") / "cluster" / "examples" / "local4.yaml").read_text()
    (work / "huge.yaml").write_text(text.replace("memory_mb: 4096", "memory_mb: 100000000").replace("name: local4", "name: huge4"))
    r = _run(work, ["plan", "--model", "alexnet", "--input", HUGE, "--cluster", "huge.yaml", "--planner", "ftp", "-o", "big.json"])
    assert r.returncode == 0, r
    return work


@pytest.mark.parametrize("args,needles", [
    (["check", "big.json"], ["checking alexnet at input 1x3x100000x100000 in one process needs about", "MB available",
                             "smaller --input"]),
    (["run", "big.json"], ["running big.json on 4 worker processes here needs about", "MB available"]),
    (["plan", "--model", "alexnet", "--input", HUGE, "-o", "x.json"], ["would need", "MB of activations", "memory_mb"]),
    (["plan", "--model", "alexnet", "--input", "3x64x64", "--batch", "10000000", "-o", "x.json"], ["would need", "memory_mb"]),
])
def test_sizes_that_cannot_be_allocated_are_refused_with_the_figure(huge, args, needles):
    assert_user_error(_run(huge, args), *needles)
    assert not list(huge.glob("edgeslice-run-*")) and not (huge / "x.json").exists()


def test_the_layer_analysis_of_a_huge_input_allocates_nothing(huge):
    r = _run(huge, ["layers", "--model", "alexnet", "--input", HUGE, "--json"])
    assert r.returncode == 0, r
    first = json.loads(r.stdout)[0]
    assert first["name"] == "features_0" and first["out_shape"] == [64, 24999, 24999], first  # (100000 + 4 - 11) // 4 + 1


@pytest.mark.parametrize("side,fix", [("400", "3x416x416"), ("33", "3x64x64"), ("16", "3x32x32")])
def test_yolov2_says_its_sides_are_multiples_of_32(tmp_path, side, fix):
    msg = assert_user_error(_run(tmp_path, ["plan", "--model", "yolov2", "--input", f"3x{side}x{side}", "-o", "y.json"]),
                            "multiples of 32", f"got {side}x{side}", f"try --input {fix}")
    assert re.search(r"model 'yolov2'", msg)


# ---- small lies: what a command says must be true ---------------------------------------------


@pytest.fixture(scope="module")
def local4_plan(tmp_path_factory):
    work = tmp_path_factory.mktemp("lies")
    r = _run(work, ["plan", "--model", "alexnet", "--input", "3x64x64", "--cluster", "local4", "--seed", "2", "-o", "p.json"])
    assert r.returncode == 0, r
    return work


@pytest.mark.parametrize("args,needles", [
    # used to exit 0, comparing only the planners it knew
    (["compare", "--model", "alexnet", "--input", "3x64x64", "--planners", "foo,aofl"], ["unknown planner 'foo'", "available:"]),
    # used to suggest `--cluster uniform2`, which is not a cluster
    (["simulate", "p.json", "--cluster", "pi4x4"], ["not in cluster 'pi4x4'", "leave --cluster out"]),
    # used to be found only after the distributed run
    (["run", "p.json", "--cluster", "pi4x4"], ["not in cluster 'pi4x4'"]),
])
def test_small_lies_are_gone(local4_plan, args, needles):
    msg = assert_user_error(_run(local4_plan, args), *needles)
    assert "uniform" not in msg
    assert not list(local4_plan.glob("edgeslice-run-*"))
