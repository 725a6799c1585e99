"""The authors' verification losses (``pipo.pi_loss=authors``), registered as verl policy losses.

JacckMa/pipo_verl 7f48e23 (docs/FIDELITY.md rows 12, 14) replays the previous batch with losses of
its own rather than the base algorithm's: for GRPO and DAPO a *symmetric* surrogate whose clip
window ignores DAPO's clip-higher and has no dual clip, for PPO the clipped surrogate without the dual
clip, for GSPO its own GSPO loss (the paper's form, so the base loss here). Registering them under a
name lets both backends call them exactly as they call the base losses (``policy_loss`` locally, verl's
``ppo_loss`` on the workers).
"""

from __future__ import annotations

from typing import Any

import torch
import verl.utils.torch_functional as verl_F
from verl.trainer.ppo.core_algos import agg_loss, register_policy_loss

from pipo.algorithm.settings import NO_DUAL_CLIP, SYMMETRIC


def _ratio(log_prob: torch.Tensor, old_log_prob: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    """ρ = exp(clamp(log π − log π_old, ±20)) and the masked mean of log π_old − log π (verl's ppo_kl)."""
    log_ratio = torch.clamp(log_prob - old_log_prob, min=-20.0, max=20.0)
    return torch.exp(log_ratio), verl_F.masked_mean(-log_ratio, mask).detach().item()


def _aggregated(losses, clipped, mask, loss_agg_mode: str, config: Any, ppo_kl: float) -> tuple[torch.Tensor, dict]:
    """The per-token ``losses`` aggregated as verl's losses are, and verl's metrics (``clipped``: where the
    clip was active)."""
    loss = agg_loss(loss_mat=losses, loss_mask=mask, loss_agg_mode=loss_agg_mode, **config.global_batch_info)
    clipfrac = verl_F.masked_mean(clipped.float(), mask).detach().item()
    return loss, {"actor/pg_clipfrac": clipfrac, "actor/ppo_kl": ppo_kl, "actor/pg_clipfrac_lower": 0.0}


@register_policy_loss(SYMMETRIC)
def symmetric_surrogate(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """ℓ = −C · min(ρ, clip(ρ, 1 − ε, 1 + ε)) per token, ε = ``config.clip_ratio``, whatever C's sign
    (for C < 0 the objective is unclipped below 1 − ε and flat above 1 + ε, the reverse of PPO's)."""
    ratio, ppo_kl = _ratio(log_prob, old_log_prob, response_mask)
    eps = config.clip_ratio
    clipped = torch.clamp(ratio, 1 - eps, 1 + eps)
    losses = -advantages * torch.minimum(ratio, clipped)
    return _aggregated(losses, clipped > ratio, response_mask, loss_agg_mode, config, ppo_kl)


@register_policy_loss(NO_DUAL_CLIP)
def clipped_surrogate(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """PPO's ℓ = max(−Aρ, −A · clip(ρ, 1 − ε_low, 1 + ε_high)) per token, without the dual clip."""
    ratio, ppo_kl = _ratio(log_prob, old_log_prob, response_mask)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - config.clip_ratio_low, 1 + config.clip_ratio_high)
    losses = torch.maximum(unclipped, clipped)
    return _aggregated(losses, clipped > unclipped, response_mask, loss_agg_mode, config, ppo_kl)
