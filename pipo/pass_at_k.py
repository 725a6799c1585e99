"""The unbiased pass@k estimator (Chen et al., 2021): 1 − C(n−c, k) / C(n, k) from n ≥ k samples, c correct."""

from __future__ import annotations

from math import comb


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) is correct."""
    if not 0 <= c <= n or k > n or k < 1:
        raise ValueError(f"pass@k needs 0 ≤ c ≤ n and 1 ≤ k ≤ n (n={n}, c={c}, k={k})")
    return 1.0 - comb(n - c, k) / comb(n, k)


def mean_pass_at_k(correct_per_problem: list[float], n: int, k: int) -> float:
    """The benchmark's pass@k: the mean over problems."""
    return sum(pass_at_k(n, round(c), k) for c in correct_per_problem) / len(correct_per_problem)
