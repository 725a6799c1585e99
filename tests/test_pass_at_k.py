"""The unbiased pass@k estimator against brute-force enumeration of every k-subset of the samples."""

from itertools import combinations

import pytest

from pipo.pass_at_k import mean_pass_at_k, pass_at_k


@pytest.mark.parametrize(("n", "c", "k"), [(8, 0, 8), (8, 1, 8), (8, 3, 1), (10, 2, 3), (10, 7, 4), (6, 6, 2)])
def test_pass_at_k_by_enumeration(n, c, k):
    samples = [1] * c + [0] * (n - c)
    subsets = list(combinations(range(n), k))
    expected = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_mean_and_bad_inputs():
    assert mean_pass_at_k([0.0, 8.0, 1.0], 8, 8) == pytest.approx((0 + 1 + 1) / 3)
    with pytest.raises(ValueError, match="1 ≤ k ≤ n"):
        pass_at_k(4, 1, 8)
