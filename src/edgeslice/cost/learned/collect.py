"""Profiles under load: every layer of several models measured at several background CPU loads.

A *load profile* (format ``edgeslice-load-profile``) is what FCPM learns from: for one
device, for each model, each layer's static features (kind, FLOPs, elements in and
out, parameter bytes, kernel, groups, channels) and its measured times as
``[fraction, load, seconds]`` samples, plus the whole model's forward time at each
load (``whole``: ``[load, seconds]``).  ``load`` is the load *measured* on the
device just before the run (percent of its CPU, from its cgroup's accounting on the
testbed; from the generator's own CPU time here), not only the one asked for: it is
what a running system can observe, so it is what the predictor is given.

Two ways to make one, the same measurement behind both:

- on the emulated testbed, inside each device (:func:`edgeslice.testbed.loadprofile.profile_loads`,
  ``edgeslice testbed profile C --models ... --loads 0,20,40,60,80``);
- on this machine (:func:`profile_here`, ``edgeslice profile --models ... --loads ...``):
  the generator is pinned to the CPU the measurement runs on, so it competes for
  that one CPU as it would on a device — the loopback implementation the tests use.

>>> model_spec("vgg16@3x160x160")
('vgg16', (3, 160, 160))
>>> model_spec("resnet18")
('resnet18', None)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

from edgeslice.cluster.model import LOAD_PROFILE_FORMAT

FRACTIONS = (1.0, 0.5, 0.25)


def model_spec(text: str) -> tuple[str, tuple[int, ...] | None]:
    """``name@CxHxW`` → (name, shape); a bare name keeps the model's own input."""
    name, _, shape = text.partition("@")
    if not shape:
        return name, None
    try:
        dims = tuple(int(v) for v in shape.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        from edgeslice.errors import EdgesliceError

        raise EdgesliceError(f"model {text!r}: write the input as name@CxHxW, e.g. vgg16@3x160x160")
    return name, dims


def assemble(device: str, cpus: float | None, runs: list[tuple[float, float, dict]]) -> dict:
    """A load profile from ``(load_set, load_measured, profile)`` runs (``profile``: :func:`~edgeslice.cost.profiled.measure`'s dict).

    Percent loads in, stored as measured percent.  ``effective_gflops`` is the idle rate (the runs at
    the lowest load), what the analytic fallback uses for a layer no profile knows.
    """
    models: dict = {}
    idle = min((r[1] for r in runs), default=0.0)
    flops_idle, time_idle = 0, 0.0
    for load_set, load_meas, prof in runs:
        key = prof["model"] if prof.get("input") is None else f"{prof['model']}@{'x'.join(map(str, prof['input']))}"
        m = models.setdefault(key, {"model": prof["model"], "input": prof["input"], "batch": prof["batch"],
                                    "fingerprint": prof.get("fingerprint"), "layers": {}, "whole": []})
        m["whole"].append([load_meas, prof.get("whole_s", prof["total_s"])])
        for name, v in prof["layers"].items():
            lay = m["layers"].setdefault(name, {k: v[k] for k in v if k not in ("samples", "fit")} | {"samples": []})
            lay["samples"] += [[f, load_meas, t] for f, t in v["samples"]]
        if load_meas == idle:
            flops_idle += sum(v["flops"] for v in prof["layers"].values())
            time_idle += prof["total_s"]
    return {"format": LOAD_PROFILE_FORMAT, "version": 1, "device": device, "cpus": cpus, "host": platform.node(),
            "batch": next(iter(models.values()))["batch"] if models else 1,
            "loads_set": sorted({r[0] for r in runs}), "effective_gflops": flops_idle / time_idle / 1e9 if time_idle else 1.0,
            "models": models}


def _pin_here():
    """The CPU this process runs on (the generator and the measurement share it)."""
    try:
        return min(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def profile_here(models: list[str], loads: list[float], *, fractions=FRACTIONS, min_time_s: float = 0.05,
                 repeat: int = 3, progress=None) -> dict:
    """Measure ``models`` at each of ``loads`` (percent of one CPU) on this machine; return the load profile.

    The measurement and a :mod:`edgeslice.testbed.loadgen` generator are pinned to one CPU, so the
    generator's share is taken from the measurement's CPU as on a device; the generator's share is
    measured from its own CPU time.  Both end before this returns.
    """
    from edgeslice.cost.profiled import measure

    cpu = _pin_here()
    old = os.sched_getaffinity(0) if cpu is not None else None
    runs = []
    try:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        for load in loads:
            gen = None
            if load > 0:
                gen = subprocess.Popen([sys.executable, "-m", "edgeslice.testbed.loadgen", "--schedule",
                                        f"[[0, {load}]]", "--cpus", "1.0"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                if cpu is not None:
                    os.sched_setaffinity(gen.pid, {cpu})
            try:
                measured = _settle_and_measure(gen)
                for spec in models:
                    name, shape = model_spec(spec)
                    if progress:
                        progress(f"load {load:g}% (measured {measured:.0f}%): {spec}")
                    prof = measure(name, shape, 1, repeat=repeat, fractions=fractions, min_time_s=min_time_s)
                    prof["input"] = list(shape) if shape else prof["input"]
                    runs.append((load, measured, prof))
            finally:
                if gen is not None:
                    gen.kill()
                    gen.wait()
    finally:
        if old is not None:
            os.sched_setaffinity(0, old)
    return assemble("here", 1.0, runs)


def _settle_and_measure(gen, window_s: float = 1.0) -> float:
    """The generator's share of its CPU over ``window_s`` after its start-up (percent; 0 without one)."""
    if gen is None:
        return 0.0
    time.sleep(0.5)  # past the interpreter's start-up
    c0, t0 = _cpu_s(gen.pid), time.monotonic()
    time.sleep(window_s)
    return round(100.0 * (_cpu_s(gen.pid) - c0) / (time.monotonic() - t0), 1)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
