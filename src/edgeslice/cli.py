"""The ``edgeslice`` command line.

Every command that takes a plan file needs nothing else: the plan names its
model, input and batch.  User errors (an :class:`~edgeslice.errors.EdgesliceError`)
print one line on stderr and exit with status 2; ``check`` exits 1 when the
partitioned output differs from the model's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edgeslice.errors import EdgesliceError


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape {text!r} must look like 3x224x224") from None
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"input shape {text!r} must have positive sizes, like 3x224x224")
    return dims


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return v


_TAG = os.environ.get("EDGESLICE_TESTBED_TAG", "0")  # tests use their own tag, so they never touch a user's testbed


def _console():
    from rich.console import Console

    con = Console()
    if not con.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        con = Console(width=160)
    return con


# ---- commands ------------------------------------------------------------

def cmd_models(args) -> int:
    from rich.table import Table

    from edgeslice.graph.trace import trace
    from edgeslice.models import zoo_names
    from edgeslice.models.zoo import ZOO

    table = Table(title="edgeslice model zoo (batch 1)")
    for col in ("model", "input", "GFLOPs", "params (M)", "layers", "description"):
        table.add_column(col, justify="right" if col in ("GFLOPs", "params (M)", "layers") else "left")
    rows = []
    for name in zoo_names():
        e = ZOO[name]
        g, gm = trace(name, e.input_shape)
        params = sum(p.numel() for p in gm.parameters())
        rows.append({"model": name, "input": list(e.input_shape), "flops": g.flops, "params": params,
                     "layers": len(g.layers), "description": e.description})
        table.add_row(name, "x".join(map(str, e.input_shape)), f"{g.flops / 1e9:.2f}", f"{params / 1e6:.2f}",
                      str(len(g.layers)), e.description)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _console().print(table)
    return 0


def cmd_layers(args) -> int:
    from rich.table import Table

    from edgeslice.graph.trace import trace

    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    if args.json:
        print(json.dumps([{"name": l.name, "kind": l.kind, "target": l.target, "inputs": list(l.inputs),
                           "out_shape": list(l.out_shape), "flops": l.flops, "param_bytes": l.param_bytes} for l in graph.layers]))
        return 0
    table = Table(title=f"{graph.spec} {'x'.join(map(str, graph.input_shape))} batch {graph.batch}: {len(graph.layers)} layers",
                  box=None)
    for col in ("#", "layer", "kind", "module/function", "output", "MFLOPs", "reads"):
        table.add_column(col, justify="right" if col in ("#", "MFLOPs") else "left")
    for i, l in enumerate(graph.layers):
        table.add_row(str(i), l.name, l.kind, l.target, "x".join(map(str, l.out_shape)), f"{l.flops / 1e6:.1f}", ", ".join(l.inputs))
    _console().print(table)
    return 0


def cmd_planners(args) -> int:
    from edgeslice.planners import planners

    for p in planners().values():
        print(f"{p.name:14s} {p.summary}" + ("  [exact]" if p.exact else ""))
    return 0


def _planner_options(args) -> dict:
    opts = {}
    for key in ("seed", "n", "m", "layers", "objective", "swarm", "iterations", "polish", "limit", "max_block"):
        v = getattr(args, key, None)
        if v is not None:
            opts[key] = v
    return opts


def _cluster(args, devices: int | None = None):
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cluster.model import Cluster

    if getattr(args, "cluster", None):
        return resolve_cluster(args.cluster)
    return Cluster.uniform(devices or getattr(args, "devices", None) or 1)


def _cluster_for_plan(plan, arg: str | None):
    """The cluster a plan runs on: --cluster, else the one it names, else N identical devices."""
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cluster.model import Cluster
    from edgeslice.errors import ClusterError

    if arg:
        cluster = resolve_cluster(arg)
    elif plan.cluster:
        cluster = resolve_cluster(plan.cluster)
    else:
        cluster = Cluster.uniform(len(plan.devices))
    missing = [d for d in plan.devices if d not in cluster.names]
    if missing:
        raise ClusterError(f"plan uses device {missing[0]!r}, which cluster {cluster.name!r} does not have "
                           f"(its devices: {', '.join(cluster.names)}); re-plan with --cluster {cluster.name}")
    return cluster


def cmd_plan(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan
    from edgeslice.planners.common import evaluate

    graph, _ = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    opts = _planner_options(args)
    if args.planner not in ("random", "fl-psomw"):
        opts.pop("seed", None)
    t0 = time.perf_counter()
    plan = make_plan(args.planner, graph, cluster, cost, **opts)
    planning = time.perf_counter() - t0
    if args.weights:
        from dataclasses import replace

        plan = replace(plan, model=replace(plan.model, weights=args.weights))
    plan.save(args.output)
    latency = evaluate(plan, graph, cluster, cost)
    if args.json:
        print(json.dumps({"planner": args.planner, "predicted_latency_s": latency, "planning_time_s": planning,
                          "plan": args.output, "segments": len(plan.segments), "cluster": cluster.name}))
    else:
        cuts = ", ".join(f"{s.cut}×{len(s.parts)}" for s in plan.segments)
        print(f"wrote {args.output}: {graph.spec} {'x'.join(map(str, graph.input_shape))} batch {graph.batch} on "
              f"{cluster.name} ({len(cluster.devices)} devices), planner {args.planner}: {len(plan.segments)} segments "
              f"({cuts}); predicted latency {latency * 1e3:.1f} ms, planned in {planning:.2f} s")
    return 0


def cmd_simulate(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.sim import simulate

    plan = Plan.load(args.plan)
    graph, _ = load_for_plan(plan, args.model)
    cluster = _cluster_for_plan(plan, args.cluster)
    arrivals = tuple(i * args.interval for i in range(args.requests))
    tl = simulate(lower(plan, graph), graph, cluster, ClusterCost(cluster), arrivals=arrivals)
    summary = tl.summary()
    if args.gantt:
        from edgeslice.viz.gantt import draw

        draw([(f"predicted ({plan.planner} on {cluster.name})", tl)], args.gantt)
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.table import Table

        con = _console()
        con.print(f"{plan.model.spec} on {cluster.name}: predicted latency [bold]{summary['latency_s'] * 1e3:.2f} ms[/]"
                  + (f" (median of {args.requests} requests, {summary['throughput_rps']:.2f} req/s)" if args.requests > 1 else "")
                  + f", {summary['bytes_total'] / 1e6:.2f} MB moved")
        table = Table(box=None)
        for col in ("device", "busy ms", "idle ms", "utilisation"):
            table.add_column(col, justify="left" if col == "device" else "right")
        for name, v in summary["per_device"].items():
            span = v["busy_s"] + v["idle_s"]
            table.add_row(name, f"{v['busy_s'] * 1e3:.1f}", f"{v['idle_s'] * 1e3:.1f}", f"{100 * v['busy_s'] / span:.0f} %" if span else "-")
        con.print(table)
        if args.gantt:
            con.print(f"timeline drawn to {args.gantt}")
    return 0


def cmd_compare(args) -> int:
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan, planners
    from edgeslice.planners.common import evaluate
    from edgeslice.program.lower import lower

    graph, gm = trace(args.model, args.input, args.batch, args.weights)
    cluster = _cluster(args)
    cost = ClusterCost(cluster)
    names = args.planners.split(",") if args.planners else [n for n in planners() if n not in ("bruteforce", "random")]
    results = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            plan = make_plan(name, graph, cluster, cost)
        except EdgesliceError as exc:
            results[name] = {"error": str(exc)}
            continue
        planning = time.perf_counter() - t0
        results[name] = {"predicted_latency_s": evaluate(plan, graph, cluster, cost), "bytes_moved": lower(plan, graph).bytes_transferred,
                         "planning_time_s": planning, "segments": len(plan.segments)}
    base = results.get("local", {}).get("predicted_latency_s")
    if base is None:
        base = evaluate(make_plan("local", graph, cluster, cost), graph, cluster, cost)
    for r in results.values():
        if "predicted_latency_s" in r:
            r["speedup_vs_local"] = base / r["predicted_latency_s"]
    if args.json:
        print(json.dumps(results))
        return 0
    from rich.table import Table

    table = Table(title=f"{graph.spec} {'x'.join(map(str, graph.input_shape))} on {cluster.name} ({len(cluster.devices)} devices)")
    for col in ("planner", "predicted ms", "speedup vs local", "MB moved", "segments", "planning s"):
        table.add_column(col, justify="left" if col == "planner" else "right")
    best = min((r["predicted_latency_s"] for r in results.values() if "predicted_latency_s" in r), default=None)
    for name, r in results.items():
        if "error" in r:
            table.add_row(name, "[red]cannot plan[/]", "", "", "", r["error"][:60])
            continue
        mark = "[bold green]" if r["predicted_latency_s"] == best else ""
        table.add_row(name, f"{mark}{r['predicted_latency_s'] * 1e3:.1f}", f"{r['speedup_vs_local']:.2f}×",
                      f"{r['bytes_moved'] / 1e6:.2f}", str(r["segments"]), f"{r['planning_time_s']:.2f}")
    _console().print(table)
    return 0


def cmd_profile(args) -> int:
    from rich.progress import Progress

    from edgeslice.cost.profiled import measure

    with Progress(transient=True) as bar:
        task = bar.add_task(f"profiling {args.model}", total=None)

        def progress(done, total, name):
            bar.update(task, total=total, completed=done, description=f"profiling {args.model}: {name}")

        prof = measure(args.model, args.input, args.batch, repeat=args.repeat, threads=args.threads, progress=progress,
                       min_time_s=args.min_time)
    Path(args.output).write_text(json.dumps(prof, indent=1))
    print(f"wrote {args.output}: {len(prof['layers'])} layers of {args.model}, whole model {prof['total_s'] * 1e3:.1f} ms "
          f"on {args.threads} thread(s) ({prof['effective_gflops']:.1f} GFLOP/s effective)")
    return 0


def cmd_run(args) -> int:
    from edgeslice.runtime.launch import collect, launch

    tb = None
    if args.testbed:
        from edgeslice.cluster.load import resolve_cluster
        from edgeslice.plan.plan import Plan
        from edgeslice.testbed.net import require

        ref = args.cluster or Plan.load(args.plan).cluster
        if not ref:
            raise EdgesliceError("--testbed needs the cluster the testbed emulates: pass --cluster C.yaml "
                                 "(or plan with --cluster)")
        tb = require(resolve_cluster(ref), tag=args.tag)
    outdir = launch(args.plan, cluster=args.cluster, requests=args.requests, inflight=args.inflight, timeout=args.timeout,
                    seed=args.seed, out=args.out, port=args.port, threads=args.threads, testbed=tb)
    res = collect(args.plan, outdir, cluster=args.cluster, requests=args.requests, seed=args.seed)
    measured, predicted = res.pop("_timelines")
    if args.gantt:
        from edgeslice.viz.gantt import draw

        draw([("measured", measured), ("predicted", predicted)], args.gantt)
    if args.json:
        print(json.dumps(res))
    else:
        con = _console()
        verdict = "[green]same output as the whole model[/]" if res["ok"] else "[red]OUTPUT MISMATCH[/]"
        where = f" on the {tb.cluster} testbed" if tb else ""
        con.print(f"{res['model']} on {len(res['devices'])} worker processes{where}, {args.requests} request(s), {args.inflight} in flight: "
                  f"{verdict} (rel_err {res['rel_err']:.1e})")
        con.print(f"latency: measured {res['latency_s'] * 1e3:.1f} ms (median) vs predicted {res['predicted_latency_s'] * 1e3:.1f} ms; "
                  f"throughput {res['throughput_rps']:.2f} requests/s")
        for d in res["devices"]:
            con.print(f"  {d}: sent {res['bytes_sent'][d] / 1e6:.2f} MB, received {res['bytes_received'][d] / 1e6:.2f} MB, "
                      f"weights {res['weights_mb'][d]:.1f} MB, peak memory {res['peak_mem_mb'][d]:.0f} MB")
        if args.gantt:
            con.print(f"timelines (measured above predicted) drawn to {args.gantt}")
    return 0 if res["ok"] else 1


def cmd_worker(args) -> int:
    from edgeslice.runtime.worker import main as worker_main

    return worker_main(args.worker_args)


def cmd_bench(args) -> int:
    if args.what == "simulate":
        from edgeslice.bench import bench_simulate

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
    raise EdgesliceError(f"unknown benchmark {args.what!r}")


def _bench_fl(args) -> int:
    """``bench fl``: FL + PSOMW against local, edge, neurosurgeon, nfl and fl-bf over models × bandwidths × ratios × servers."""
    from edgeslice.bench_fl import bench_fl

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


def _console_err():
    from rich.console import Console

    return Console(stderr=True)


def cmd_testbed(args) -> int:
    from edgeslice.testbed import net

    if args.action == "down":
        gone = net.down(args.tag)
        print(f"removed {len(gone)} things: " + ", ".join(gone) if gone else "nothing to remove: no testbed is up")
        return 0
    if args.action == "status":
        st = net.status(args.tag)
        if args.json:
            print(json.dumps(st))
            return 0
        if not st["devices"] and not st["bridge"]:
            print("no testbed is up (bring one up with `edgeslice testbed up <cluster.yaml>`)")
            return 0
        from rich.table import Table

        t = Table(title=f"testbed {st['cluster'] or '(no state file: leftovers; `edgeslice testbed down` removes them)'}")
        for col in ("device", "namespace", "address", "cpus", "pinned", "links (egress, shaped)", "processes"):
            t.add_column(col)
        for d in st["devices"]:
            links = ", ".join(f"{l['peer']} {l['rate']}" for l in d["links"])
            t.add_row(d["device"], d["namespace"], d["address"] or "-", "unlimited" if d["cpus"] is None else f"{d['cpus']:g}",
                      d.get("cpuset") or "-", links, str(d["processes"]))
        con = _console()
        con.print(t)
        for n in st["notes"]:
            con.print(f"note: {n}", highlight=False)
        return 0
    from edgeslice.cluster.load import resolve_cluster

    if not args.cluster:
        raise EdgesliceError(f"testbed {args.action} needs a cluster: `edgeslice testbed {args.action} C.yaml`")
    cluster = resolve_cluster(args.cluster)
    if args.action == "up":
        tb, made = net.up(cluster, tag=args.tag, source_file=args.cluster, pin=args.pin, progress=print)
        if made:
            print(f"testbed for {cluster.name} is up: {len(tb.devices)} devices"
                  + (f", pinned to host CPU {tb.cpuset}" if tb.cpuset else ""))
        else:
            print(f"testbed for {cluster.name} is already up (nothing changed)")
        for n in tb.notes:
            print(f"note: {n}")
        return 0
    if args.action == "profile":
        from edgeslice.testbed.calibrate import calibrate

        if not args.model:
            raise EdgesliceError("testbed profile needs --model M (the model to profile inside each device)")
        tb, made = net.up(cluster, tag=args.tag, source_file=args.cluster, pin=args.pin, progress=print)
        if made:
            print(f"brought up the testbed for {cluster.name} (`edgeslice testbed down` removes it)")
        path = calibrate(tb, cluster, args.model, args.input, args.batch, outdir=args.output, min_time_s=args.min_time,
                         force=args.force, progress=print)
        print(f"calibrated cluster: {path} (plan with `--cluster {path}`, run with `edgeslice run PLAN --testbed`)")
        return 0
    raise EdgesliceError(f"unknown testbed action {args.action!r}")


def cmd_show(args) -> int:
    from rich.table import Table

    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.program.lower import lower
    from edgeslice.program.regions import fmt

    plan = Plan.load(args.plan)
    graph, _ = load_for_plan(plan, args.model)
    program = lower(plan, graph)
    if args.program:
        sys.stdout.write(program.to_text())
        return 0
    con = _console()
    con.print(f"[bold]{plan.model.spec}[/] input {'x'.join(map(str, plan.model.input_shape))} batch {plan.model.batch} · "
              f"planner {plan.planner} · devices {', '.join(plan.devices)} (source {plan.source}, sink {plan.sink})")
    by_id = {t.id: t for t in program.transfers}
    for si, seg in enumerate(plan.segments):
        a, b = graph.index(seg.first), graph.index(seg.last)
        tasks = [t for t in program.computes if t.segment == si]
        con.print(f"\n[bold]segment {si}[/] · {seg.first}..{seg.last} ({b - a + 1} layers) · "
                  f"[cyan]{seg.cut}[/] · {len(seg.parts)} part{'s' if len(seg.parts) > 1 else ''}")
        table = Table(box=None, padding=(0, 1), show_edge=False)
        for col in ("part", "device", "computes", "reads", "MFLOPs", "KB in"):
            table.add_column(col, justify="right" if col in ("part", "MFLOPs", "KB in") else "left", overflow="fold")
        for t in tasks:
            kb = sum(by_id[p.task].nbytes for n in t.needs for p in n.pieces if p.task in by_id) / 1024
            outs = " ".join(f"{o.tensor}{fmt(o.region)}" + ("(partial)" if o.partial else "") for o in t.outs)
            reads = " ".join(f"{n.tensor}{fmt(n.region)}" for n in t.needs)
            table.add_row(str(t.part), t.device, outs, reads, f"{t.flops / 1e6:.1f}", f"{kb:.1f}")
        con.print(table)
    extra = program.flops - graph.flops
    con.print(f"FLOPs: program {program.flops / 1e9:.3f} G vs model {graph.flops / 1e9:.3f} G "
              f"(+{extra / 1e6:.1f} M halo/group recomputation, {100 * extra / max(graph.flops, 1):.2f}%) · "
              f"{len(program.transfers)} transfers, {program.bytes_transferred / 1e6:.3f} MB moved")
    return 0


def cmd_check(args) -> int:
    from edgeslice.execute.check import check_plan
    from edgeslice.plan.plan import Plan

    plan = Plan.load(args.plan)
    res = check_plan(plan, model=args.model, weights=args.weights, seed=args.seed)
    if args.json:
        print(json.dumps(res))
    else:
        verdict = "OK" if res["ok"] else "MISMATCH"
        print(f"{verdict}: rel_err {res['rel_err']:.2e} (max abs {res['max_abs_err']:.2e}); FLOPs program "
              f"{res['flops_program']:,} vs model {res['flops_model']:,}; {res['bytes_transferred']:,} bytes transferred")
    return 0 if res["ok"] else 1


# ---- parser --------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="edgeslice", description="Partition CNN inference over heterogeneous edge devices.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_models)

    p = sub.add_parser("planners", help="list the planners")
    p.set_defaults(fn=cmd_planners)

    def model_args(p, required=True):
        p.add_argument("--model", required=required, help="zoo name, path/to/file.py:factory or package.module:factory")
        p.add_argument("--input", type=_shape, default=None, help="input shape CxHxW (default: the model's)")
        p.add_argument("--batch", type=_positive, default=1)
        p.add_argument("--weights", default=None, help="state_dict file to load (default: random weights)")

    p = sub.add_parser("layers", help="list a model's layers (the names plans refer to)")
    model_args(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_layers)

    p = sub.add_parser("plan", help="make a plan and write it to a JSON file")
    model_args(p)
    p.add_argument("--cluster", default=None, help="cluster YAML file or bundled name (pi4x4, iot-edge, hetero3, mec, local4, testbed4, testbed-hetero, testbed-fl)")
    p.add_argument("--devices", type=_positive, default=4, help="without --cluster: N identical devices d0..dN-1")
    p.add_argument("--planner", default="random", help="see `edgeslice planners`")
    p.add_argument("--seed", type=int, default=None, help="random, fl-psomw: seed (default 0)")
    p.add_argument("--swarm", type=_positive, default=None, help="fl-psomw: particles (default 24)")
    p.add_argument("--iterations", type=int, default=None, help="fl-psomw: swarm iterations (default 40)")
    p.add_argument("--polish", type=int, default=None, help="fl-psomw, fl-dpls: local-search evaluations (default 1200)")
    p.add_argument("--limit", type=float, default=None, help="fl-bf: most path assignments to try (default 2e6)")
    p.add_argument("--max-block", type=_positive, default=None, help="fl-*: most units in one fused block (default 12)")
    p.add_argument("--n", type=_positive, default=None, help="ftp: grid rows")
    p.add_argument("--m", type=_positive, default=None, help="ftp: grid columns")
    p.add_argument("--layers", type=_positive, default=None, help="ftp: number of fused layers")
    p.add_argument("--objective", choices=("latency", "throughput"), default=None, help="layerwise: what to minimise")
    p.add_argument("-o", "--output", default="plan.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_plan)

    p = sub.add_parser("simulate", help="predict a plan's timeline on a cluster")
    p.add_argument("plan")
    p.add_argument("--cluster", default=None, help="default: the plan's cluster, else identical devices")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--requests", type=_positive, default=1, help="number of requests")
    p.add_argument("--interval", type=float, default=0.0, help="seconds between request arrivals")
    p.add_argument("--gantt", default=None, help="draw the timeline to a .png or .html file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_simulate)

    p = sub.add_parser("compare", help="every planner side by side on one model and cluster")
    model_args(p)
    p.add_argument("--cluster", default=None)
    p.add_argument("--devices", type=_positive, default=4)
    p.add_argument("--planners", default=None, help="comma-separated names (default: all but bruteforce and random)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_compare)

    p = sub.add_parser("profile", help="measure every layer on this machine at several tile sizes")
    model_args(p)
    p.add_argument("--repeat", type=_positive, default=3)
    p.add_argument("--threads", type=_positive, default=1)
    p.add_argument("--min-time", type=float, default=0.0,
                   help="seconds of back-to-back runs per measurement, averaged (use under a CPU quota, e.g. 0.05)")
    p.add_argument("-o", "--output", default="profile.json")
    p.set_defaults(fn=cmd_profile)

    p = sub.add_parser("run", help="run a plan for real: one process per device, tensors over torch.distributed (gloo)")
    p.add_argument("plan")
    p.add_argument("--cluster", default=None, help="default: the plan's cluster, else identical devices")
    p.add_argument("--requests", type=_positive, default=1, help="number of inputs to run")
    p.add_argument("--inflight", type=_positive, default=1, help="requests in flight at once (pipelining)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a worker waits for data before giving up")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--port", type=int, default=None, help="rendezvous port (default: a free one)")
    p.add_argument("--threads", type=_positive, default=None, help="torch threads per worker (default: the device's cpus, else 1)")
    p.add_argument("--out", default=None, help="folder for worker logs, reports and outputs (default: a temporary one)")
    p.add_argument("--gantt", default=None, help="draw measured and predicted timelines to .png or .html")
    p.add_argument("--testbed", action="store_true",
                   help="run inside the emulated testbed (namespaces, shaped links, CPU quotas); see `edgeslice testbed`")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("testbed", help="emulate a cluster on this machine: up, down, status, profile (needs root)")
    p.add_argument("action", choices=("up", "down", "status", "profile"))
    p.add_argument("cluster", nargs="?", default=None, help="cluster YAML file or bundled name (up, profile)")
    model_args(p, required=False)
    p.add_argument("--pin", default="auto", help="host CPUs for the devices: auto (one CPU when the quotas fit), none, or 0,1")
    p.add_argument("--min-time", type=float, default=0.05, help="profile: seconds of back-to-back runs per measurement")
    p.add_argument("--force", action="store_true", help="profile: measure again even if a calibration exists")
    p.add_argument("-o", "--output", default=None, help="profile: folder for the calibrated cluster and profiles")
    p.add_argument("--json", action="store_true", help="status: as JSON")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_testbed)

    p = sub.add_parser("worker", help="one device's worker (what torchrun starts); see `python -m edgeslice.runtime.worker -h`",
                       add_help=False)
    p.add_argument("worker_args", nargs=argparse.REMAINDER)
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser("bench", help="built-in benchmarks")
    p.add_argument("what", choices=("simulate", "testbed", "fl"))
    p.add_argument("--quick", action="store_true", help="fl: a small subset (under two minutes)")
    p.add_argument("--models", default=None, help="fl: comma-separated zoo models (default: vgg16,resnet50,yolov2,alexnet,mobilenet_v2)")
    p.add_argument("--bf-limit", type=float, default=4e6, help="fl: run fl-bf where it tries at most this many path assignments")
    p.add_argument("--seconds", type=float, default=3.0)
    model_args(p, required=False)
    p.add_argument("--cluster", default=None, help="testbed: the cluster to emulate")
    p.add_argument("--planners", default=None, help="testbed: comma-separated planners (default: every classic one)")
    p.add_argument("--repeat", type=_positive, default=5, help="testbed: runs per plan (the median is reported)")
    p.add_argument("--calibration", default=None, help="testbed: folder of the calibration to use or write")
    p.add_argument("--force", action="store_true", help="testbed: calibrate again even if a calibration exists")
    p.add_argument("--chart", default=None, help="testbed: chart file (.png)")
    p.add_argument("--out", default=None, help="testbed: folder for plans, worker logs and result.json")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_bench)

    p = sub.add_parser("show", help="describe a plan: layers, regions, devices, FLOPs and bytes per part")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--program", action="store_true", help="print the lowered Program in its text form")
    p.set_defaults(fn=cmd_show)

    p = sub.add_parser("check", help="run the plan in-process and compare with the whole model")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--weights", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=cmd_check)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "input", None) is None and hasattr(args, "input") and getattr(args, "model", None):
        from edgeslice.models import model_info

        try:
            args.input = model_info(args.model).default_input
        except EdgesliceError as exc:
            print(f"edgeslice: error: {exc}", file=sys.stderr)
            return 2
    try:
        return args.fn(args)
    except EdgesliceError as exc:
        print(f"edgeslice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeslice: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. `| head`) went away: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a file we were asked to write or read: one line, not a traceback
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"edgeslice: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
