"""A MEC network from measured figures (the real run's): block times, fixed link rates, per-link channels."""

from __future__ import annotations

import pytest
from gymnasium.utils.env_checker import check_env

from edgeslice.errors import OptionError
from edgeslice.planners.learned.config import load_config
from edgeslice.planners.learned.env import MECEnv
from edgeslice.planners.learned.heuristics import POLICIES
from edgeslice.planners.learned.network import Network

BLOCK_S = [[0.4, 0.3, 0.2], [0.1, 0.05, 0.02], [0.08, 0.04, 0.01]]
LINKS = [[1e6, 2e6], [1.5e6, 0.5e6]]


def _cfg(**kw):
    base = dict(model="alexnet", input=(3, 64, 64), blocks=3, edge_servers=2, iot_devices=2, tasks=20, rate=5.0,
                block_s=BLOCK_S, link_Bps=LINKS, channels="link")
    return load_config("contention", **{**base, **kw})


def test_block_times_and_link_rates_are_the_measured_ones():
    net = Network(_cfg(), seed=3)
    for t in range(net.T):
        assert list(net.R[t]) == LINKS[int(net.device[t])]
    t = 0
    tr = net.task(t)
    ready = float(net.arrival[t])
    L0 = tr.place(0, 2)  # image to ES 2, block 0 there
    assert L0 == pytest.approx(net.inb[0] / LINKS[int(net.device[t])][1] + BLOCK_S[2][0], rel=1e-12)
    L1 = tr.place(1, 2)  # same place: compute only
    assert L1 == pytest.approx(BLOCK_S[2][1], rel=1e-12)
    L2 = tr.place(2, 0)  # back to the device
    assert L2 == pytest.approx(net.inb[2] / LINKS[int(net.device[t])][1] + BLOCK_S[0][2], rel=1e-12)
    assert tr.ready == pytest.approx(ready + L0 + L1 + L2, rel=1e-12)


@pytest.mark.parametrize("channels", ["es", "link"])
def test_two_devices_uploading_to_one_es_queue_only_on_a_shared_channel(channels):
    net = Network(_cfg(channels=channels), seed=0)
    net.arrival[:2] = 0.0
    net.device[:2] = [0, 1]
    net.R[0], net.R[1] = LINKS[0], LINKS[1]
    a, b = net.task(0), net.task(1)
    up_a = net.inb[0] / LINKS[0][0]
    up_b = net.inb[0] / LINKS[1][0]
    a.place(0, 1)
    Lb = b.place(0, 1)
    # es: b's upload waits for a's on ES 1's one channel; link: each device has its own link to ES 1.
    # Either way b's block then waits for ES 1's CPU, which a's block holds until up_a + BLOCK_S[1][0].
    b_up_end = (up_a + up_b) if channels == "es" else up_b
    assert Lb == pytest.approx(max(b_up_end, up_a + BLOCK_S[1][0]) + BLOCK_S[1][0], rel=1e-12)


def test_the_environment_and_our_planner_take_a_measured_network():
    check_env(MECEnv(_cfg()), skip_render_check=True)
    env = MECEnv(_cfg())
    env.reset(seed=1)
    places = POLICIES["queue-dp"](env)
    assert places.shape == (3,) and ((places >= 0) & (places <= 2)).all()


def test_bad_measured_figures_are_one_line_errors():
    with pytest.raises(OptionError, match="block_s needs 3 rows"):
        _cfg(block_s=BLOCK_S[:2])
    with pytest.raises(OptionError, match="link_Bps needs 2 rows"):
        _cfg(link_Bps=[[1e6, 1e6]])
    with pytest.raises(OptionError, match="3 seconds per place"):
        Network(_cfg(block_s=[r[:2] for r in BLOCK_S]), seed=0)
