"""``edgeslice testbed profile C --models ... --loads 0,20,40,60,80``: load profiles measured inside each device.

For each load level, every device gets a generator at that level
(:mod:`edgeslice.testbed.load`), its load is measured from its cgroup's accounting
once the generator has settled, and then each model is profiled inside each
device (all devices at once: they are pinned and each has its own quota, so they
do not slow one another), with the generator still running.  Each device's runs
become one load profile (:func:`edgeslice.cost.learned.collect.assemble`), written
as ``loadprofile-<device>.json``; a device whose cluster entry names that file as
its ``profile`` is predicted by FCPM (:mod:`edgeslice.cost.learned`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from edgeslice.cluster.model import Cluster
from edgeslice.cost.learned.collect import FRACTIONS, assemble, model_spec
from edgeslice.testbed import load
from edgeslice.testbed.calibrate import _spawn, _wait_all
from edgeslice.testbed.net import Testbed


def profile_loads(tb: Testbed, cluster: Cluster, models: list[str], loads: list[float], outdir: Path, *,
                  min_time_s: float = 0.05, fractions=FRACTIONS, timeout_s: float = 3600.0, progress=None) -> dict[str, Path]:
    """Measure ``models`` inside every device at each of ``loads`` (percent); return each device's load-profile file."""
    say = progress or (lambda _m: None)
    outdir.mkdir(parents=True, exist_ok=True)
    names = list(cluster.names)
    runs: dict[str, list] = {d: [] for d in names}
    t_start = time.time()
    try:
        for li, level in enumerate(loads):
            for d in names:
                load.set_load(tb, d, level)
            if level > 0:
                time.sleep(0.5)  # the generators' start-up is not their load
            measured = load.measure(tb, names, window_s=1.0)
            for mi, spec in enumerate(models):
                name, shape = model_spec(spec)
                say(f"[{li * len(models) + mi + 1}/{len(loads) * len(models)}] load {level:g}% "
                    f"(measured {', '.join(f'{d} {v:g}%' for d, v in measured.items() if v is not None)}): {spec}"
                    f" ({time.time() - t_start:.0f} s so far)")
                procs, logs, files = {}, {}, {}
                for d in names:
                    stem = "".join(ch if ch.isalnum() else "_" for ch in spec)
                    files[d] = (outdir / f"raw-{d}-{stem}-{level:g}.json").resolve()
                    logs[d] = outdir / f"raw-{d}.log"
                    argv = [sys.executable, "-m", "edgeslice.cli", "profile", "--model", name, "--threads", "1",
                            "--min-time", str(min_time_s), "--fractions", ",".join(map(str, fractions)), "-o", str(files[d])]
                    if shape:
                        argv += ["--input", "x".join(map(str, shape))]
                    procs[d] = _spawn(tb, d, argv, logs[d], defer=True)
                _wait_all(procs, logs, f"profiling {spec} at load {level:g}%", timeout_s)
                for d in names:
                    prof = json.loads(files[d].read_text())
                    m = measured.get(d)
                    runs[d].append((level, float(level if m is None else m), prof))
                    files[d].unlink()
    finally:
        load.stop_all(tb)
    out = {}
    for d in names:
        path = outdir / f"loadprofile-{d}.json"
        path.write_text(json.dumps(assemble(d, cluster.device(d).cpus, runs[d])))
        out[d] = path
    return out
