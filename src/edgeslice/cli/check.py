"""``edgeslice check``: run a plan in-process and compare with the whole model."""

from __future__ import annotations

import json


def add(sub) -> None:
    p = sub.add_parser("check", help="run the plan in-process and compare with the whole model")
    p.add_argument("plan")
    p.add_argument("--model", default=None, help="use this model instead of the plan's (it must match)")
    p.add_argument("--weights", default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the random input")
    p.add_argument("--json", action="store_true")
    p.set_defaults(fn=run)


def run(args) -> int:
    from edgeslice.execute.check import check_plan
    from edgeslice.plan.plan import Plan

    plan = Plan.load(args.plan)
    res = check_plan(plan, model=args.model, weights=args.weights, seed=args.seed)
    if args.json:
        print(json.dumps(res))
    else:
        verdict = "OK" if res["ok"] else "MISMATCH"
        print(f"{verdict}: rel_err {res['rel_err']:.2e} (max abs {res['max_abs_err']:.2e}); FLOPs program "
              f"{res['flops_program']:,} vs model {res['flops_model']:,}; {res['bytes_transferred']:,} bytes transferred")
    return 0 if res["ok"] else 1
