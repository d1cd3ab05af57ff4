"""Property tests: a mutated plan, cluster or profile file loads, or is refused in one clean line.

Hypothesis takes valid files (plans made by real planners for AlexNet at 3x64x64, the bundled
example clusters, a profile shaped like ``edgeslice profile`` output) and mutates them: a value
changes type (int to text, list to mapping, null, booleans, huge integers, NaN and infinities,
negative numbers), a field goes missing or an unknown one appears, names get unicode, control
characters or thousands of characters, lists nest thousands of levels deep, devices are listed
twice, list elements swap; then the file text is cut short, gets a byte-order mark or bytes that
are not UTF-8.

The property (DESIGN.md, style rule 9): reading the file either returns a value that is usable
(it validates or is refused cleanly, and saves and reads back the same) or raises an
:class:`~edgeslice.errors.EdgesliceError` whose message is one non-empty line of at most
:data:`MAX_MESSAGE` printable characters.  Any other exception (KeyError, TypeError,
RecursionError, UnicodeDecodeError, OverflowError, ValueError, ...) is a bug.  A few mutated files
also go through the command line, which must exit with status 2 and one ``edgeslice: error:`` line.

Everything is deterministic (``derandomize=True``, no example database) and no model runs except
one traced AlexNet, so the file takes well under a minute on two cores.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeslice.cluster.load import EXAMPLES_DIR, load_cluster, parse_cluster
from edgeslice.cluster.model import Cluster, Profile
from edgeslice.errors import EdgesliceError
from edgeslice.plan import Plan, plan_cluster, validate

SPEC, INPUT = "alexnet", (3, 64, 64)
MAX_MESSAGE = 400  # not counting the test folder's path, which differs from machine to machine
_WORK: list[str] = []  # that folder (set by the ``work`` fixture)


def _settings(n: int):
    return settings(derandomize=True, database=None, max_examples=n, deadline=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


# ---------------------------------------------------------------- the property


def assert_clean(exc: EdgesliceError) -> str:
    """A refusal a person can read: one non-empty line, not too long, nothing a terminal would act on."""
    msg = str(exc)
    assert msg.strip(), f"empty message from {type(exc).__name__}"
    assert len(msg.splitlines()) == 1 and "\r" not in msg, f"message is not one line: {msg!r}"
    size = len(msg) - sum(msg.count(w) * (len(w) - 5) for w in _WORK)
    assert size <= MAX_MESSAGE, f"message is {size} characters: {msg[:200]!r}..."
    bad = [c for c in msg if unicodedata.category(c) in ("Cc", "Cs")]
    assert not bad, f"control characters {bad!r} in message {msg!r}"
    return msg


def outcome(fn, *args, **kw):
    """``fn(...)``'s value, or None after a clean refusal; any other exception propagates (a bug)."""
    try:
        return fn(*args, **kw)
    except EdgesliceError as exc:
        assert_clean(exc)
        return None


# ---------------------------------------------------------------- mutations

# Tokens put in the tree and replaced in the file text by things json/yaml cannot write: lists
# or mappings nested thousands of levels deep, integers of more digits than Python parses.
DEEP_LIST, DEEP_MAP, HUGE_INT = "zzDEEPLISTzz", "zzDEEPMAPzz", "zzHUGEINTzz"
_TOKEN = re.compile(r"""["']?(zzDEEPLISTzz|zzDEEPMAPzz|zzHUGEINTzz)["']?""")
DEPTH = 3000

WEIRD_TEXT = ["", " ", "\x00", "a\nb", "\r\n", "\t", "\x1b[31mred", "\x85", "\u2028", "\u202e", "\ufeff", "\ud800",
              "\udcff", "é", "名前", "🙂", "x" * 5000, "d0 d1", "~nosuchuser/p.json", "/", ".", "..", "d0", "d1",
              "whole", "spatial", "features_0", "edgeslice-plan", "edgeslice-profile", "sha256:", "null"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2, 2**31, 2**63, -(2**63), 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.5, 1e308, 5e-324]),
    st.text(max_size=12),
    st.sampled_from(WEIRD_TEXT),
    st.sampled_from([DEEP_LIST, DEEP_MAP, HUGE_INT]),
)
VALUES = st.recursive(SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                      max_leaves=5)
KEYS = st.one_of(st.text(max_size=10), st.sampled_from(["x", "extra", "Devices", "devices ", "\n", "\x1b", "\ud800",
                                                          "k" * 3000, "gflop", "cut", "device", "rows", "profiles"]))


def _paths(tree, prefix=()):
    yield prefix
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _paths(v, prefix + (i,))


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _retyped(v) -> list:
    """``v`` as other types: what a hand edit or a confused generator writes instead."""
    out = [None, True, False, [v], {"value": v}, str(v)[:50], 0, -1]
    if isinstance(v, bool):
        out += [int(v), str(v).lower()]
    elif isinstance(v, (int, float)):
        out += [-v, v * 10**300, str(v), math.nan, math.inf, v + 1]
    elif isinstance(v, str):
        out += [len(v), v * 200, v + "\n", v.upper(), "\x00" + v, v[:1], list(v[:5]), v.encode("utf-8", "replace")[:3].decode("latin-1")]
    elif isinstance(v, list):
        out += [dict((str(i), x) for i, x in enumerate(v)), v[:1], v[::-1], v + v, [], v[0] if v else 1]
    elif isinstance(v, dict):
        out += [list(v.values()), list(v), {}, json.dumps(v)[:100]]
    return out


@st.composite
def mutated_tree(draw, bases: list):
    """A deep copy of one of ``bases`` with one to three mutations."""
    tree = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(tree))
        path = draw(st.sampled_from(paths))
        node = _get(tree, path)
        parent, key = (_get(tree, path[:-1]), path[-1]) if path else (None, None)
        op = draw(st.sampled_from(["replace", "retype", "retype", "drop", "add", "swap", "dup", "rename"]))
        if op == "replace" and parent is not None:
            parent[key] = draw(VALUES)
        elif op == "retype" and parent is not None:
            parent[key] = draw(st.sampled_from(_retyped(node)))
        elif op == "drop" and parent is not None:
            del parent[key]
        elif op == "add" and isinstance(node, dict):
            node[draw(KEYS)] = draw(VALUES)
        elif op == "add" and isinstance(node, list):
            node.insert(draw(st.integers(0, len(node))), draw(VALUES))
        elif op == "swap" and isinstance(node, list) and len(node) >= 2:
            i, j = draw(st.integers(0, len(node) - 1)), draw(st.integers(0, len(node) - 1))
            node[i], node[j] = node[j], node[i]
        elif op == "dup" and isinstance(node, list) and node:
            i = draw(st.integers(0, len(node) - 1))
            node.insert(draw(st.integers(0, len(node))), copy.deepcopy(node[i]))
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(KEYS)] = parent.pop(key)
        elif parent is None and op in ("replace", "retype"):
            tree = draw(st.sampled_from(_retyped(tree)))
            if not isinstance(tree, (dict, list)):
                break
    return tree


def _expand_tokens(text: str, yaml_flow: bool = False) -> str:
    def sub(m):
        tok = m.group(1)
        if tok == HUGE_INT:
            return "9" * 5000
        if tok == DEEP_LIST:
            return "[" * DEPTH + "1" + "]" * DEPTH
        return ("{a: " if yaml_flow else '{"a": ') * DEPTH + "1" + "}" * DEPTH

    return _TOKEN.sub(sub, text)


def _deep_objects(tree):
    """The tree with tokens made into real Python values (for the loaders that take dicts)."""
    if isinstance(tree, dict):
        return {k: _deep_objects(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_deep_objects(v) for v in tree]
    if tree == HUGE_INT:
        return 10**5000
    if tree in (DEEP_LIST, DEEP_MAP):
        v = 1
        for _ in range(DEPTH):
            v = [v] if tree == DEEP_LIST else {"a": v}
        return v
    return tree


@st.composite
def file_bytes(draw, text: str) -> bytes:
    """``text`` as a file: usually as written, sometimes cut short, with a BOM or bytes that are not UTF-8."""
    op = draw(st.sampled_from(["as is"] * 6 + ["truncate", "bom", "bom2", "bad bytes", "utf16", "latin1", "garbage", "empty"]))
    data = text.encode("utf-8", "surrogatepass")
    if op == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if op == "bom":
        return b"\xef\xbb\xbf" + data
    if op == "bom2":
        return b"\xef\xbb\xbf\xef\xbb\xbf" + data
    if op == "bad bytes":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x00", b"\x80\x80", b"\xf5"])) + data[at:]
    if op == "utf16":
        return text.encode("utf-16", "surrogatepass")
    if op == "latin1":
        return text.encode("latin-1", "replace") + "é".encode("latin-1")
    if op == "garbage":
        return data + draw(st.sampled_from([b"}", b"]]", b"\n---\nx: 1\n", b" trailing", b"\n\t- x"]))
    if op == "empty":
        return draw(st.sampled_from([b"", b" ", b"\n", b"null", b"[]", b"0", b"\xef\xbb\xbf"]))
    return data


def _dump_json(draw, tree) -> str:
    try:
        text = json.dumps(tree, indent=draw(st.sampled_from([None, 2])), ensure_ascii=draw(st.booleans()))
    except (ValueError, RecursionError):
        text = "{}"
    return _expand_tokens(text)


def _dump_yaml(draw, tree) -> str:
    text = yaml.safe_dump(tree, default_flow_style=draw(st.sampled_from([False, None, True])),
                          allow_unicode=draw(st.booleans()), sort_keys=False, width=10**6)
    return _expand_tokens(text, yaml_flow=True)


# ---------------------------------------------------------------- valid files


@pytest.fixture(scope="module")
def graph(traced):
    return traced(SPEC, INPUT)[0]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    path = tmp_path_factory.mktemp("file-properties")
    _WORK[:] = [str(path)]
    return path


def _profile(graph) -> dict:
    """What ``edgeslice profile`` writes, for a few layers (the rest fall back to the effective rate)."""
    layers = {l.name: {"kind": l.kind, "flops": l.flops, "samples": [[1.0, 1e-3], [0.5, 6e-4]], "fit": [2e-4, 8e-4]}
              for l in graph.layers[:3]}
    return {"format": "edgeslice-profile", "version": 1, "model": SPEC, "input": list(INPUT), "batch": 1,
            "fingerprint": graph.fingerprint, "host": "bench", "machine": "x86_64", "threads": 1, "repeat": 3,
            "min_time_s": 0.0, "total_s": 0.01, "effective_gflops": 12.5, "layers": layers}


PROFILED_YAML = """\
# a device measured with `edgeslice profile`
name: profiled
devices:
  - {name: cam, gflops: 4, memory_mb: 2048, cpus: 0.5}
  - {name: edge, gflops: 60, memory_mb: 16384, profile: prof.json, scale: 0.5}
links:
  default: {bandwidth_mbps: 40, latency_ms: 2}
  overrides:
    - {between: [cam, edge], bandwidth_mbps: 25}
source: cam
medium: shared
bandwidth_trace: [[0, 1.0], [0.5, 0.4]]
"""


@pytest.fixture(scope="module")
def files(graph, work):
    """The valid inputs: plan dicts, cluster YAML texts (name -> text), the profile dict, and where they live."""
    from edgeslice.cluster.load import resolve_cluster
    from edgeslice.planners import make_plan

    profile = _profile(graph)
    (work / "prof.json").write_text(json.dumps(profile, indent=2))
    (work / "profiled.yaml").write_text(PROFILED_YAML)
    profiled = load_cluster(work / "profiled.yaml")
    plans = [make_plan("aofl", graph, devices=3),
             make_plan("random", graph, resolve_cluster("hetero3"), seed=5),
             make_plan("random", graph, profiled, seed=2)]
    dicts = [json.loads(p.to_json()) for p in plans]
    v1 = copy.deepcopy(dicts[1])
    v1["version"], v1["cluster"] = 1, "hetero3"  # version 1 named its cluster
    dicts.append(v1)
    for d in dicts:
        assert Plan.from_dict(copy.deepcopy(d)) is not None
    clusters = {p.stem: p.read_text() for p in sorted(EXAMPLES_DIR.glob("*.yaml"))}
    clusters["profiled"] = PROFILED_YAML
    return {"plans": dicts, "clusters": clusters, "profile": profile, "work": work}


def _usable_plan(plan: Plan, graph) -> None:
    """A loaded plan validates or is refused cleanly, finds its cluster, and saves and reads back the same."""
    outcome(validate, plan, graph)
    outcome(plan_cluster, plan)
    text = plan.to_json()
    again = Plan.from_json(text)
    assert again.to_json() == text


def _usable_cluster(cluster: Cluster, graph) -> None:
    """A loaded cluster round-trips through its dict form and prices a layer on every device."""
    from edgeslice.cost import ClusterCost

    assert Cluster.from_dict(json.loads(json.dumps(cluster.to_dict()))) == cluster
    cost = ClusterCost(cluster)
    for d in cluster.devices:
        assert cost.layer_time(graph.layers[0], 1.0, d, 1) >= 0  # not NaN (a huge but finite fit may give inf)


# ---------------------------------------------------------------- plans


@st.composite
def plan_files(draw, plans):
    return draw(file_bytes(_dump_json(draw, draw(mutated_tree(plans)))))


def test_mutated_plan_file_loads_or_is_refused_in_one_line(files, graph):
    path = files["work"] / "plan.json"

    @_settings(400)
    @given(st.data())
    def check(data):
        path.write_bytes(data.draw(plan_files(files["plans"])))
        plan = outcome(Plan.load, path)
        if plan is not None:
            _usable_plan(plan, graph)

    check()


def test_mutated_plan_dict_loads_or_is_refused_in_one_line(files, graph):
    @_settings(250)
    @given(st.data())
    def check(data):
        tree = _deep_objects(data.draw(mutated_tree(files["plans"])))
        plan = outcome(Plan.from_dict, tree, "plan.json")
        if plan is not None:
            _usable_plan(plan, graph)

    check()


V1_CLUSTERS = ["hetero3", "hetero3.yaml", "nosuch", "q" * 3000, "q/" * 3000, "", " ", "\x00", "\ud800", "/", ".", "~",
               "hetero3\n", "\x1b[2J", "/nonexistent/c.yaml", "prof.json", "plan.json", 7, [], {"name": "x"}]


@pytest.mark.parametrize("name", V1_CLUSTERS, ids=lambda v: ascii(v)[:24])
def test_version_1_plan_naming_a_bad_cluster_is_refused_in_one_line(files, graph, name):
    """A version-1 plan names its cluster (a file or a bundled name): whatever it names, loading is clean."""
    d = copy.deepcopy(files["plans"][3])
    d["cluster"] = name
    path = files["work"] / "v1.json"
    path.write_text(json.dumps(d))
    plan = outcome(Plan.load, path)
    if plan is not None:
        _usable_plan(plan, graph)


# ---------------------------------------------------------------- clusters


def _cluster_text(draw, clusters: dict) -> str:
    text = clusters[draw(st.sampled_from(sorted(clusters)))]
    if draw(st.integers(0, 4)) == 0:  # edit the text itself: a line repeated (a duplicate key), dropped or indented
        lines = text.splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["repeat", "drop", "indent", "tab"]))
        lines[i] = {"repeat": lines[i] * 2, "drop": "", "indent": "   " + lines[i], "tab": "\t" + lines[i]}[how]
        return "".join(lines)
    tree = yaml.safe_load(text)
    return _dump_yaml(draw, draw(mutated_tree([tree])))


def test_mutated_cluster_file_loads_or_is_refused_in_one_line(files, graph):
    path = files["work"] / "cluster.yaml"  # beside prof.json, which the profiled cluster names

    @_settings(200)
    @given(st.data())
    def check(data):
        path.write_bytes(data.draw(file_bytes(_cluster_text(data.draw, files["clusters"]))))
        cluster = outcome(load_cluster, path)
        if cluster is not None:
            _usable_cluster(cluster, graph)

    check()


def test_mutated_cluster_dicts_load_or_are_refused_in_one_line(files, graph):
    """Both dict forms: parsed YAML (:func:`parse_cluster`) and a plan's cluster object (:meth:`Cluster.from_dict`)."""
    work = files["work"]
    yaml_trees = [yaml.safe_load(t) for t in files["clusters"].values()]
    plan_trees = [load_cluster(work / "profiled.yaml").to_dict()] + [
        Cluster.from_dict(d["cluster"]).to_dict() for d in files["plans"] if isinstance(d["cluster"], dict)]

    @_settings(250)
    @given(st.data())
    def check(data):
        tree = _deep_objects(data.draw(mutated_tree(yaml_trees)))
        cluster = outcome(parse_cluster, tree, "inline.yaml", base=work)
        if cluster is not None:
            _usable_cluster(cluster, graph)
        tree = _deep_objects(data.draw(mutated_tree(plan_trees)))
        cluster = outcome(Cluster.from_dict, tree, "plan.json: cluster")
        if cluster is not None:
            _usable_cluster(cluster, graph)

    check()


# ---------------------------------------------------------------- profiles


def test_mutated_profile_file_is_read_or_refused_in_one_line(files, graph):
    """The profile a device names: fields missing or ill-typed, not JSON, not UTF-8, cut short."""
    work = files["work"]
    prof = work / "mutated-profile.json"
    cfile = work / "uses-profile.yaml"
    cfile.write_text(PROFILED_YAML.replace("prof.json", prof.name))

    @_settings(250)
    @given(st.data())
    def check(data):
        tree = data.draw(mutated_tree([files["profile"]]))
        prof.write_bytes(data.draw(file_bytes(_dump_json(data.draw, tree))))
        outcome(Profile.read, prof)
        cluster = outcome(load_cluster, cfile)
        if cluster is not None:
            _usable_cluster(cluster, graph)
        outcome(Profile.from_data, _deep_objects(tree))

    check()


PROFILE_PATHS = ["missing.json", "", " ", ".", "..", "/", "sub/", "prof.json/x", "cluster.yaml", "binary.bin",
                 "~nosuchuser/prof.json", "~", "a\x00b.json", "\ud800.json", "\udcff.json", "p" * 300 + ".json",
                 "/".join(["d"] * 2000), "名前.json", "prof.json\n", "\x1b[2J.json", 7, 1.5, True, [], {"path": "x"}]


@pytest.mark.parametrize("name", PROFILE_PATHS, ids=lambda v: ascii(v)[:24])
def test_device_profile_naming_a_bad_file_is_refused_in_one_line(files, graph, name):
    work = files["work"]
    (work / "binary.bin").write_bytes(bytes(range(256)))
    (work / "sub").mkdir(exist_ok=True)
    tree = yaml.safe_load(PROFILED_YAML)
    tree["devices"][1]["profile"] = name
    (work / "bad-profile.yaml").write_text(yaml.safe_dump(tree), encoding="utf-8", errors="surrogatepass")
    cluster = outcome(load_cluster, work / "bad-profile.yaml")
    if cluster is not None:
        _usable_cluster(cluster, graph)
    cluster = outcome(parse_cluster, tree, "inline.yaml", base=work)
    if cluster is not None:
        _usable_cluster(cluster, graph)


# ---------------------------------------------------------------- the command line


def _cli(args: list[str]) -> tuple[int, str, str]:
    """``edgeslice ARGS`` in this process: (status, stdout, stderr); an escaping exception is a traceback."""
    import traceback

    from edgeslice.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc(file=err)
            code = 1
    return code, out.getvalue(), err.getvalue()


def _assert_cli_refusal(args: list[str]) -> str:
    code, out, err = _cli(args)
    shown = f"$ edgeslice {' '.join(map(ascii, args))}\n[exit {code}]\n{out[-2000:]}\n{err[-2000:]}"
    assert "Traceback" not in out + err, shown
    assert code == 2, shown
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[-1].startswith("edgeslice: error: "), shown
    assert_clean(EdgesliceError(lines[-1].removeprefix("edgeslice: error: ")))
    return lines[-1]


def _plan_edits(d: dict) -> dict[str, bytes]:
    def edited(fn) -> bytes:
        e = copy.deepcopy(d)
        fn(e)
        return json.dumps(e, indent=2).encode()

    text = json.dumps(d, indent=2)
    return {
        "truncated": text[: len(text) // 2].encode(),
        "not-utf8": text.encode()[:40] + b"\xff\xfe" + text.encode()[40:],
        "deep": (text[:-1] + ', "x": ' + "[" * DEPTH + "]" * DEPTH + "}").encode(),
        "huge-batch": text.replace('"batch": 1', '"batch": ' + "9" * 5000, 1).encode(),
        "control-key": edited(lambda e: e["segments"][0]["parts"][0].update({"\x1b[2J\nrows": [0, 1]})),
        "huge-gflops": edited(lambda e: e["cluster"]["devices"][0].update(gflops=10**400)),
        "long-cut": edited(lambda e: e["segments"][0].update(cut="s" * 5000)),
        "swapped-segments": edited(lambda e: e["segments"].insert(0, e["segments"].pop(1))),
    }


def test_mutated_files_are_refused_by_the_command_line_in_one_line(files):
    work = files["work"]
    base = files["plans"][1]  # random on hetero3: spatial and channel cuts, a cluster object
    for name, data in _plan_edits(base).items():
        path = work / f"cli-{name}.json"
        path.write_bytes(data)
        _assert_cli_refusal(["show", str(path)])
    valid = work / "cli-valid.json"
    valid.write_text(json.dumps(base, indent=2))
    profiled = yaml.safe_load(PROFILED_YAML)
    for name, text in {
        "deep": PROFILED_YAML.replace("source: cam", "source: " + "[" * DEPTH + "]" * DEPTH),
        "huge": PROFILED_YAML.replace("gflops: 4,", "gflops: " + "9" * 5000 + ","),
        "home": PROFILED_YAML.replace("prof.json", "~nosuchuser/prof.json"),
        "nul": PROFILED_YAML.replace("prof.json", '"prof\\0.json"'),
        "not-json-profile": PROFILED_YAML.replace("prof.json", "cli-cluster-deep.yaml"),
        "hetero-devices": yaml.safe_dump({**profiled, "devices": profiled["devices"] * 2}),
    }.items():
        path = work / f"cli-cluster-{name}.yaml"
        path.write_text(text)
        _assert_cli_refusal(["show", str(valid), "--cluster", str(path)])
    _assert_cli_refusal(["check", str(work / "cli-huge-batch.json")])
    _assert_cli_refusal(["check", str(work / "cli-swapped-segments.json")])
