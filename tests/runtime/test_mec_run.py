"""The multi-source MEC run over loopback: many tasks' Programs at once, each output checked against the model."""

from __future__ import annotations

import json

import pytest

from edgeslice.cluster.load import resolve_cluster
from edgeslice.plan.plan import Plan
from edgeslice.runtime.mec import block_times, measured_config, real_run, roles


def test_every_task_of_every_source_runs_and_matches_the_model(tmp_path):
    res = real_run("mec-testbed", model="alexnet", input_shape=(3, 64, 64), blocks=3, tasks=6, rate=20.0,
                   policies=("mtl-a3c",), train_episodes=2, use_testbed=False, out=str(tmp_path))
    cluster = resolve_cluster("mec-testbed")
    iot, es = roles(cluster)
    assert (iot, es) == (["iot0", "iot1"], ["es0", "es1"])
    for name, p in res["policies"].items():
        rows = p["tasks"]
        assert p["summary"]["all_outputs_ok"] and len(rows) == 6, name
        assert {r["iot"] for r in rows} <= {0, 1}
        scen = json.loads((tmp_path / name / "scenario.json").read_text())
        for r, t in zip(rows, scen["tasks"]):
            plan = Plan.load(tmp_path / name / t["plan"])
            where = [iot[r["iot"]] if q == 0 else es[q - 1] for q in r["places"]]
            assert plan.source == iot[r["iot"]] and plan.sink == where[-1]
            assert [s.parts[0].device for s in plan.segments] == where  # one segment per block
            assert r["measured_s"] > 0 and r["predicted_s"] > 0 and r["rel_err"] <= 1e-4
        # every block's compute was timed where it ran (what the testbed's calibration episode reads)
        times = block_times(rows, tmp_path / name, cluster.names)
        assert set(times) == {(q, m) for r in rows for m, q in enumerate(r["places"])}
        assert all(v > 0 for v in times.values())
    assert (tmp_path / "mtl-a3c.pt").is_file()


def test_the_measured_config_is_the_clusters_figures(traced):
    from edgeslice.cost import ClusterCost
    from edgeslice.planners._shared.common import layer_times

    cluster = resolve_cluster("mec-testbed")
    g, _ = traced("alexnet", (3, 64, 64))
    cfg = measured_config(cluster, g, 3, tasks=5, rate=1.0)
    T = layer_times(g, cluster, ClusterCost(cluster))
    assert cfg.channels == "link" and cfg.iot_devices == 2 and cfg.edge_servers == 2
    assert sum(cfg.block_s[1]) == pytest.approx(T[:, 2].sum(), rel=1e-9)  # es0 is the third device
    assert cfg.link_Bps == [[1e6, 1.5e6], [1e6, 1.5e6]] and cfg.backhaul_Bps == 12.5e6
