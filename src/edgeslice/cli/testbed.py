"""``edgeslice testbed``: the emulated testbed: up, down, status, profile."""

from __future__ import annotations

import argparse
import json

from edgeslice.cli._common import (
    _TAG,
    _console,
    _nonnegative_float,
    model_args,
)
from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("testbed", help="emulate a cluster on this machine: up, down, status, profile (needs root)")
    p.add_argument("action", choices=("up", "down", "status", "profile"))
    p.add_argument("cluster", nargs="?", default=None, help="cluster YAML file or bundled name (up, profile)")
    model_args(p, required=False)
    p.add_argument("--pin", default="auto", help="host CPUs for the devices: auto (one CPU when the quotas fit), none, or 0,1")
    p.add_argument("--min-time", type=_nonnegative_float, default=0.05, help="profile: seconds of back-to-back runs per measurement")
    p.add_argument("--force", action="store_true", help="profile: measure again even if a calibration exists")
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
        tb, made = net.up(cluster, tag=args.tag, source_file=args.cluster, pin=args.pin, progress=None if args.json else print)
        if args.json:
            print(json.dumps({**tb.to_dict(), "made": made, "namespaces": {d: tb.namespace(d) for d in tb.devices},
                              "addresses": {d: tb.address(d) for d in tb.devices}}))
            return 0
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
