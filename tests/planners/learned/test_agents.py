"""DQN is deterministic and saves like the A3C agents; `edgeslice train` writes an agent, a curve and checkpoints;
the MEC comparison has the contract's fields and nothing beats the exact optimum's reward."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _cli import _run, assert_user_error

from edgeslice.bench.mec import METHODS, compare
from edgeslice.planners.learned.agents import (
    agent_policy,
    episodes_to_converge,
    train_agent,
)
from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import MECEnv
from edgeslice.planners.learned.nets import load_agent, save_agent

FIELDS = ("total_delay_s", "edge_delay_s", "local_delay_s", "miss_rate", "gap_to_optimum_pct", "episodes_to_converge")


def _places(net, seed=3, tasks=15):
    env = MECEnv("paper", tasks=tasks)
    env.reset(seed=seed)
    pol = agent_policy(net)
    out = []
    for _ in range(tasks):
        p = pol(env)
        out.append(p.tolist())
        env.run_task(p)
    return out


def test_dqn_is_deterministic_under_a_seed_and_learns_something():
    a, ca, _ = train_agent("dqn", "paper", {"episodes": 2, "actors": 2, "seed": 4}, tasks=30)
    b, cb, _ = train_agent("dqn", "paper", {"episodes": 2, "actors": 2, "seed": 4}, tasks=30)
    assert [c["reward"] for c in ca] == [c["reward"] for c in cb]
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k
    c, cc, _ = train_agent("dqn", "paper", {"episodes": 2, "actors": 2, "seed": 5}, tasks=30)
    assert [e["reward"] for e in cc] != [e["reward"] for e in ca]


@pytest.mark.parametrize("algo", ["dqn", "a3c", "mtl-a3c"])
def test_saved_agents_load_with_weights_only_and_place_alike(tmp_path, algo):
    net, _, _ = train_agent(algo, "paper", {"episodes": 1}, tasks=12)
    path = tmp_path / "agent.pt"
    save_agent(net, path, algo=algo, config=load_config("paper", tasks=12).model_dump(mode="json"))
    back, rec = load_agent(path)
    assert rec["algo"] == algo and type(back) is type(net)
    assert _places(back) == _places(net)


def test_an_unknown_training_option_is_refused_in_one_line():
    from edgeslice.errors import OptionError

    with pytest.raises(OptionError, match="train dqn: learning_rate: Extra inputs"):
        train_agent("dqn", "paper", {"learning_rate": 1})
    with pytest.raises(OptionError, match="no learned agent 'ppo'"):
        train_agent("ppo", "paper")


def test_episodes_to_converge_is_the_first_episode_staying_within_one_percent():
    flat = [{"reward": -1.0}] * 5
    assert episodes_to_converge(flat) == 1
    late = [{"reward": r} for r in (-3.0, -1.0, -3.0, -1.0, -1.0, -1.0)]
    assert episodes_to_converge(late, window=1) == 4


def test_train_command_writes_agent_curve_and_checkpoints(tmp_path):
    out = tmp_path / "a.pt"
    r = _run(tmp_path, ["train", "dqn", "--episodes", "2", "--workers", "1", "--set", "tasks=10", "-o", str(out),
                        "--json"])
    assert r.returncode == 0, r
    summary = json.loads(r.stdout)
    assert summary["episodes"] == 2 and summary["agent"] == str(out)
    assert out.is_file() and (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "a-checkpoints").iterdir()) == ["episode-00001.pt", "episode-00002.pt"]
    net, rec = load_agent(out)
    assert rec["config"]["tasks"] == 10 and rec["options"]["actors"] == 1
    assert len(_places(net, tasks=10)) == 10


@pytest.mark.parametrize("args,needle", [
    (["train", "mtl-a3c", "--set", "blocks=0"], "blocks: Input should be greater than or equal to 1"),
    (["train", "mtl-a3c", "--set", "blocks"], "give KEY=VALUE"),
    (["train", "mtl-a3c", "--opt", "sharing=medium"], "sharing"),
    (["train", "a3c", "-o", "/nonexistent/x.pt"], "no such folder"),
])
def test_train_refuses_bad_input_in_one_line(tmp_path, args, needle):
    assert_user_error(_run(tmp_path, args), needle)


def test_comparison_has_the_contract_fields_and_the_optimum_has_the_best_reward():
    cfg = load_config("paper", tasks=25, edge_servers=3)
    rows, curves, nets = compare(cfg, train={"mtl-a3c": 1, "a3c": 1, "dqn": 1}, eval_episodes=1, progress=lambda s: None)
    assert set(rows) == set(METHODS) - {"lookahead", "window-opt"}  # those two are contention mode's
    for name, r in rows.items():
        assert all(k in r for k in FIELDS), name
        assert r["reward"] <= rows["optimum"]["reward"] + 1e-9, name  # the optimum is exact for the episode's reward
        assert np.isclose(r["total_delay_s"], r["edge_delay_s"] + r["local_delay_s"]), name
    assert rows["optimum"]["gap_to_optimum_pct"] == 0.0
    assert all(rows[k]["episodes_to_converge"] >= 1 for k in ("mtl-a3c", "a3c", "dqn"))
    assert rows["local"]["edge_delay_s"] == 0.0 and rows["edge"]["local_delay_s"] == 0.0


def test_contention_comparison_has_the_references_and_gaps_to_window_opt():
    cfg = load_config("contention", tasks=12, edge_servers=2, blocks=3, iot_devices=2, es_hz=[6e9, 12e9],
                      es_gain_db=[-118.0, -122.0], rate=3.0)
    rows, _, _ = compare(cfg, train={"mtl-a3c": 1, "a3c": 1, "dqn": 1}, eval_episodes=1, progress=lambda s: None)
    assert set(rows) == set(METHODS) - {"optimum"}
    assert rows["window-opt"]["gap_to_optimum_pct"] == 0.0  # gaps are to window-opt there
    assert rows["queue-dp"]["gap_to_optimum_pct"] == pytest.approx(
        100 * (rows["queue-dp"]["total_delay_s"] / rows["window-opt"]["total_delay_s"] - 1), abs=1e-3)
