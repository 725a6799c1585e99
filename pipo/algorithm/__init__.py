"""PIPO itself (pure torch/numpy; no I/O, no backend imports).

The names below load their module on first use, so that reading the base-algorithm registry
(``pipo.algorithm.algorithms``, which a grid's planning does for every cell) imports neither torch
nor verl.
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "BaseAlgorithm": "algorithms",
    "base_algorithm": "algorithms",
    "needs_critic": "algorithms",
    "needs_reference": "algorithms",
    "needs_self_teacher": "algorithms",
    "register_base_algorithm": "algorithms",
    "AttributionConfig": "attribution",
    "get_attribution_fn": "attribution",
    "register_attribution": "attribution",
    "Explored": "controller",
    "PIPOController": "controller",
    "PIPOSettings": "settings",
    "PreviousBatch": "controller",
    "UpdateCosine": "pi_optimizer",
    "verification_optimizer": "pi_optimizer",
    "Feedback": "feedback",
    "clustered_se": "feedback",
    "ImprovementFeedback": "feedback",
    "rectify": "feedback",
    "Decision": "verification",
    "actor_config": "verification",
    "decide": "verification",
    "pi_rewards": "verification",
    "policy_loss": "verification",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'pipo.algorithm' has no attribute {name!r}")
    return getattr(import_module(f"pipo.algorithm.{_WHERE[name]}"), name)
