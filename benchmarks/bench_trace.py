"""Tracing time: model spec -> LayerGraph, for VGG-16, ResNet-50 and YOLOv2 (issue 13: under 1 s for ResNet-50).

Each model is traced ``--repeat`` times at its zoo input (batch 1) after one warm-up trace (imports,
torch's first-call caches).  Two medians: ``trace`` — one ``edgeslice.graph.trace`` call, building the
model (random weights) included, which is what every command pays; ``trace only`` — ``trace_module``
of a model built once, the tracer alone.  Each call traces afresh.

Before and after a change, side by side (the same script, the other tree's sources first on the path)::

    git worktree add /tmp/before <rev>
    for t in /tmp/before /work/main; do PYTHONPATH=$t/src .venv/bin/python benchmarks/bench_trace.py; done
"""

from __future__ import annotations

import argparse
import statistics
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--models", default="vgg16,resnet50,yolov2")
    args = ap.parse_args(argv)
    import edgeslice
    from edgeslice.graph.trace import trace, trace_module
    from edgeslice.models import load_model, model_info

    trace("alexnet", (3, 64, 64))  # warm-up: imports and first-call caches
    print(f"sources: {edgeslice.__file__}")
    print(f"{'model':<14}{'layers':>8}{'trace s':>10}{'trace only s':>14}")
    for spec in args.models.split(","):
        whole, alone = [], []
        model = load_model(spec)
        shape = model_info(spec).default_input
        for _ in range(args.repeat):
            t = time.perf_counter()
            g, _ = trace(spec)
            whole.append(time.perf_counter() - t)
            t = time.perf_counter()
            trace_module(model, shape)
            alone.append(time.perf_counter() - t)
        print(f"{spec:<14}{len(g.layers):>8}{statistics.median(whole):>10.3f}{statistics.median(alone):>14.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
