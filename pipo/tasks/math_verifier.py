"""Math verifier: the last ``\\boxed{}`` answer of a response, checked with math-verify."""

from __future__ import annotations

from functools import lru_cache

from math_verify import parse, verify


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` in ``text`` (nested braces allowed), else None."""
    start = text.rfind("\\boxed{")
    while start != -1:
        depth, i = 0, start + len("\\boxed")
        for i in range(start + len("\\boxed"), len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start + len("\\boxed{") : i]
        start = text.rfind("\\boxed{", 0, start)  # unclosed: fall back to an earlier one
    return None


@lru_cache(maxsize=65536)
def _equivalent(answer: str, ground_truth: str, timeout_s: int) -> bool:
    gold = parse(f"${ground_truth}$", parsing_timeout=timeout_s)
    pred = parse(f"${answer}$", parsing_timeout=timeout_s)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=timeout_s))


def math_score(response: str, ground_truth: str, timeout_s: int = 5) -> float:
    """1.0 if the last boxed answer of ``response`` equals ``ground_truth`` (math-verify), else 0.0.

    No boxed answer, an unparsable answer or a verifier error/timeout scores 0.0.
    """
    answer = last_boxed(response)
    if answer is None or not answer.strip():
        return 0.0
    if answer.strip() == ground_truth.strip():
        return 1.0  # identical strings are equivalent; skips the sympy round trip
    try:
        return float(_equivalent(answer.strip(), ground_truth.strip(), timeout_s))
    except Exception:  # noqa: BLE001 - a verifier failure is a wrong answer, never a crash
        return 0.0
