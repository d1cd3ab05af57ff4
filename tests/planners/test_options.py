"""Typed planner options: declared per planner, validated by the registry, recorded in the plan, flags generated.

The defaults below are what each planner function used before the options
were typed (its keyword defaults); a new planner must add its row.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math

import pytest

from edgeslice.errors import EdgesliceError, OptionError
from edgeslice.plan.plan import Plan
from edgeslice.planners import make_plan, planner_options, planners
from edgeslice.planners.options import NoOptions, PlannerOptions, describe, flag, option, record, specs

STANDARD = "2x1,3x1,4x1,5x1,6x1,7x1,8x1,2x2,2x3,3x3"
DEFAULTS = {
    "random": {"seed": 0, "max_segments": 8, "max_parts": 4},
    "local": {},
    "edge": {},
    "neurosurgeon": {},
    "layerwise": {"objective": "latency", "max_devices": 6},
    "dads": {},
    "bruteforce": {"limit": 200_000},
    "ftp": {"n": None, "m": None, "layers": None},
    "modnn": {},
    "aofl": {"max_block": 8},
    "decnn": {"groups": None, "stem": "auto"},
    "nfl": {},
    "fl-bf": {"limit": 2e6, "max_block": 12, "layouts": STANDARD},
    "fl-dpls": {"max_block": 12, "layouts": STANDARD, "polish": 1200},
    "fl-psomw": {"swarm": 24, "iterations": 40, "seed": 0, "patience": None, "polish": 1200, "slots": 3,
                 "max_block": 12, "layouts": STANDARD},
    "hvpm": {"max_block": 8, "max_subset": 5, "seeds": True},
    "mtl-a3c": {"agent": None, "deadline_s": None},
}


@pytest.fixture(scope="module")
def alexnet(traced):
    return traced("alexnet", (3, 64, 64))[0]


def one_line(exc) -> str:
    msg = str(exc.value if hasattr(exc, "value") else exc)
    assert msg and "\n" not in msg and "Traceback" not in msg, msg
    return msg


# ---- declarations ---------------------------------------------------------------------

def test_every_planner_declares_its_options_with_the_old_defaults():
    reg = planners()
    assert set(reg) == set(DEFAULTS)
    for name, info in reg.items():
        cls = info.options
        assert issubclass(cls, PlannerOptions) and dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen
        assert {s.name: s.default for s in specs(cls)} == DEFAULTS[name], name
        assert dataclasses.asdict(cls()) == DEFAULTS[name], name
        if not DEFAULTS[name]:
            assert cls is NoOptions
        for s in specs(cls):
            assert s.help and "\n" not in s.help, (name, s.name)
        # (graph, cluster, cost, opts): no **kwargs swallowing misspelt options
        params = list(inspect.signature(info.fn).parameters.values())
        assert [p.name for p in params] == ["graph", "cluster", "cost", "opts"], name
        assert not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in params), name


def test_declarations_agree_with_the_code_they_configure():
    from edgeslice.planners._shared.chain import OBJECTIVES
    from edgeslice.planners.fl.exact import _layouts
    from edgeslice.planners.fl.space import LAYOUTS

    objective = next(s for s in specs(planners()["layerwise"].options) if s.name == "objective")
    assert objective.choices == OBJECTIVES
    assert _layouts(STANDARD) == LAYOUTS


def test_a_bad_declaration_is_refused_at_registration():
    from edgeslice.planners import register

    @dataclasses.dataclass(frozen=True)
    class NoHelp(PlannerOptions):
        x: int = 3

    @dataclasses.dataclass(frozen=True)
    class Devices(PlannerOptions):
        devices: int = option(2, "clashes with make_plan(devices=...)")

    @dataclasses.dataclass
    class NotOptions:  # (a non-frozen subclass of PlannerOptions is refused by dataclasses itself)
        x: int = option(3, "x")

    @dataclasses.dataclass(frozen=True)
    class ListType(PlannerOptions):
        x: list = option((), "a type the CLI cannot parse")

    for cls in (NoHelp, Devices, NotOptions, ListType):
        with pytest.raises(TypeError):
            register("bad", "never registered", options=cls)
    assert "bad" not in planners()


# ---- validation (API) -----------------------------------------------------------------

def test_unknown_option_names_the_nearest_and_every_valid_one(alexnet):
    with pytest.raises(OptionError) as err:
        make_plan("fl-psomw", alexnet, devices=2, iteration=5)
    msg = one_line(err)
    assert msg.startswith("fl-psomw has no option 'iteration'; did you mean 'iterations'? Its options: swarm, iterations")
    assert "max_block, layouts" in msg


def test_an_option_of_another_planner_is_one_clear_line(alexnet):
    with pytest.raises(EdgesliceError) as err:
        make_plan("random", alexnet, devices=4, swarm=5)
    msg = one_line(err)
    assert "random has no option 'swarm'" in msg and "fl-psomw" in msg and "seed, max_segments, max_parts" in msg
    with pytest.raises(OptionError, match="nfl has no option 'seed'.*takes no options"):
        make_plan("nfl", alexnet, devices=2, seed=1)


BAD_VALUES = [
    ("fl-psomw", "swarm", math.nan), ("fl-psomw", "swarm", math.inf), ("fl-psomw", "swarm", -1), ("fl-psomw", "swarm", 0),
    ("fl-psomw", "swarm", 1), ("fl-psomw", "iterations", 0), ("fl-psomw", "iterations", 2.5),
    ("fl-psomw", "seed", -1), ("fl-psomw", "patience", 0), ("fl-psomw", "slots", True), ("fl-psomw", "polish", -1),
    ("fl-bf", "limit", math.nan), ("fl-bf", "limit", math.inf), ("fl-bf", "limit", -1), ("fl-bf", "limit", 0),
    ("fl-bf", "limit", "1e6"), ("fl-bf", "max_block", 0), ("fl-bf", "layouts", "2y1"), ("fl-bf", "layouts", "0x2"),
    ("fl-dpls", "max_block", math.inf), ("bruteforce", "limit", 0), ("bruteforce", "limit", -1),
    ("bruteforce", "limit", math.inf), ("aofl", "max_block", -1), ("aofl", "max_block", None),
    ("random", "seed", math.nan), ("random", "max_parts", 1), ("layerwise", "objective", "fastest"),
    ("layerwise", "max_devices", 0), ("layerwise", "max_devices", 13), ("ftp", "n", 0), ("ftp", "layers", -1),
]


@pytest.mark.parametrize("planner,name,value", BAD_VALUES)
def test_bad_value_is_one_line_naming_option_value_and_range(alexnet, planner, name, value):
    with pytest.raises(OptionError) as err:
        make_plan(planner, alexnet, devices=2, **{name: value})
    msg = one_line(err)
    spec = next(s for s in specs(planners()[planner].options) if s.name == name)
    shown = f"{value:g}" if isinstance(value, float) else repr(value)
    assert msg.startswith(f"{planner}: option {name!r} ({flag(name)}) must be ") and msg.endswith(f", not {shown}"), msg
    if spec.parse is None:
        assert spec.range_text() in msg


def test_ftp_n_and_m_go_together(alexnet):
    for given in ({"n": 4}, {"m": 2}):
        with pytest.raises(OptionError) as err:
            make_plan("ftp", alexnet, devices=4, **given)
        assert "'n' and 'm'" in one_line(err) and "give both, or neither" in str(err.value)
    plan = make_plan("ftp", alexnet, devices=4, n=4, m=1)
    assert len(plan.segments[0].parts) == 4 and dict(plan.options)["n"] == 4


def test_values_are_normalised_and_hand_made_options_are_checked_too():
    cls = planners()["fl-psomw"].options
    o = planner_options("fl-psomw", swarm=2e1, layouts=[(2, 1), "2x2"])
    assert o.swarm == 20 and type(o.swarm) is int and o.layouts == "2x1,2x2"
    assert planner_options("fl-bf", limit=10).limit == 10.0
    with pytest.raises(OptionError, match=r"option 'swarm' \(--swarm\) must be an integer >= 2, not 0"):
        cls(swarm=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.swarm = 3


def test_devices_keyword_still_works(alexnet):
    plan = make_plan("random", alexnet, devices=4, seed=3)
    assert len(plan.devices) == 4 and dict(plan.options)["seed"] == 3


# ---- recorded in the plan -----------------------------------------------------------

@pytest.mark.parametrize("planner,given", [
    ("random", {"seed": 5, "max_parts": 3}),
    ("layerwise", {"objective": "throughput"}),
    ("ftp", {}),
    ("aofl", {"max_block": 3}),
    ("nfl", {}),
    ("fl-psomw", {"swarm": 4, "iterations": 2, "polish": 20, "seed": 1, "layouts": "2x1,3x1,2x2"}),
])
def test_options_are_recorded_in_full_and_round_trip(alexnet, tmp_path, planner, given):
    from edgeslice.cluster.load import resolve_cluster

    cluster = resolve_cluster("iot-edge")
    plan = make_plan(planner, alexnet, cluster, **given)
    opts = dict(plan.options)
    want = {**DEFAULTS[planner], **given}
    if planner == "ftp":  # left to the planner: recorded as what it chose
        assert all(isinstance(opts[k], int) for k in ("n", "m", "layers"))
        want.update({k: opts[k] for k in ("n", "m", "layers")})
    assert opts == want
    assert list(plan.options) == sorted(plan.options)
    assert [type(v) for v in opts.values()] == [type(v) for v in json.loads(json.dumps(opts)).values()]
    plan.save(tmp_path / "p.json")
    back = Plan.load(tmp_path / "p.json")
    assert back.options == plan.options
    assert json.loads((tmp_path / "p.json").read_text())["planner"]["options"] == opts
    # the recorded options make the same plan again
    again = make_plan(planner, alexnet, cluster, **opts)
    assert again.segments == plan.segments and again.options == plan.options


def test_record_keeps_only_declared_fields_and_fills_none_from_the_planner():
    cls = planners()["ftp"].options
    assert record(cls(), (("n", 2), ("m", 3), ("other", 1))) == (("layers", None), ("m", 3), ("n", 2))
    assert record(cls(n=1, m=4), (("n", 2), ("m", 3))) == (("layers", None), ("m", 4), ("n", 1))


# ---- the command line ---------------------------------------------------------------

def _cli(capsys, *argv):
    from edgeslice.cli import main

    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err.strip().splitlines()


@pytest.mark.parametrize("argv,needles", [
    (["plan", "--model", "alexnet", "--planner", "fl-psomw", "--iteration", "5"],
     ["fl-psomw has no option --iteration; did you mean --iterations?", "--swarm, --iterations"]),
    (["plan", "--model", "alexnet", "--planner", "fl-psomw", "--iter", "5"], ["did you mean --iterations?"]),
    (["plan", "--model", "alexnet", "--planner", "random", "--swarm", "5"],
     ["random has no option --swarm", "fl-psomw", "--seed, --max-segments, --max-parts"]),
    (["plan", "--model", "alexnet", "--planner", "fl-psomw", "--swarm", "0"], ["'swarm' (--swarm)", ">= 2", "not 0"]),
    (["plan", "--model", "alexnet", "--planner", "fl-bf", "--limit", "nan"], ["'limit' (--limit)", "> 0", "not nan"]),
    (["plan", "--model", "alexnet", "--planner", "fl-bf", "--limit", "inf"], ["'limit'", "not inf"]),
    (["plan", "--model", "alexnet", "--planner", "bruteforce", "--limit", "-1"], ["'limit'", "not -1"]),
    (["plan", "--model", "alexnet", "--planner", "fl-dpls", "--max-block", "2.5"], ["'max_block'", "not 2.5"]),
    (["plan", "--model", "alexnet", "--planner", "ftp", "--n", "4"], ["'n' and 'm'", "n=4 without m"]),
    (["plan", "--model", "alexnet", "--planner", "fl-bf", "--limit", "abc"], ["--limit", "'abc' is not a number"]),
    (["plan", "--model", "alexnet", "--ouput", "x.json"], ["--ouput", "did you mean --output?"]),
    (["plan", "--model", "alexnet", "--planner", "nosuch", "--limt", "3"], ["unknown planner 'nosuch'"]),
    (["compare", "--model", "alexnet", "--iteration", "3"], ["--iteration", "did you mean --iterations (fl-psomw)?"]),
    (["compare", "--model", "alexnet", "--planners", "local,edge", "--swarm", "3"],
     ["no planner compared takes --swarm", "fl-psomw"]),
    (["compare", "--model", "alexnet", "--planners", "aofl,fl-dpls", "--max-block", "0"], ["aofl: option 'max_block'"]),
])
def test_cli_option_errors_are_one_line_exit_2(capsys, argv, needles):
    code, _, err = _cli(capsys, *argv)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("edgeslice: error: ")
    for n in needles:
        assert n in err[0], (n, err[0])


def _subparser(command: str):
    import argparse

    from edgeslice.cli import build_parser

    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("command", ["plan", "compare"])
def test_generated_flags_match_the_declarations(command):
    from edgeslice.cli._options import PREFIX, declared

    p = _subparser(command)
    assert p.allow_abbrev is False
    actions = {a.dest[len(PREFIX):]: a for a in p._actions if a.dest.startswith(PREFIX)}
    takers: dict[str, list[str]] = {}
    for name, info in planners().items():
        for s in specs(info.options):
            takers.setdefault(s.name, []).append(name)
    assert set(actions) == set(takers) == set(declared())
    for name, a in actions.items():
        spec = next(s for s in specs(planners()[takers[name][0]].options) if s.name == name)
        negated = ["--no-" + flag(name)[2:]] if spec.kind == "bool" else []  # hvpm's --seeds / --no-seeds
        assert a.option_strings == [flag(name)] + negated and a.default is None
        for planner in takers[name]:
            assert planner in a.help, (name, planner)
        assert spec.help.replace("%", "%%") in a.help
        if spec.choices:
            assert a.choices == list(spec.choices)
        elif spec.kind in ("int", "float"):
            assert a.type("7") == 7 and a.type("2e6") == 2e6
    assert flag("max_block") == "--max-block"
    assert "aofl" in actions["max_block"].help and "fl-psomw" in actions["max_block"].help


def test_plan_passes_only_the_options_given(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _cli(capsys, "plan", "--model", "alexnet", "--input", "3x64x64", "--devices", "2",
                        "--planner", "layerwise", "--max-devices", "2", "-o", "p.json")
    assert code == 0, err
    opts = Plan.load(tmp_path / "p.json").options
    assert dict(opts) == {"objective": "latency", "max_devices": 2}


def test_planners_lists_every_option(capsys):
    code, out, _ = _cli(capsys, "planners")
    assert code == 0
    assert "swarm=24 iterations=40 seed=0 patience=None" in out and "limit=2000000" in out
    code, out, _ = _cli(capsys, "planners", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == list(planners())
    for r in rows:
        assert set(r) == {"name", "summary", "exact", "options"}
        assert [o["name"] for o in r["options"]] == list(DEFAULTS[r["name"]])
        for o in r["options"]:
            assert {"name", "type", "default", "help"} <= set(o) and o["default"] == DEFAULTS[r["name"]][o["name"]]
    fl = next(r for r in rows if r["name"] == "fl-psomw")
    assert next(o for o in fl["options"] if o["name"] == "patience")["type"] == "int | None"
    assert describe(planners()["layerwise"].options)[0]["choices"] == ["latency", "throughput"]
