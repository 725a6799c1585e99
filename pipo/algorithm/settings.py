"""PIPO's settings (the ``pipo`` config section), without torch: the config checks read them too."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("shared", "separate", "sgd")  # pipo.optimizer (pipo.algorithm.pi_optimizer)
CONTROLS = ("none", "zero", "shuffle", "flip")  # pipo.control (pipo.algorithm.controller)
WINDOW_RULES = ("paper", "authors")  # pipo.window_rule (pipo.algorithm.feedback)
GROUP_NORMS = ("size", "none", "l1")  # pipo.group_norm (pipo.algorithm.attribution)
PERFORMANCES = ("verifier", "trained", "probe")  # pipo.performance: what J_t is the mean of
PI_LOSSES = ("base", "authors")  # pipo.pi_loss (pipo.algorithm.losses)
SYMMETRIC = "pipo_layback"  # the authors' grpo_layback as a verl policy loss (pipo.algorithm.losses)
NO_DUAL_CLIP = "pipo_layback_ppo"  # the authors' ppo_layback


def verification_loss_name(pi_loss: str, policy_loss: str, critic: bool) -> str:
    """The verl policy loss the verification update uses: the base one, or the authors' for it (GSPO's
    own loss is the paper's form; PPO's is without the dual clip; GRPO's and DAPO's the symmetric one)."""
    if pi_loss == "base" or policy_loss == "gspo":
        return policy_loss
    if pi_loss != "authors":
        raise ValueError(f"pipo.pi_loss={pi_loss!r}: expected one of {PI_LOSSES}")
    return NO_DUAL_CLIP if critic else SYMMETRIC


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
    performance: str = "verifier"  # J_t: verifier score of every sample | trained batch's reward | probe
    pi_loss: str = "base"  # verification loss: the base policy loss | the authors' (pipo.algorithm.losses)
    kl_in_verification: bool = False  # the base algorithm's KL loss term in the verification loss too
    skip_zero: bool = True  # no verification step when every PI reward is zero (authors: the step runs)
    scheduler_step: bool = False  # the verification update steps the LR scheduler (verl) once more
    ppo_gate: float | None = None  # critic algorithms: B_t's advantages × clip(ξ', ±gate) (the authors' PPO)

    @classmethod
    def from_config(cls, pipo: Mapping[str, Any]) -> PIPOSettings:
        return cls(**{k: pipo[k] for k in cls.__dataclass_fields__})
