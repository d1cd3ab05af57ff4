"""Planner ``mtl-a3c``: a trained MEC agent places one task's blocks over a cluster.

``edgeslice train mtl-a3c -o agent.pt`` learns where each of a task's M blocks
runs (the IoT device or one of N edge servers); this planner asks that agent
for one task and writes the answer as an ordinary Plan, so ``simulate``,
``run`` and ``run --testbed`` take it like any other.  Any of the three
learned agents works (``mtl-a3c``, ``a3c``, ``dqn``: the file says which).

What the agent sees is its training state for one task at the start of an
episode with idle queues (see :mod:`~.env`): the blocks of *this* model cut
into the agent's M blocks (their FLOPs and input bytes), the rate from the
cluster's source to each ES (the cluster's links, bytes/s), the deadline
(``deadline_s``, default the middle of the agent's range), a full energy
budget.  Place 0 is the cluster's source; places 1..N are the other devices
in the cluster's order (the first N of them; those not named ``iot*`` first,
when there are N of them: the edge servers of a MEC cluster).  The agent knows the servers'
speeds only as it learned them in training — the cluster's ``gflops`` are not
in its state — so plan on a cluster that matches the agent's config.

>>> import tempfile, pathlib
>>> from edgeslice.graph import trace
>>> from edgeslice.cluster.load import resolve_cluster
>>> from edgeslice.planners import make_plan
>>> from edgeslice.planners.learned.agents import train_agent
>>> from edgeslice.planners.learned.nets import save_agent
>>> net, _, _ = train_agent("dqn", "paper", {"episodes": 1, "actors": 1}, tasks=10, model="alexnet",
...                         input=(3, 64, 64), blocks=3, edge_servers=2)
>>> path = pathlib.Path(tempfile.mkdtemp()) / "agent.pt"
>>> save_agent(net, path, algo="dqn", config={"mode": "paper", "model": "alexnet", "input": [3, 64, 64],
...                                           "blocks": 3, "edge_servers": 2})
>>> g, _ = trace("alexnet", (3, 64, 64))
>>> plan = make_plan("mtl-a3c", g, resolve_cluster("hetero3"), agent=str(path))
>>> 1 <= len(plan.segments) <= 3 and plan.planner
'mtl-a3c'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgeslice.errors import OptionError
from edgeslice.graph.layer import LayerGraph
from edgeslice.planners import register
from edgeslice.planners._shared.common import make, whole_segments
from edgeslice.planners.options import PlannerOptions, option


@dataclass(frozen=True)
class AgentOptions(PlannerOptions):
    agent: str | None = option(None, "the trained agent file (`edgeslice train mtl-a3c -o agent.pt`)")
    deadline_s: float | None = option(None, "each block's deadline in the agent's state (default: the middle of "
                                            "the agent's deadline range)")


def _places(agent: str, graph: LayerGraph, cluster, deadline_s: float | None) -> tuple[np.ndarray, list[int], list[str]]:
    """``(places per block, block start layer indices, device per place)`` from the agent for one task."""
    from edgeslice.planners.learned.agents import agent_policy
    from edgeslice.planners.learned.config import load_config
    from edgeslice.planners.learned.env import MECEnv
    from edgeslice.planners.learned.nets import load_agent

    net, rec = load_agent(agent)
    cfg = load_config(dict(rec.get("config") or {}), tasks=1, model=graph.spec, input=tuple(graph.input_shape))
    others = [n for n in cluster.names if n != cluster.source]
    servers = [n for n in others if not n.startswith("iot")]  # a MEC cluster names its IoT devices iot*
    others = servers if len(servers) >= cfg.edge_servers else others
    if len(others) < cfg.edge_servers:
        raise OptionError(f"mtl-a3c: agent {agent} places blocks on {cfg.edge_servers} edge servers, but cluster "
                          f"{cluster.name!r} has {len(others)} devices besides the source {cluster.source!r}; "
                          f"plan on a cluster with at least {cfg.edge_servers + 1} devices")
    es = others[: cfg.edge_servers]
    env = MECEnv(cfg)
    env.reset(seed=0)
    if len(env.net.blocks.starts) != cfg.blocks:
        raise OptionError(f"mtl-a3c: {graph.spec} cannot be cut into the agent's {cfg.blocks} blocks")
    env.net.tau[0] = deadline_s if deadline_s is not None else sum(cfg.deadline_s) / 2
    env.net.R[0] = [cluster.link(cluster.source, e).bandwidth_mbps * 1e6 / 8 for e in es]
    return np.asarray(agent_policy(net)(env)), list(env.net.blocks.starts), [cluster.source, *es]


@register("mtl-a3c", "a trained MEC agent (edgeslice train mtl-a3c|a3c|dqn) places the task's blocks on the "
                     "source or an edge server (--agent FILE)", options=AgentOptions)
def plan_agent(graph: LayerGraph, cluster, cost, opts: AgentOptions):
    if not opts.agent:
        raise OptionError("mtl-a3c: needs the trained agent: --agent agent.pt (train one with "
                          "`edgeslice train mtl-a3c -o agent.pt`)")
    places, starts, devices = _places(opts.agent, graph, cluster, opts.deadline_s)
    ends = [*starts[1:], len(graph.layers)]
    per_layer = [devices[int(places[b])] for b, (a, z) in enumerate(zip(starts, ends)) for _ in range(a, z)]
    return make(graph, cluster, whole_segments(graph, per_layer), "mtl-a3c")
