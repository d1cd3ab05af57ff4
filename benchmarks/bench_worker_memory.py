"""Worker memory: measured peak of each worker of a 4-way channel plan of VGG-16, next to its share.

Every layer of VGG-16 (224×224) is cut into four equal output-channel ranges,
one per device (:func:`edgeslice.bench.memory.channel_plan`), and the plan runs
on four real worker processes (``edgeslice run``'s launcher): each maps the
weights file the launcher writes and reads only its quarter.  Printed per
worker: where its weights came from, the weights it holds, the predicted
resident bytes (weights share + largest working set), its measured peak
resident size (``VmHWM``), and that peak as a fraction of the whole model's
weights (553 MB) — raw, and less the peak of a baseline process that does what
a worker does but holds no weights (imports, the meta-device trace, lowering,
a gloo group).  Target (issue 11 item 4): every worker's peak under 40 % of
the whole model's weights.

    .venv/bin/python benchmarks/bench_worker_memory.py [--json] [--model vgg16 --input 3x224x224 --devices 4]
"""

from __future__ import annotations

import argparse
import json
import sys

from edgeslice.bench.memory import bench_worker_memory

TARGET = 0.40


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="vgg16")
    ap.add_argument("--input", default="3x224x224")
    ap.add_argument("--devices", type=int, default=4)
    ap.add_argument("--requests", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--out", default=None, help="folder for the plan and the run (default: a temporary one)")
    ap.add_argument("--compare-whole", action="store_true",
                    help="also run the plan with workers that build the whole model, then prune (the way before)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.input.split("x"))
    r = bench_worker_memory(args.model, shape, args.devices, args.requests, args.threads, args.out, args.compare_whole)
    r["target_peak_over_model"] = TARGET
    r["raw_target_met"] = r["max_peak_over_model"] < TARGET
    r["baseline_subtracted_target_met"] = r["max_peak_minus_baseline_over_model"] < TARGET
    if args.json:
        print(json.dumps(r))
        return 0 if r["ok"] else 1
    b = r["baseline_mb"]
    print(f"{r['model']} {'x'.join(map(str, r['input']))}, {r['devices']} workers, {r['segments']} segments all cut by "
          f"channel; whole model's weights {r['whole_model_mb']:.1f} MB; output rel_err {r['rel_err']:.1e} "
          f"({'same as the whole model' if r['ok'] else 'MISMATCH'})")
    print(f"baseline process (no weights): peak {b['peak_mb']:.0f} MB ({b['peak_mb'] / r['whole_model_mb']:.0%} of the model); "
          f"`import torch` alone {b['import_torch_mb']:.0f} MB ({b['import_torch_mb'] / r['whole_model_mb']:.0%})")
    print(f"{'device':<7}{'source':<13}{'weights MB':>11}{'pred. weights':>14}{'pred. resident':>15}{'loaded MB':>10}"
          f"{'peak MB':>9}{'peak/model':>11}{'peak-base MB':>13}{'(peak-base)/model':>18}")
    for d, w in r["workers"].items():
        print(f"{d:<7}{w['weights_source']:<13}{w['weights_mb']:>11.1f}{w['predicted_weights_mb']:>14.1f}"
              f"{w['predicted_resident_mb']:>15.1f}{w['loaded_peak_mb']:>10.0f}{w['peak_mb']:>9.0f}{w['peak_over_model']:>11.1%}"
              f"{w['peak_minus_baseline_mb']:>13.0f}{w['peak_minus_baseline_over_model']:>18.1%}")
    if r["built_whole"]:
        print("the same plan, workers building the whole model then pruning (no weights file):")
        for d, w in r["built_whole"].items():
            print(f"{d:<7}{w['weights_source']:<13}{w['weights_mb']:>11.1f}{'':>14}{'':>15}{'':>10}{w['peak_mb']:>9.0f}"
                  f"{w['peak_over_model']:>11.1%}")
    print(f"target: every worker's peak under {TARGET:.0%} of the model: raw "
          f"{'met' if r['raw_target_met'] else 'NOT met'} (worst {r['max_peak_over_model']:.1%}); less the baseline "
          f"{'met' if r['baseline_subtracted_target_met'] else 'NOT met'} (worst {r['max_peak_minus_baseline_over_model']:.1%})")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
