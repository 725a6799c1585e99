"""verl's custom reward function for every task: the task's own verifier (``pipo/tasks``).

verl loads this file by path (``reward.custom_reward_function``) in its reward workers and calls
``compute_score`` per response with ``reward_kwargs`` (the task's verifiers). The score is returned
twice: ``score`` (what verl turns into the reward; DAPO's reward manager adds its overlong penalty
to it) and ``acc`` (the verifier score itself: PIPO's J_t and DAPO's group filter read it). With
``benchmarks``, each score also names its problem — ``benchmark`` (its position in the list, −1 for a
training row) and ``problem`` (its row index) — numbers, as verl averages every returned key; verl's
validation dumps carry them into the record's per-problem outcomes (pipo/backends/verl/records.py).
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
    benchmarks: list[str] | None = None,
    **_: Any,
) -> dict[str, float]:
    """Score one response; training rows use ``verifier``, benchmark rows ``eval_verifier`` if set."""
    split = (extra_info or {}).get("split", "train")
    name = eval_verifier if eval_verifier and split != "train" else verifier
    try:
        score = float(get_verifier(name)(solution_str or "", str(ground_truth)))
    except Exception:  # noqa: BLE001 - a verifier failure is a zero score, never a crashed step
        score = 0.0
    out = {"score": score, "acc": score}
    if benchmarks is not None:
        out["benchmark"] = float(list(benchmarks).index(data_source)) if data_source in benchmarks else -1.0
        out["problem"] = float((extra_info or {}).get("index", -1))
    return out
