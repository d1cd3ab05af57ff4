"""How good FCPM is, beside the analytic and the idle-profiled cost models (``edgeslice predictor report``).

Judged as OfpCNN judges it — accuracy = 1 − |predicted − measured| / measured —
on what the predictor has never seen: **held-out models** (FCPM is fitted on
``train_models`` only, and only at ``train_loads``) at every load level measured,
so the loads between the training levels are held out too.  Per device, pooled
over devices:

- ``per_layer``: each layer of each held-out model, whole (fraction 1), measured
  at ≥ 1 ms, at each load — ``mean``, ``min``, ``p5`` (5th percentile);
- ``whole_model``: each held-out model's whole forward pass at each load, against
  the sum of its layers' predictions — ``mean``, ``min``;
- ``by_load``: the per-layer mean at each load level, for each cost model.

The two references: ``analytic`` — FLOPs ÷ (rate × (1 − load)) with the device's
idle rate measured on the training models (what ``testbed profile`` calibrates);
``profiled`` — the held-out model's own per-layer times measured on the *idle*
device (today's ``edgeslice profile``), which know the layer exactly but not the
load.  Field names are a contract (``predictor report --json``).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from edgeslice.cost.analytic import AnalyticCost
from edgeslice.cost.learned.fcpm import (
    FCPM,
    MIN_JUDGED_S,
    _level,
    accuracy,
    features,
    select,
)


def _stats(acc) -> dict:
    a = np.asarray(acc, float)
    if not len(a):
        return {"mean": None, "min": None, "p5": None, "n": 0}
    return {"mean": round(float(a.mean()), 4), "min": round(float(a.min()), 4),
            "p5": round(float(np.percentile(a, 5)), 4), "n": len(a)}


def _analytic(static: dict, fraction: float, load_pct: float, gflops: float, cost: AnalyticCost) -> float:
    k = int(static.get("kernel", 1))
    shim = SimpleNamespace(kind=static["kind"], flops=static["flops"], out_shape=(static["out_elems"],),
                           geometry=SimpleNamespace(kernel=(k, 1)))
    dev = SimpleNamespace(gflops=gflops, cpu_load=min(load_pct / 100.0, 0.999))
    return cost.layer_time(shim, fraction, dev, 1)


def _idle_fit(lay: dict, levels) -> tuple[float, float] | None:
    """``time = a + b × fraction`` from the layer's samples on the idle device (the lowest load level)."""
    lo = min(levels) if levels else 0.0
    pts = [(f, t) for f, load, t in lay["samples"] if _level(load, levels) == lo]
    if not pts:
        return None
    if len({f for f, _ in pts}) < 2:
        return 0.0, float(np.mean([t for _, t in pts]))
    b, a = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
    return float(a), float(b)


def judge_device(profile: dict, train_models, test_models, train_loads=None, kind: str | None = None) -> dict:
    """Per-sample accuracies of FCPM, analytic and profiled on one device's held-out models."""
    levels = profile.get("loads_set") or []
    fcpm = FCPM(profile, kind=kind, models=list(train_models), loads=train_loads)
    # the analytic model's rate: measured on the idle device over the training models (what calibration gives)
    fl = tt = 0.0
    for key in train_models:
        m = profile["models"][key]
        for lay in m["layers"].values():
            fit = _idle_fit(lay, levels)
            if fit:
                fl += lay["flops"]
                tt += fit[0] + fit[1]
    gflops = fl / tt / 1e9 if tt else profile["effective_gflops"]
    analytic = AnalyticCost()
    out = {"fcpm": [], "analytic": [], "profiled": [], "whole": {"fcpm": [], "analytic": [], "profiled": []},
           "by_load": {}, "model": fcpm.kind}
    for key in test_models:
        m = profile["models"][key]
        rows, meas, loads, ana, prof = [], [], [], [], []
        per_load_sum: dict[float, dict] = {}
        for lay in m["layers"].values():
            fit = _idle_fit(lay, levels)
            for frac, load, secs in lay["samples"]:
                if frac != 1.0:
                    continue
                lvl = _level(load, levels)
                p_fc = features(lay, frac, load, m.get("batch", 1))
                a = _analytic(lay, frac, load, gflops, analytic)
                p = (fit[0] + fit[1] * frac) if fit else a
                s = per_load_sum.setdefault(lvl, {"rows": [], "analytic": 0.0, "profiled": 0.0, "load": load})
                s["rows"].append(p_fc)
                s["analytic"] += a
                s["profiled"] += max(p, 0.0)
                if secs >= MIN_JUDGED_S:
                    rows.append(p_fc)
                    meas.append(secs)
                    loads.append(lvl)
                    ana.append(a)
                    prof.append(max(p, 1e-9))
        if rows:
            pf = fcpm.predict(rows)
            for name, pred in (("fcpm", pf), ("analytic", ana), ("profiled", prof)):
                acc = accuracy(pred, meas)
                out[name] += list(acc)
                for lvl, a in zip(loads, acc):
                    out["by_load"].setdefault(lvl, {"fcpm": [], "analytic": [], "profiled": []})[name].append(a)
        for load, secs in m.get("whole", []):
            s = per_load_sum.get(_level(load, levels))
            if not s:
                continue
            pred = {"fcpm": float(fcpm.predict(s["rows"]).sum()), "analytic": s["analytic"], "profiled": s["profiled"]}
            for name in ("fcpm", "analytic", "profiled"):
                out["whole"][name].append(float(accuracy([pred[name]], [secs])[0]))
    return out


def report(profiles: dict[str, dict], train_models, test_models, train_loads=None, kind: str | None = None) -> dict:
    """The accuracy report over ``profiles`` (device → load profile); see the module docstring for the fields."""
    pooled = {"fcpm": [], "analytic": [], "profiled": []}
    whole = {"fcpm": [], "analytic": [], "profiled": []}
    by_load: dict = {}
    chosen = {}
    scores = {}
    for dev, prof in profiles.items():
        missing = [m for m in list(train_models) + list(test_models) if m not in prof["models"]]
        if missing:
            from edgeslice.errors import EdgesliceError

            raise EdgesliceError(f"device {dev}: its load profile has no model {missing[0]!r} (it has "
                                 f"{', '.join(prof['models'])})")
        if kind is None:
            chosen[dev], scores[dev] = select(prof, list(train_models), train_loads)
        else:
            chosen[dev] = kind
        r = judge_device(prof, train_models, test_models, train_loads, chosen[dev])
        for k in pooled:
            pooled[k] += r[k]
            whole[k] += r["whole"][k]
        for lvl, d in r["by_load"].items():
            for k, v in d.items():
                by_load.setdefault(lvl, {"fcpm": [], "analytic": [], "profiled": []})[k] += v
    out = {}
    for k in pooled:
        w = _stats(whole[k])
        out[k] = {"per_layer": _stats(pooled[k]), "whole_model": {"mean": w["mean"], "min": w["min"], "n": w["n"]}}
    out["by_load"] = {f"{lvl:g}": {k: round(float(np.mean(v)), 4) if v else None for k, v in d.items()}
                      for lvl, d in sorted(by_load.items())}
    out["chosen_model"] = chosen
    out["selection_scores"] = scores
    out["train_models"] = list(train_models)
    out["test_models"] = list(test_models)
    out["train_loads"] = None if train_loads is None else list(train_loads)
    out["devices"] = list(profiles)
    return out
