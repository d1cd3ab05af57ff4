"""``edgeslice bench ofpcnn``: HVPM with the load-aware FCPM against load-blind plans, predicted and measured.

OfpCNN's claim is that a partition that knows each device's current CPU load
beats one that does not.  So every scenario — a cluster with a background load
on one or two devices (0, 40, 80% by default) — compares:

- ``hvpm`` planned with **FCPM at the devices' current loads** (cost ``fcpm``);
- ``hvpm`` and every other planner (``aofl``, ``ftp``, ``modnn``,
  ``neurosurgeon``, ``layerwise``, ``local``) planned **load-blind**: the same
  FCPM, told every device is idle (what a planner with idle profiles sees).

Every plan's ``predicted_latency_s`` is the simulator's prediction with FCPM at
the *actual* loads (the best model we have of what will happen), so a load-blind
plan is judged by what it will really cost, not by what its planner believed
(that is ``blind_predicted_latency_s``).  The devices' FCPM predictors come from
their load profiles (``testbed profile C --models ... --loads ...``); a cluster
without load profiles of its own (``testbed-hetero``) borrows those of the
profiled testbed, scaled by CPU quota (``scale = cpus_profiled / cpus``) — an
approximation the row says it used (``profile: borrowed``).

With ``--testbed`` every link of the first cluster is first probed with gloo inside the testbed (as a
calibration does) and the scenarios of that cluster at ``measured_levels``
(default 0 and 60% on one device) are also run for real: a load generator
inside the loaded device (:mod:`edgeslice.testbed.load`), its load *measured* from
its cgroup and given to FCPM, then each plan ``repeat`` times (median), every
output checked against the whole model.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

PLANNERS = ("hvpm", "aofl", "ftp", "modnn", "neurosurgeon", "layerwise", "local")
CLUSTERS = ("testbed4", "testbed-hetero")
LEVELS = (0.0, 40.0, 80.0)
PROFILES = ".edgeslice/testbed/testbed4-loads"


def fcpm_cluster(cluster, profiles: dict[str, Path], donor_cpus: float | None, donors: dict[str, Path]):
    """``cluster`` with each device predicted by FCPM: its own load profile, else a donor's scaled by CPU quota."""
    from edgeslice.cluster.model import Profile

    read = {d: Profile.read(p) for d, p in profiles.items()}
    donors = [Profile.read(p) for p in donors.values()]
    devices, borrowed = [], []
    for i, d in enumerate(cluster.devices):
        if d.name in read:
            devices.append(replace(d, profile=str(profiles[d.name]), profile_data=read[d.name], scale=1.0))
            continue
        prof = donors[i % len(donors)]
        scale = (donor_cpus / d.cpus) if (donor_cpus and d.cpus) else 1.0
        devices.append(replace(d, profile="borrowed", profile_data=prof, scale=scale))
        borrowed.append(d.name)
    return replace(cluster, devices=tuple(devices)), borrowed


def scenarios(cluster, levels=LEVELS) -> list[dict[str, float]]:
    """Background loads to try: none, then each level on the second device, then on the second and third."""
    names = list(cluster.names)
    out = [{}]
    one = names[1] if len(names) > 1 else names[0]
    for lv in levels:
        if lv > 0:
            out.append({one: lv})
    if len(names) > 2:
        for lv in levels:
            if lv > 0:
                out.append({names[1]: lv, names[2]: lv})
    return out


def _plans(graph, truth, blind, planners, say):
    from edgeslice.cost import ClusterCost
    from edgeslice.errors import EdgesliceError
    from edgeslice.planners import make_plan

    out = []
    jobs = [("hvpm", "fcpm", truth)] + [(p, "load-blind", blind) for p in planners]
    for name, kind, cl in jobs:
        t0 = time.perf_counter()
        try:
            plan = make_plan(name, graph, cl, ClusterCost(cl))
        except EdgesliceError as exc:
            say(f"  {name} ({kind}): cannot plan: {exc}")
            continue
        out.append((name, kind, plan, time.perf_counter() - t0))
    return out


def bench_ofpcnn(*, model: str = "vgg16", input_shape=(3, 160, 160), clusters=CLUSTERS, levels=LEVELS,
                 profiles: str = PROFILES, planners=PLANNERS, testbed: bool = False, measured_levels=(0.0, 60.0),
                 repeat: int = 3, out: str | None = None, progress=None) -> dict:
    """Run the benchmark; return ``{"rows": [...], "summary": [...], "meta": {...}}`` (see the module docstring)."""
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cost import ClusterCost
    from edgeslice.graph.trace import trace
    from edgeslice.program.lower import lower
    from edgeslice.sim.simulate import simulate

    say = progress or (lambda _m: None)
    pdir = Path(profiles)
    files = {p.stem.removeprefix("loadprofile-"): p for p in sorted(pdir.glob("loadprofile-*.json"))}
    if not files:
        from edgeslice.errors import EdgesliceError

        raise EdgesliceError(f"no load profiles in {pdir}: make them with `edgeslice testbed profile testbed4 --models "
                             "... --loads 0,20,40,60,80 -o DIR` and `edgeslice predictor fit --profiles DIR`")
    donor = json.loads(next(iter(files.values())).read_text()).get("cpus")
    graph, _ = trace(model, input_shape, 1)
    outdir = Path(out) if out else Path(".edgeslice") / "bench" / "ofpcnn"
    (outdir / "plans").mkdir(parents=True, exist_ok=True)
    rows, summary = [], []
    for ci, cref in enumerate(clusters):
        base = resolve_cluster(cref)
        own = {d: f for d, f in files.items() if d in base.names} if ci == 0 else {}
        fc, borrowed = fcpm_cluster(base, own, donor, files)
        if testbed and ci == 0:
            fc = _probed_links(fc, cref, outdir, say)
        blind = fc.with_loads({d: 0.0 for d in fc.names})
        tb_levels = measured_levels if (testbed and ci == 0) else ()
        todo = [(s, False) for s in scenarios(base, levels)]
        todo += [({base.names[1]: lv} if lv > 0 else {}, True) for lv in tb_levels]
        for loads, measure_it in todo:
            tb, measured_load = None, {}
            if measure_it:
                tb, measured_load = _load_testbed(base, cref, loads, say)
            actual = {d: (measured_load.get(d, v) if measure_it else v) / 100.0 for d, v in loads.items()}
            truth = fc.with_loads(actual)
            cost = ClusterCost(truth)
            say(f"{base.name} {model}: load {_fmt(loads)}" + (" (on the testbed, measured "
                                                              f"{_fmt(measured_load)})" if measure_it else ""))
            scen = []
            try:
                for name, kind, plan, planning_s in _plans(graph, truth, blind, planners, say):
                    prog = lower(plan, graph)
                    pred = simulate(prog, graph, truth, cost, events=False).latency_s
                    own_pred = simulate(prog, graph, plan.cluster, ClusterCost(plan.cluster), events=False).latency_s
                    row = {"cluster": base.name, "model": model, "loads": dict(loads), "loads_measured": measured_load or None,
                           "planner": name, "cost": kind, "predicted_latency_s": pred,
                           "blind_predicted_latency_s": own_pred if kind == "load-blind" else None,
                           "measured_latency_s": None, "verified": None, "planning_s": planning_s,
                           "testbed": measure_it, "profile": "borrowed" if borrowed else "own"}
                    if measure_it:
                        # the plan file carries the cluster it was planned for; the run is judged against FCPM at the
                        # measured load, which is the prediction above
                        path = outdir / "plans" / f"{base.name}-{_fmt(loads, '_')}-{name}-{kind}.json"
                        path.write_text(plan.to_json())
                        row.update(_run(path, tb, repeat, outdir / "runs" / path.stem))
                        row["error_pct"] = 100.0 * (row["measured_latency_s"] - pred) / pred
                    say("  " + _line(row))
                    rows.append(row)
                    scen.append(row)
            finally:
                if tb is not None:
                    from edgeslice.testbed import load

                    load.stop_all(tb)
            summary.append(_summary(scen, base.name, loads, measure_it))
    result = {"rows": rows, "summary": summary,
              "meta": {"model": model, "input": list(input_shape), "clusters": list(clusters), "levels": list(levels),
                       "profiles": str(pdir), "repeat": repeat, "date": time.strftime("%Y-%m-%d %H:%M")}}
    (outdir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _fmt(loads: dict, sep: str = ", ") -> str:
    return sep.join(f"{d}={v:g}%" for d, v in loads.items()) if loads else "none"


def _line(r: dict) -> str:
    s = f"{r['planner']:13s} {r['cost']:10s} predicted {r['predicted_latency_s'] * 1e3:8.1f} ms"
    if r.get("blind_predicted_latency_s") is not None:
        s += f" (its planner believed {r['blind_predicted_latency_s'] * 1e3:.1f})"
    if r.get("measured_latency_s") is not None:
        s += f", measured {r['measured_latency_s'] * 1e3:.1f} ms ({r['error_pct']:+.1f}%), " + \
             ("verified" if r["verified"] else "OUTPUT MISMATCH")
    return s


def _summary(scen: list[dict], cluster: str, loads: dict, measured: bool) -> dict:
    key = "measured_latency_s" if measured else "predicted_latency_s"
    hv = next((r for r in scen if r["planner"] == "hvpm" and r["cost"] == "fcpm"), None)
    others = [r for r in scen if r["planner"] != "hvpm"]
    blind_hv = next((r for r in scen if r["planner"] == "hvpm" and r["cost"] == "load-blind"), None)
    best = min(others, key=lambda r: r[key]) if others else None
    out = {"cluster": cluster, "loads": dict(loads), "testbed": measured, "best_other": best["planner"] if best else None,
           "hvpm_fcpm_latency_s": hv[key] if hv else None, "best_other_latency_s": best[key] if best else None,
           "speedup_vs_best_other": (best[key] / hv[key]) if (hv and best) else None,
           "speedup_vs_hvpm_blind": (blind_hv[key] / hv[key]) if (hv and blind_hv) else None}
    if measured and hv:
        out["hvpm_error_pct"] = hv.get("error_pct")
        out["all_verified"] = all(r["verified"] for r in scen)
    return out


def _load_testbed(cluster, cref, loads: dict, say):
    """The testbed for ``cluster`` with ``loads`` (percent) running; the loads measured from the cgroups."""
    from edgeslice.testbed import load
    from edgeslice.testbed.net import up

    tb, _ = up(cluster, source_file=str(cref), progress=lambda m: say("  " + m))
    load.stop_all(tb)
    for d, v in loads.items():
        load.set_load(tb, d, v)
    if loads:
        time.sleep(0.5)
    measured = load.measure(tb, list(loads), window_s=2.0) if loads else {}
    return tb, {d: v for d, v in measured.items() if v is not None}


def _probed_links(cluster, cref, outdir: Path, say):
    """``cluster`` with every link as gloo measured it inside the testbed (rate and per-message cost), as a
    calibration does: the plans and predictions of the measured scenarios use what the links really do."""
    from edgeslice.cluster.model import Link
    from edgeslice.testbed.calibrate import probe_links
    from edgeslice.testbed.net import up

    tb, _ = up(cluster, source_file=str(cref), progress=lambda m: say("  " + m))
    say("probing every link with gloo")
    pairs = probe_links(tb, cluster, outdir)
    by: dict[frozenset, list] = {}
    for p in pairs:
        by.setdefault(frozenset((p["src"], p["dst"])), []).append(p)
    overrides = tuple((k, Link(sum(p["rate_mbps"] for p in v) / len(v), sum(p["latency_ms"] for p in v) / len(v)))
                      for k, v in sorted(by.items(), key=lambda kv: sorted(kv[0])))
    say("  links: " + ", ".join(f"{'-'.join(sorted(k))} {l.bandwidth_mbps:.1f} Mbit/s {l.latency_ms:.2f} ms"
                                for k, l in overrides))
    return replace(cluster, overrides=overrides)


def _run(path: Path, tb, repeat: int, outdir: Path) -> dict:
    from edgeslice.runtime.launch import run_plan

    res = run_plan(str(path), requests=repeat, testbed=tb, out=str(outdir), timeout=180)
    lat = res["latencies_s"]
    return {"measured_latency_s": statistics.median(lat), "measured_latencies_s": lat, "verified": bool(res["ok"]),
            "rel_err": res["rel_err"]}


def chart(result: dict, path: str) -> None:
    """Predicted (and measured) latency per planner, one panel per scenario of the first cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = result["meta"]["clusters"][0]
    scen = [s for s in result["summary"] if s["cluster"].startswith(first.split("/")[-1].removesuffix(".yaml"))]
    scen = scen or result["summary"]
    fig, axes = plt.subplots(1, len(scen), figsize=(3.2 * len(scen), 3.6), sharey=False, squeeze=False)
    for ax, s in zip(axes[0], scen):
        rows = [r for r in result["rows"] if r["cluster"] == s["cluster"] and r["loads"] == s["loads"]
                and r["testbed"] == s["testbed"]]
        labels = [f"{r['planner']}\n({'fcpm' if r['cost'] == 'fcpm' else 'blind'})" for r in rows]
        x = range(len(rows))
        ax.bar([i - 0.2 for i in x], [r["predicted_latency_s"] * 1e3 for r in rows], 0.4, label="predicted")
        if s["testbed"]:
            ax.bar([i + 0.2 for i in x], [(r["measured_latency_s"] or 0) * 1e3 for r in rows], 0.4, label="measured")
        ax.set_xticks(list(x), labels, rotation=90, fontsize=7)
        ax.set_title(f"{s['cluster']} load {_fmt(s['loads'])}" + (" (testbed)" if s["testbed"] else ""), fontsize=8)
        ax.set_ylabel("latency (ms)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"OfpCNN: hvpm + FCPM vs load-blind plans, {result['meta']['model']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
