"""``edgeslice bench decnn``: DeCNN against the baselines its paper and users know, predicted and measured.

For each model family (ResNet-50: ``resnet50_decoupled`` x1.5 and ``resnet50``; VGG-16:
``vgg16_bn_decoupled`` x1.75 and ``vgg16``) and each cluster (``testbed4``: four 0.25-CPU devices,
50 Mbit/s per pair; ``pi4x4``: four boards sharing one 50 Mbit/s Wi-Fi cell), every row pairs a model
with a planner: ``decnn`` (on the original model: naive channel splitting), ``modnn`` (1-D row strips),
``ftp-2x2`` (a 2x2 grid, ``ftp --n 2 --m 2``), ``aofl`` and ``local`` (the whole model on d0).  Each
row reports the predicted latency of one request, the throughput of a stream of requests
(``4 * repeat`` requests, 4 in flight: the simulator's ``window``) with inter-sample overlap
(:mod:`edgeslice.runtime.serve`) and in order, the bytes moved per request, every device's peak
memory (predicted resident bytes: its weights share plus its largest working set) and whether the
plan's output equals the whole model's (in-process, or on the workers with ``--testbed``).

With ``--testbed`` (root; ``testbed4`` only, the Wi-Fi cell is not emulated) each model is calibrated
inside the testbed (:func:`edgeslice.testbed.calibrate.calibrate`), planned and predicted on the
calibrated cluster, then run for real: ``repeat`` requests one at a time (median latency), then
``4 * repeat`` with 4 in flight and overlap (throughput; in order too for ``decnn`` and ``local``);
peak memory is each worker's measured high-water mark (one request at a time;
``peak_mem_inflight_mb`` with 4 in flight), and the summary's memory
fraction is also given net of a baseline worker that holds no weights
(:func:`edgeslice.bench.memory.baseline_worker`: the interpreter, torch, the traced model on the meta
device and a gloo group, ~400 MB).

The summary compares decoupled ResNet-50 + ``decnn`` with the same model whole on d0 (measured where
measured, else predicted) on the first cluster.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

FAMILIES = {"resnet50": ("resnet50_decoupled", "resnet50"), "vgg16": ("vgg16_bn_decoupled", "vgg16")}
PLANNERS = (("decnn", "decnn", {}), ("modnn", "modnn", {}), ("ftp-2x2", "ftp", {"n": 2, "m": 2}),
            ("aofl", "aofl", {}), ("local", "local", {}))
CLUSTERS = ("testbed4", "pi4x4")
INFLIGHT = 4


def _predict(plan, graph, cluster, cost, stream: int) -> dict:
    """One request's latency; throughput of ``stream`` requests, 4 in flight, in order and with overlap."""
    from edgeslice.program.lower import lower
    from edgeslice.program.memory import resident
    from edgeslice.sim.simulate import simulate

    prog = lower(plan, graph)
    one = simulate(prog, graph, cluster, cost, events=False)
    thr = {}
    for overlap in (False, True):
        many = simulate(prog, graph, cluster, cost, arrivals=(0.0,) * stream, overlap=overlap, window=INFLIGHT)
        thr[overlap] = stream / many.makespan_s
    return {"predicted_latency_s": one.latency_s, "predicted_throughput_rps": thr[True],
            "predicted_throughput_in_order_rps": thr[False], "mb_moved": sum(t.nbytes for t in prog.transfers) / 1e6,
            "predicted_peak_mem_mb": {d: m.total / 1e6 for d, m in resident(prog, graph).items()}}


def bench_decnn(*, families=("resnet50", "vgg16"), clusters=CLUSTERS, input_shape=(3, 224, 224), testbed: bool = False,
                repeat: int = 3, out: str | None = None, calibration_force: bool = False, progress=None) -> dict:
    """Run the benchmark; return ``{"rows": [...], "summary": {...}}`` (see module docstring)."""
    from edgeslice.cluster.load import load_cluster, resolve_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.errors import EdgesliceError
    from edgeslice.execute.check import check_plan
    from edgeslice.graph.trace import trace
    from edgeslice.planners import make_plan

    say = progress or (lambda _m: None)
    work = Path(out) if out else Path("edgeslice-bench-decnn")
    (work / "plans").mkdir(parents=True, exist_ok=True)
    tb = None
    if testbed:
        from edgeslice.testbed.net import up

        tb, _ = up(resolve_cluster(clusters[0]), progress=lambda m: say("  " + m))
    rows: list[dict] = []
    for cname in clusters:
        base_cluster = resolve_cluster(cname)
        measure = tb is not None and cname == clusters[0]
        for fam in families:
            for spec in FAMILIES[fam]:
                cluster = base_cluster
                if measure:
                    from edgeslice.testbed.calibrate import calibrate

                    cluster = load_cluster(calibrate(tb, base_cluster, spec, input_shape, 1, force=calibration_force,
                                                     progress=lambda m: say("  " + m)))
                cost = ClusterCost(cluster)
                graph, gm = trace(spec, input_shape)
                for label, planner, opts in PLANNERS:
                    row = {"model": spec, "planner": label, "cluster": cname, "measured_latency_s": None}
                    t0 = time.perf_counter()
                    try:
                        plan = make_plan(planner, graph, cluster, cost, **opts)
                    except EdgesliceError as exc:
                        say(f"{cname} {spec} {label}: cannot plan: {exc}")
                        rows.append({**row, "error": str(exc), "verified": False})
                        continue
                    row["planning_s"] = time.perf_counter() - t0
                    row.update(_predict(plan, graph, cluster, cost, INFLIGHT * repeat))
                    row["throughput_rps"] = row["predicted_throughput_rps"]
                    row["throughput_in_order_rps"] = row["predicted_throughput_in_order_rps"]
                    row["peak_mem_mb"] = row["predicted_peak_mem_mb"]
                    path = work / "plans" / f"{cname}-{spec}-{label}.json"
                    plan.save(path)
                    if measure:
                        row.update(_measure(path, tb, repeat, work / "runs" / f"{spec}-{label}", label in ("decnn", "local")))
                    else:
                        row["verified"] = bool(check_plan(plan, graph=graph, gm=gm)["ok"])
                    rows.append(row)
                    say(_line(row))
    summary = _summary(rows, clusters[0], work if tb is not None else None)
    return {"rows": rows, "summary": summary,
            "meta": {"date": time.strftime("%Y-%m-%d %H:%M"), "input": list(input_shape), "inflight": INFLIGHT,
                     "testbed": tb is not None, "repeat": repeat, "clusters": list(clusters)}}


def _measure(path: Path, tb, repeat: int, outdir: Path, in_order: bool) -> dict:
    """Run a plan on the testbed: ``repeat`` requests one at a time, then ``4 * repeat`` with 4 in flight and
    overlap (and, with ``in_order``, without)."""
    from edgeslice.runtime.launch import run_plan

    one = run_plan(str(path), requests=repeat, testbed=tb, out=str(outdir / "one"), timeout=120)
    runs = [one]
    many = run_plan(str(path), requests=INFLIGHT * repeat, inflight=INFLIGHT, overlap=True, testbed=tb,
                    out=str(outdir / "overlap"), timeout=120)
    runs.append(many)
    got = {"throughput_rps": many["throughput_rps"], "throughput_in_order_rps": None}
    if in_order:
        seq = run_plan(str(path), requests=INFLIGHT * repeat, inflight=INFLIGHT, testbed=tb, out=str(outdir / "in-order"),
                       timeout=120)
        runs.append(seq)
        got["throughput_in_order_rps"] = seq["throughput_rps"]
    mib = 1024 * 1024 / 1e6  # workers report MiB
    return {**got, "measured_latency_s": statistics.median(one["latencies_s"]),
            # one request at a time, as the whole model on one device is compared; the streams hold more in flight
            "peak_mem_mb": {d: one["peak_mem_mb"][d] * mib for d in one["peak_mem_mb"]},
            "peak_mem_inflight_mb": {d: max(r["peak_mem_mb"][d] for r in runs[1:]) * mib for d in one["peak_mem_mb"]},
            "weights_mb": dict(one["weights_mb"]),
            "measured_mb_moved": sum(one["bytes_sent"].values()) / repeat / 1e6,
            "verified": all(r["ok"] for r in runs), "rel_err": max(r["rel_err"] for r in runs),
            "error_pct": 100.0 * (statistics.median(one["latencies_s"]) - one["predicted_latency_s"])
            / one["predicted_latency_s"]}


def _line(r: dict) -> str:
    meas = f", measured {r['measured_latency_s'] * 1e3:.0f} ms" if r.get("measured_latency_s") else ""
    return (f"{r['cluster']} {r['model']} {r['planner']}: predicted {r['predicted_latency_s'] * 1e3:.0f} ms{meas}, "
            f"{r['throughput_rps']:.2f} req/s with {INFLIGHT} in flight and overlap, {r['mb_moved']:.2f} MB moved, "
            f"peak {max(r['peak_mem_mb'].values()):.0f} MB, {'verified' if r['verified'] else 'NOT VERIFIED'}")


def _summary(rows: list[dict], cluster: str, measured_dir: Path | None) -> dict:
    def find(model, planner):
        return next((r for r in rows if r["cluster"] == cluster and r["model"] == model and r["planner"] == planner
                     and "error" not in r), None)

    dec, whole = find("resnet50_decoupled", "decnn"), find("resnet50_decoupled", "local")
    if dec is None or whole is None:
        return {"speedup_vs_whole": None, "throughput_speedup_vs_whole": None, "mem_fraction_of_whole": None}

    def lat(r):
        return r["measured_latency_s"] if r["measured_latency_s"] is not None else r["predicted_latency_s"]

    whole_peak = max(whole["peak_mem_mb"].values())
    out = {"speedup_vs_whole": lat(whole) / lat(dec),
           "throughput_speedup_vs_whole": dec["throughput_rps"] / whole["throughput_rps"],
           "throughput_speedup_vs_whole_in_order": (dec["throughput_in_order_rps"] / whole["throughput_in_order_rps"]
                                                    if dec["throughput_in_order_rps"] and whole["throughput_in_order_rps"]
                                                    else None),
           "mem_fraction_of_whole": max(dec["peak_mem_mb"].values()) / whole_peak,
           "predicted_speedup_vs_whole": whole["predicted_latency_s"] / dec["predicted_latency_s"],
           "measured": dec["measured_latency_s"] is not None}
    if measured_dir is not None:
        from edgeslice.bench.memory import baseline_worker

        base = baseline_worker(str(measured_dir / "plans" / f"{cluster}-resnet50_decoupled-decnn.json"))
        b = base["peak_mb"] * 1024 * 1024 / 1e6
        out["baseline_worker_mb"] = b
        out["mem_fraction_of_whole_net_of_baseline"] = (max(dec["peak_mem_mb"].values()) - b) / (whole_peak - b)
    rivals = [r for r in rows if r["cluster"] == cluster and "error" not in r and r["planner"] != "local"
              and (r["model"], r["planner"]) != ("resnet50_decoupled", "decnn") and r["model"].startswith("resnet50")]
    out["faster_than"] = sorted(f"{r['model']}+{r['planner']}" for r in rivals if lat(dec) < lat(r))
    out["not_faster_than"] = sorted(f"{r['model']}+{r['planner']}" for r in rivals if lat(dec) >= lat(r))
    return out


def chart(result: dict, path: str) -> None:
    """Latency bars per (model, planner) for each cluster, measured beside predicted where measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clusters = result["meta"]["clusters"]
    fig, axes = plt.subplots(len(clusters), 1, figsize=(12, 4 * len(clusters)), squeeze=False)
    for ax, cname in zip(axes[:, 0], clusters):
        rows = [r for r in result["rows"] if r["cluster"] == cname and "error" not in r]
        x = range(len(rows))
        pred = [r["predicted_latency_s"] * 1e3 for r in rows]
        ax.bar([i - 0.2 for i in x], pred, 0.4, label="predicted", color="#9ecae1")
        meas = [(r["measured_latency_s"] or 0) * 1e3 for r in rows]
        if any(meas):
            ax.bar([i + 0.2 for i in x], meas, 0.4, label="measured (median)", color="#3182bd")
        for i, r in enumerate(rows):
            ax.text(i, max(pred[i], meas[i]) * 1.02, f"{r['throughput_rps']:.1f}/s", ha="center", fontsize=7)
        ax.set_xticks(list(x))
        ax.set_xticklabels([f"{r['model'].replace('_decoupled', '*')}\n{r['planner']}" for r in rows], fontsize=7)
        ax.set_ylabel("latency of one request (ms)")
        ax.set_title(f"{cname}: latency per model and planner (* = decoupled; throughput with {INFLIGHT} in flight "
                     "above the bars)", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
