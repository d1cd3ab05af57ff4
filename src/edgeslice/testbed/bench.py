"""``edgeslice bench testbed``: plan with the calibrated model, run for real on the testbed, compare.

For each planner: plan on the *calibrated* cluster (what the devices and links
measured inside the testbed, :mod:`edgeslice.testbed.calibrate`), predict the
latency with the simulator, run the plan on the testbed ``repeat`` times (one
request after another) and take the median; the speedup is over ``local`` —
the source device alone, run the same way on the same testbed.  Every run's
output is checked against the whole model.

The result is keyed by planner (``predicted_latency_s``,
``measured_latency_s``, ``speedup_vs_local``, ``error_pct``, bytes moved,
planning time); the plans, worker logs and a full JSON with the testbed's
description are kept in the output folder, and a chart compares predicted and
measured latency per planner.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from edgeslice.errors import EdgesliceError

DEFAULT_PLANNERS = ("local", "edge", "neurosurgeon", "layerwise", "dads", "ftp", "modnn", "aofl", "nfl", "fl-psomw")


def bench_testbed(cluster_ref: str, spec: str, input_shape, batch: int = 1, *, planners=None, repeat: int = 5,
                  tag: str = "0", calibration: str | None = None, force: bool = False, out: str | None = None,
                  timeout: float = 120.0, progress=None) -> dict:
    """Run the benchmark; return ``{"planners": {name: {...}}, "meta": {...}}`` (see module docstring)."""
    from edgeslice.cluster.load import load_cluster, resolve_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan, planners as registered
    from edgeslice.program.lower import lower
    from edgeslice.runtime.launch import run_plan
    from edgeslice.sim.simulate import simulate
    from edgeslice.testbed.calibrate import calibrate, default_dir
    from edgeslice.testbed.net import up

    say = progress or (lambda _m: None)
    names = list(planners or [p for p in DEFAULT_PLANNERS if p in registered()])
    unknown = [p for p in names if p not in registered()]
    if unknown:
        raise EdgesliceError(f"unknown planner {unknown[0]!r}; available: {', '.join(registered())}")
    if "local" in names:
        names.remove("local")
    names.insert(0, "local")  # the baseline every speedup is measured against
    cluster = resolve_cluster(cluster_ref)
    tb, made = up(cluster, tag=tag, source_file=str(cluster_ref), progress=lambda m: say("  " + m))
    if made:
        say(f"brought up the testbed for {cluster.name} (`edgeslice testbed down` removes it)")
    for note in tb.notes:
        say(f"note: {note}")
    calib_path = calibrate(tb, cluster, spec, input_shape, batch, outdir=calibration, force=force, progress=say)
    ccl = load_cluster(calib_path)
    cost = ClusterCost(ccl)
    graph, _ = trace(spec, input_shape, batch)
    outdir = Path(out) if out else default_dir(cluster, spec, input_shape, batch) / "bench"
    (outdir / "plans").mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    for name in names:
        t0 = time.perf_counter()
        try:
            plan = make_plan(name, graph, ccl, cost)
        except EdgesliceError as exc:
            say(f"{name}: cannot plan: {exc}")
            rows[name] = {"error": str(exc)}
            continue
        planning_s = time.perf_counter() - t0
        path = outdir / "plans" / f"{name}.json"
        path.write_text(plan.to_json())  # the plan carries the calibrated cluster: the run predicts with it too
        timeline = simulate(lower(plan, graph), graph, plan.cluster, cost)
        say(f"{name}: predicted {timeline.latency_s * 1e3:.0f} ms; running {repeat}x on the testbed")
        res = run_plan(str(path), requests=repeat, testbed=tb, out=str(outdir / "runs" / name), timeout=timeout)
        res.pop("_timelines", None)
        lat = res["latencies_s"]
        measured = statistics.median(lat)
        rows[name] = {
            "predicted_latency_s": timeline.latency_s,
            "measured_latency_s": measured,
            "measured_latencies_s": lat,
            "error_pct": 100.0 * (measured - timeline.latency_s) / timeline.latency_s,
            "predicted_bytes": timeline.bytes_total,
            "measured_bytes": int(sum(res["bytes_sent"].values())) // repeat,  # per request
            "segments": len(plan.segments),
            "devices_used": len({p.device for s in plan.segments for p in s.parts}),
            "planning_s": planning_s,
            "output_ok": res["ok"],
            "rel_err": res["rel_err"],
        }
        say(f"{name}: measured {measured * 1e3:.0f} ms (median of {repeat}; "
            f"{rows[name]['error_pct']:+.1f}% vs predicted), output {'verified' if res['ok'] else 'MISMATCH'}")
    base = rows.get("local", {}).get("measured_latency_s")
    for r in rows.values():
        if "measured_latency_s" in r:
            r["speedup_vs_local"] = base / r["measured_latency_s"] if base else None
            r["predicted_speedup_vs_local"] = (rows["local"]["predicted_latency_s"] / r["predicted_latency_s"]
                                               if base else None)
    ran = {k: v for k, v in rows.items() if "measured_latency_s" in v}
    best = min(ran, key=lambda k: ran[k]["measured_latency_s"]) if ran else None
    meta = {
        "model": spec, "input": list(input_shape), "batch": batch, "cluster": cluster.name, "repeat": repeat,
        "calibrated_cluster": str(calib_path), "testbed": tb.to_dict(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "best": best, "best_speedup_vs_local": ran[best]["speedup_vs_local"] if best else None,
        "max_abs_error_pct": max((abs(v["error_pct"]) for v in ran.values()), default=None),
        "all_outputs_ok": all(v["output_ok"] for v in ran.values()),
    }
    result = {"planners": rows, "meta": meta}
    (outdir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def chart(result: dict, path: str) -> None:
    """Bars of predicted and measured latency per planner, measured speedup over local written above."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {k: v for k, v in result["planners"].items() if "measured_latency_s" in v}
    names = list(rows)
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 4))
    pred = [rows[n]["predicted_latency_s"] * 1e3 for n in names]
    meas = [rows[n]["measured_latency_s"] * 1e3 for n in names]
    ax.bar([i - 0.2 for i in x], pred, 0.4, label="predicted (calibrated)", color="#9ecae1")
    ax.bar([i + 0.2 for i in x], meas, 0.4, label="measured (median)", color="#3182bd")
    for i, n in enumerate(names):
        s = rows[n].get("speedup_vs_local")
        if s:
            ax.text(i, max(pred[i], meas[i]) * 1.02, f"{s:.2f}×", ha="center", fontsize=8)
    ax.set_ylim(0, max(pred + meas) * 1.12)
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("latency (ms)")
    m = result["meta"]
    ax.set_title(f"{m['model']} on the {m['cluster']} testbed: predicted vs measured\n(speedup over local above the bars)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
