"""The actor-critic network of MTL-A3C (and of single-head A3C), and saving/loading agents.

A shared trunk reads the state; M actor heads (one per block, the paper's
multi-task output) give a softmax over the N + 1 places each; one critic head
gives the state's value.  Sharing between the M actor tasks:

- ``hard``: the heads are single linear layers on the shared trunk — all the
  representation is shared;
- ``soft`` (the paper's "soft parameter sharing", as we build it): each head
  has its own two-layer tower on the trunk, and the loss adds
  ``soft_lambda · Σ_m ||θ_m − mean_k θ_k||²`` over the towers' weights, which
  pulls the blocks' towers towards each other without tying them (Ruder 2017's
  definition of soft sharing, applied to the actor heads).

With ``normalize`` the network standardises its input by the running mean
and variance of the observations it was trained on (kept as buffers, saved
with the agent): the state mixes constants (the model's blocks) with small
varying features (channel rates in [0.4, 1]), and without it the policy does
not learn to depend on the channel at all (docs/mtl-a3c.md).

A single-head A3C is the same network with M = 1 on the block-by-block
environment.  Agents are saved as plain dicts of tensors and numbers, so
``torch.load(path, weights_only=True)`` reads them.

>>> import torch
>>> net = ActorCritic(obs_dim=10, heads=3, places=5, sharing="soft")
>>> logits, value = net(torch.zeros(2, 10))
>>> tuple(logits.shape), tuple(value.shape)
((2, 3, 5), (2,))
>>> float(net.sharing_penalty()) >= 0
True
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from edgeslice.errors import OptionError

FORMAT = "edgeslice-mec-agent"


class ActorCritic(nn.Module):
    def __init__(self, obs_dim: int, heads: int, places: int, *, hidden: int = 128, tower: int = 64,
                 sharing: str = "soft", normalize: bool = False):
        super().__init__()
        if sharing not in ("hard", "soft"):
            raise OptionError(f"mtl-a3c: sharing must be 'hard' or 'soft', got {sharing!r}")
        self.dims = dict(obs_dim=obs_dim, heads=heads, places=places, hidden=hidden, tower=tower, sharing=sharing)
        if normalize:  # running mean and variance of the observations seen in training (saved with the agent)
            self.dims["normalize"] = True
            self.register_buffer("obs_count", torch.zeros((), dtype=torch.float64))
            self.register_buffer("obs_mean", torch.zeros(obs_dim, dtype=torch.float64))
            self.register_buffer("obs_m2", torch.zeros(obs_dim, dtype=torch.float64))
        self.trunk = nn.Sequential(nn.Linear(obs_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        if sharing == "hard":
            self.heads = nn.ModuleList(nn.Linear(hidden, places) for _ in range(heads))
        else:
            self.heads = nn.ModuleList(nn.Sequential(nn.Linear(hidden, tower), nn.ReLU(), nn.Linear(tower, places))
                                       for _ in range(heads))
        self.critic = nn.Sequential(nn.Linear(hidden, tower), nn.ReLU(), nn.Linear(tower, 1))
        for h in self.heads:  # near-uniform initial policies
            last = h if isinstance(h, nn.Linear) else h[-1]
            nn.init.normal_(last.weight, std=0.01)
            nn.init.zeros_(last.bias)

    def observe(self, obs) -> None:
        """Fold a batch of observations into the running statistics (Chan et al.'s parallel update)."""
        if not self.dims.get("normalize"):
            return
        x = torch.as_tensor(obs, dtype=torch.float64).reshape(-1, self.dims["obs_dim"])
        n, mean = float(x.shape[0]), x.mean(0)
        m2 = ((x - mean) ** 2).sum(0)
        tot = self.obs_count + n
        delta = mean - self.obs_mean
        self.obs_mean += delta * n / tot
        self.obs_m2 += m2 + delta ** 2 * self.obs_count * n / tot
        self.obs_count.fill_(tot)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dims.get("normalize") and self.obs_count > 1:
            std = (self.obs_m2 / self.obs_count).sqrt()
            # features that never vary (a model's block sizes) are centred, not scaled
            std = torch.where(std > 1e-6, std, torch.ones_like(std))
            x = ((x - self.obs_mean) / std).clamp(-10.0, 10.0).to(x.dtype)
        z = self.trunk(x)
        logits = torch.stack([h(z) for h in self.heads], dim=1)
        return logits, self.critic(z).squeeze(-1)

    def sharing_penalty(self) -> torch.Tensor:
        """``Σ_m ||θ_m − mean θ||²`` over the heads' parameters (0 for hard sharing or one head)."""
        if self.dims["sharing"] == "hard" or len(self.heads) < 2:
            return torch.zeros(())
        total = torch.zeros(())
        for params in zip(*(h.parameters() for h in self.heads)):
            stack = torch.stack(params)
            total = total + ((stack - stack.mean(0, keepdim=True)) ** 2).sum()
        return total


def save_agent(net: nn.Module, path: str | Path, *, algo: str, config: dict, extra: dict | None = None) -> None:
    """Write ``net`` with what it was trained on (algo, the MEC config as a dict) for :func:`load_agent`."""
    torch.save({"format": FORMAT, "algo": algo, "dims": dict(net.dims), "config": config,
                "state_dict": net.state_dict(), **(extra or {})}, Path(path))


def load_agent(path: str | Path) -> tuple[nn.Module, dict]:
    """``(network, record)`` from a file :func:`save_agent` wrote (read with ``weights_only=True``)."""
    p = Path(path)
    if not p.is_file():
        raise OptionError(f"agent {p}: no such file; train one with `edgeslice train mtl-a3c -o {p}`")
    try:
        rec = torch.load(p, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one user error
        raise OptionError(f"agent {p}: not an edgeslice agent ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        raise OptionError(f"agent {p}: not an edgeslice agent (format {rec.get('format') if isinstance(rec, dict) else '?'!r})")
    dims = dict(rec["dims"])
    if dims.pop("kind", None) == "q":
        from edgeslice.planners.learned.dqn import QNet

        net = QNet(dims["obs_dim"], dims["places"], hidden=dims["hidden"])
    else:
        net = ActorCritic(**dims)
    net.load_state_dict(rec["state_dict"])
    net.eval()
    return net, rec
