"""``edgeslice predictor``: fit FCPM to a load profile (``fit``) and judge it on held-out models and loads (``report``)."""

from __future__ import annotations

import json
from pathlib import Path

from edgeslice.errors import EdgesliceError


def add(sub) -> None:
    p = sub.add_parser("predictor", help="the learned latency predictor (FCPM): fit it, report its accuracy")
    p.add_argument("action", choices=("fit", "report"))
    p.add_argument("--profiles", nargs="+", required=True,
                   help="load profiles (loadprofile-<device>.json, or the folder `testbed profile --loads` wrote)")
    p.add_argument("--train-models", default=None, help="models to fit on (default: all but --test-models)")
    p.add_argument("--test-models", default=None, help="report: held-out models (default: every third model by name)")
    p.add_argument("--train-loads", default=None,
                   help="load levels (percent) to fit on; the others are held out (report default: 0,40,80)")
    p.add_argument("--model", dest="kind", default=None, choices=("additive", "loglinear", "gbrt", "mlp"),
                   help="use this regressor instead of choosing by held-out error")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def _files(paths) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise EdgesliceError(f"{p}: no such file or folder (make load profiles with `edgeslice testbed profile C "
                                 "--models ... --loads 0,20,40,60,80 -o DIR`, then pass DIR)")
        found = sorted(p.glob("loadprofile-*.json")) if p.is_dir() else [p]
        if not found:
            raise EdgesliceError(f"{p}: no loadprofile-*.json in it (make them with `edgeslice testbed profile C "
                                 "--models ... --loads 0,20,40,60,80`)")
        for f in found:
            out[f.stem.removeprefix("loadprofile-")] = f
    return out


def _read(path: Path) -> dict:
    from edgeslice.cluster.model import LOAD_PROFILE_FORMAT, Profile

    data = Profile.read(path).data()
    if data.get("format") != LOAD_PROFILE_FORMAT:
        raise EdgesliceError(f"{path}: a profile taken without load; FCPM needs a load profile (`edgeslice testbed "
                             "profile C --models ... --loads 0,20,40,60,80`)")
    return data


def _split(text, what: str, have) -> list | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in items if t not in have]
    if bad:
        raise EdgesliceError(f"--{what}: no model {bad[0]!r} in the load profiles (they have {', '.join(have)})")
    return items


def _loads(text) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EdgesliceError(f"--train-loads {text!r}: give percents like 0,40,80") from None


def run(args) -> int:
    files = _files(args.profiles)
    profiles = {d: _read(f) for d, f in files.items()}
    have = sorted(set.intersection(*(set(p["models"]) for p in profiles.values())))
    test = _split(args.test_models, "test-models", have)
    train = _split(args.train_models, "train-models", have)
    if args.action == "fit":
        from edgeslice.cost.learned.fcpm import select

        train = train or [m for m in have if m not in (test or [])]
        loads = _loads(args.train_loads)
        for dev, prof in profiles.items():
            kind, scores = (args.kind, {}) if args.kind else select(prof, train, loads)
            prof["fcpm"] = {"model": kind, "train_models": train, "train_loads": loads, "selection_scores": scores}
            files[dev].write_text(json.dumps(prof))
            if not args.json:
                print(f"{dev}: FCPM {kind} fitted on {len(train)} models"
                      + (f" (held-out-model accuracy: {', '.join(f'{k} {v:.3f}' for k, v in scores.items())})" if scores else "")
                      + f"; name {files[dev]} as {dev}'s profile: in a cluster file to plan with it")
        if args.json:
            print(json.dumps({dev: p["fcpm"] for dev, p in profiles.items()}))
        return 0
    from edgeslice.cost.learned.report import report

    if test is None:
        test = [m for m in have if m not in (train or [])][1::3] if train is None else [m for m in have if m not in train]
    train = train or [m for m in have if m not in test]
    if not test or not train:
        raise EdgesliceError("predictor report needs at least one model to fit on and one held out "
                             f"(the profiles have {', '.join(have)})")
    loads = _loads(args.train_loads) if args.train_loads else [0.0, 40.0, 80.0]
    out = report(profiles, train, test, loads, args.kind)
    if args.json:
        print(json.dumps(out))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"predictor accuracy on held-out models ({', '.join(test)}) and loads (fitted at "
                    f"{', '.join(f'{v:g}' for v in loads)}%), {len(profiles)} device(s)")
    for col in ("cost model", "per layer mean", "min", "p5", "whole model mean", "min"):
        t.add_column(col)
    for k in ("fcpm", "analytic", "profiled"):
        pl, wm = out[k]["per_layer"], out[k]["whole_model"]
        f = lambda v: "-" if v is None else f"{100 * v:.1f}%"
        t.add_row(k, f(pl["mean"]), f(pl["min"]), f(pl["p5"]), f(wm["mean"]), f(wm["min"]))
    con = Console()
    con.print(t)
    con.print("per-layer mean by load: " + "; ".join(
        f"{lvl}%: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in d.items() if v is not None)
        for lvl, d in out["by_load"].items()), highlight=False)
    con.print(f"FCPM regressor per device: {out['chosen_model']}", highlight=False)
    return 0
