"""PI rewards and the verification (retrospective) loss (docs/ALGORITHM.md, steps 6-7).

The loss is the base algorithm's own registered verl policy loss, called with the PI rewards
in place of the advantages and the stored old log-probs of the previous batch as denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.workers.config import ActorConfig, PolicyLossConfig

from pipo.algorithm import losses  # noqa: F401 - registers the authors' verification losses with verl
from pipo.algorithm.feedback import Feedback


def actor_config(
    policy_loss: str,
    loss_agg_mode: str,
    clip_ratio_low: float,
    clip_ratio_high: float,
    clip_ratio_c: float,
    rollout_n: int,
) -> ActorConfig:
    """The part of verl's ActorConfig that its policy-loss functions read."""
    return ActorConfig(
        strategy="fsdp",
        rollout_n=rollout_n,
        ppo_micro_batch_size_per_gpu=1,
        clip_ratio=clip_ratio_low,
        clip_ratio_low=clip_ratio_low,
        clip_ratio_high=clip_ratio_high,
        clip_ratio_c=clip_ratio_c,
        loss_agg_mode=loss_agg_mode,
        policy_loss=PolicyLossConfig(loss_mode=policy_loss),
        use_torch_compile=False,
    )


def policy_loss(
    config: ActorConfig,
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    batch_num_tokens: int | None = None,
    global_batch_size: int | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """verl's registered policy loss of ``config.policy_loss.loss_mode``.

    All tensors are (bs, response_length). ``batch_num_tokens``/``global_batch_size`` are the
    mini-batch totals when the mini-batch is split into micro-batches (None: this batch's own).
    """
    config.global_batch_info.update(
        dp_size=1, batch_num_tokens=batch_num_tokens, global_batch_size=global_batch_size, loss_scale_factor=None
    )
    fn = get_policy_loss_fn(config.policy_loss.loss_mode)
    return fn(
        old_log_prob=old_log_prob,
        log_prob=log_prob,
        advantages=advantages,
        response_mask=response_mask,
        loss_agg_mode=config.loss_agg_mode,
        config=config,
    )


def pi_rewards(phi: float, attributions: torch.Tensor) -> torch.Tensor:
    """Step 6: R_u = φ_λ(δ_t) · a_u."""
    return phi * attributions


@dataclass(frozen=True)
class Decision:
    verify: bool
    reason: str  # why not, when verify is False


def decide(
    feedback: Feedback,
    has_previous: bool,
    rewards: torch.Tensor | None,
    response_mask: torch.Tensor | None,
    skip_zero: bool = True,
) -> Decision:
    """The skip rules: no previous batch, δ undefined, no φ to apply, or every R_u = 0 (``skip_zero``;
    the authors' code steps anyway, on the KL term and the optimizer's momentum) ⇒ no verification step."""
    if not has_previous:
        return Decision(False, "no previous batch")
    if feedback.delta is None:
        return Decision(False, "delta undefined (window shorter than min_history)")
    if rewards is None:
        return Decision(False, "no φ to apply (δ < 0 with λ = 0, or pipo.control=shuffle with no earlier δ to draw)")
    assert response_mask is not None
    if skip_zero and not bool(((rewards != 0) & (response_mask > 0)).any()):
        return Decision(False, "every PI reward is zero")
    return Decision(True, "")
