"""``edgeslice testbed profile``: measure what the emulated devices and links really do.

Nominal figures (``gflops: 15``, ``bandwidth_mbps: 50``) are what a cluster
file *claims*; on the testbed a 0.4-CPU device runs what a 0.4-CPU quota lets
it run, and a 50 Mbit/s HTB class carries 50 Mbit/s minus TCP/IP headers and
the transport's per-message cost.  Calibration measures both where they
happen and writes a *calibrated cluster* that planning on the testbed uses:

- every device runs ``edgeslice profile`` inside its own namespace and cgroup,
  all at once (so the profile includes the contention of the other devices
  computing beside it), averaging back-to-back runs over several quota
  periods (``--min-time``);
- every ordered pair of devices is probed with the runtime's transport (gloo
  send/recv, :mod:`edgeslice.testbed.probe`), and each link gets its measured
  rate and per-message cost (as ``latency_ms``).

The result is a folder holding ``cluster.yaml`` (same devices, ``profile:``
per device, measured links), the per-device profiles, the raw link samples and
``calibration.json`` (what was measured, for which cluster digest and model),
so a later run with the same cluster and model reuses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edgeslice.cluster.model import Cluster
from edgeslice.errors import TestbedError
from edgeslice.testbed.net import Testbed, digest


def default_dir(cluster: Cluster, spec: str, input_shape, batch: int) -> Path:
    # file.py:factory -> factory; resnet50_decoupled:g=2 -> resnet50_decoupled_g_2 (its options are part of the model)
    name = spec if "=" in spec.partition(":")[2] else Path(spec).stem.split(":")[-1]
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    shape = "x".join(str(v) for v in input_shape)
    return Path(".edgeslice") / "testbed" / f"{cluster.name}-{stem}-{shape}-b{batch}"


PORT_TRIES = 3


def _spawn(tb: Testbed, device: str, argv: list[str], log: Path, *, defer: bool = False) -> subprocess.Popen:
    """Start ``argv`` inside ``device``; with ``defer`` it joins the cgroups itself once loaded (see ``Testbed.wrap``)."""
    fh = open(log, "a" if defer else "w")
    try:
        return subprocess.Popen(tb.wrap(device, argv, defer_cgroups=defer), stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, **tb.env(), "PYTHONUNBUFFERED": "1",
                                                             **(tb.join_env(device) if defer else {})})
    finally:
        fh.close()


def _wait_all(procs: dict[str, subprocess.Popen], logs: dict[str, Path], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        for dev, p in procs.items():
            left = max(1.0, deadline - time.monotonic())
            try:
                code = p.wait(timeout=left)
            except subprocess.TimeoutExpired:
                raise TestbedError(f"{what} on device {dev!r} did not finish in {timeout_s:.0f} s (log: {logs[dev]})") from None
            if code != 0:
                tail = [l for l in logs[dev].read_text(errors="replace").splitlines() if l.strip()][-1:] or ["(no output)"]
                raise TestbedError(f"{what} failed on device {dev!r} (exit {code}): {tail[0]} (log: {logs[dev]})")
    finally:
        for p in procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 9)
                except ProcessLookupError:
                    pass
                p.wait()


def profile_devices(tb: Testbed, cluster: Cluster, spec: str, input_shape, batch: int, outdir: Path, *,
                    min_time_s: float = 0.05, timeout_s: float = 1800.0) -> dict[str, Path]:
    """Profile model ``spec`` inside every device at once; return each device's profile file."""
    shape = "x".join(str(v) for v in input_shape)
    procs, logs, files = {}, {}, {}
    for d in cluster.names:
        files[d] = (outdir / f"profile-{d}.json").resolve()
        logs[d] = outdir / f"profile-{d}.log"
        argv = [sys.executable, "-m", "edgeslice.cli", "profile", "--model", spec, "--input", shape, "--batch", str(batch),
                "--threads", "1", "--min-time", str(min_time_s), "-o", str(files[d])]
        procs[d] = _spawn(tb, d, argv, logs[d])
    _wait_all(procs, logs, f"profiling {spec}", timeout_s)
    return files


def probe_links(tb: Testbed, cluster: Cluster, outdir: Path, *, repeat: int = 2, timeout_s: float = 600.0) -> list[dict]:
    """Measure every ordered pair's rate and per-message cost with gloo inside the testbed."""
    names = list(cluster.names)
    out = (outdir / "links.json").resolve()
    for attempt in range(PORT_TRIES):
        # the port may still be taken in device 0's namespace (an earlier probe's connections): try another
        port = 21000 + (os.getpid() + 997 * attempt) % 8000
        procs, logs = {}, {}
        for r, d in enumerate(names):
            logs[d] = outdir / f"probe-{d}.log"
            argv = [sys.executable, "-m", "edgeslice.testbed.probe", "--rank", str(r), "--world", str(len(names)),
                    "--master-addr", tb.address(names[0]), "--master-port", str(port), "--devices", ",".join(names),
                    "--repeat", str(repeat), "--out", str(out)]
            procs[d] = _spawn(tb, d, argv, logs[d])
        try:
            _wait_all(procs, logs, "probing links", timeout_s)
            break
        except TestbedError as exc:
            text = logs[names[0]].read_text(errors="replace") if logs[names[0]].exists() else ""
            if "EADDRINUSE" not in text and "address already in use" not in text.lower():
                raise
            if attempt == PORT_TRIES - 1:
                raise TestbedError(f"probing links: port {port} on device {names[0]!r} was in use, as were the "
                                   f"{PORT_TRIES - 1} tried before it ({exc})") from None
    pairs = []
    for r in range(len(names)):
        part = Path(f"{out}.{r}")
        pairs += json.loads(part.read_text())
        part.unlink()
    out.write_text(json.dumps(pairs, indent=1))
    return pairs


def write_cluster(cluster: Cluster, profiles: dict[str, Path], pairs: list[dict], outdir: Path, note: str) -> Path:
    """The calibrated cluster file: measured profiles per device, measured rate and cost per link."""
    by_pair: dict[frozenset, list[dict]] = {}
    for p in pairs:
        by_pair.setdefault(frozenset((p["src"], p["dst"])), []).append(p)
    links = {}
    for key, both in by_pair.items():
        links[key] = (sum(p["rate_mbps"] for p in both) / len(both), sum(p["latency_ms"] for p in both) / len(both))
    rates = [v[0] for v in links.values()] or [cluster.default_link.bandwidth_mbps]
    lats = [v[1] for v in links.values()] or [0.0]
    default = {"bandwidth_mbps": round(sum(rates) / len(rates), 3), "latency_ms": round(sum(lats) / len(lats), 4)}
    devices = []
    for d in cluster.devices:
        prof = json.loads(profiles[d.name].read_text())
        row = {"name": d.name, "gflops": round(prof["effective_gflops"], 3), "memory_mb": d.memory_mb,
               "profile": profiles[d.name].name}
        if d.cpus is not None:
            row["cpus"] = d.cpus
        devices.append(row)
    overrides = [{"between": sorted(k), "bandwidth_mbps": round(v[0], 3), "latency_ms": round(v[1], 4)}
                 for k, v in sorted(links.items(), key=lambda kv: sorted(kv[0]))]
    data = {"name": cluster.name, "devices": devices, "links": {"default": default, "overrides": overrides},
            "source": cluster.source, "sink": cluster.sink}
    head = "".join(f"# {line}\n" for line in note.splitlines())
    path = outdir / "cluster.yaml"
    path.write_text(head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=200))
    return path


def calibrate(tb: Testbed, cluster: Cluster, spec: str, input_shape, batch: int = 1, *, outdir: str | Path | None = None,
              min_time_s: float = 0.05, repeat: int = 2, force: bool = False, progress=None) -> Path:
    """Profile every device and probe every link on testbed ``tb``; return the calibrated cluster file.

    A folder already calibrated for the same cluster digest, model, input and batch is reused
    unless ``force``.
    """
    from edgeslice.cluster.load import load_cluster

    say = progress or (lambda _m: None)
    out = Path(outdir) if outdir else default_dir(cluster, spec, input_shape, batch)
    out.mkdir(parents=True, exist_ok=True)
    key = {"cluster": cluster.name, "digest": digest(cluster), "model": spec, "input": list(input_shape), "batch": batch,
           "min_time_s": min_time_s}
    meta = out / "calibration.json"
    if not force and meta.exists() and (out / "cluster.yaml").exists():
        try:
            old = json.loads(meta.read_text())
        except ValueError:
            old = {}
        if old.get("key") == key:
            say(f"reusing the calibration in {out} (pass --force to measure again)")
            load_cluster(out / "cluster.yaml")
            return out / "cluster.yaml"
    t0 = time.time()
    say(f"profiling {spec} inside {len(cluster.devices)} devices at once (this takes a while under CPU quotas)")
    profiles = profile_devices(tb, cluster, spec, input_shape, batch, out, min_time_s=min_time_s)
    for d, f in profiles.items():
        p = json.loads(f.read_text())
        say(f"  {d}: whole model {p['total_s'] * 1e3:.0f} ms, {p['effective_gflops']:.1f} GFLOP/s effective")
    say("probing every link with gloo")
    pairs = probe_links(tb, cluster, out, repeat=repeat)
    for p in pairs:
        nominal = cluster.link(p["src"], p["dst"]).bandwidth_mbps
        say(f"  {p['src']}->{p['dst']}: {p['rate_mbps']:.1f} Mbit/s (nominal {nominal:g}), "
            f"{p['latency_ms']:.2f} ms per message")
    note = (f"calibrated on the edgeslice testbed from cluster {cluster.name!r} for model {spec} "
            f"{'x'.join(map(str, input_shape))} batch {batch}\n"
            f"measured {time.strftime('%Y-%m-%d %H:%M')}: profiles inside each device's namespace and cgroup, "
            "links probed with gloo\nregenerate with: edgeslice testbed profile <cluster> --model <model> --force")
    path = write_cluster(cluster, profiles, pairs, out, note)
    meta.write_text(json.dumps({"key": key, "seconds": round(time.time() - t0, 1), "devices": {
        d: json.loads(f.read_text())["effective_gflops"] for d, f in profiles.items()}, "links": [
        {k: p[k] for k in ("src", "dst", "rate_mbps", "latency_ms")} for p in pairs]}, indent=1))
    load_cluster(path)  # it must read back
    return path
