"""``edgeslice run``: run a plan for real on worker processes."""

from __future__ import annotations

import argparse
import json
import sys

from edgeslice.cli._common import (
    _TAG,
    _check_outputs,
    _cluster_for_plan,
    _console,
    _positive,
    _positive_float,
)
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("run", help="run a plan for real: one process per device, tensors over torch.distributed (gloo)")
    p.add_argument("plan")
    p.add_argument("--cluster", default=None, help="default: the plan's cluster, else identical devices")
    p.add_argument("--requests", type=_positive, default=1, help="number of inputs to run")
    p.add_argument("--inflight", type=_positive, default=1, help="requests in flight at once (pipelining)")
    p.add_argument("--overlap", action="store_true",
                   help="with --inflight > 1: a device waiting for one request's data runs a later request's ready "
                        "tasks (DeCNN's inter-sample overlap; predicted the same way)")
    p.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds a worker waits for data before giving up")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.add_argument("--port", type=int, default=None, help="rendezvous port (default: a free one)")
    p.add_argument("--threads", type=_positive, default=None, help="torch threads per worker (default: the device's cpus, else 1)")
    p.add_argument("--out", default=None, help="folder for worker logs, reports and outputs (default: a temporary one)")
    p.add_argument("--gantt", default=None, help="draw measured and predicted timelines to .png or .html")
    p.add_argument("--trace", default=None,
                   help="write measured and predicted timelines as Chrome trace JSON (open in ui.perfetto.dev)")
    p.add_argument("--testbed", action="store_true",
                   help="run inside the emulated testbed (namespaces, shaped links, CPU quotas); see `edgeslice testbed`")
    p.add_argument("--adapt", action="store_true",
                   help="a stream of --requests that re-plans between epochs when load, measured speed or devices change")
    p.add_argument("--epoch", type=_positive, default=3, help="--adapt: requests per run of one plan")
    p.add_argument("--planner", default=None, help="--adapt: planner to re-plan with (default: the plan's own)")
    p.add_argument("--threshold", type=_positive_float, default=0.25,
                   help="--adapt: relative drift of measured from predicted latency that calls for re-planning")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.plan.plan import Plan
    from edgeslice.runtime.launch import collect, launch

    _check_outputs(args)  # before the run, not after it
    plan = Plan.load(args.plan)
    cluster = _cluster_for_plan(plan, args.cluster)  # the plan's own, or --cluster checked against the plan
    tb = None
    if args.testbed:
        from edgeslice.testbed.net import require

        if plan.cluster is None and not args.cluster:
            raise EdgesliceError("--testbed needs the cluster the testbed emulates: pass --cluster C.yaml "
                                 "(or plan with --cluster)")
        tb = require(cluster, tag=args.tag)
    if args.adapt:
        return _adapt(args, tb)
    outdir = launch(args.plan, cluster=args.cluster, requests=args.requests, inflight=args.inflight, timeout=args.timeout,
                    seed=args.seed, out=args.out, port=args.port, threads=args.threads, testbed=tb, overlap=args.overlap)
    res = collect(args.plan, outdir, cluster=args.cluster, requests=args.requests, seed=args.seed)
    measured, predicted = res.pop("_timelines")
    # with several requests the predicted panel replays the measured arrivals, so its (median) latency includes
    # queueing and differs from predicted_latency_s, one request alone: the label says so
    label = ("predicted" if args.requests == 1 else
             f"predicted at the measured arrival times (one request alone: {res['predicted_latency_s'] * 1e3:.1f} ms)")
    if args.gantt:
        from edgeslice.viz.gantt import draw

        draw([("measured", measured), (label, predicted)], args.gantt)
    trace_error = _write_trace(args.trace, plan, measured, predicted) if args.trace else None
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
                      f"weights {res['weights_mb'][d]:.1f} MB ({res['weights_source'][d]}), peak memory "
                      f"{res['peak_mem_mb'][d]:.0f} MB (the process + predicted {res['predicted_resident_mb'][d]:.1f} MB)")
        if args.gantt:
            con.print(f"timelines (measured above predicted) drawn to {args.gantt}")
        if args.trace and trace_error is None:
            con.print(f"trace (measured above predicted) written to {args.trace}; open it in ui.perfetto.dev")
    if trace_error:
        print(f"edgeslice: error: {trace_error} (the run's results above are complete)", file=sys.stderr)
        return 2
    return 0 if res["ok"] else 1


def _write_trace(path: str, plan, measured, predicted) -> str | None:
    """Write the run's trace file; return what went wrong instead of raising, so the results are still printed."""
    from edgeslice.execute.check import load_for_plan
    from edgeslice.program.lower import lower
    from edgeslice.viz.trace import write_trace

    try:
        graph, _ = load_for_plan(plan)
        write_trace(path, [("measured", measured), ("predicted", predicted)], lower(plan, graph))
    except EdgesliceError as exc:
        return f"trace not written: {exc}"
    except OSError as exc:
        return f"cannot write the trace file {path!r}: {exc.strerror or exc}"
    return None


def _adapt(args, tb) -> int:
    from edgeslice.runtime.adapt import AdaptOptions, adapt

    opts = AdaptOptions(epoch=args.epoch, threshold=args.threshold)
    res = adapt(args.plan, requests=args.requests, planner=args.planner, options=opts, testbed=tb, seed=args.seed,
                out=args.out, timeout=args.timeout, progress=None if args.json else print)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{res['done']} requests in {len(res['epochs'])} epochs, {len(res['switches'])} plan switch(es); "
              + ("every output verified" if res["all_verified"] else "SOME OUTPUTS DID NOT MATCH")
              + f"; record: {res['out']}/adapt.json")
    return 0 if res["all_verified"] else 1
