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


FAST_PATH_PAIRS = [
    ("12", "12"), ("12", "13"), ("-7", "7"), ("0.75", "\\frac{3}{4}"), ("\\frac{6}{8}", "\\frac34"), ("3/4", "0.75"),
    ("\\dfrac{1}{3}", "\\frac{2}{6}"), ("0.5", "0.50"), ("-\\frac{1}{2}", "-0.5"), ("0.76", "\\frac{3}{4}"),
    ("2", "2.0"),
]  # fmt: skip


@pytest.mark.parametrize("answer,truth", FAST_PATH_PAIRS)
def test_plain_number_shortcuts_agree_with_math_verify(answer, truth):
    from pipo.tasks.math_verifier import _equivalent

    assert math_score(f"\\boxed{{{answer}}}", truth) == float(_equivalent(answer, truth, 5))
