"""Tests for the Plan data model (edgeslice.plan): JSON round trip, the
human-readable file layout, structural validation against a traced model
(:func:`edgeslice.plan.validate.validate`) and the model check
(:func:`edgeslice.plan.validate.check_model`).

Everything runs in-process on ResNet-18 at 3x32x32 (traced once per module,
about half a second); no model is ever executed here.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from edgeslice.cluster.load import resolve_cluster
from edgeslice.cluster.model import Cluster, Device, Link, Profile
from edgeslice.errors import ClusterError, EdgesliceError, PlanError, PlanMismatchError
from edgeslice.graph import trace
from edgeslice.plan import CUTS, PLAN_VERSION, ModelRef, Part, Plan, Segment, check_model, plan_cluster, validate
from edgeslice.planners import make_plan

SPEC = "resnet18"
INPUT = (3, 32, 32)
SEEDS = range(20)


@pytest.fixture(scope="module")
def graph():
    g, _ = trace(SPEC, INPUT, 1)
    return g


@pytest.fixture(scope="module")
def random_plans(graph):
    return [make_plan("random", graph, devices=3, seed=s) for s in SEEDS]


def _idx(graph, name: str) -> int:
    return graph.index(name)


@pytest.fixture(scope="module")
def base(graph) -> Plan:
    """A hand-made valid plan using every cut kind, on devices d0, d1, d2.

    segment 0  conv1..maxpool                 spatial, rows 0:4 / 4:8 (output 64x8x8)
    segment 1  layer1_0_conv1..layer4_1_relu2 whole
    segment 2  avgpool..flatten               channel 0:256 / 256:512
    segment 3  fc..fc                         input   0:100 / 100:512 (partial sums)
    """
    names = [l.name for l in graph.layers]
    assert names[0] == "conv1" and names[-1] == "fc"
    mp, ap = _idx(graph, "maxpool"), _idx(graph, "avgpool")
    assert graph.layers[mp].out_shape == (64, 8, 8)
    assert graph.layer("flatten").out_shape == (512,)
    assert graph.layer("fc").kind == "linear" and graph.layer("fc").in_shapes[0] == (512,)
    segs = (
        Segment("conv1", "maxpool", "spatial", (Part("d0", rows=(0, 4), cols=(0, 8)), Part("d1", rows=(4, 8), cols=(0, 8)))),
        Segment(names[mp + 1], names[ap - 1], "whole", (Part("d2"),)),
        Segment("avgpool", "flatten", "channel", (Part("d0", channels=(0, 256)), Part("d1", channels=(256, 512)))),
        Segment("fc", "fc", "input", (Part("d1", inputs=(0, 100)), Part("d2", inputs=(100, 512)))),
    )
    model = ModelRef(graph.spec, graph.input_shape, graph.batch, graph.fingerprint)
    plan = Plan(model, ("d0", "d1", "d2"), "d0", "d2", segs)
    assert validate(plan, graph) == ((0, mp), (mp + 1, ap - 1), (ap, ap + 1), (ap + 2, ap + 2))
    return plan


def _seg(plan: Plan, i: int, **changes) -> Plan:
    segs = list(plan.segments)
    segs[i] = replace(segs[i], **changes)
    return replace(plan, segments=tuple(segs))


def _part(plan: Plan, i: int, j: int, **changes) -> Plan:
    parts = list(plan.segments[i].parts)
    parts[j] = replace(parts[j], **changes)
    return _seg(plan, i, parts=tuple(parts))


# ---- JSON round trip --------------------------------------------------------

@pytest.mark.parametrize("seed", SEEDS)
def test_random_plan_round_trips_through_json(random_plans, graph, seed):
    p = random_plans[seed]
    text = p.to_json()
    q = Plan.from_json(text)
    assert q == p
    assert q.to_json() == text
    assert json.loads(text) == p.to_dict()
    validate(q, graph)


def test_random_plans_exercise_every_cut_and_range_field(random_plans):
    cuts = {s.cut for p in random_plans for s in p.segments}
    assert cuts == set(CUTS)
    for field in ("rows", "cols", "channels", "inputs"):
        assert any(getattr(pt, field) is not None for p in random_plans for s in p.segments for pt in s.parts), field


def test_random_plans_are_valid_and_cover_every_layer(random_plans, graph):
    n = len(graph.layers)
    for p in random_plans:
        spans = validate(p, graph)
        assert spans[0][0] == 0 and spans[-1][1] == n - 1
        assert all(b + 1 == c for (_, b), (c, _) in zip(spans, spans[1:]))


def test_random_planner_is_deterministic(graph, random_plans):
    assert make_plan("random", graph, devices=3, seed=7) == random_plans[7]


def test_hand_made_plan_round_trips_and_save_load(base, tmp_path):
    assert Plan.from_json(base.to_json()) == base
    path = tmp_path / "plan.json"
    base.save(path)
    assert Plan.load(path) == base
    assert Plan.load(str(path)) == base


def _lab_cluster() -> Cluster:
    """Every optional cluster feature at once: overrides, a trace, a shared medium, loads, cpus, two profiles."""
    prof = Profile.from_data({"format": "edgeslice-profile", "batch": 1, "effective_gflops": 12.5, "layers": {}})
    other = Profile.from_data({"format": "edgeslice-profile", "batch": 1, "effective_gflops": 3.0, "layers": {}})
    return Cluster("lab", (Device("d0", 7.5, 2048, 0.2, 0.5, "/gone/p.json", 1.0, prof),
                           Device("d1", 3.0, profile_data=prof, scale=2.5),
                           Device("d2", 40.0, cpus=2.0, profile="/gone/q.json", profile_data=other)),
                   Link(20.0, 1.5), ((frozenset({"d0", "d2"}), Link(5.0, 3.0)),), "d0", "d2", "shared",
                   ((0.0, 1.0), (0.5, 0.25)))


def test_round_trip_keeps_optional_fields(base):
    lab = _lab_cluster()
    p = replace(base, model=replace(base.model, weights="w.pt"), cluster=lab, planner="mine",
                options=(("alpha", 0.5), ("depth", 2), ("name", "x")))
    text = p.to_json()
    q = Plan.from_json(text)
    assert q == p
    assert q.model.weights == "w.pt" and q.cluster == lab and q.planner == "mine"
    assert q.to_json() == text
    d = json.loads(text)
    assert len(d["cluster"]["profiles"]) == 2  # the profile d0 and d1 share is stored once
    assert all(len(l) < 200 for l in text.splitlines())


def _v1(base: Plan, cluster) -> str:
    """``base`` written as the version-1 format wrote it: ``cluster`` a name or null, between sink and planner."""
    d = base.to_dict()
    del d["cluster"]
    d["version"] = 1
    old = {k: d[k] for k in ("format", "version", "model", "devices", "source", "sink")}
    old["cluster"] = cluster
    old.update(planner=d["planner"], segments=d["segments"])
    return json.dumps(old, indent=2)


def test_version_1_plans_still_load(base, tmp_path):
    assert Plan.from_json(_v1(base, None)) == base  # no cluster: identical devices, as before
    q = Plan.from_json(_v1(base, "local4"), where="old.json")  # a bundled name: resolved as version 1 did
    assert q.cluster == resolve_cluster("local4") and replace(q, cluster=None) == base
    assert plan_cluster(q) is q.cluster
    f = tmp_path / "lab.yaml"
    f.write_text("name: lab\ndevices:\n  - {name: d0, gflops: 2}\n  - {name: d1, gflops: 3}\n  - {name: d2, gflops: 4}\n")
    path = tmp_path / "old.json"
    path.write_text(_v1(base, str(f)))
    loaded = Plan.load(path)
    assert [d.gflops for d in loaded.cluster.devices] == [2, 3, 4]
    assert json.loads(loaded.to_json())["version"] == PLAN_VERSION == 2  # saved again: the new format
    with pytest.raises(PlanError, match=r"^old\.json: this version-1 plan names cluster 'nowhere\.yaml', which cannot be "
                                        r"loaded .*put that file back, or re-run `edgeslice plan --cluster C`"):
        Plan.from_json(_v1(base, "nowhere.yaml"), where="old.json")


def test_plan_cluster_and_an_override_that_lacks_a_device(base):
    p = replace(base, cluster=_lab_cluster())
    assert plan_cluster(p) is p.cluster
    assert plan_cluster(base) == Cluster.uniform(3)  # no cluster: identical devices
    with pytest.raises(ClusterError, match=r"^plan uses device 'd2', which is not in cluster 'two' \(its devices: d0, d1\)"):
        plan_cluster(p, Cluster("two", (Device("d0"), Device("d1"))))
    with pytest.raises(ClusterError) as exc:
        plan_cluster(p, "pi4x4")
    msg = str(exc.value)
    assert "'d0'" in msg and "pi0, pi1, pi2, pi3" in msg and "--cluster" in msg and "\n" not in msg
    assert plan_cluster(p, "local4").name == "local4"  # d0..d3 has every device of the plan


def test_docstring_example_round_trips():
    p = Plan(model=ModelRef("vgg16", (3, 224, 224), 1, "abc"), devices=("d0",), source="d0", sink="d0",
             segments=(Segment("features_0", "classifier_6", "whole", (Part("d0"),)),))
    assert Plan.from_json(p.to_json()) == p


# ---- the file is meant for people -------------------------------------------

def test_json_is_indented_with_one_part_per_line(random_plans):
    for p in random_plans[:5]:
        text = p.to_json()
        lines = text.splitlines()
        assert text.endswith("}\n")
        assert lines[0] == "{" and lines[-1] == "}"
        assert '  "format": "edgeslice-plan",' in lines
        assert f'  "version": {PLAN_VERSION},' in lines
        assert all(l.startswith("  ") for l in lines[1:-1]), "every inner line is indented"
        assert all(len(l) < 200 for l in lines), "no line carries a whole segment list"
        # one line opens each segment and names its layers and cut
        seg_lines = [l for l in lines if l.startswith('    {"layers": ')]
        assert len(seg_lines) == len(p.segments)
        for l, s in zip(seg_lines, p.segments):
            assert json.dumps([s.first, s.last]) in l and json.dumps(s.cut) in l
        # one line per part, each a complete JSON object
        part_lines = [l for l in lines if l.startswith('        {"device": ')]
        all_parts = [pt for s in p.segments for pt in s.parts]
        assert len(part_lines) == len(all_parts)
        for l, pt in zip(part_lines, all_parts):
            obj = json.loads(l.strip().rstrip(","))
            assert obj["device"] == pt.device
            for field in ("rows", "cols", "channels", "inputs"):
                v = getattr(pt, field)
                assert obj.get(field) == (None if v is None else list(v))


def test_hand_edited_json_is_accepted(base):
    # A person may reflow the file any way JSON allows.
    text = json.dumps(json.loads(base.to_json()))
    assert Plan.from_json(text) == base
    text = json.dumps(json.loads(base.to_json()), indent=8, sort_keys=True)
    assert Plan.from_json(text) == base


# ---- malformed files ----------------------------------------------------------

def _mutated(base: Plan, fn) -> str:
    d = json.loads(base.to_json())
    fn(d)
    return json.dumps(d)


def _set(path, value):
    def fn(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return fn


def _del(path):
    def fn(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return fn


MALFORMED = [
    pytest.param(lambda d: d.clear(), r"not an edgeslice plan", id="empty-object"),
    pytest.param(_set(["format"], "other"), r"not an edgeslice plan", id="wrong-format"),
    pytest.param(_set(["version"], 3), r"plan version 3 is not supported", id="version-3"),
    pytest.param(_set(["version"], True), r"plan version True is not supported", id="version-bool"),
    pytest.param(_set(["cluster"], "lab.yaml"), r"'cluster' must be the cluster object", id="cluster-name-in-v2"),
    pytest.param(_set(["cluster"], {"name": "c", "devices": [{"name": "d0", "gflops": -3}]}),
                 r"^my\.json: cluster: devices\[0\]\.gflops: must be a positive number, got -3$", id="cluster-bad-device"),
    pytest.param(_set(["cluster"], {"name": "c", "devices": [{"name": "d0", "gflops": 3}, {"name": "d1", "gflops": 3}]}),
                 r"device 'd2' of 'devices' is not in the plan's cluster 'c' \(its devices: d0, d1\)", id="cluster-lacks-device"),
    pytest.param(_set(["cluster"], {"name": "c", "devices": [{"name": "d0", "gflops": 3}], "link": {}}),
                 r"cluster: link: unknown field; did you mean 'links'\?", id="cluster-unknown-field"),
    pytest.param(_set(["version"], "1"), r"plan version '1' is not supported", id="version-string"),
    pytest.param(_del(["model"]), r"missing field 'model'", id="no-model"),
    pytest.param(_set(["model", "input"], [3, 0, 32]), r"'input' must be a list of positive integers", id="input-zero"),
    pytest.param(_set(["model", "batch"], 0), r"'batch' must be at least 1", id="batch-zero"),
    pytest.param(_set(["model", "batch"], True), r"field 'batch' must be int", id="batch-bool"),
    pytest.param(_del(["model", "fingerprint"]), r"model: missing field 'fingerprint'", id="no-fingerprint"),
    pytest.param(_set(["devices"], []), r"'devices' must be a non-empty list", id="devices-empty"),
    pytest.param(_set(["segments"], []), r"'segments' is empty", id="segments-empty"),
    pytest.param(_del(["segments", 1, "parts"]), r"segment 1: missing field 'parts'", id="segment-no-parts"),
    pytest.param(_set(["segments", 1, "parts"], []), r"segment 1: has no parts", id="segment-parts-empty"),
    pytest.param(_set(["segments", 2, "layers"], ["avgpool"]), r"segment 2: 'layers' must be \[first_layer_name, last_layer_name\]", id="segment-layers-one"),
    pytest.param(_set(["segments", 0, "cut"], "rows"), r"segment 0: cut 'rows' is unknown; use one of whole, spatial, channel, input", id="unknown-cut"),
    pytest.param(_set(["segments", 0, "parts", 1, "rows"], [1]), r"segment 0: part 1: 'rows' must be \[lo, hi\]", id="rows-one-number"),
    pytest.param(_set(["segments", 0, "parts", 0, "rows"], [0.0, 4.0]), r"segment 0: part 0: 'rows' must be \[lo, hi\]", id="rows-floats"),
    pytest.param(_del(["segments", 3, "parts", 0, "device"]), r"segment 3: part 0: missing field 'device'", id="part-no-device"),
    pytest.param(_set(["segments", 2, "parts", 1, "chans"], [0, 1]), r"segment 2: part 1: unknown field\(s\) chans", id="part-unknown-field"),
    pytest.param(_set(["source"], 0), r"field 'source' must be str", id="source-not-string"),
    pytest.param(_set(["model", "input"], [True, 32, 32]), r"'input' must be a list of positive integers", id="input-bool"),
]


@pytest.mark.parametrize("fn,pattern", MALFORMED)
def test_malformed_plan_is_a_plan_error(base, fn, pattern):
    with pytest.raises(PlanError, match=pattern) as exc:
        Plan.from_json(_mutated(base, fn), where="my.json")
    assert str(exc.value).startswith("my.json: ")


def test_not_json_names_line_and_column():
    with pytest.raises(PlanError, match=r"^bad.json: not valid JSON \(line 2, column \d+"):
        Plan.from_json('{"format":\n  nope}', where="bad.json")


def test_unreadable_file_is_a_plan_error(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(PlanError, match=r"cannot read plan file .*nope\.json"):
        Plan.load(missing)
    with pytest.raises(PlanError, match=r"cannot read plan file"):
        Plan.load(tmp_path)  # a directory
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PlanError, match=r"bin\.json"):
        Plan.load(tmp_path / "bin.json")


# ---- validate: structural faults ------------------------------------------------

def _invalid(plan: Plan, graph, pattern: str) -> str:
    with pytest.raises(PlanError, match=pattern) as exc:
        validate(plan, graph)
    assert not isinstance(exc.value, PlanMismatchError), "a structural fault is not a model mismatch"
    return str(exc.value)


S0 = re.escape("segment 0 (conv1..maxpool)")
S1 = re.escape("segment 1 (layer1_0_conv1..layer4_1_relu2)")
S2 = re.escape("segment 2 (avgpool..flatten)")
S3 = re.escape("segment 3 (fc..fc)")


def test_spatial_parts_leave_rows_uncovered(base, graph):
    _invalid(_part(base, 0, 1, rows=(5, 8)), graph, rf"^{S0}: spatial parts must tile its 8x8 output exactly: parts cover 56 of 64")


def test_channel_parts_leave_channels_uncovered(base, graph):
    _invalid(_part(base, 2, 1, channels=(300, 512)), graph, rf"^{S2}: channel parts must tile its 512 output channels exactly: parts cover 468 of 512")


def test_input_parts_leave_features_uncovered(base, graph):
    _invalid(_part(base, 3, 0, inputs=(1, 100)), graph, rf"^{S3}: input parts must tile its 512 input features exactly")


def test_a_missing_part_leaves_output_uncovered(base, graph):
    _invalid(_seg(base, 0, parts=base.segments[0].parts[:1]), graph, rf"^{S0}: .*cover 32 of 64")


def test_spatial_parts_overlap(base, graph):
    _invalid(_part(base, 0, 1, rows=(3, 8)), graph, rf"^{S0}: .*parts 0 and 1 overlap")


def test_channel_parts_overlap(base, graph):
    _invalid(_part(base, 2, 0, channels=(0, 257)), graph, rf"^{S2}: .*parts 0 and 1 overlap")


def test_input_parts_overlap(base, graph):
    _invalid(_part(base, 3, 1, inputs=(0, 512)), graph, rf"^{S3}: .*parts 0 and 1 overlap")


@pytest.mark.parametrize("rows,shown", [((4, 9), "4:9"), ((4, 4), "4:4"), ((6, 4), "6:4"), ((-1, 8), "-1:8")])
def test_range_empty_reversed_or_outside(base, graph, rows, shown):
    _invalid(_part(base, 0, 1, rows=rows), graph, rf"^{S0}: .*part 1 range {shown} is empty or outside 0:8")


def test_unknown_device(base, graph):
    msg = _invalid(_part(base, 3, 1, device="d7"), graph, rf"^{S3} part 1: unknown device 'd7'")
    assert "d0, d1, d2" in msg  # says which devices exist


def test_unknown_device_in_whole_segment(base, graph):
    _invalid(_part(base, 1, 0, device="gpu"), graph, rf"^{S1} part 0: unknown device 'gpu'")


@pytest.mark.parametrize(
    "seg,part,changes,pattern",
    [
        (2, 0, {"channels": None, "rows": (0, 1)}, rf"^{S2} part 0: a 'channel' cut part takes 'channels', not 'rows'"),
        (1, 0, {"channels": (0, 64)}, rf"^{S1} part 0: a 'whole' cut part takes no ranges, not 'channels'"),
        (3, 1, {"channels": (0, 1)}, rf"^{S3} part 1: a 'input' cut part takes 'inputs', not 'channels'"),
        (0, 1, {"inputs": (0, 3)}, rf"^{S0} part 1: a 'spatial' cut part takes 'rows' and 'cols', not 'inputs'"),
    ],
    ids=["rows-on-channel", "channels-on-whole", "channels-on-input", "inputs-on-spatial"],
)
def test_wrong_range_field_for_the_cut(base, graph, seg, part, changes, pattern):
    _invalid(_part(base, seg, part, **changes), graph, pattern)


@pytest.mark.parametrize(
    "seg,part,changes,field",
    [(0, 0, {"cols": None}, "cols"), (2, 1, {"channels": None}, "channels"), (3, 0, {"inputs": None}, "inputs")],
    ids=["spatial-without-cols", "channel-without-channels", "input-without-inputs"],
)
def test_missing_range_field_is_rejected_naming_segment_part_and_field(base, graph, seg, part, changes, field):
    msg = _invalid(_part(base, seg, part, **changes), graph, rf"^segment {seg} \(.*\) part {part}: ")
    assert repr(field) in msg


def test_missing_range_field_message_says_it_is_missing(base, graph):
    msg = _invalid(_part(base, 0, 0, cols=None), graph, r"part 0")
    assert "not 'cols'" not in msg and "needs 'cols'" in msg


def test_input_cut_on_a_non_linear_segment(base, graph):
    p = _seg(base, 2, cut="input", parts=(Part("d0", inputs=(0, 256)), Part("d1", inputs=(256, 512))))
    _invalid(p, graph, rf"^{S2}: an 'input' \(partial-sum\) cut needs a segment of exactly one Linear layer")


def test_input_cut_on_a_multi_layer_segment_ending_in_linear(base, graph):
    segs = base.segments[:2] + (
        Segment("avgpool", "fc", "input", (Part("d0", inputs=(0, 256)), Part("d1", inputs=(256, 512)))),
    )
    _invalid(replace(base, segments=segs), graph, r"^segment 2 \(avgpool\.\.fc\): an 'input' \(partial-sum\) cut needs a segment of exactly one Linear")


def test_whole_with_two_parts(base, graph):
    p = _seg(base, 1, parts=(Part("d0"), Part("d1")))
    _invalid(p, graph, rf"^{S1}: a 'whole' segment has exactly one part, not 2")


def test_spatial_cut_over_a_linear_layer(base, graph):
    p = _seg(base, 3, cut="spatial", parts=(Part("d0", rows=(0, 1), cols=(0, 1)),))
    _invalid(p, graph, rf"^{S3}: cannot be cut spatially: layer 'fc' \(linear, output \(1000,\)\)")


def test_spatial_cut_over_flatten(base, graph):
    p = _seg(base, 2, cut="spatial", parts=(Part("d0", rows=(0, 1), cols=(0, 1)),))
    _invalid(p, graph, rf"^{S2}: cannot be cut spatially: layer 'flatten'")


def test_cut_of_a_segment_with_a_second_output(base, graph):
    # maxpool feeds layer1_0_conv1 *and* the residual add: a segment ending
    # inside block 1 leaves maxpool's output escaping to the next segment.
    names = [l.name for l in graph.layers]
    r1 = _idx(graph, "layer1_0_relu1")
    assert "maxpool" in graph.layer("add").inputs
    for cut, parts, pattern in [
        ("spatial", (Part("d0", rows=(0, 8), cols=(0, 8)),), "cannot be cut spatially: layer 'maxpool' inside it is read by a later segment"),
        ("channel", (Part("d0", channels=(0, 32)), Part("d1", channels=(32, 64))), "cannot be cut by channels: layer 'maxpool' inside it is read by a later segment"),
    ]:
        segs = (Segment("conv1", "layer1_0_relu1", cut, parts),
                Segment(names[r1 + 1], names[_idx(graph, "avgpool") - 1], "whole", (Part("d2"),))) + base.segments[2:]
        _invalid(replace(base, segments=segs), graph, r"^segment 0 \(conv1\.\.layer1_0_relu1\): " + pattern)


def test_layer_name_not_in_model(base, graph):
    _invalid(_seg(base, 1, last="layer9_9_conv9"), graph, r"^segment 1 \(layer1_0_conv1\.\.layer9_9_conv9\): layer 'layer9_9_conv9' is not in model 'resnet18'")
    _invalid(_seg(base, 0, first="features_0"), graph, r"^segment 0 \(features_0\.\.maxpool\): layer 'features_0' is not in model")


def test_segments_out_of_order(base, graph):
    segs = list(base.segments)
    segs[0], segs[1] = segs[1], segs[0]
    _invalid(replace(base, segments=tuple(segs)), graph, r"^segment 0 \(layer1_0_conv1\.\.layer4_1_relu2\): must start at layer 'conv1'")


def test_gap_between_segments(base, graph):
    segs = base.segments[:1] + base.segments[2:]
    _invalid(replace(base, segments=segs), graph, r"^segment 1 \(avgpool\.\.flatten\): must start at layer 'layer1_0_conv1' \(segments must cover the layers in order")


def test_overlapping_segments(base, graph):
    p = _seg(base, 2, first="layer4_1_relu2")
    _invalid(p, graph, r"^segment 2 \(layer4_1_relu2\.\.flatten\): must start at layer 'avgpool'")


def test_segment_ending_before_it_starts(base, graph):
    p = _seg(base, 1, last="conv1")
    _invalid(p, graph, r"^segment 1 \(layer1_0_conv1\.\.conv1\): its last layer comes before its first")


def test_plan_stops_before_the_last_layer(base, graph):
    _invalid(replace(base, segments=base.segments[:3]), graph, r"^plan ends at layer 'flatten'; layers from 'fc' on are not in any segment")


def test_source_and_sink_must_be_devices(base, graph):
    _invalid(replace(base, source="d5"), graph, r"^plan source 'd5' is not one of its devices \(d0, d1, d2\)")
    _invalid(replace(base, sink="cloud"), graph, r"^plan sink 'cloud' is not one of its devices")


def test_duplicate_device(base, graph):
    _invalid(replace(base, devices=("d0", "d1", "d2", "d1")), graph, r"^plan lists device 'd1' twice")


def test_every_validation_error_is_an_edgeslice_error(base, graph):
    bad = _part(base, 0, 1, rows=(5, 8))
    with pytest.raises(EdgesliceError):
        validate(bad, graph)


# ---- check_model: a plan for another model ---------------------------------------

@pytest.mark.parametrize(
    "changes,pattern",
    [
        ({"spec": "vgg16"}, r"plan was made for model 'vgg16', not 'resnet18'; make a new plan with `edgeslice plan --model resnet18`"),
        ({"input_shape": (3, 64, 64)}, r"plan was made for input 3x64x64, not 3x32x32; re-plan with --input"),
        ({"batch": 4}, r"plan was made for batch 4, not 1; re-plan with --batch 1"),
        ({"fingerprint": "0123456789abcdef"}, r"plan fingerprint 0123456789abcdef does not match model 'resnet18' traced at input 3x32x32 \(fingerprint [0-9a-f]{16}\)"),
    ],
    ids=["spec", "input", "batch", "fingerprint"],
)
def test_check_model_rejects_another_model(base, graph, changes, pattern):
    p = replace(base, model=replace(base.model, **changes))
    with pytest.raises(PlanMismatchError, match=pattern):
        check_model(p, graph)
    with pytest.raises(PlanMismatchError, match=pattern):  # validate checks the model first
        validate(p, graph)


def test_check_model_against_really_different_graphs(base, graph):
    check_model(base, graph)  # fits
    g64, _ = trace(SPEC, (3, 64, 64), 1)
    with pytest.raises(PlanMismatchError, match=r"made for input 3x32x32, not 3x64x64"):
        check_model(base, g64)
    g_b2, _ = trace(SPEC, INPUT, 2)
    with pytest.raises(PlanMismatchError, match=r"made for batch 1, not 2"):
        check_model(base, g_b2)
    # the fingerprint does not depend on the batch, so a batch-2 plan fits the batch-2 graph
    check_model(replace(base, model=replace(base.model, batch=2)), g_b2)
    assert g_b2.fingerprint == graph.fingerprint != g64.fingerprint


def test_plan_mismatch_is_a_plan_error():
    assert issubclass(PlanMismatchError, PlanError) and issubclass(PlanError, EdgesliceError)
