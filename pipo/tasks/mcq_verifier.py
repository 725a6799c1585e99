"""Multiple-choice verifier (SciKnowEval): the option letter inside the last ``<answer>…</answer>``."""

from __future__ import annotations

import re

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def mcq_score(response: str, ground_truth: str) -> float:
    """1.0 if the last ``<answer>`` tag holds exactly the ground truth's letter (spaces aside), else 0.0."""
    if not isinstance(response, str) or not isinstance(ground_truth, str):
        return 0.0
    answers = _ANSWER.findall(response)
    if not answers:
        return 0.0
    gold = ground_truth.strip()
    return 1.0 if len(gold) == 1 and gold.isalpha() and answers[-1].strip() == gold else 0.0
