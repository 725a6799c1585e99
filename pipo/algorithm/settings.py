"""PIPO's settings (the ``pipo`` config section), without torch: the config checks read them too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("shared", "separate", "sgd")  # pipo.optimizer (pipo.algorithm.pi_optimizer)
CONTROLS = ("none", "zero", "shuffle", "flip")  # pipo.control (pipo.algorithm.controller)
WINDOW_RULES = ("paper", "authors")  # pipo.window_rule (pipo.algorithm.feedback)
GROUP_NORMS = ("size", "none", "l1")  # pipo.group_norm (pipo.algorithm.attribution)


@dataclass(frozen=True)
class PIPOSettings:
    """The ``pipo`` config section (``conf/pipo/on.yaml``; ``docs/ALGORITHM.md`` lists each choice)."""

    lam: float
    window: int
    min_history: int
    eps: float
    ddof: int
    delta_clip: float | None
    lr: float
    group_norm: str
    optimizer: str = "shared"
    control: str = "none"
    window_rule: str = "paper"  # paper | authors (pipo.algorithm.feedback)
    diff_clip: float | None = None  # bound on |J − μ| (authors: 5)
    sigma_floor: float | None = None  # σ below it counts as 1 (authors: 1e-6)
    reward_clip: float | None = None  # bound on |a·δ| before λ (authors: 10)

    @classmethod
    def from_config(cls, pipo: Mapping[str, Any]) -> PIPOSettings:
        return cls(**{k: pipo[k] for k in cls.__dataclass_fields__})
