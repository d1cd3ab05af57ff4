"""A background CPU load for one emulated device: a duty-cycled busy loop that follows a schedule.

Real edge devices are never idle (OfpCNN's starting point): a camera board also
encodes video, a phone runs apps.  This program is that other work.  It runs
*inside* a device (its cgroup, hence under its CPU quota; see
:mod:`edgeslice.testbed.load`, which starts and stops it) and uses ``percent`` of
the device's CPU: in every period of ``period_ms`` it computes until it has used
``percent / 100 × cpus × period`` of CPU time (measured with the thread's own CPU
clock, so time it is not scheduled does not count), then sleeps to the end of the
period.  On an otherwise idle device the cgroup's accounting shows exactly that
share; when our inference competes with it, the kernel's fair scheduler decides
who gets the quota, and a layer's latency grows with the load in a way a plain
``1 / (1 − load)`` does not capture — which is what the learned predictor
(:mod:`edgeslice.cost.learned`) is for.

The schedule is a list of ``[t_s, percent]`` steps from the program's start (the
last step holds); a constant load is one step.  It runs until it is killed
(``edgeslice testbed load DEVICE 0`` or ``testbed down``).

    python -m edgeslice.testbed.loadgen --cpus 0.25 --schedule '[[0, 60]]'

>>> step_at(((0.0, 10.0), (5.0, 60.0)), 7.5)
60.0
>>> step_at(((2.0, 10.0),), 1.0)
0.0
"""

from __future__ import annotations

import argparse
import json
import time


def step_at(schedule, t: float) -> float:
    """The percent a ``((t_s, percent), ...)`` schedule says at ``t`` (0 before its first step)."""
    value = 0.0
    for start, pct in sorted(schedule):
        if start <= t:
            value = float(pct)
    return value


def spin(cpu_s: float, until: float) -> None:
    """Compute until this thread has used ``cpu_s`` more CPU seconds, or the clock passes ``until``."""
    c0 = time.thread_time()
    x = 0
    while time.thread_time() - c0 < cpu_s and time.monotonic() < until:
        for i in range(2000):
            x += i * i


def run(schedule, cpus: float, period_s: float, stop_after_s: float | None = None) -> None:
    """Follow ``schedule`` on a device of ``cpus`` CPUs; return after ``stop_after_s`` (None: never)."""
    t0 = time.monotonic()
    k = 0
    while True:
        start = t0 + k * period_s
        now = time.monotonic()
        if stop_after_s is not None and now - t0 >= stop_after_s:
            return
        if now > start + period_s:  # fell behind (throttled for long): start afresh, do not try to catch up
            k = int((now - t0) / period_s)
            continue
        pct = step_at(schedule, start - t0)
        if pct > 0:
            spin(pct / 100.0 * cpus * period_s, start + period_s)
        k += 1
        rest = t0 + k * period_s - time.monotonic()
        if rest > 0:
            time.sleep(rest)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgeslice.testbed.loadgen", description=__doc__.split("\n\n")[0])
    p.add_argument("--schedule", required=True, help="JSON list of [t_s, percent] steps, e.g. '[[0, 60]]'")
    p.add_argument("--cpus", type=float, default=1.0, help="the device's CPUs (its quota): percent is of this")
    p.add_argument("--period-ms", type=float, default=20.0)
    p.add_argument("--stop-after", type=float, default=None, help="seconds to run (default: until killed)")
    a = p.parse_args(argv)
    schedule = tuple((float(t), float(v)) for t, v in json.loads(a.schedule))
    run(schedule, a.cpus, a.period_ms / 1e3, a.stop_after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
