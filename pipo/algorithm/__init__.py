"""PIPO itself (pure torch/numpy; no I/O, no backend imports)."""

from pipo.algorithm.algorithms import (
    BaseAlgorithm,
    base_algorithm,
    needs_critic,
    needs_reference,
    needs_self_teacher,
    register_base_algorithm,
)
from pipo.algorithm.attribution import AttributionConfig, get_attribution_fn, register_attribution
from pipo.algorithm.controller import Explored, PIPOController, PIPOSettings, PreviousBatch
from pipo.algorithm.feedback import Feedback, ImprovementFeedback, rectify
from pipo.algorithm.verification import Decision, actor_config, decide, pi_rewards, policy_loss

__all__ = [
    "AttributionConfig",
    "BaseAlgorithm",
    "Decision",
    "Explored",
    "Feedback",
    "ImprovementFeedback",
    "PIPOController",
    "PIPOSettings",
    "PreviousBatch",
    "actor_config",
    "base_algorithm",
    "decide",
    "get_attribution_fn",
    "needs_critic",
    "needs_reference",
    "needs_self_teacher",
    "pi_rewards",
    "policy_loss",
    "rectify",
    "register_attribution",
    "register_base_algorithm",
]
