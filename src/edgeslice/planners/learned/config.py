"""The MEC scenario of Li et al. (TMC 2024) as one typed, validated config (pydantic).

Every number the environment, the exact optimum and the agents use comes from
one :class:`MECConfig`; the two bundled files (``configs/paper.yaml``,
``configs/contention.yaml``) hold the paper's values and, marked *ours*, the
ones it does not give.  A bad value is refused in one line that names the key
(:func:`load_config`), never as a pydantic traceback.

>>> c = load_config("paper")
>>> c.mode, c.blocks, c.edge_servers, c.tasks
('paper', 6, 4, 600)
>>> load_config("paper", edge_servers=2).es_hz
[6000000000.0, 9000000000.0]
>>> load_config("paper", blocks=0)
Traceback (most recent call last):
...
edgeslice.errors.OptionError: mec config: blocks: Input should be greater than or equal to 1 (got 0)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from edgeslice.errors import OptionError

CONFIGS = Path(__file__).parent / "configs"
MODES = ("paper", "contention")


class MECConfig(BaseModel):
    """One MEC scenario: the network, the task stream, the energy budget and the reward weights.

    Lists given per ES (``es_hz``, ``es_gain_db``) are repeated or cut to
    ``edge_servers`` entries, so a sweep over N changes one number.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["paper", "contention"] = "paper"
    model: str = "vgg16"
    input: tuple[int, int, int] | None = None
    blocks: int = Field(6, ge=1, le=64)
    edge_servers: int = Field(4, ge=1, le=64)
    tasks: int = Field(600, ge=1)
    rate: float = Field(60.0, gt=0)
    deadline_s: tuple[float, float] = (1.0, 7.0)
    iot_devices: int = Field(1, ge=1, le=256)
    flops_per_cycle: float = Field(8.0, gt=0)
    local_hz: float = Field(0.6e9, gt=0)
    es_hz: list[float] = [6.0e9, 9.0e9, 12.0e9, 15.0e9]
    bandwidth_hz: float = Field(2.0e6, gt=0)
    tx_power_w: float = Field(0.5, gt=0)
    noise_w_per_hz: float = Field(4.0e-21, gt=0)
    es_gain_db: list[float] = [-118.0, -120.0, -122.0, -124.0]
    rate_range_Bps: tuple[float, float] = (0.8e6, 2.0e6)
    backhaul_Bps: float = Field(12.5e6, gt=0)
    kappa: float = Field(1.0e-26, ge=0)
    energy_budget_j: float = Field(120.0, ge=0)
    energy_price: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)
    # ours, for a network measured rather than drawn (the real testbed run): seconds of each block on each
    # place (rows: the device, then ES 1..N; each M long) instead of cycles / speed; a fixed rate from each
    # IoT device to each ES (rows: devices; each N long, bytes/s) instead of the fading draw; and what a
    # contention-mode transfer queues behind: one wireless channel per ES shared by every device ("es"), or
    # one per device-ES pair and direction ("link": the testbed's switched per-pair links)
    block_s: list[list[float]] | None = None
    link_Bps: list[list[float]] | None = None
    channels: Literal["es", "link"] = "es"

    @field_validator("deadline_s", "rate_range_Bps")
    @classmethod
    def _range(cls, v):
        lo, hi = v
        if not (0 < lo <= hi and math.isfinite(hi)):
            raise ValueError(f"needs 0 < low <= high, got {list(v)}")
        return v

    @field_validator("es_hz")
    @classmethod
    def _positive(cls, v):
        if not v or any(not (x > 0 and math.isfinite(x)) for x in v):
            raise ValueError(f"needs positive rates, got {v}")
        return v

    @model_validator(mode="after")
    def _per_es(self):
        n = self.edge_servers
        for key in ("es_hz", "es_gain_db"):
            v = list(getattr(self, key))
            if not v:
                raise ValueError(f"{key} is empty")
            object.__setattr__(self, key, [v[i % len(v)] for i in range(n)])
        return self

    @model_validator(mode="after")
    def _measured(self):
        if self.block_s is not None and (len(self.block_s) != self.edge_servers + 1 or any(
                not r or any(not (x > 0 and math.isfinite(x)) for x in r) for r in self.block_s)):
            raise ValueError(f"block_s needs {self.edge_servers + 1} rows (the device, then each ES) of positive "
                             f"seconds per block")
        if self.link_Bps is not None and (len(self.link_Bps) != self.iot_devices or any(
                len(r) != self.edge_servers or any(not (x > 0 and math.isfinite(x)) for x in r)
                for r in self.link_Bps)):
            raise ValueError(f"link_Bps needs {self.iot_devices} rows (one per IoT device) of "
                             f"{self.edge_servers} positive rates (bytes/s, one per ES)")
        return self

    @property
    def places(self) -> int:
        """N + 1: the device (place 0) and the ESs (places 1..N)."""
        return self.edge_servers + 1


def _first_error(e: ValidationError, data: dict) -> str:
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "config"
    got = data.get(err["loc"][0]) if err["loc"] else None
    msg = err["msg"].removeprefix("Value error, ")
    return f"{key}: {msg}" + (f" (got {got!r})" if got is not None and err["type"] != "extra_forbidden" else "")


def load_config(source: str | Path | dict | MECConfig = "paper", **overrides) -> MECConfig:
    """A :class:`MECConfig` from a bundled name (``paper``, ``contention``), a YAML path or a dict, with overrides.

    Overrides replace keys (``edge_servers=6``); an unknown key or a bad value
    raises :class:`~edgeslice.errors.OptionError` naming it.
    """
    import yaml

    if isinstance(source, MECConfig):
        data = source.model_dump()
    elif isinstance(source, dict):
        data = dict(source)
    else:
        path = CONFIGS / f"{source}.yaml" if str(source) in MODES else Path(source)
        if not path.is_file():
            raise OptionError(f"mec config {str(source)!r}: no such file; use 'paper', 'contention' or a YAML path")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise OptionError(f"mec config {path}: not YAML ({str(e).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise OptionError(f"mec config {path}: needs a mapping of keys, got {type(data).__name__}")
    if overrides:
        n = overrides.get("edge_servers")
        if n is not None and isinstance(source, MECConfig):  # re-derive the per-ES lists from the shipped ones
            base = load_config(source.mode)
            data["es_hz"], data["es_gain_db"] = base.es_hz, base.es_gain_db
        data.update(overrides)
    try:
        return MECConfig(**data)
    except ValidationError as e:
        raise OptionError(f"mec config: {_first_error(e, data)}") from None
