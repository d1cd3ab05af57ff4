"""The ``edgeslice`` command line: bad input gets one clear line, never a traceback.

Every bad input must end with a non-zero status and ONE line on stderr,
``edgeslice: error: ...``, naming the thing at fault; never a traceback
(DESIGN.md, style rule 9).  The happy path (models, plan, show, check) is
checked too.

Most commands run in-process through ``edgeslice.cli.main`` (what the console
script calls); a few run as real subprocesses of the installed script.  One
module fixture runs them all in a temporary working directory; the tests then
only look at the results.  The plans
that the error cases edit are edits of a real ``edgeslice plan`` output
(AlexNet at 3x64x64, seed 5, which cuts segments spatially and by channels).
Every command that traces a model costs 4-6 s of CPU (importing torch and
torch._dynamo dominates), so the cases are chosen to keep the file under a minute
on two cores.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _cli import EDGESLICE, TIMEOUT, Result, _run, assert_user_error  # noqa: F401 - shared with the other CLI tests

ZOO = {"vgg16", "resnet18", "resnet50", "mobilenet_v2", "alexnet", "yolov2", "googlenet", "shufflenet_v2", "yolov3_tiny", "resnet32", "nin",
       "unet_small", "resnet50_decoupled", "resnet50_decoupled_x175", "resnet18_decoupled", "vgg16_bn_decoupled"}


# A structurally complete plan file: every malformed one below breaks exactly one thing.
MINIMAL = {
    "format": "edgeslice-plan",
    "version": 1,
    "model": {"spec": "alexnet", "input": [3, 64, 64], "batch": 1, "fingerprint": "0000000000000000", "weights": None},
    "devices": ["d0", "d1"],
    "source": "d0",
    "sink": "d0",
    "segments": [
        {"layers": ["features_0", "features_2"], "cut": "spatial",
         "parts": [{"device": "d0", "rows": [0, 3], "cols": [0, 7]}, {"device": "d1", "rows": [3, 7], "cols": [0, 7]}]},
        {"layers": ["features_3", "classifier_6"], "cut": "whole", "parts": [{"device": "d0"}]},
    ],
}


def _minimal(edit) -> str:
    d = copy.deepcopy(MINIMAL)
    edit(d)
    return json.dumps(d, indent=2)


def _write_inputs(work: Path) -> None:
    (work / "m.py").write_text("def other():\n    ...\n")
    (work / "not_json.json").write_text('{"format": "edgeslice-plan",\n  this is not json\n')
    (work / "empty_obj.json").write_text("{}\n")
    (work / "no_parts.json").write_text(_minimal(lambda d: d["segments"][1].pop("parts")))
    (work / "rows_one.json").write_text(_minimal(lambda d: d["segments"][0]["parts"][1].__setitem__("rows", [1])))
    (work / "version99.json").write_text(_minimal(lambda d: d.__setitem__("version", 99)))


# Commands that need nothing but the files above.
INDEPENDENT = {  # started in this order: the longest first
    "models": ["models", "--json"],
    "plan_alexnet": ["plan", "--model", "alexnet", "--input", "3x64x64", "--devices", "3", "--seed", "5", "-o", "plan.json"],
    "plan_vgg16": ["plan", "--model", "vgg16", "--input", "3x32x32", "--devices", "2", "--seed", "1", "-o", "vgg16.json"],
    "unknown_model": ["plan", "--model", "nosuchnet", "-o", "x.json"],
    "no_factory": ["plan", "--model", "m.py:factory", "--input", "3x32x32", "-o", "x.json"],
    "missing_file": ["plan", "--model", "missing.py:f", "--input", "3x32x32", "-o", "x.json"],
    "show_missing_plan": ["show", "does_not_exist.json"],
    "check_missing_plan": ["check", "does_not_exist.json"],
    "not_json": ["show", "not_json.json"],
    "empty_obj": ["check", "empty_obj.json"],
    "no_parts": ["show", "no_parts.json"],
    "rows_one": ["check", "rows_one.json"],
    "version99": ["show", "version99.json"],
    "input_zero": ["plan", "--model", "alexnet", "--input", "3x0x5"],
    "input_abc": ["plan", "--model", "alexnet", "--input", "abc"],
    "input_too_small": ["plan", "--model", "alexnet", "--input", "3x8x8", "-o", "x.json"],
}


def _first(d: dict, cuts: tuple[str, ...]) -> int:
    return next(i for i, s in enumerate(d["segments"]) if s["cut"] in cuts)


def _shrink(d: dict) -> None:
    """Shrink part 0 of the first spatial/channel segment by one row/column/channel: a gap."""
    part = d["segments"][_first(d, ("spatial", "channel"))]["parts"][0]
    field = next(f for f in ("rows", "cols", "channels") if f in part and part[f][1] - part[f][0] >= 2)
    part[field][1] -= 1


def _overlap(d: dict) -> None:
    """Give part 1 of the first spatial/channel segment the ranges of part 0."""
    parts = d["segments"][_first(d, ("spatial", "channel"))]["parts"]
    parts[1] = {**parts[0], "device": parts[1]["device"]}


def _unknown_device(d: dict) -> None:
    d["segments"][-1]["parts"][0]["device"] = "d9"


def _swap_first_two(d: dict) -> None:
    d["segments"][0], d["segments"][1] = d["segments"][1], d["segments"][0]


def _drop_second(d: dict) -> None:
    del d["segments"][1]


def _spatial_over_linear(d: dict) -> None:
    """Make AlexNet's last Linear (classifier_6) a segment of its own, cut spatially."""
    last = d["segments"][-1]
    if last["layers"][1] != "classifier_6":
        raise ValueError(f"the last segment ends at {last['layers'][1]!r}, not classifier_6")
    fc = {"layers": ["classifier_6", "classifier_6"], "cut": "spatial", "parts": [{"device": "d0", "rows": [0, 1], "cols": [0, 1]}]}
    if last["layers"][0] == "classifier_6":
        d["segments"][-1] = fc
    else:
        d["segments"][-1:] = [{"layers": [last["layers"][0], "classifier_5"], "cut": "whole", "parts": [{"device": "d0"}]}, fc]


# Edits of the real AlexNet plan, each checked with `show` or `check` (both validate).
EDITS = {
    "gap": (_shrink, "check"),
    "overlap": (_overlap, "show"),
    "unknown_device": (_unknown_device, "check"),
    "out_of_order": (_swap_first_two, "show"),
    "missing_segment": (_drop_second, "check"),
    "spatial_linear": (_spatial_over_linear, "check"),
}


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """Run every command once; return (work dir, {case: Result}, {case: edited plan dict})."""
    work = tmp_path_factory.mktemp("cli")
    _write_inputs(work)
    edited: dict[str, dict] = {}
    edit_errors: list[str] = []
    workers = max(2, min(8, os.cpu_count() or 2))
    with ThreadPoolExecutor(workers) as pool:
        futs = {k: pool.submit(_run, work, a) for k, a in INDEPENDENT.items()}
        if futs["plan_alexnet"].result().returncode == 0:
            base = json.loads((work / "plan.json").read_text())
            for k, (edit, cmd) in EDITS.items():
                d = copy.deepcopy(base)
                try:
                    edit(d)
                except Exception as exc:  # the planner changed the plan's shape: fail that case only
                    edit_errors.append(f"{k}: {exc!r}")
                    continue
                edited[k] = d
                (work / f"{k}.json").write_text(json.dumps(d, indent=2))
                futs[k] = pool.submit(_run, work, [cmd, f"{k}.json"])
            futs["show"] = pool.submit(_run, work, ["show", "plan.json"])
            futs["show_program"] = pool.submit(_run, work, ["show", "plan.json", "--program"])
            futs["check_json"] = pool.submit(_run, work, ["check", "plan.json", "--json"])
        if futs["plan_vgg16"].result().returncode == 0:
            futs["other_model"] = pool.submit(_run, work, ["check", "vgg16.json", "--model", "resnet50"])
        results = {k: f.result() for k, f in futs.items()}
    results["edit errors"] = edit_errors
    return work, results, edited


def _result(cli, case: str) -> Result:
    _, results, _ = cli
    if case not in results:
        made = "\n".join(str(results.get(k)) for k in ("plan_alexnet", "plan_vgg16"))
        pytest.fail(f"case {case!r} did not run: the plan it needs was not made or could not be edited "
                    f"({results.get('edit errors')}):\n{made}")
    return results[case]


# ---- models and files -------------------------------------------------------

def test_unknown_model(cli):
    msg = assert_user_error(_result(cli, "unknown_model"), "'nosuchnet'")
    assert "vgg16" in msg and "file.py:factory" in msg  # says what would work


def test_model_file_without_the_factory(cli):
    msg = assert_user_error(_result(cli, "no_factory"), "m.py", "'factory'")
    assert "def factory()" in msg  # says how to fix it


def test_missing_model_file(cli):
    assert_user_error(_result(cli, "missing_file"), "'missing.py'", "not found")


@pytest.mark.parametrize("case", ["show_missing_plan", "check_missing_plan"])
def test_unreadable_plan(cli, case):
    assert_user_error(_result(cli, case), "does_not_exist.json", "cannot read plan file")


# ---- malformed plan files -------------------------------------------------------

@pytest.mark.parametrize(
    "case,needles",
    [
        ("not_json", ("not_json.json", "not valid JSON", "line 2")),
        ("empty_obj", ("empty_obj.json", "not an edgeslice plan")),
        ("no_parts", ("no_parts.json", "segment 1", "'parts'")),
        ("rows_one", ("rows_one.json", "segment 0", "part 1", "'rows'", "[lo, hi]")),
        ("version99", ("version99.json", "version 99", "re-run `edgeslice plan`")),
    ],
)
def test_malformed_plan(cli, case, needles):
    assert_user_error(_result(cli, case), *needles)


def test_plan_made_for_another_model(cli):
    assert_user_error(_result(cli, "other_model"), "made for model 'vgg16'", "'resnet50'")


# ---- plans that load but do not fit their model -----------------------------------

def _seg_label(d: dict, i: int) -> str:
    first, last = d["segments"][i]["layers"]
    return f"segment {i} ({first}..{last})"


def test_parts_leave_a_gap(cli):
    r = _result(cli, "gap")
    d = cli[2]["gap"]
    i = _first(d, ("spatial", "channel"))
    assert_user_error(r, _seg_label(d, i), "must cover the whole output")


def test_parts_overlap(cli):
    r = _result(cli, "overlap")
    d = cli[2]["overlap"]
    i = _first(d, ("spatial", "channel"))
    assert_user_error(r, _seg_label(d, i), "parts 0 and 1 overlap")


def test_unknown_device(cli):
    r = _result(cli, "unknown_device")
    d = cli[2]["unknown_device"]
    msg = assert_user_error(r, "'d9'", f"{_seg_label(d, len(d['segments']) - 1)} part 0")
    assert "d0, d1, d2" in msg


def test_segments_out_of_order(cli):
    r = _result(cli, "out_of_order")
    d = cli[2]["out_of_order"]
    assert_user_error(r, _seg_label(d, 0), "must start at layer 'features_0'")


def test_gap_in_layer_coverage(cli):
    r = _result(cli, "missing_segment")
    d = cli[2]["missing_segment"]
    base = json.loads((cli[0] / "plan.json").read_text())
    want = base["segments"][1]["layers"][0]
    assert_user_error(r, _seg_label(d, 1), f"must start at layer {want!r}")


def test_spatial_cut_over_a_linear_layer_is_refused(cli):
    r = _result(cli, "spatial_linear")
    d = cli[2]["spatial_linear"]
    msg = assert_user_error(r, _seg_label(d, len(d["segments"]) - 1),
                            "cannot be cut spatially", "'classifier_6' (linear")
    assert "'whole'" in msg  # says how to fix it


# ---- argparse-level errors --------------------------------------------------------

@pytest.mark.parametrize("case,text", [("input_zero", "3x0x5"), ("input_abc", "abc")])
def test_bad_input_shape(cli, case, text):
    r = _result(cli, case)
    assert r.returncode != 0, r
    assert "Traceback" not in r.stdout + r.stderr, r
    assert f"input shape '{text}'" in r.stderr, r
    assert "3x224x224" in r.stderr  # shows the expected form


def test_input_too_small_for_the_model(cli):
    # AlexNet's third max-pool has nothing left to pool at 8x8: a user error, not a bug in the user's model.
    r = _result(cli, "input_too_small")
    assert_user_error(r, "3x8x8")
    assert "too small" in r.stderr and "--input" in r.stderr


# ---- the happy path -----------------------------------------------------------------

def test_models_json_lists_the_zoo(cli):
    r = _result(cli, "models")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r
    rows = json.loads(r.stdout)
    assert {row["model"] for row in rows} == ZOO and len(rows) == len(ZOO)
    for row in rows:
        assert row["flops"] > 0 and row["params"] > 0 and row["layers"] > 0, row
        assert len(row["input"]) == 3 and all(v > 0 for v in row["input"]), row


def test_plan_writes_a_loadable_file(cli):
    r = _result(cli, "plan_alexnet")
    assert r.returncode == 0 and not r.stderr.strip(), r
    assert r.stdout.startswith("wrote plan.json: alexnet 3x64x64 batch 1"), r
    d = json.loads((cli[0] / "plan.json").read_text())
    assert d["format"] == "edgeslice-plan" and d["model"]["spec"] == "alexnet"
    assert d["model"]["input"] == [3, 64, 64] and d["devices"] == ["d0", "d1", "d2"]
    # the error cases edit this plan: they need a spatial or channel segment and at least 3 segments
    assert any(s["cut"] in ("spatial", "channel") for s in d["segments"]) and len(d["segments"]) >= 3
    assert d["segments"][-1]["layers"][1] == "classifier_6"


def test_show_describes_every_segment(cli):
    r = _result(cli, "show")
    assert r.returncode == 0 and not r.stderr.strip(), r
    d = json.loads((cli[0] / "plan.json").read_text())
    assert "alexnet" in r.stdout and "FLOPs: program" in r.stdout
    for i, s in enumerate(d["segments"]):
        assert f"segment {i} · {s['layers'][0]}..{s['layers'][1]}" in r.stdout, r


def test_show_program_prints_its_text_form(cli):
    r = _result(cli, "show_program")
    assert r.returncode == 0 and not r.stderr.strip(), r
    assert r.stdout.startswith("edgeslice-program 1"), r


def test_check_json_prints_one_object(cli):
    r = _result(cli, "check_json")
    assert r.returncode == 0 and not r.stderr.strip(), r
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r
    res = json.loads(lines[0])
    assert isinstance(res, dict)
    for key in ("max_abs_err", "rel_err", "flops_model", "flops_program", "bytes_transferred"):
        assert key in res, key
    assert res["rel_err"] <= 1e-5
    assert res["flops_model"] > 0 and res["flops_program"] >= res["flops_model"]
    assert res["bytes_transferred"] > 0  # the plan moves data between d0, d1 and d2
    assert res["ok"] is True


@pytest.mark.parametrize("args", [
    ["simulate", "p.json", "--requests", "3", "--interval", "nan"],  # used to hang forever
    ["simulate", "p.json", "--requests", "3", "--interval", "inf"],
    ["simulate", "p.json", "--interval", "-1"],
    ["run", "p.json", "--timeout", "0"],
    ["run", "p.json", "--timeout", "nan"],
    ["profile", "--model", "alexnet", "--min-time", "-1"],
    ["bench", "simulate", "--seconds", "0"],
    ["bench", "fl", "--bf-limit", "nan"],
])
def test_numbers_that_are_not_numbers_are_refused_at_the_edge(tmp_path, args):
    r = _run(tmp_path, args)  # refused while parsing: no plan file is read, nothing starts
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r
    assert args[-2] in lines[0] and repr(args[-1]) in lines[0] and "finite number" in lines[0]


# ---- issue 12 classes: model code that misbehaves, weights, outputs that would fail late, odd files, the worker

MODEL_FILE = '''import sys
from torch import nn


def make():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())


def bye():
    sys.exit(7)
'''


def _one_line_refusal(r, *needles):
    assert_user_error(r, *needles)


@pytest.mark.parametrize("spec,needle", [
    ("net.py:bye", "sys.exit(7)"),          # used to end the CLI with status 7 and no message
    ("exits.py:make", "sys.exit(3)"),        # exits while being imported
    ("os:abort", "not a Python function or class"),  # used to abort the process
    ("net.py:nothere", "no callable named 'nothere'"),
])
def test_model_code_that_misbehaves_is_refused_in_one_line(tmp_path, spec, needle):
    (tmp_path / "net.py").write_text(MODEL_FILE)
    (tmp_path / "exits.py").write_text("import sys\nsys.exit(3)\n")
    _one_line_refusal(_run(tmp_path, ["layers", "--model", spec, "--input", "3x16x16"]), needle)


def test_a_relative_model_file_is_recorded_absolute_so_the_plan_works_from_anywhere(tmp_path):
    (tmp_path / "net.py").write_text(MODEL_FILE)
    r = _run(tmp_path, ["plan", "--model", "net.py:make", "--input", "3x16x16", "--devices", "2", "-o", "p.json"])
    assert r.returncode == 0, r
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _run(elsewhere, ["check", str(tmp_path / "p.json"), "--json"])
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r


@pytest.mark.parametrize("content,needles", [
    ("list", ["holds a list, not a state_dict"]),
    ("wrongkeys", ["missing 0.bias, 0.weight", "unexpected x"]),
    ("shape", ["shape of 0.weight is (2, 3, 3, 3)"]),
    ("garbage", ["could not read weights file"]),
])
def test_weights_errors_are_one_line_and_name_the_keys(tmp_path, content, needles):
    import torch

    (tmp_path / "net.py").write_text(MODEL_FILE)
    w = tmp_path / "w.pt"
    if content == "list":
        torch.save([1, 2], w)
    elif content == "wrongkeys":
        torch.save({"x": torch.zeros(1)}, w)
    elif content == "shape":
        torch.save({"0.weight": torch.zeros(2, 3, 3, 3), "0.bias": torch.zeros(4)}, w)
    else:
        w.write_bytes(b"not a torch file at all")
    r = _run(tmp_path, ["layers", "--model", "net.py:make", "--input", "3x16x16", "--weights", "w.pt"])
    _one_line_refusal(r, *needles)
    assert "weights_only=False" not in r.stderr


@pytest.fixture
def small_plan(tmp_path):
    r = _run(tmp_path, ["plan", "--model", "alexnet", "--input", "3x64x64", "--devices", "2", "-o", "p.json"])
    assert r.returncode == 0, r
    return tmp_path


@pytest.mark.parametrize("args,needle", [
    (["simulate", "p.json", "--gantt", "out.txt"], "a chart is .png"),
    (["run", "p.json", "--gantt", "run.txt"], "a chart is .png"),  # used to fail only after the whole run
    (["simulate", "p.json", "--gantt", "no/such/dir/x.png"], "cannot write the chart"),
    (["run", "p.json", "--trace", "no/such/dir/t.json"], "cannot write the trace file"),
])
def test_outputs_are_checked_before_the_work_starts(small_plan, args, needle):
    _one_line_refusal(_run(small_plan, args), needle)
    assert not list(small_plan.glob("edgeslice-run-*"))


@pytest.mark.parametrize("text,ok,needle", [
    ("[" * 100_000 + "]" * 100_000, False, "nested too deeply"),  # used to be a RecursionError
    ('{"a":' * 50_000 + "1" + "}" * 50_000, False, "nested too deeply"),
    ("\ufeff", True, ""),  # a UTF-8 byte-order mark before a valid plan: accepted, as cluster files are
])
def test_pathological_plan_files(small_plan, text, ok, needle):
    path = small_plan / "odd.json"
    path.write_text(text + (small_plan / "p.json").read_text() if ok else text, encoding="utf-8")
    r = _run(small_plan, ["show", "odd.json", "--json"])
    if ok:
        assert r.returncode == 0 and json.loads(r.stdout)["devices"], r
    else:
        _one_line_refusal(r, needle, "odd.json")


def test_yaml_numbers_without_a_dot_are_numbers(tmp_path):
    (tmp_path / "c.yaml").write_text("name: tiny\ndevices:\n  - {name: a, gflops: 5e1, memory_mb: 4e3}\n"
                                     "  - {name: b, gflops: 1e2}\nlinks:\n  default: {bandwidth_mbps: 1e2}\n")
    from edgeslice.cluster.load import load_cluster

    c = load_cluster(tmp_path / "c.yaml")
    assert c.device("a").gflops == 50.0 and c.device("a").memory_mb == 4000.0 and c.default_link.bandwidth_mbps == 100.0


@pytest.mark.parametrize("extra,needle", [
    (["--rank", "5", "--world", "2"], "--rank 5 must be between 0 and --world - 1 = 1"),  # used to be an IndexError
    (["--rank", "-1", "--world", "2"], "--rank -1 must be between 0"),
    (["--rank", "0", "--world", "3"], "the plan has 2 devices"),
])
def test_the_worker_entry_point_takes_plan_and_refuses_bad_ranks(small_plan, extra, needle):
    p = subprocess.run([EDGESLICE, "worker", "--plan", "p.json", "--out", "w", *extra], cwd=small_plan,
                       capture_output=True, text=True, timeout=TIMEOUT)
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0 and "Traceback" not in p.stderr and len(lines) <= 2, p.stderr
    assert needle in lines[-1], p.stderr


def test_run_never_clears_a_folder_it_did_not_make(small_plan):
    home = small_plan / "home"
    home.mkdir()
    (home / "worker-notes.txt").write_text("mine")  # a name the old launcher deleted
    _one_line_refusal(_run(small_plan, ["run", "p.json", "--out", "home"]), "already holds files edgeslice did not write",
                      "worker-notes.txt")
    assert (home / "worker-notes.txt").read_text() == "mine"
    (small_plan / "afile").write_text("x")
    _one_line_refusal(_run(small_plan, ["run", "p.json", "--out", "afile"]), "is a file, not a folder")


def test_a_changed_model_file_is_refused(tmp_path):
    (tmp_path / "net.py").write_text(MODEL_FILE)
    assert _run(tmp_path, ["plan", "--model", "net.py:make", "--input", "3x16x16", "--devices", "2", "-o", "p.json"]).returncode == 0
    assert json.loads((tmp_path / "p.json").read_text())["model"]["source"].startswith("sha256:")
    ok = _run(tmp_path, ["check", "p.json"])
    assert ok.returncode == 0, ok
    # the plan names code: the user is told which file runs (once per process)
    assert f"edgeslice: note: the plan runs the code of model file {(tmp_path / 'net.py').resolve()} (make)" in ok.stderr, ok
    (tmp_path / "net.py").write_text(MODEL_FILE + "\n# edited\n")
    for cmd in (["check", "p.json"], ["show", "p.json"], ["simulate", "p.json"]):
        _one_line_refusal(_run(tmp_path, cmd), "has changed since the plan was made", "net.py")
