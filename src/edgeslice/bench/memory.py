"""Worker memory: each worker of a channel plan holds its share of the weights, measured.

:func:`channel_plan` cuts every layer of a model into equal output-channel
ranges, one per device (a Linear layer's output features are its channels), so
every device holds about ``1/k`` of every layer's weights.  A segment runs from
one layer to as many following layers as a channel cut can take without
recomputing anything (a convolution with the ReLU and pooling after it; never
two convolutions, whose second needs every channel of the first).

:func:`bench_worker_memory` runs such a plan on real worker processes and
reports, per worker, its measured peak resident size next to the weights it
holds and the predicted resident bytes, and the peak of a *baseline* worker
process that does everything a worker does before and around loading weights
(imports, tracing the model on the meta device, lowering, a gloo group) but
holds no weights.

Example::

    >>> from edgeslice.graph import trace
    >>> g, _ = trace("alexnet", (3, 64, 64), meta=True)
    >>> p = channel_plan(g, 4)
    >>> {s.cut for s in p.segments}, {len(s.parts) for s in p.segments}
    ({'channel'}, {4})
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _ranges(n: int, k: int) -> list[tuple[int, int]]:
    return [(n * i // k, n * (i + 1) // k) for i in range(k)]


def _channel_segment(graph, a: int, b: int, devices):
    """Equal channel parts of layers ``a..b``, or None where the cut is illegal or recomputes anything."""
    from edgeslice.plan.plan import Part, Segment
    from edgeslice.plan.validate import cuttable
    from edgeslice.program.lower import (
        analyse_part,
        part_requests,
        segment_envelope,
        step_flops,
    )

    last = graph.layers[b]
    if last.out_shape[0] < len(devices) or not cuttable(graph, a, b)[0]:
        return None
    seg = Segment(graph.layers[a].name, last.name, "channel",
                  tuple(Part(d, channels=r) for d, r in zip(devices, _ranges(last.out_shape[0], len(devices)))))
    env = segment_envelope(graph, a, b)
    got = 0
    for p in seg.parts:
        req, partial = part_requests(graph, a, b, seg, p)
        got += step_flops(graph, analyse_part(graph, a, b, req, partial, env)[0])
    return seg if got == sum(l.flops for l in graph.layers[a : b + 1]) else None


def channel_plan(graph, devices: int | tuple[str, ...] = 4, *, source: str | None = None, sink: str | None = None):
    """A plan cutting every layer of ``graph`` into equal output-channel ranges, range ``i`` on device ``i``.

    Layers no channel cut can take alone (fewer channels than devices) run whole on the first device.
    """
    from edgeslice.plan.plan import Part, Plan, Segment
    from edgeslice.planners._shared.common import model_ref

    devs = tuple(f"d{i}" for i in range(devices)) if isinstance(devices, int) else tuple(devices)
    n = len(graph.layers)
    segments = []
    a = 0
    while a < n:
        seg = _channel_segment(graph, a, a, devs)
        if seg is None:
            segments.append(Segment(graph.layers[a].name, graph.layers[a].name, "whole", (Part(devs[0]),)))
            a += 1
            continue
        b = a
        while b + 1 < n:
            longer = _channel_segment(graph, a, b + 1, devs)
            if longer is None:
                break
            seg, b = longer, b + 1
        segments.append(seg)
        a = b + 1
    ref = model_ref(graph)
    return Plan(ref, devs, source or devs[0], sink or devs[0], tuple(segments), planner="channel",
                options=(("devices", len(devs)),))


# what a worker does besides holding weights: imports, the meta-device trace, lowering, a gloo group of one
_BASELINE = r"""
import json, sys
from datetime import timedelta
import torch, torch.distributed as dist
from edgeslice.plan.plan import Plan
from edgeslice.execute.check import load_for_plan
from edgeslice.program.lower import lower
import edgeslice.runtime.worker as w
torch.set_num_threads(1)
def hwm(field="VmHWM"):
    return w._rss_mb(field)
out = {"import_mb": hwm()}
plan = Plan.load(sys.argv[1])
graph, gm = load_for_plan(plan, meta=True)
program = lower(plan, graph)
out["trace_mb"] = hwm()
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{int(sys.argv[2])}", rank=0, world_size=1,
                        timeout=timedelta(seconds=30))
dist.barrier()
dist.destroy_process_group()
out["peak_mb"] = hwm()
print(json.dumps(out))
"""

# the smallest torch process: the interpreter and `import torch`
_IMPORT_ONLY = "import torch, json, edgeslice.runtime.worker as w; print(json.dumps({'peak_mb': w._rss_mb('VmHWM')}))"


def baseline_worker(plan_path: str) -> dict:
    """Peak resident MiB of a process that does what a worker does but holds no weights (see module docstring)."""
    from edgeslice.runtime.launch import free_port

    def run(code, *args):
        p = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"baseline process failed: {p.stderr.strip().splitlines()[-1:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    base = run(_BASELINE, plan_path, str(free_port()))
    base["import_torch_mb"] = run(_IMPORT_ONLY)["peak_mb"]
    return base


def _run_built_whole(plan_path: str, **kw) -> dict:
    """The same run with workers that build the whole model and prune it (no weights file: plain torchrun's way)."""
    from edgeslice.runtime import launch as L

    saved = L.write_weights
    L.write_weights = lambda plan, path: False
    try:
        return L.run_plan(plan_path, **kw)
    finally:
        L.write_weights = saved


def bench_worker_memory(spec: str = "vgg16", input_shape=(3, 224, 224), devices: int = 4, requests: int = 1,
                        threads: int = 1, out: str | None = None, compare_whole: bool = False) -> dict:
    """Run :func:`channel_plan` of ``spec`` on ``devices`` workers; per-worker peak vs share (see module docstring).

    With ``compare_whole`` the plan is run a second time by workers that build the whole model, then prune
    (what every worker did before weights files), for the figures before and after.
    """
    from edgeslice.graph import trace
    from edgeslice.runtime.launch import run_plan

    graph, _ = trace(spec, tuple(input_shape), meta=True)
    whole_mb = graph.param_bytes / 1e6
    work = Path(out or tempfile.mkdtemp(prefix="edgeslice-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = channel_plan(graph, devices)
    plan_path = work / "plan.json"
    plan.save(plan_path)
    res = run_plan(str(plan_path), requests=requests, threads=threads, out=str(work / "run"), timeout=120)
    base = baseline_worker(str(plan_path))
    mib = 1024 * 1024 / 1e6  # peaks are MiB (kernel kB / 1024); weights and the model are MB (10^6 bytes)
    loaded = {}
    for r in range(len(plan.devices)):
        rep = json.loads((work / "run" / f"report-{r}.json").read_text())
        loaded[rep["device"]] = rep.get("loaded_peak_mem_mb", float("nan")) * mib
    workers = {}
    for d in res["devices"]:
        peak_mb = res["peak_mem_mb"][d] * mib
        workers[d] = {
            "loaded_peak_mb": loaded[d],
            "weights_source": res["weights_source"][d],
            "weights_mb": res["weights_mb"][d],
            "predicted_weights_mb": res["predicted_weights_mb"][d],
            "predicted_resident_mb": res["predicted_resident_mb"][d],
            "peak_mb": peak_mb,
            "peak_over_model": peak_mb / whole_mb,
            "peak_minus_baseline_mb": peak_mb - base["peak_mb"] * mib,
            "peak_minus_baseline_over_model": (peak_mb - base["peak_mb"] * mib) / whole_mb,
        }
    whole = None
    if compare_whole:
        rw = _run_built_whole(str(plan_path), requests=requests, threads=threads, out=str(work / "run-whole"), timeout=120)
        whole = {d: {"weights_source": rw["weights_source"][d], "weights_mb": rw["weights_mb"][d],
                     "peak_mb": rw["peak_mem_mb"][d] * mib, "peak_over_model": rw["peak_mem_mb"][d] * mib / whole_mb}
                 for d in rw["devices"]}
    return {
        "model": spec, "input": list(input_shape), "devices": devices, "segments": len(plan.segments),
        "built_whole": whole,
        "cuts": sorted({s.cut for s in plan.segments}), "whole_model_mb": whole_mb, "rel_err": res["rel_err"],
        "ok": res["ok"], "baseline_mb": {k: v * mib for k, v in base.items()}, "workers": workers,
        "max_peak_over_model": max(w["peak_over_model"] for w in workers.values()),
        "max_peak_minus_baseline_over_model": max(w["peak_minus_baseline_over_model"] for w in workers.values()),
        "plan": str(plan_path),
    }
