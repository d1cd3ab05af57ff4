"""The MEC environments pass gymnasium's checker in both modes; task- and block-level steps price alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from edgeslice.errors import OptionError
from edgeslice.planners.learned.a3c import options, task_policy, train
from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import BlockMECEnv, MECEnv
from edgeslice.planners.learned.nets import load_agent, save_agent


@pytest.mark.parametrize("mode", ["paper", "contention"])
def test_env_checker_passes(mode):
    check_env(MECEnv(mode, tasks=30), skip_render_check=True)
    check_env(BlockMECEnv(mode, tasks=30), skip_render_check=True)


@pytest.mark.parametrize("mode", ["paper", "contention"])
def test_block_steps_add_up_to_the_task_step(mode):
    rng = np.random.default_rng(0)
    a, b = MECEnv(mode, tasks=40), BlockMECEnv(mode, tasks=40)
    a.reset(seed=5)
    b.reset(seed=5)
    b.inner.net = type(a.net)(a.cfg, seed=int(a.net.R[0, 0] * 0) + 0)  # same instance for both
    a.net = type(a.net)(a.cfg, seed=0)
    b._begin()
    for _ in range(40):
        places = rng.integers(0, a.P, a.M)
        _, r, done, _, _ = a.step(places)
        rb = 0.0
        for p in places:
            _, r1, done_b, _, _ = b.step(int(p))
            rb += r1
        assert rb == pytest.approx(r, rel=1e-9, abs=1e-12)
        assert done == done_b


def test_contention_queues_delay_the_next_task():
    env = MECEnv("contention", tasks=50)
    env.reset(seed=1)
    first = env.run_task(np.ones(env.M, np.int64))
    # a second task on the same ES right behind it waits for the first one's blocks
    env.net.arrival[1] = env.net.arrival[0]
    env.net.device[1] = env.net.device[0]
    env.net.R[1] = env.net.R[0]
    second = env.run_task(np.ones(env.M, np.int64))
    assert second["delay_s"] > first["delay_s"]


def test_bad_config_is_one_line():
    with pytest.raises(OptionError, match="edge_servers"):
        load_config("paper", edge_servers="many")
    with pytest.raises(OptionError, match="no such file"):
        load_config("nope.yaml")
    with pytest.raises(OptionError, match="lr"):
        options(lr=-1)


def test_training_is_deterministic_and_the_agent_round_trips(tmp_path):
    o = options(episodes=3, workers=2, k=8, seed=3)
    net1, c1 = train(o, "paper", tasks=30)
    net2, c2 = train(o, "paper", tasks=30)
    assert [e["reward"] for e in c1] == [e["reward"] for e in c2]
    for p1, p2 in zip(net1.parameters(), net2.parameters()):
        assert torch.equal(p1, p2)
    save_agent(net1, tmp_path / "a.pt", algo="mtl-a3c", config=load_config("paper", tasks=30).model_dump())
    net3, rec = load_agent(tmp_path / "a.pt")
    env = MECEnv("paper", tasks=30)
    env.reset(seed=0)
    assert (task_policy(net3)(env) == task_policy(net1)(env)).all()
    assert rec["algo"] == "mtl-a3c"


def test_single_head_a3c_trains_on_blocks():
    net, curve = train(options(algo="a3c", episodes=2, workers=2, k=8), "paper", tasks=20)
    assert net.dims["heads"] == 1 and len(curve) == 2
    env = MECEnv("paper", tasks=20)
    env.reset(seed=0)
    assert task_policy(net)(env).shape == (env.M,)


def test_observation_statistics_are_the_running_mean_and_variance():
    from edgeslice.planners.learned.nets import ActorCritic

    rng = np.random.default_rng(0)
    net = ActorCritic(obs_dim=5, heads=2, places=3, normalize=True)
    batches = [rng.normal(3.0, 2.0, (n, 5)) for n in (1, 7, 30)]
    batches[1][:, 4] = batches[0][0, 4] = batches[2][:, 4] = 1.5  # a feature that never varies
    for b in batches:
        net.observe(b)
    x = np.concatenate(batches)
    assert net.obs_count.item() == len(x)
    assert np.allclose(net.obs_mean.numpy(), x.mean(0), atol=1e-12)
    assert np.allclose((net.obs_m2 / net.obs_count).numpy(), x.var(0), atol=1e-10)
    # the network reads standardised inputs: the mean observation looks like zeros, whatever its scale
    m = torch.tensor(x.mean(0), dtype=torch.float32)[None]
    plain = ActorCritic(obs_dim=5, heads=2, places=3)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("obs_")})
    assert torch.allclose(net(m)[0], plain(torch.zeros(1, 5))[0], atol=1e-5)


def test_coupled_sampling_keeps_each_heads_softmax_and_moves_agreeing_heads_together():
    from edgeslice.planners.learned.a3c import sample

    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]] * 3 + [[2.0, 0.0, 0.0, 1.0]])[None].repeat(20_000, 1, 1)
    want = torch.softmax(logits[0], -1)
    for coupled in (False, True):
        a = sample(logits, torch.Generator().manual_seed(1), coupled=coupled)
        freq = torch.stack([torch.bincount(a[:, h], minlength=4) for h in range(4)]).float() / len(a)
        assert torch.allclose(freq, want, atol=0.015), coupled  # every head follows its own softmax
        same = (a[:, 0] == a[:, 1]) & (a[:, 1] == a[:, 2])
        if coupled:
            assert bool(same.all())  # heads with one distribution share one draw: always the same place
        else:
            assert same.float().mean() < 0.5
