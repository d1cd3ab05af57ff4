"""Tracing time: model spec -> LayerGraph, for VGG-16, ResNet-50 and YOLOv2 (issue 13: under 1 s for ResNet-50).

Each model is traced ``--repeat`` times at its zoo input (batch 1) after one warm-up trace (imports,
torch's first-call caches); the figure is the median wall time of one ``edgeslice.graph.trace`` call,
building the model included (that is what every command pays).  The analysis cache is bypassed: each
call traces afresh.

    .venv/bin/python benchmarks/bench_trace.py [--repeat 5] [--models vgg16,resnet50,yolov2]
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
    from edgeslice.graph.trace import trace

    trace("alexnet", (3, 64, 64))  # warm-up: imports and first-call caches
    print(f"{'model':<14}{'layers':>8}{'median s':>10}{'min s':>8}")
    for spec in args.models.split(","):
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            g, _ = trace(spec)
            times.append(time.perf_counter() - t)
        print(f"{spec:<14}{len(g.layers):>8}{statistics.median(times):>10.3f}{min(times):>8.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
