"""verl's custom reward function for every task: the task's own verifier (``pipo/tasks``).

verl loads this file by path (``reward.custom_reward_function``) in its reward workers and calls
``compute_score`` per response with ``reward_kwargs`` (the task's verifiers). The score is returned
twice: ``score`` (what verl turns into the reward; DAPO's reward manager adds its overlong penalty
to it) and ``acc`` (the verifier score itself: PIPO's J_t and DAPO's group filter read it).
"""

from __future__ import annotations

from typing import Any

from pipo.tasks.registry import get_verifier


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    verifier: str = "math",
    eval_verifier: str | None = None,
    **_: Any,
) -> dict[str, float]:
    """Score one response; training rows use ``verifier``, benchmark rows ``eval_verifier`` if set."""
    split = (extra_info or {}).get("split", "train")
    name = eval_verifier if eval_verifier and split != "train" else verifier
    try:
        score = float(get_verifier(name)(solution_str or "", str(ground_truth)))
    except Exception:  # noqa: BLE001 - a verifier failure is a zero score, never a crashed step
        score = 0.0
    return {"score": score, "acc": score}
