"""Local attribution a_u of each learning unit (docs/ALGORITHM.md, step 5), one function per base algorithm.

A registry in the style of verl's ``register_adv_est``: a new base algorithm registers the
function that turns what its own update used into per-token attributions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AttributionConfig:
    group_size: int  # G, rollouts per prompt
    group_norm: str = "size"  # size: A_i / G; none: A_i; l1: G · Ā_i / Σ_group |Ā_j| (the authors' code)


AttributionFn = Callable[[Mapping[str, torch.Tensor], AttributionConfig], torch.Tensor]
ATTRIBUTION_REGISTRY: dict[str, AttributionFn] = {}


def register_attribution(*names: str) -> Callable[[AttributionFn], AttributionFn]:
    """Register an attribution function under one or more base-algorithm names."""

    def decorator(fn: AttributionFn) -> AttributionFn:
        for name in names:
            if name in ATTRIBUTION_REGISTRY and ATTRIBUTION_REGISTRY[name] is not fn:
                raise ValueError(f"attribution {name!r} is already registered")
            ATTRIBUTION_REGISTRY[name] = fn
        return fn

    return decorator


def get_attribution_fn(name: str) -> AttributionFn:
    if name not in ATTRIBUTION_REGISTRY:
        raise ValueError(f"no PIPO attribution registered for {name!r} (known: {sorted(ATTRIBUTION_REGISTRY)})")
    return ATTRIBUTION_REGISTRY[name]


@register_attribution("grpo", "gspo", "dapo")
def group_relative_attribution(data: Mapping[str, torch.Tensor], config: AttributionConfig) -> torch.Tensor:
    """Ã_i = A_i / G for every token of response i (``group_norm=size``); ``l1``: the authors'
    G · Ā_i / (Σ_{j in i's group} |Ā_j| + 1e-6), Ā_i the token mean of A over response i
    (JacckMa/pipo_verl 7f48e23, ``layback_utils.py:172-175``), broadcast over its tokens.

    Args:
        data: ``advantages`` (bs, response_length), the group-relative advantages the base
            update used (already broadcast over the response tokens), and ``response_mask``.
        config: group size and normalisation.

    Returns:
        attributions: (bs, response_length), zero outside the response mask.
    """
    adv = data["advantages"].detach() * data["response_mask"]
    if config.group_norm == "size":
        return adv / config.group_size
    if config.group_norm == "none":
        return adv.clone()
    if config.group_norm == "l1":
        return _l1_normalised(adv, data["response_mask"], config.group_size)
    raise ValueError(f"unknown group_norm {config.group_norm!r} (expected 'size', 'none' or 'l1')")


def _l1_normalised(adv: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """G · Ā_i / (Σ_{j in i's group} |Ā_j| + 1e-6) on every token of response i, Ā_i its token mean."""
    if len(adv) % group_size:
        raise ValueError(f"{len(adv)} responses are not whole groups of {group_size}")
    mean = adv.sum(-1) / mask.sum(-1).clamp(min=1)
    groups = mean.view(-1, group_size)
    scaled = group_size * groups / (groups.abs().sum(-1, keepdim=True) + 1e-6)
    return scaled.reshape(-1, 1) * mask


@register_attribution("ppo")
def gae_attribution(data: Mapping[str, torch.Tensor], config: AttributionConfig) -> torch.Tensor:
    """PPO: the token-level GAE advantages the actor update used, (bs, response_length); ``l1``: the
    authors' per-response Ā_i / (|Ā_i| + 1e-6) (their group formula with G = 1, ``layback_utils.py:172-175``)."""
    adv = data["advantages"].detach() * data["response_mask"]
    return _l1_normalised(adv, data["response_mask"], 1) if config.group_norm == "l1" else adv


@register_attribution("sdpo")
def self_teacher_attribution(data: Mapping[str, torch.Tensor], config: AttributionConfig) -> torch.Tensor:
    """SDPO: log π_teacher(y_t | x, feedback, y_<t) − log π_student(y_t | x, y_<t), detached.

    ``distill_mask`` is zero for responses without a demonstration (they carry no attribution).
    """
    return (data["teacher_log_probs"] - data["student_log_probs"]).detach() * data["distill_mask"]
