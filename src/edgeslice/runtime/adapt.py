"""``run --adapt``: a stream of requests whose plan follows the load, the devices' measured speed, and failures.

OfpCNN's *on demand*: the partition is redone when the figures it was made with
stop being true.  The stream runs in **epochs** of ``epoch`` requests; each epoch
is one run of the current plan on the workers (:func:`edgeslice.runtime.launch.run_plan`),
every output checked against the whole model.  Between two epochs — so plans
switch *between* requests and no request is lost — the launcher takes stock:

- the **load** each device carries, from its cgroup's accounting on the testbed
  (:func:`edgeslice.testbed.load.measure`: the workers are gone, so what it counts is
  the other work); a change of more than ``load_change`` points is a reason to re-plan;
- each device's **measured compute time** (the workers' per-task reports) against
  what the cost model predicts for it *at the measured load*; a device off by more
  than ``threshold`` gets its ``scale`` corrected by that ratio, and the whole
  request's drift beyond ``threshold`` is a reason to re-plan;
- a device that **died** or stopped answering mid-epoch
  (:class:`~edgeslice.errors.DeviceFailed`) is dropped from the cluster; that
  epoch's requests are run again on a plan without it.

Re-planning calls the plan's own planner (or ``planner``) on the updated cluster; a
different plan is a **switch**, reported with when, why, and the old and new
predicted latency (both at the new figures).  Each epoch's plan file is kept in the
output folder.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, replace

from edgeslice.errors import DeviceFailed, EdgesliceError


@dataclass(frozen=True)
class AdaptOptions:
    epoch: int = 3  # requests per run of one plan (the stream switches plans only between epochs)
    threshold: float = 0.25  # relative drift of measured from predicted that calls for re-planning
    load_change: float = 10.0  # points of a device's CPU load that call for re-planning
    window_s: float = 1.0  # how long the load is measured between epochs


def _busy(timeline, devices) -> dict[str, float]:
    out = {d: 0.0 for d in devices}
    for e in timeline.events:
        if e.kind == "compute" and e.resource in out:
            out[e.resource] += e.busy_end - e.start
    return out


def _predict(plan, graph, cluster):
    from edgeslice.cost import ClusterCost
    from edgeslice.program.lower import lower
    from edgeslice.sim.simulate import simulate

    return simulate(lower(plan, graph), graph, cluster, ClusterCost(cluster))


def _same(a, b) -> bool:
    return a.segments == b.segments


def adapt(plan_path: str, *, requests: int, planner: str | None = None, options: AdaptOptions = AdaptOptions(),
          testbed=None, seed: int = 0, out: str | None = None, timeout: float = 60.0, progress=None,
          between=None) -> dict:
    """Run ``requests`` requests, re-planning between epochs (see the module docstring); return the stream's record.

    ``between(epoch_index)`` is called after each epoch's stock-taking, before the next epoch (a test loads a
    device there: the next epoch runs the old plan under the new load, the one after it the re-made plan).
    """
    from edgeslice.cost import ClusterCost
    from edgeslice.execute.check import load_for_plan
    from edgeslice.plan.plan import Plan
    from edgeslice.planners import make_plan
    from edgeslice.runtime.launch import _run_folder, run_plan

    say = progress or (lambda _m: None)
    plan = Plan.load(plan_path)
    if plan.cluster is None:
        raise EdgesliceError("run --adapt re-plans for the plan's cluster: make the plan with --cluster (a plan file "
                             "that carries its cluster)")
    planner = planner or plan.planner
    graph, _ = load_for_plan(plan)
    outdir = _run_folder(out)
    cluster = plan.cluster
    known = {d.name: d.cpu_load * 100.0 for d in cluster.devices}
    epochs, switches = [], []
    done, k, t0 = 0, 0, time.monotonic()

    def replan(new_cluster, why: str) -> None:
        nonlocal plan, cluster
        old_pred = _predict(plan, graph, new_cluster).latency_s if set(plan.devices) <= set(new_cluster.names) else None
        cand = make_plan(planner, graph, new_cluster, ClusterCost(new_cluster), **dict(plan.options or {}))
        new_pred = _predict(cand, graph, new_cluster).latency_s
        cluster = new_cluster
        if _same(cand, plan) and old_pred is not None:
            say(f"re-planned ({why}): the same plan ({new_pred * 1e3:.0f} ms predicted)")
            plan = replace(plan, cluster=new_cluster)
            return
        switches.append({"at_request": done, "time_s": round(time.monotonic() - t0, 3), "why": why,
                         "old_predicted_latency_s": old_pred, "new_predicted_latency_s": new_pred,
                         "old_devices": list(plan.devices), "new_devices": list(cand.devices), "plan_index": len(switches) + 1})
        say(f"switch at request {done} ({why}): predicted "
            + (f"{old_pred * 1e3:.0f} ms -> " if old_pred is not None else "")
            + f"{new_pred * 1e3:.0f} ms on {', '.join(cand.devices)}")
        plan = cand

    while done < requests:
        n = min(options.epoch, requests - done)
        path = outdir / f"plan-{len(switches)}.json"
        path.write_text(plan.to_json())
        try:
            res = run_plan(str(path), requests=n, seed=seed + k, testbed=testbed, out=str(outdir / f"epoch-{k}"),
                           timeout=timeout)
        except DeviceFailed as exc:
            k += 1
            if exc.device in (cluster.source, cluster.sink):
                raise EdgesliceError(f"run --adapt: {exc}; the stream cannot go on without its source/sink "
                                     f"{exc.device!r}") from None
            say(f"device {exc.device} failed: {exc}")
            left = tuple(d for d in cluster.devices if d.name != exc.device)
            replan(replace(cluster, devices=left, overrides=tuple(
                (key, l) for key, l in cluster.overrides if exc.device not in key)), f"device {exc.device} failed")
            continue  # this epoch's requests run again on the plan without it
        measured, _ = res.pop("_timelines")
        epochs.append({"epoch": k, "requests": [done, done + n], "plan_index": len(switches), "devices": res["devices"],
                       "latencies_s": res["latencies_s"], "latency_s": res["latency_s"],
                       "predicted_latency_s": res["predicted_latency_s"], "verified": bool(res["ok"]),
                       "rel_err": res["rel_err"]})
        say(f"epoch {k}: requests {done}-{done + n - 1} on {', '.join(res['devices'])}: measured "
            f"{res['latency_s'] * 1e3:.0f} ms, predicted {res['predicted_latency_s'] * 1e3:.0f} ms, "
            + ("verified" if res["ok"] else "OUTPUT MISMATCH"))
        done += n
        k += 1
        if done >= requests:
            break
        reasons = []
        new = cluster
        if testbed is not None:
            from edgeslice.testbed import load

            loads = {d: v for d, v in load.measure(testbed, list(cluster.names), window_s=options.window_s).items()
                     if v is not None}
            moved = {d: v for d, v in loads.items() if abs(v - known.get(d, 0.0)) > options.load_change}
            if moved:
                reasons.append("load " + ", ".join(f"{d} {known.get(d, 0.0):.0f}% -> {v:.0f}%" for d, v in moved.items()))
            known.update(loads)
            new = new.with_loads({d: min(v, 95.0) / 100.0 for d, v in loads.items()})
        # each device's measured compute against the prediction at the figures now known
        pred = _predict(plan, graph, new)
        mb, pb = _busy(measured, plan.devices), _busy(pred, plan.devices)
        n_req = max(1, len(measured.latencies))
        fixed = {}
        for d in plan.devices:
            if pb[d] > 0 and mb[d] > 0:
                ratio = (mb[d] / n_req) / pb[d]
                if abs(ratio - 1.0) > options.threshold:
                    fixed[d] = ratio
        drift = statistics.median(measured.latencies) / pred.latency_s - 1.0
        if abs(drift) > options.threshold:
            reasons.append(f"measured {statistics.median(measured.latencies) * 1e3:.0f} ms vs predicted "
                           f"{pred.latency_s * 1e3:.0f} ms ({100 * drift:+.0f}%)")
        if fixed:  # a profiled or learned device: its times x ratio; an analytic one: its rate / ratio
            new = replace(new, devices=tuple(
                dv if dv.name not in fixed else replace(dv, scale=dv.scale * fixed[dv.name]) if dv.profile_data
                else replace(dv, gflops=dv.gflops / fixed[dv.name]) for dv in new.devices))
        if reasons:
            replan(new, "; ".join(reasons))
        else:
            cluster = new
        if between is not None:
            between(k - 1)
    result = {"requests": requests, "done": done, "epochs": epochs, "switches": switches,
              "all_verified": all(e["verified"] for e in epochs), "planner": planner, "out": str(outdir)}
    (outdir / "adapt.json").write_text(json.dumps(result, indent=1))
    return result
