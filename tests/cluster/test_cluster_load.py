"""Cluster YAML loading: the bundled examples, name resolution, and one-line errors for bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeslice.cluster import Cluster, Link
from edgeslice.cluster.load import (
    EXAMPLES_DIR,
    builtin_clusters,
    load_cluster,
    parse_cluster,
    resolve_cluster,
)
from edgeslice.errors import ClusterError

REPO = Path(__file__).resolve().parents[2]
REPO_EXAMPLES = REPO / "examples" / "clusters"
NAMES = ["hetero3", "iot-edge", "local4", "mec", "mec-testbed", "pi4x4", "testbed-fl", "testbed-hetero", "testbed4"]


# ----------------------------------------------------------------- examples


def test_bundled_examples_are_found_and_match_the_repo_copies():
    bundled = builtin_clusters()
    assert sorted(bundled) == NAMES
    assert all(p.parent == EXAMPLES_DIR for p in bundled.values())
    repo = sorted(p.name for p in REPO_EXAMPLES.glob("*.yaml"))
    assert repo == sorted(p.name for p in bundled.values())
    for name, p in bundled.items():
        assert (REPO_EXAMPLES / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs from examples/clusters/"
        assert p.read_text().startswith("# "), f"{p.name} must start with a comment saying what it models"


@pytest.mark.parametrize("name", NAMES)
def test_every_example_loads_from_both_places(name):
    a = load_cluster(EXAMPLES_DIR / f"{name}.yaml")
    b = load_cluster(REPO_EXAMPLES / f"{name}.yaml")
    assert isinstance(a, Cluster) and a == b
    assert a.name == name


def test_iot_edge():
    c = resolve_cluster("iot-edge")
    assert c.names == ("pi3", "edge")
    assert (c.source, c.sink, c.medium) == ("pi3", "pi3", "switched")
    assert c.device("pi3").gflops == 3 and c.device("pi3").memory_mb == 1024
    assert c.device("edge").gflops == 200 and c.device("edge").memory_mb == 16384
    assert c.link("pi3", "edge") == Link(10.0, 2.0)


def test_pi4x4():
    c = resolve_cluster("pi4x4")
    assert c.names == ("pi0", "pi1", "pi2", "pi3")
    assert (c.source, c.sink, c.medium) == ("pi0", "pi0", "shared")
    assert all(d.gflops == 8 and d.memory_mb == 4096 and d.cpus == 0.4 for d in c.devices)
    assert c.link("pi0", "pi3") == Link(50.0, 1.0)


def test_hetero3():
    c = resolve_cluster("hetero3")
    assert c.names == ("jetson", "pi4", "phone")
    assert c.source == c.sink == "jetson"
    assert len({d.gflops for d in c.devices}) == 3
    assert c.device("phone").cpu_load == 0.6
    assert c.link("pi4", "phone") == Link(50.0, 1.0)
    assert c.link("phone", "jetson").bandwidth_mbps < 50


def test_mec():
    c = resolve_cluster("mec")
    assert c.names == tuple(f"iot{i}" for i in range(6)) + ("edge0", "edge1")
    assert c.source == c.sink == "iot0"
    iot = [c.device(f"iot{i}").gflops for i in range(6)]
    assert all(3 <= g <= 8 for g in iot) and len(set(iot)) > 1
    assert (c.device("edge0").gflops, c.device("edge1").gflops) == (150, 250)
    assert c.link("iot0", "edge0").bandwidth_mbps == 20
    assert c.link("iot3", "iot5").bandwidth_mbps == 20
    assert c.link("edge1", "edge0").bandwidth_mbps == 100


def test_local4():
    c = resolve_cluster("local4")
    assert c.names == ("d0", "d1", "d2", "d3")
    assert c.source == c.sink == "d0"
    assert all(d.gflops == 10 and d.cpus == 0.45 for d in c.devices)
    assert sum(d.cpus for d in c.devices) < 2
    assert c.link("d0", "d3") == Link(1000.0, 0.05)


# ---------------------------------------------------------------- resolving


def test_resolve_accepts_name_with_suffix_and_path():
    assert resolve_cluster("pi4x4.yaml") == resolve_cluster("pi4x4")
    assert resolve_cluster(REPO_EXAMPLES / "pi4x4.yaml") == resolve_cluster("pi4x4")


def test_resolve_prefers_an_existing_file(tmp_path, monkeypatch):
    (tmp_path / "pi4x4").write_text("devices: [{name: solo, gflops: 1}]\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_cluster("pi4x4").names == ("solo",)


def test_resolve_unknown_name_lists_bundled():
    with pytest.raises(ClusterError) as e:
        resolve_cluster("nosuchcluster")
    msg = str(e.value)
    assert "\n" not in msg and "'nosuchcluster'" in msg
    for n in NAMES:
        assert n in msg


# ------------------------------------------------------------------ parsing


def test_defaults_and_relative_profile(tmp_path):
    f = tmp_path / "sub" / "c.yaml"
    f.parent.mkdir()
    f.write_text(
        "devices:\n"
        "  - {name: a, gflops: 5}\n"
        "  - {name: b, gflops: 7.5, profile: prof/b.json, scale: 0.5}\n"
        "links:\n"
        "  overrides:\n"
        "    - {between: [a, b], bandwidth_mbps: 20}\n"
        "bandwidth_trace: [[0, 1.0], [0.5, 0.4], [0.5, 0.8]]\n"
    )
    with pytest.raises(ClusterError, match=r"c\.yaml: devices\[1\]\.profile: cannot read profile '.*b\.json': "
                                           r"No such file or directory \(make one with `edgeslice profile"):
        load_cluster(f)  # the profile is read with the cluster: a missing one is the cluster file's error
    (f.parent / "prof").mkdir()
    (f.parent / "prof" / "b.json").write_text('{"format": "edgeslice-profile", "batch": 1, "effective_gflops": 9.5, "layers": {}}')
    c = load_cluster(f)
    assert c.name == "c"
    a, b = c.devices
    assert (a.memory_mb, a.cpu_load, a.cpus, a.profile, a.scale, a.profile_data) == (4096, 0, None, None, 1.0, None)
    assert b.profile == str((f.parent / "prof" / "b.json").resolve())
    assert b.profile_data.data()["effective_gflops"] == 9.5  # the content travels with the cluster
    assert c.default_link == Link(100.0, 0.0)
    assert c.overrides == ((frozenset({"a", "b"}), Link(20.0, 0.0)),)
    assert c.link("b", "a") == Link(20.0, 0.0)
    assert (c.source, c.sink, c.medium) == ("a", "a", "switched")
    assert c.bandwidth_trace == ((0.0, 1.0), (0.5, 0.4), (0.5, 0.8))


def test_override_inherits_unset_fields_from_default():
    c = parse_cluster(
        {
            "devices": [{"name": "a", "gflops": 1}, {"name": "b", "gflops": 1}],
            "links": {"default": {"bandwidth_mbps": 50, "latency_ms": 3},
                      "overrides": [{"between": ["a", "b"], "bandwidth_mbps": 5}]},
            "sink": "b",
        },
        "inline.yaml",
    )
    assert c.link("a", "b") == Link(5.0, 3.0)
    assert (c.source, c.sink) == ("a", "b")


# ------------------------------------------------------------------- errors

DEVS = "devices:\n  - {name: pi0, gflops: 8}\n  - {name: pi1, gflops: 8}\n  - {name: edge, gflops: 200}\n"

BAD = {
    "yaml-syntax": ("devices:\n  - {name: pi0, gflops: 8\nsource: pi0\n", "YAML syntax error at line"),
    "yaml-duplicate-key": ("devices:\n  - name: pi0\n    gflops: 8\n    gflops: 9\n",
                           "line 4, column 5: key 'gflops' appears twice in one mapping (first at line 3)"),
    "empty-file": ("", "devices: missing"),
    "missing-devices": ("name: x\nsource: pi0\n", "devices: missing (a cluster needs at least one device"),
    "empty-devices": ("devices: []\n", "devices: empty"),
    "duplicate-device": (DEVS + "  - {name: pi1, gflops: 4}\n",
                         "devices: device 'pi1' is listed twice (devices[1] and devices[3])"),
    "negative-bandwidth": (DEVS + "links:\n  default: {bandwidth_mbps: -5}\n",
                           "links.default.bandwidth_mbps: must be a positive number, got -5"),
    "override-negative-bandwidth": (DEVS + "links:\n  overrides:\n    - {between: [pi0, edge], bandwidth_mbps: -1}\n",
                                    "links.overrides[0].bandwidth_mbps: must be a positive number"),
    "link-unknown-device": (DEVS + "links:\n  overrides:\n    - {between: [pi0, pi9], bandwidth_mbps: 5}\n",
                            "links.overrides[0].between: unknown device 'pi9' (devices: pi0, pi1, edge)"),
    "link-same-device": (DEVS + "links:\n  overrides:\n    - {between: [pi0, pi0], bandwidth_mbps: 5}\n",
                         "links.overrides[0].between: names 'pi0' twice"),
    "link-duplicate-pair": (DEVS + "links:\n  overrides:\n    - {between: [pi0, edge], bandwidth_mbps: 5}\n"
                                   "    - {between: [edge, pi0], bandwidth_mbps: 6}\n",
                            "links.overrides[1].between: the link edge-pi0 is already set by links.overrides[0]"),
    "source-not-device": (DEVS + "source: cam\n", "source: 'cam' is not a device (devices: pi0, pi1, edge)"),
    "sink-not-device": (DEVS + "sink: cloud\n", "sink: 'cloud' is not a device"),
    "unknown-top-field": (DEVS + "sorce: pi0\n", "sorce: unknown field; did you mean 'source'? allowed: name, devices"),
    "unknown-device-field": ("devices:\n  - {name: pi0, gflop: 8}\n",
                             "devices[0].gflop: unknown field; did you mean 'gflops'?"),
    "unknown-link-field": (DEVS + "links:\n  default: {bandwidth: 5}\n", "links.default.bandwidth: unknown field"),
    "cpu-load-one": ("devices:\n  - {name: pi0, gflops: 8, cpu_load: 1.0}\n",
                     "devices[0].cpu_load: must be a fraction in [0, 1)"),
    "cpu-load-negative": ("devices:\n  - {name: pi0, gflops: 8, cpu_load: -0.1}\n", "devices[0].cpu_load:"),
    "gflops-bool": ("devices:\n  - {name: pi0, gflops: true}\n", "devices[0].gflops: must be a positive number, got true"),
    "gflops-negative": (DEVS + "  - {name: x, gflops: -3}\n", "devices[3].gflops: must be a positive number, got -3"),
    "gflops-string": ("devices:\n  - {name: pi0, gflops: fast}\n", "devices[0].gflops: must be a positive number, got 'fast'"),
    "gflops-missing": ("devices:\n  - {name: pi0}\n", "devices[0].gflops: missing"),
    "name-missing": ("devices:\n  - {gflops: 8}\n", "devices[0].name: missing"),
    "name-bad-chars": ("devices:\n  - {name: 'pi 0', gflops: 8}\n", "devices[0].name: must be a name"),
    "device-not-mapping": ("devices:\n  - pi0\n", "devices[0]: must be a mapping"),
    "top-level-list": ("- {name: pi0, gflops: 8}\n", "top level: must be a mapping"),
    "top-level-scalar": ("just text\n", "top level: must be a mapping"),
    "medium-bad": (DEVS + "medium: wifi\n", "medium: must be 'switched'"),
    "trace-not-list": (DEVS + "bandwidth_trace: 0.5\n", "bandwidth_trace: must be a list"),
    "trace-not-pair": (DEVS + "bandwidth_trace: [[0, 1.0], [0.5]]\n",
                       "bandwidth_trace[1]: must be a pair [time_s, factor], e.g. [0.5, 0.4], got a list [0.5]"),
    "trace-backwards": (DEVS + "bandwidth_trace: [[1, 1.0], [0.5, 0.4]]\n",
                        "bandwidth_trace[1][0]: time 0.5 comes before"),
    "trace-zero-factor": (DEVS + "bandwidth_trace: [[0, 0]]\n", "bandwidth_trace[0][1]: must be a positive"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_gives_one_line_error_naming_file_and_field(tmp_path, case):
    text, expected = BAD[case]
    f = tmp_path / f"{case}.yaml"
    f.write_text(text)
    with pytest.raises(ClusterError) as e:
        load_cluster(f)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{f}: "), msg
    assert expected in msg, msg


def test_yaml_syntax_error_reports_position(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("devices:\n  - name: pi0\n   gflops: 8\n")
    with pytest.raises(ClusterError, match=r"x\.yaml: YAML syntax error at line 3, column \d+: "):
        load_cluster(f)


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_file(tmp_path, make):
    f = tmp_path / "x.yaml"
    if make == "directory":
        f.mkdir()
    with pytest.raises(ClusterError) as e:
        load_cluster(f)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"cannot read cluster file '{f}': ")
    assert ("No such file or directory" if make == "missing" else "directory") in msg


def test_resolve_missing_yaml_path(tmp_path):
    with pytest.raises(ClusterError, match=r"^cannot read cluster file '.*nope\.yaml': No such file or directory"):
        resolve_cluster(str(tmp_path / "nope.yaml"))
