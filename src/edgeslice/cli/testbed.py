"""``edgeslice testbed``: the emulated testbed: up, down, status, profile."""

from __future__ import annotations

import argparse
import json
import time

from edgeslice.cli._common import (
    _TAG,
    _console,
    _nonnegative_float,
    model_args,
)
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("testbed", help="emulate a cluster on this machine: up, down, status, load, profile (needs root)")
    p.add_argument("action", choices=("up", "down", "status", "load", "profile"))
    p.add_argument("cluster", nargs="?", default=None,
                   help="cluster YAML file or bundled name (up, profile); the DEVICE for load")
    p.add_argument("value", nargs="?", default=None,
                   help="load: PERCENT of the device's CPU busy with other work (0 stops it), or steps '[[t_s, pct], ...]'")
    model_args(p, required=False)
    p.add_argument("--pin", default="auto", help="host CPUs for the devices: auto (one CPU when the quotas fit), none, or 0,1")
    p.add_argument("--min-time", type=_nonnegative_float, default=0.05, help="profile: seconds of back-to-back runs per measurement")
    p.add_argument("--force", action="store_true", help="profile: measure again even if a calibration exists")
    p.add_argument("--models", default=None,
                   help="profile with --loads: models to measure, name or name@CxHxW, comma-separated")
    p.add_argument("--loads", default=None,
                   help="profile: background loads (percent) to measure at, e.g. 0,20,40,60,80: writes a load profile "
                        "per device (loadprofile-<device>.json, what FCPM learns from)")
    p.add_argument("--fractions", default="1,0.5,0.25", help="profile with --loads: output fractions per layer")
    p.add_argument("-o", "--output", default=None, help="profile: folder for the calibrated cluster and profiles")
    p.add_argument("--json", action="store_true", help="up, down, status: what was made, removed or found, as JSON")
    p.add_argument("--tag", default=_TAG, help=argparse.SUPPRESS)
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.testbed import net

    if args.action == "down":
        gone = net.down(args.tag)
        if args.json:
            print(json.dumps({"tag": args.tag, "removed": gone}))
            return 0
        print(f"removed {len(gone)} things: " + ", ".join(gone) if gone else "nothing to remove: no testbed is up")
        return 0
    if args.action == "load":
        return _load(args)
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
        for col in ("device", "namespace", "address", "cpus", "pinned", "links (egress, shaped)", "processes",
                    "load set", "load measured"):
            t.add_column(col)
        for d in st["devices"]:
            links = ", ".join(f"{l['peer']} {l['rate']}" for l in d["links"])
            sched = d.get("load_set")
            load_set = "-" if not sched else (f"{sched[0][1]:g}%" if len(sched) == 1 else
                                              ", ".join(f"{v:g}% from {t:g} s" for t, v in sched))
            meas = d.get("load_measured")
            t.add_row(d["device"], d["namespace"], d["address"] or "-", "unlimited" if d["cpus"] is None else f"{d['cpus']:g}",
                      d.get("cpuset") or "-", links, str(d["processes"]), load_set, "-" if meas is None else f"{meas:g}%")
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
        tb, made = net.up(cluster, tag=args.tag, source_file=args.cluster, pin=args.pin, progress=None if args.json else print)
        if args.json:
            loads = _start_loads(tb, cluster)
            print(json.dumps({**tb.to_dict(), "made": made, "load_generators": loads, "namespaces": {d: tb.namespace(d) for d in tb.devices},
                              "addresses": {d: tb.address(d) for d in tb.devices}}))
            return 0
        loads = _start_loads(tb, cluster)
        if made:
            print(f"testbed for {cluster.name} is up: {len(tb.devices)} devices"
                  + (f", pinned to host CPU {tb.cpuset}" if tb.cpuset else ""))
        else:
            print(f"testbed for {cluster.name} is already up (nothing changed)")
        for dev, pid in loads.items():
            print(f"background load on {dev}: generator pid {pid} (`edgeslice testbed load {dev} 0` stops it)")
        for n in tb.notes:
            print(f"note: {n}")
        return 0
    if args.action == "profile" and args.loads:
        return _profile_loads(args, cluster)
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


def _start_loads(tb, cluster) -> dict:
    """Start the load generators the cluster file's ``load:`` schedules ask for; device → pid."""
    from edgeslice.testbed import load

    return {d.name: load.start(tb, d.name, [[t, v * 100.0] for t, v in d.load_schedule])
            for d in cluster.devices if d.load_schedule and any(v > 0 for _, v in d.load_schedule)}


def _load(args) -> int:
    from edgeslice.testbed import load, net

    if not args.cluster or args.value is None:
        raise EdgesliceError("testbed load needs a device and a percent: `edgeslice testbed load d1 60` "
                             "(0 stops it; steps: `edgeslice testbed load d1 '[[0, 0], [30, 80]]'`)")
    tb = net.current(args.tag)
    if tb is None:
        raise EdgesliceError("no testbed is up; bring one up with `edgeslice testbed up <cluster.yaml>`")
    try:
        value = json.loads(args.value)
    except ValueError:
        raise EdgesliceError(f"testbed load: {args.value!r} is neither a percent (e.g. 60) nor steps "
                             "'[[t_s, percent], ...]'") from None
    pid = load.set_load(tb, args.cluster, value)
    if pid:
        time.sleep(0.5)  # past the interpreter's start-up, which the accounting would count as load
    measured = load.measure(tb, [args.cluster], window_s=1.0)[args.cluster] if pid else None
    if args.json:
        print(json.dumps({"device": args.cluster, "pid": pid, "schedule": load.generators(args.tag).get(args.cluster, {})
                          .get("schedule"), "load_measured": measured}))
    elif pid is None:
        print(f"{args.cluster}: no background load")
    else:
        print(f"{args.cluster}: background load {args.value}% (generator pid {pid}); measured over 1 s: "
              + ("unknown (no CPU accounting)" if measured is None else f"{measured:g}% of its CPU"))
    return 0


def _profile_loads(args, cluster) -> int:
    from pathlib import Path

    from edgeslice.cli.profile import _fractions, _list, _loads
    from edgeslice.testbed import net
    from edgeslice.testbed.loadprofile import profile_loads

    try:
        loads, fractions = _loads(args.loads), _fractions(args.fractions)
        models = _list(args.models or args.model or "")
    except argparse.ArgumentTypeError as e:
        raise EdgesliceError(f"testbed profile: {e}") from None
    tb, _ = net.up(cluster, tag=args.tag, source_file=args.cluster, pin=args.pin, progress=print)
    out = Path(args.output or f".edgeslice/testbed/{cluster.name}-loads")
    files = profile_loads(tb, cluster, models, loads, out, min_time_s=args.min_time, fractions=fractions, progress=print)
    if args.json:
        print(json.dumps({d: str(p) for d, p in files.items()}))
    else:
        for d, p in files.items():
            print(f"{d}: {p}")
        print("fit and judge the predictor with `edgeslice predictor report --profiles "
              f"{out}`; name a file as a device's profile: to plan with it")
    return 0
