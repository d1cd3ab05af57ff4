"""Workers build only their share: the model on the meta device, their slices read from a mapped weights file.

The mapped path must give exactly what building the whole model and pruning it gives (same tensors, same
offsets, so the same outputs), fall back to that path when it cannot be used, and in a real run each
worker must hold its share of the weights, not the model.  No RSS assertion: resident sizes are noisy.
"""

from __future__ import annotations

import json

import pytest
import torch

from edgeslice.bench.memory import channel_plan
from edgeslice.planners import make_plan
from edgeslice.runtime.launch import run_plan, write_weights
from edgeslice.runtime.pieces import BUILT_WHOLE, MMAP, MappedWeights, load_share, param_bytes


def _tensors(gm) -> dict[str, torch.Tensor]:
    return {**dict(gm.named_parameters()), **dict(gm.named_buffers())}


@pytest.mark.parametrize("spec,shape,seeds", [("alexnet", (3, 64, 64), range(2)), ("resnet18", (3, 32, 32), range(2))])
def test_mapped_share_is_exactly_the_pruned_whole_model(traced, tmp_path, spec, shape, seeds):
    g, _ = traced(spec, shape)
    plans = [channel_plan(g, 3)] + [make_plan("random", g, devices=3, seed=s) for s in seeds]
    assert any(s.cut == "input" for p in plans for s in p.segments)  # the copied (partial-sum) slices too
    weights = tmp_path / "w.pt"
    assert write_weights(plans[0], weights)
    for plan in plans:
        for d in plan.devices:
            _, _, mapped, src, note = load_share(plan, d, weights=weights)
            _, _, built, src_whole, _ = load_share(plan, d)
            assert (src, src_whole) == (MMAP, BUILT_WHOLE), note
            assert mapped.offsets == built.offsets
            a, b = _tensors(mapped.gm), _tensors(built.gm)
            assert a.keys() == b.keys()
            for k in a:
                assert not a[k].is_meta and a[k].shape == b[k].shape and torch.equal(a[k], b[k]), (plan.segments, d, k)
            assert param_bytes(mapped.gm) == param_bytes(built.gm)


def test_mapped_share_runs_like_the_whole_model_in_process(traced, tmp_path):
    """The kernels over each device's mapped share compute the model's output (one device's program at a time)."""
    from edgeslice.execute.inprocess import run_program

    g, gm = traced("alexnet", (3, 64, 64))
    plan = channel_plan(g, 1)  # one device holding every slice: its kernels alone run the whole Program
    weights = tmp_path / "w.pt"
    write_weights(plan, weights)
    _, program, kernels, src, _ = load_share(plan, "d0", weights=weights)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = gm(x)
        out = run_program(program, g, kernels, x)
    assert src == MMAP and float((out - ref).abs().max()) <= 1e-5 * float(ref.abs().max())


def test_falls_back_to_building_the_whole_model(traced, tmp_path):
    g, _ = traced("alexnet", (3, 64, 64))
    plan = channel_plan(g, 2)
    _, _, _, src, note = load_share(plan, "d0")
    assert src == BUILT_WHOLE and "--weights" in note
    # a file lacking tensors a device keeps (here: every bias): that device builds the whole model instead
    full = tmp_path / "w.pt"
    write_weights(plan, full)
    sd = {k: v for k, v in MappedWeights(full).tensors.items() if not k.endswith("bias")}
    torch.save(sd, tmp_path / "partial.pt")
    _, _, k, src, note = load_share(plan, "d1", weights=tmp_path / "partial.pt")
    assert src == BUILT_WHOLE and "lacks" in note and "bias" in note
    assert not any(t.is_meta for t in _tensors(k.gm).values())


def test_a_weights_file_of_another_shape_is_refused(traced, tmp_path):
    from edgeslice.errors import ModelError

    g, _ = traced("alexnet", (3, 64, 64))
    plan = channel_plan(g, 2)
    write_weights(plan, tmp_path / "w.pt")
    sd = dict(MappedWeights(tmp_path / "w.pt").tensors)
    sd["features.0.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="does not fit the model: features.0.weight"):
        load_share(plan, "d0", weights=tmp_path / "bad.pt")


def test_each_worker_of_a_channel_plan_holds_its_share(traced, tmp_path):
    g, _ = traced("alexnet", (3, 64, 64))
    plan = channel_plan(g, 4)
    assert {s.cut for s in plan.segments} == {"channel"} and {len(s.parts) for s in plan.segments} == {4}
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5
    whole = g.param_bytes / 1e6
    assert set(res["weights_source"].values()) == {MMAP}
    for d in plan.devices:
        assert res["weights_mb"][d] == pytest.approx(res["predicted_weights_mb"][d], rel=1e-9)
        assert res["weights_mb"][d] == pytest.approx(whole / 4, rel=0.01)
        assert res["weights_mb"][d] < 0.4 * whole
        assert res["predicted_resident_mb"][d] >= res["predicted_weights_mb"][d]
    assert sum(res["weights_mb"].values()) == pytest.approx(whole, rel=1e-9)  # every tensor cut, none repeated
    reports = [json.loads((tmp_path / "run" / f"report-{r}.json").read_text()) for r in range(4)]
    assert all(r["peak_mem_mb"] >= r["loaded_peak_mem_mb"] > 0 for r in reports)
    assert not (tmp_path / "run" / "worker-weights.pt").exists()  # the launcher's weights file is removed
