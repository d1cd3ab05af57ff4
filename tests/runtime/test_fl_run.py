"""An fl-psomw plan runs for real: worker processes over gloo, output equal to the whole model's."""

from __future__ import annotations

import yaml

from edgeslice.bench.fl import iot_cluster
from edgeslice.cost import ClusterCost
from edgeslice.planners import make_plan
from edgeslice.runtime.launch import run_plan


def test_fl_psomw_plan_runs_on_worker_processes(traced, tmp_path):
    g, _ = traced("alexnet", (3, 64, 64))
    cluster = iot_cluster(100.0, 100.0, 2)  # fast uplink: the best plan offloads some paths of a fused block
    plan = make_plan("fl-psomw", g, cluster, ClusterCost(cluster), swarm=10, iterations=10)
    spatial = [s for s in plan.segments if s.cut == "spatial"]
    assert spatial and len({p.device for p in spatial[0].parts}) > 1
    cfile = tmp_path / "cluster.yaml"
    cfile.write_text(yaml.safe_dump({
        "name": cluster.name, "source": cluster.source, "sink": cluster.sink,
        "devices": [{"name": d.name, "gflops": d.gflops} for d in cluster.devices],
        "links": {"default": {"bandwidth_mbps": cluster.default_link.bandwidth_mbps,
                              "latency_ms": cluster.default_link.latency_ms}},
    }))
    path = tmp_path / "plan.json"
    plan.save(path)
    res = run_plan(str(path), cluster=str(cfile), requests=2, out=str(tmp_path / "run"), timeout=60)
    assert res["rel_err"] <= 1e-5, res["rel_err"]
    assert len(res["latencies_s"]) == 2 and res["predicted_latency_s"] > 0
    # every offloaded path's input went up from the IoT device and came back as output
    assert res["bytes_sent"]["iot"] > 0 and res["bytes_received"]["iot"] > 0
