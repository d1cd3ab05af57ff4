"""Hogwild A3C: the workers split over OS processes that update one shared network, and the schedules that
run on the workers' steps (lr decayed to zero, ε to its floor) whatever the number of workers."""

from __future__ import annotations

import torch

from edgeslice.planners.learned.a3c import build_net, options, train
from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import MECEnv


def test_processes_share_one_network_and_every_worker_learns_into_it():
    opts = options(episodes=8, workers=4, processes=2, seed=1)
    torch.manual_seed(opts.seed)
    before = build_net(opts, MECEnv(load_config("paper", tasks=40)))
    seen = []
    net, curve = train(opts, "paper", tasks=40, progress=seen.append)
    assert [e["episode"] for e in curve] == list(range(1, 9)) and len(seen) == 8
    # both processes' workers (seeds 100, 102 in one; 101, 103 in the other) finished episodes
    workers = {e["worker"] for e in curve}
    assert workers & {100, 102} and workers & {101, 103}
    # the parent's network is the one they trained: moved from its initial weights, statistics gathered
    changed = [k for k, v in before.state_dict().items() if not torch.equal(v, net.state_dict()[k])]
    assert "trunk.0.weight" in changed and float(net.obs_count) > 0
    env = MECEnv("paper", tasks=40)
    env.reset(seed=5)
    with torch.no_grad():
        logits, _ = net(torch.from_numpy(env.observe())[None])
    assert torch.isfinite(logits).all()


def test_lr_and_epsilon_schedules_end_at_their_floor_with_many_workers(monkeypatch):
    lrs = []

    class Spy(torch.optim.RMSprop):
        def step(self, closure=None):
            lrs.append(self.param_groups[0]["lr"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "RMSprop", Spy)
    train(options(episodes=8, workers=4, k=5, seed=2), "paper", tasks=20)
    # 4 workers x 20 tasks x 2 episodes each = 160 worker steps; the lr falls linearly to 0 over them (it used to
    # count one step per round of all workers, so it ended at 3/4 of its start)
    assert lrs[0] == options().lr and lrs[-1] < 0.15 * options().lr
