"""PIPO itself (pure torch/numpy; no I/O, no backend imports)."""

from pipo.algorithm.attribution import (
    AttributionConfig,
    get_attribution_fn,
    register_attribution,
)
from pipo.algorithm.feedback import Feedback, ImprovementFeedback, rectify
from pipo.algorithm.state import PIPOState, PreviousBatch
from pipo.algorithm.verification import Decision, actor_config, decide, pi_rewards, policy_loss

__all__ = [
    "AttributionConfig",
    "Decision",
    "Feedback",
    "ImprovementFeedback",
    "PIPOState",
    "PreviousBatch",
    "actor_config",
    "decide",
    "get_attribution_fn",
    "pi_rewards",
    "policy_loss",
    "rectify",
    "register_attribution",
]
