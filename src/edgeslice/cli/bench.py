"""``edgeslice bench``: built-in benchmarks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgeslice.cli._common import (
    _TAG,
    _console,
    _console_err,
    _positive,
    _positive_float,
    model_args,
)
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("bench", help="built-in benchmarks")
    p.add_argument("what", choices=("simulate", "testbed", "fl", "decnn", "ofpcnn", "mec"))
    p.add_argument("--quick", action="store_true", help="fl, mec: a small subset (under two / three minutes)")
    p.add_argument("--models", default=None, help="fl: comma-separated zoo models (default: vgg16,resnet50,yolov2,alexnet,mobilenet_v2)")
    p.add_argument("--bf-limit", type=_positive_float, default=4e6, help="fl: run fl-bf where it tries at most this many path assignments")
    p.add_argument("--seconds", type=_positive_float, default=3.0)
    model_args(p, required=False)
    p.add_argument("--cluster", default=None, help="testbed: the cluster to emulate")
    p.add_argument("--planners", default=None, help="testbed: comma-separated planners (default: every classic one)")
    p.add_argument("--repeat", type=_positive, default=5, help="testbed: runs per plan (the median is reported)")
    p.add_argument("--calibration", default=None, help="testbed: folder of the calibration to use or write")
    p.add_argument("--force", action="store_true", help="testbed: calibrate again even if a calibration exists")
    p.add_argument("--chart", default=None, help="testbed: chart file (.png)")
    p.add_argument("--out", default=None, help="testbed: folder for plans, worker logs and result.json")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.add_argument("--testbed", action="store_true",
                   help="decnn: also run every plan for real on the emulated testbed (root; the first cluster); "
                        "mec: run a MEC scenario for real on it (IoT devices streaming, every task placed by the agent)")
    p.add_argument("--profiles", default=None,
                   help="ofpcnn: folder of the devices' load profiles (default .edgeslice/testbed/testbed4-loads)")
    p.add_argument("--levels", default="0,40,80", help="ofpcnn: background loads (percent) to predict at")
    p.add_argument("--measured-levels", default="0,60", help="ofpcnn --testbed: loads (percent) on d1 to run at")
    p.add_argument("--agent", default=None,
                   help="mec --testbed: the agent that places the tasks (default: train MTL-A3C on the measured network)")
    p.add_argument("--tasks", type=_positive, default=24, help="mec --testbed: tasks in the run")
    p.add_argument("--rate", type=_positive_float, default=4.0, help="mec --testbed: task releases per second")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    if args.what == "simulate":
        from edgeslice.bench.simulate import bench_simulate

        res = bench_simulate(seconds=args.seconds)
        if args.json:
            print(json.dumps(res))
        else:
            print(f"{res['plans_per_s']:.0f} plan evaluations per second (lower + simulate; {res['description']})")
        return 0
    if args.what == "testbed":
        return _bench_testbed(args)
    if args.what == "fl":
        return _bench_fl(args)
    if args.what == "decnn":
        return _bench_decnn(args)
    if args.what == "ofpcnn":
        return _bench_ofpcnn(args)
    if args.what == "mec":
        return _bench_mec(args)
    raise EdgesliceError(f"unknown benchmark {args.what!r}")


def _bench_fl(args) -> int:
    """``bench fl``: FL + PSOMW against local, edge, neurosurgeon, nfl and fl-bf over models × bandwidths × ratios × servers."""
    from edgeslice.bench.fl import bench_fl

    models = [m for m in (args.models or "").split(",") if m] or None
    chart = args.chart or ("benchmarks/fl_bandwidth_quick.png" if args.quick else "benchmarks/fl_bandwidth.png")
    Path(chart).parent.mkdir(parents=True, exist_ok=True)

    def progress(r):  # one line per instance; on stderr with --json, so stdout stays one JSON document
        lat = "  ".join(f"{k} {v * 1e3:.1f}" for k, v in r["latency_s"].items())
        print(f"{r['model']} {r['bandwidth_mbps']:g} Mbit/s ratio {r['ratio']:g} servers {r['servers']}: {lat} ms", flush=True,
              file=sys.stderr if args.json else sys.stdout)

    res = bench_fl(quick=args.quick, models=models, bf_limit=args.bf_limit, chart=chart, progress=progress)
    if args.json:
        print(json.dumps(res))
    else:
        for k, v in res["summary"].items():
            print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
        print(f"chart: {chart}")
    return 0 if res["summary"]["worst_ratio_vs_nfl"] <= 1 + 1e-9 else 1


def _bench_testbed(args) -> int:
    from rich.table import Table

    from edgeslice.testbed.bench import bench_testbed, chart

    if not args.cluster or not args.model:
        raise EdgesliceError("bench testbed needs --cluster C.yaml and --model M")
    err = _console_err()
    res = bench_testbed(args.cluster, args.model, args.input, args.batch,
                        planners=[p for p in args.planners.split(",") if p] if args.planners else None,
                        repeat=args.repeat, tag=args.tag, calibration=args.calibration, force=args.force, out=args.out,
                        progress=lambda m: err.print(m, highlight=False))
    meta = res["meta"]
    path = args.chart or str(Path(meta["calibrated_cluster"]).parent / "bench" / "bench-testbed.png")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    chart(res, path)
    if args.json:
        print(json.dumps(res["planners"]))
        return 0
    con = _console()
    t = Table(title=f"{meta['model']} on the {meta['cluster']} testbed, median of {meta['repeat']} runs")
    for col in ("planner", "predicted ms", "measured ms", "error", "speedup vs local", "MB moved", "output"):
        t.add_column(col, justify="left" if col == "planner" else "right")
    for name, r in res["planners"].items():
        if "error" in r:
            t.add_row(name, "cannot plan", "", "", "", "", r["error"][:60])
            continue
        t.add_row(name, f"{r['predicted_latency_s'] * 1e3:.0f}", f"{r['measured_latency_s'] * 1e3:.0f}",
                  f"{r['error_pct']:+.1f}%", f"{r['speedup_vs_local']:.2f}×", f"{r['measured_bytes'] / 1e6:.2f}",
                  "verified" if r["output_ok"] else "[red]MISMATCH[/]")
    con.print(t)
    con.print(f"best: {meta['best']} at {meta['best_speedup_vs_local']:.2f}× over local (measured); largest "
              f"prediction error {meta['max_abs_error_pct']:.1f}%; chart: {path}")
    return 0 if meta["all_outputs_ok"] else 1


def _bench_decnn(args) -> int:
    """``bench decnn``: DeCNN vs naive channel split, MoDNN, a 2x2 grid, AOFL and the whole model (issue 14)."""
    import tempfile

    from rich.table import Table

    from edgeslice.bench.decnn import CLUSTERS, FAMILIES, bench_decnn, chart

    families = [m for m in (args.models or "resnet50,vgg16").split(",") if m]
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        raise EdgesliceError(f"bench decnn: unknown model family {bad[0]!r}; choose from {', '.join(FAMILIES)}")
    clusters = [c for c in (args.cluster or ",".join(CLUSTERS)).split(",") if c]
    if args.testbed:
        from edgeslice.testbed.net import unavailable

        why = unavailable(args.tag)
        if why:
            raise EdgesliceError(f"bench decnn --testbed: the testbed is not available here: {why}")
    out = args.out or tempfile.mkdtemp(prefix="edgeslice-bench-decnn-")
    chart_path = args.chart or str(Path(out) / "decnn.png")
    err = _console_err()
    res = bench_decnn(families=families, clusters=clusters, input_shape=tuple(args.input) if args.input else (3, 224, 224),
                      testbed=args.testbed, repeat=args.repeat, out=out,
                      calibration_force=args.force, progress=lambda m: err.print(m, highlight=False))
    Path(chart_path).parent.mkdir(parents=True, exist_ok=True)
    chart(res, chart_path)
    (Path(out) / "result.json").write_text(json.dumps(res, indent=1))
    if args.json:
        print(json.dumps(res))
    else:
        con = _console()
        t = Table(title=f"DeCNN and baselines, {res['meta']['input']} input, {res['meta']['inflight']} in flight for throughput")
        for col in ("cluster", "model", "planner", "predicted ms", "measured ms", "req/s overlap", "req/s in order",
                    "MB moved", "max peak MB", "output"):
            t.add_column(col, justify="left" if col in ("cluster", "model", "planner") else "right")
        for r in res["rows"]:
            if "error" in r:
                t.add_row(r["cluster"], r["model"], r["planner"], "cannot plan", "", "", "", "", "", r["error"][:50])
                continue
            m = r["measured_latency_s"]
            t.add_row(r["cluster"], r["model"], r["planner"], f"{r['predicted_latency_s'] * 1e3:.0f}",
                      f"{m * 1e3:.0f}" if m else "-", f"{r['throughput_rps']:.2f}",
                      f"{r['throughput_in_order_rps']:.2f}" if r["throughput_in_order_rps"] else "-", f"{r['mb_moved']:.2f}",
                      f"{max(r['peak_mem_mb'].values()):.0f}", "verified" if r["verified"] else "[red]NOT VERIFIED[/]")
        con.print(t)
        for k, v in res["summary"].items():
            con.print(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}", highlight=False)
        con.print(f"chart: {chart_path}; plans and result.json: {out}", highlight=False)
    return 0 if all(r["verified"] for r in res["rows"] if "error" not in r) else 1


def _bench_ofpcnn(args) -> int:
    """``bench ofpcnn``: hvpm with FCPM at the current loads against load-blind plans (issue 15)."""
    from rich.table import Table

    from edgeslice.bench.ofpcnn import CLUSTERS, PROFILES, bench_ofpcnn, chart

    def levels(text, flag):
        try:
            return tuple(float(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise EdgesliceError(f"bench ofpcnn: {flag} {text!r}: give percents like 0,40,80") from None

    if args.testbed:
        from edgeslice.testbed.net import unavailable

        why = unavailable(args.tag)
        if why:
            raise EdgesliceError(f"bench ofpcnn --testbed: the testbed is not available here: {why}")
    clusters = [c for c in (args.cluster or ",".join(CLUSTERS)).split(",") if c]
    err = _console_err()
    res = bench_ofpcnn(model=args.model or "vgg16", input_shape=tuple(args.input) if args.input else (3, 160, 160),
                       clusters=clusters, levels=levels(args.levels, "--levels"), profiles=args.profiles or PROFILES,
                       testbed=args.testbed, measured_levels=levels(args.measured_levels, "--measured-levels"),
                       repeat=args.repeat, out=args.out, progress=lambda m: err.print(m, highlight=False))
    if args.chart:
        Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
        chart(res, args.chart)
    if args.json:
        print(json.dumps(res))
    else:
        con = _console()
        t = Table(title=f"OfpCNN: hvpm + FCPM vs the best load-blind plan ({res['meta']['model']})")
        for col in ("cluster", "load", "where", "best other", "hvpm+FCPM ms", "best other ms", "speedup",
                    "vs hvpm blind"):
            t.add_column(col)
        for s in res["summary"]:
            f = lambda v: "-" if v is None else f"{v * 1e3:.0f}"
            t.add_row(s["cluster"], ", ".join(f"{d} {v:g}%" for d, v in s["loads"].items()) or "none",
                      "testbed" if s["testbed"] else "predicted", str(s["best_other"]), f(s["hvpm_fcpm_latency_s"]),
                      f(s["best_other_latency_s"]), f"{s['speedup_vs_best_other']:.2f}x" if s["speedup_vs_best_other"] else "-",
                      f"{s['speedup_vs_hvpm_blind']:.2f}x" if s["speedup_vs_hvpm_blind"] else "-")
        con.print(t)
    return 0 if all(r["verified"] is not False for r in res["rows"]) else 1


def _bench_mec(args) -> int:
    """``bench mec``: MTL-A3C against A3C, DQN, the paper's heuristics, ours and the exact optimum (Li et al.)."""
    if args.testbed:
        return _bench_mec_testbed(args)
    from edgeslice.bench.mec import METHODS, bench_mec
    from edgeslice.viz.curves import learning_curves, sweep_chart

    stem = "benchmarks/mec_quick" if args.quick else "benchmarks/mec"
    chart = Path(args.chart or f"{stem}_sweeps.png")
    chart.parent.mkdir(parents=True, exist_ok=True)
    res = bench_mec(quick=args.quick, progress=lambda line: print(line, flush=True,
                                                                  file=sys.stderr if args.json else sys.stdout))
    sweep_chart(res["sweeps"], chart)
    curves_png = chart.with_name(chart.name.replace("_sweeps", "_curves"))
    if curves_png == chart:
        curves_png = chart.with_suffix(".curves.png")
    opt = res["defaults"]["optimum"]["reward"]
    learning_curves({k: v for k, v in res["curves"].items() if not k.startswith("contention")}, curves_png,
                    references={"exact optimum (evaluation episodes)": opt},
                    title="paper mode, defaults: mean task reward per training episode")
    res["charts"] = [str(chart), str(curves_png)]
    Path(f"{stem}.json").write_text(json.dumps(res))
    if args.json:
        print(json.dumps(res))
        return 0
    con = _console()
    from rich.table import Table

    for title, rows in (("paper mode, defaults", res["defaults"]), ("contention mode (gap to window-opt, offline)", res["contention"])):
        t = Table(title=f"MEC {title}: per task, {len(rows)} methods")
        for col in ("method", "total s", "edge s", "local s", "miss rate", "energy J", "gap %", "converged by", "train s"):
            t.add_column(col)
        for m in METHODS:
            if m not in rows:
                continue
            r = rows[m]
            f = lambda v, fmt: "-" if v is None else format(v, fmt)
            t.add_row(m, f(r["total_delay_s"], ".4f"), f(r["edge_delay_s"], ".4f"), f(r["local_delay_s"], ".4f"),
                      f(r["miss_rate"], ".4f"), f(r["energy_j"], ".3f"), f(r["gap_to_optimum_pct"], ".1f"),
                      f(r.get("episodes_to_converge"), "d"), f(r.get("train_s"), ".0f"))
        con.print(t)
    print(f"charts {', '.join(res['charts'])}; all figures in {stem}.json; {res['bench_s']:.0f} s")
    return 0


def _bench_mec_testbed(args) -> int:
    """``bench mec --testbed``: the MEC scenario run for real, measured against the contention simulator."""
    from rich.table import Table

    from edgeslice.runtime.mec import chart, real_run

    err = _console_err()
    res = real_run(args.cluster or "mec-testbed", model=args.model or "resnet18", input_shape=args.input or (3, 128, 128),
                   tasks=args.tasks, rate=args.rate, agent=args.agent, tag=args.tag, force=args.force,
                   out=args.out or "benchmarks/mec_testbed", progress=lambda m: err.print(m, highlight=False))
    path = args.chart or str(Path(args.out or "benchmarks/mec_testbed") / "mec_testbed.png")
    chart(res, path)
    if args.json:
        print(json.dumps({k: v["summary"] for k, v in res["policies"].items()}))
    else:
        t = Table(title=f"MEC on the {res['cluster']} testbed: {args.tasks} tasks at {args.rate:g}/s, all at once")
        for col in ("placed by", "predicted s/task", "measured s/task", "error of means", "|error| per task: mean",
                    "max", "within 15%", "outputs"):
            t.add_column(col)
        for name, p in res["policies"].items():
            s = p["summary"]
            t.add_row(name, f"{s['mean_predicted_s']:.3f}", f"{s['mean_measured_s']:.3f}", f"{s['mean_error_pct']:+.1f}%",
                      f"{s['mean_abs_task_error_pct']:.1f}%", f"{s['max_abs_task_error_pct']:.1f}%",
                      f"{s['tasks_within_15pct']}/{s['tasks']}", "verified" if s["all_outputs_ok"] else "[red]MISMATCH[/]")
        _console().print(t)
        print(f"chart: {path}")
    return 0 if all(p["summary"]["all_outputs_ok"] for p in res["policies"].values()) else 1
