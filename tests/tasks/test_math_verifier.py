"""The math verifier: last \\boxed{} answer, math-verify equivalence, never a crash."""

import pytest

from pipo.tasks.math_verifier import last_boxed, math_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{12}", "12"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{3} and an unclosed \\boxed{4", "3"),
        ("no box at all", None),
        ("\\boxed{", None),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("response", "truth", "score"),
    [
        ("\\boxed{42}", "42", 1.0),
        ("so the answer is \\boxed{0.5}", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("\\boxed{1/2}", "0.5", 1.0),
        ("\\boxed{-3}", "-3", 1.0),
        ("\\boxed{41}", "42", 0.0),
        ("=42", "42", 0.0),  # right number, not in the verifier's format
        ("\\boxed{}", "42", 0.0),
        ("\\boxed{\\frac{}{}}{{{", "42", 0.0),
        ("", "42", 0.0),
    ],
)
def test_math_score(response, truth, score):
    assert math_score(response, truth) == score
