"""Math verifier: the last ``\\boxed{}`` answer of a response, checked with math-verify."""

from __future__ import annotations

import re
from fractions import Fraction
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


_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_FRACTION = re.compile(r"(-?)(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)/(\d+))")


def rational(text: str) -> Fraction | None:
    """The exact value of a plain number (``12``, ``-0.5``, ``\\frac{3}{4}``, ``3/4``), else None."""
    text = text.replace(" ", "")
    if _DECIMAL.fullmatch(text):
        return Fraction(text)
    m = _FRACTION.fullmatch(text)
    if m:
        num, den = (m[2], m[3]) if m[2] is not None else (m[4], m[5])
        if int(den):
            return Fraction(int(num), int(den)) * (-1 if m[1] else 1)
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
    answer, ground_truth = answer.strip(), ground_truth.strip()
    if answer == ground_truth:
        return 1.0  # identical strings are equivalent; skips the sympy round trip
    if _INTEGER.fullmatch(answer) and _INTEGER.fullmatch(ground_truth):
        return float(int(answer) == int(ground_truth))  # two integers: no need for sympy either
    value = rational(answer)
    if value is not None and value == rational(ground_truth):
        return 1.0  # the same exact number (a miss still goes to math-verify, for its tolerance)
    try:
        return float(_equivalent(answer, ground_truth, timeout_s))
    except Exception:  # noqa: BLE001 - a verifier failure is a wrong answer, never a crash
        return 0.0
