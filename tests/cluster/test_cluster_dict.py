"""Cluster.to_dict / Cluster.from_dict: lossless (equal clusters, equal predictions), validated like YAML."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from edgeslice.cluster.load import builtin_clusters, load_cluster, parse_cluster, resolve_cluster
from edgeslice.cluster.model import Cluster, Device, Link, Profile
from edgeslice.cost import ClusterCost
from edgeslice.errors import ClusterError
from edgeslice.planners import make_plan
from edgeslice.program.lower import lower
from edgeslice.sim import simulate


def _json(d):
    return json.loads(json.dumps(d))  # what a plan file gives back


@pytest.mark.parametrize("name", sorted(builtin_clusters()))
def test_every_bundled_cluster_round_trips(name):
    c = resolve_cluster(name)
    assert Cluster.from_dict(_json(c.to_dict())) == c
    assert Cluster.from_dict(c.to_dict()).to_dict() == c.to_dict()


def _profile(graph, a: float, b: float, gflops: float) -> dict:
    l0 = graph.layers[0]
    return {"format": "edgeslice-profile", "version": 1, "batch": 1, "effective_gflops": gflops,
            "layers": {l0.name: {"kind": l0.kind, "flops": l0.flops, "samples": [[1.0, a + b]], "fit": [a, b]}}}


@pytest.fixture()
def rich_cluster(tmp_path, traced):
    """A cluster file using every feature: two profiles (one shared), overrides, a trace, a shared medium."""
    g, _ = traced("alexnet", (3, 64, 64))
    (tmp_path / "fast.json").write_text(json.dumps(_profile(g, 1e-4, 2e-3, 30.0)))
    (tmp_path / "slow.json").write_text(json.dumps(_profile(g, 5e-4, 9e-3, 4.0)))
    f = tmp_path / "lab.yaml"
    f.write_text(
        "name: lab\n"
        "devices:\n"
        "  - {name: cam, gflops: 3, memory_mb: 1024, cpu_load: 0.25, cpus: 0.5, profile: slow.json}\n"
        "  - {name: gpu, gflops: 90, profile: fast.json}\n"
        "  - {name: twin, gflops: 90, profile: fast.json, scale: 2.5}\n"
        "  - {name: plain, gflops: 12}\n"
        "links:\n"
        "  default: {bandwidth_mbps: 40, latency_ms: 1.5}\n"
        "  overrides:\n"
        "    - {between: [gpu, cam], bandwidth_mbps: 8}\n"
        "    - {between: [twin, plain], latency_ms: 4}\n"
        "source: cam\nsink: gpu\nmedium: shared\n"
        "bandwidth_trace: [[0, 1.0], [0.01, 0.5], [0.05, 2]]\n")
    return load_cluster(f), g, tmp_path


def test_a_cluster_with_profiles_round_trips_and_predicts_the_same(rich_cluster):
    c, g, folder = rich_cluster
    d = c.to_dict()
    assert len(d["profiles"]) == 2  # gpu and twin share one
    assert d["devices"][3]["profile"] is None
    assert d["devices"][1]["profile"]["sha256"] == d["devices"][2]["profile"]["sha256"] in d["profiles"]
    for p in folder.glob("*.json"):
        p.unlink()  # the dict is self-contained: no profile file is read again
    back = Cluster.from_dict(_json(d), "lab")
    assert back == c
    assert back.devices[0].profile == c.devices[0].profile  # where it came from, kept
    a, b = ClusterCost(c), ClusterCost(back)
    for dev in c.devices:
        for layer in g.layers:
            for frac in (1.0, 0.25):
                assert a.layer_time(layer, frac, dev, 1) == b.layer_time(layer, frac, back.device(dev.name), 1)
    assert a.layer_time(g.layers[0], 1.0, c.device("twin"), 1) == pytest.approx(2.5 * (1e-4 + 2e-3))  # the profile's fit
    for src, dst, start in (("cam", "gpu", 0.0), ("twin", "plain", 0.02), ("cam", "plain", 0.3)):
        assert a.transfer(123_456, src, dst, start) == b.transfer(123_456, src, dst, start)
    plan = make_plan("random", g, c, a, seed=4)
    prog = lower(plan, g)
    one, two = simulate(prog, g, c, a), simulate(prog, g, back, b)
    assert one.latency_s == two.latency_s and one.events == two.events


def test_profiles_are_values_compared_by_content(rich_cluster):
    c, g, _ = rich_cluster
    other = Profile.from_data(_profile(g, 1.0, 1.0, 1.0))
    changed = replace(c, devices=(replace(c.devices[0], profile_data=other),) + c.devices[1:])
    assert changed.devices[0].profile == c.devices[0].profile and changed != c  # same path, other content
    assert Cluster.from_dict(changed.to_dict()) == changed


def test_devices_built_in_code_round_trip():
    c = Cluster("code", (Device("a", 5), Device("b", 7, profile="/only/a/path.json")), Link(10, 0),
                bandwidth_trace=((0, 1),))
    back = Cluster.from_dict(_json(c.to_dict()))
    assert back == c and back.devices[1].profile_data is None and back.devices[1].profile == "/only/a/path.json"
    assert Cluster.from_dict(Cluster.uniform(3).to_dict()) == Cluster.uniform(3)


# ----------------------------------------------------------------- validation

BASE = {"name": "x", "devices": [{"name": "a", "gflops": 5}, {"name": "b", "gflops": 2}]}


def _edit(fn):
    d = copy.deepcopy(BASE)
    fn(d)
    return d


# each edit is made to the YAML form and to the dict form: the messages must be the same
SAME_AS_YAML = [
    pytest.param(lambda d: d["devices"][0].__setitem__("gflops", -3), id="gflops-negative"),
    pytest.param(lambda d: d["devices"][1].__setitem__("cpu_load", 1.5), id="load-too-high"),
    pytest.param(lambda d: d["devices"][1].__setitem__("gflop", 1), id="device-typo"),
    pytest.param(lambda d: d["devices"].append({"name": "a", "gflops": 1}), id="duplicate-device"),
    pytest.param(lambda d: d.__setitem__("links", {"default": {"bandwidth_mbps": True}}), id="bandwidth-bool"),
    pytest.param(lambda d: d.__setitem__("links", {"overrides": [{"between": ["a", "zz"], "bandwidth_mbps": 1}]}),
                 id="override-unknown-device"),
    pytest.param(lambda d: d.__setitem__("source", "cam"), id="unknown-source"),
    pytest.param(lambda d: d.__setitem__("medium", "radio"), id="unknown-medium"),
    pytest.param(lambda d: d.__setitem__("bandwidth_trace", [[1, 1.0], [0.5, 2]]), id="trace-out-of-order"),
]


@pytest.mark.parametrize("edit", SAME_AS_YAML)
def test_errors_read_like_yaml_loading(edit):
    with pytest.raises(ClusterError) as yaml_err:
        parse_cluster(_edit(edit), "plan.json: cluster")
    good = Cluster.from_dict(BASE).to_dict()
    bad = copy.deepcopy(good)
    edit(bad)
    with pytest.raises(ClusterError) as dict_err:
        Cluster.from_dict(bad, "plan.json: cluster")
    assert str(dict_err.value) == str(yaml_err.value)
    assert str(dict_err.value).startswith("plan.json: cluster: ") and "\n" not in str(dict_err.value)


def test_profile_errors_name_the_field(rich_cluster):
    c, _, _ = rich_cluster
    good = _json(c.to_dict())
    key = good["devices"][1]["profile"]["sha256"]

    def fails(edit, pattern):
        d = copy.deepcopy(good)
        edit(d)
        with pytest.raises(ClusterError, match=pattern) as exc:
            Cluster.from_dict(d, "p.json: cluster")
        assert str(exc.value).startswith("p.json: cluster: ")

    fails(lambda d: d["profiles"][key].__setitem__("effective_gflops", 99.0),
          rf"profiles\.{key}: the content's sha256 is [0-9a-f]{{64}}, not its key: the profile was edited")
    fails(lambda d: d["devices"][1]["profile"].__setitem__("sha256", "abc"),
          r"devices\[1\]\.profile\.sha256: 'abc' is not a key of 'profiles'")
    fails(lambda d: d["devices"][1]["profile"].__setitem__("file", "x"),
          r"devices\[1\]\.profile\.file: unknown field; allowed: path, sha256")
    fails(lambda d: d["devices"][1].__setitem__("profile", {}), r"devices\[1\]\.profile: names neither a path nor a sha256")
    fails(lambda d: d["profiles"][key].__setitem__("format", "csv"), rf"profiles\.{key}: not an edgeslice profile")
    fails(lambda d: d["profiles"][key]["layers"]["features_0"].__setitem__("fit", [1]),
          rf"profiles\.{key}: layers\.features_0\.fit must be \[a, b\]")
    fails(lambda d: d.pop("name"), r"name: must be the cluster's name")
    fails(lambda d: d.__setitem__("profiles", []), r"profiles: must be a mapping")
    fails(lambda d: d.__setitem__("device", []), r"device: unknown field; did you mean 'devices'\? allowed: .*, profiles$")


def test_a_bad_profile_file_is_a_cluster_file_error(tmp_path):
    (tmp_path / "p.json").write_text('{"format": "edgeslice-profile", "batch": 1}')
    (tmp_path / "c.yaml").write_text("devices:\n  - {name: a, gflops: 1, profile: p.json}\n")
    with pytest.raises(ClusterError, match=r"c\.yaml: devices\[0\]\.profile: profile '.*p\.json': 'effective_gflops' "
                                           r"must be a positive number"):
        load_cluster(tmp_path / "c.yaml")
    (tmp_path / "p.json").write_text("{nope")
    with pytest.raises(ClusterError, match=r"c\.yaml: devices\[0\]\.profile: profile '.*p\.json' is not valid JSON \(line 1"):
        load_cluster(tmp_path / "c.yaml")
