"""What the command modules share: argument types, consoles, cluster resolution."""

from __future__ import annotations

import argparse
import os

_TAG = os.environ.get("EDGESLICE_TESTBED_TAG", "0")  # tests use their own tag, so they never touch a user's testbed


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


def _number(text: str, *, positive: bool) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number {'> 0' if positive else '>= 0'}")
    return v


def _positive_float(text: str) -> float:
    """A finite number > 0 (a timeout, a duration, a limit): nan, inf, 0 and negatives are refused at the edge."""
    return _number(text, positive=True)


def _nonnegative_float(text: str) -> float:
    """A finite number >= 0 (an interval, a minimum time)."""
    return _number(text, positive=False)


def _console():
    from rich.console import Console

    con = Console()
    if not con.is_terminal:  # piped or captured: do not squeeze tables into 80 columns
        con = Console(width=160)
    return con


def _console_err():
    from rich.console import Console

    return Console(stderr=True)


def _cluster(args, devices: int | None = None):
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.cluster.model import Cluster

    if getattr(args, "cluster", None):
        return resolve_cluster(args.cluster)
    return Cluster.uniform(devices or getattr(args, "devices", None) or 1)


def _cluster_for_plan(plan, arg: str | None):
    """The cluster a plan runs on: --cluster (checked against the plan), else the one it carries, else N identical devices."""
    from edgeslice.plan.validate import plan_cluster

    return plan_cluster(plan, arg)


def model_args(p, required=True):
    p.add_argument("--model", required=required, help="zoo name, path/to/file.py:factory or package.module:factory")
    p.add_argument("--input", type=_shape, default=None, help="input shape CxHxW (default: the model's)")
    p.add_argument("--batch", type=_positive, default=1)
    p.add_argument("--weights", default=None, help="state_dict file to load (default: random weights)")


def _warn_misfits(program, graph, cluster) -> None:
    """One line on stderr when ``program`` does not fit a device's memory_mb (a --cluster override can do that)."""
    import sys

    from edgeslice.program.memory import misfits

    bad = misfits(program, graph, cluster)
    if bad:
        print("edgeslice: warning: this plan does not fit the memory of " + ", ".join(
            f"{name} (needs {m.total / 1e6:.1f} MB, memory_mb {have:g})" for name, m, have in bad), file=sys.stderr)


def _check_outputs(args) -> None:
    """``--gantt`` and ``--trace`` paths checked before the work starts, so a finished run is never lost to them."""
    if getattr(args, "gantt", None):
        from edgeslice.viz.gantt import check_chart

        check_chart(args.gantt)
    if getattr(args, "trace", None):
        from edgeslice.viz.trace import check_writable

        check_writable(args.trace)
