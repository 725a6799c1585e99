"""Window anchor, δ and φ against hand-computed numbers (docs/ALGORITHM.md, steps 2-4)."""

import math

import numpy as np
import pytest

from pipo.algorithm import ImprovementFeedback, clustered_se, rectify


def fed(values, **kw):
    fb = ImprovementFeedback(**{"window": 8, "lam": 0.1, **kw})
    for v in values:
        fb.push(v)
    return fb


def test_empty_window_leaves_delta_undefined():
    f = fed([]).compute(0.5)
    assert (f.mu, f.sigma, f.delta, f.phi, f.history) == (None, None, None, None, 0)


def test_window_shorter_than_min_history_reports_anchor_but_no_delta():
    f = fed([0.3], min_history=2).compute(0.5)
    assert f.mu == pytest.approx(0.3) and f.sigma == 0.0
    assert f.delta is None and f.phi is None


def test_positive_improvement_by_hand():
    # H = [0.2, 0.4]: μ = 0.3, population σ = 0.1, δ = (0.5 - 0.3) / (0.1 + 1e-6)
    f = fed([0.2, 0.4]).compute(0.5)
    assert f.mu == pytest.approx(0.3)
    assert f.sigma == pytest.approx(0.1)
    assert f.delta == pytest.approx(0.2 / 0.100001)
    assert f.phi == pytest.approx(f.delta)


def test_negative_improvement_is_scaled_by_lambda():
    # H = [0.4, 0.6]: μ = 0.5, σ = 0.1; δ = -0.2 / 0.100001 ≈ -1.99998; φ = 0.1 δ
    f = fed([0.4, 0.6], lam=0.1).compute(0.3)
    assert f.delta == pytest.approx(-0.2 / 0.100001)
    assert f.phi == pytest.approx(-0.02 / 0.100001)


@pytest.mark.parametrize(("lam", "expected"), [(0.0, 0.0), (1.0, -2.0), (0.5, -1.0)])
def test_rectify_lambda_extremes(lam, expected):
    assert rectify(-2.0, lam) == pytest.approx(expected)
    assert rectify(3.0, lam) == 3.0
    assert rectify(0.0, lam) == 0.0


def test_zero_sigma_uses_eps_and_optional_clip():
    f = fed([0.5, 0.5], eps=1e-6).compute(0.6)
    assert f.sigma == 0.0
    assert f.delta == pytest.approx(0.1 / 1e-6)
    g = fed([0.5, 0.5], delta_clip=5.0).compute(0.6)
    assert g.delta == 5.0 and g.phi == 5.0
    h = fed([0.5, 0.5], delta_clip=5.0, lam=0.1).compute(0.4)
    assert h.delta == -5.0 and h.phi == pytest.approx(-0.5)


def test_window_keeps_only_last_k_values():
    fb = fed([0.0, 1.0, 0.2, 0.4], window=2)
    assert list(fb.history) == [0.2, 0.4]
    assert fb.compute(0.3).mu == pytest.approx(0.3)


def test_sample_std_option():
    # H = [0.2, 0.4], ddof=1: σ = sqrt(0.02 / 1) = 0.141421...
    f = fed([0.2, 0.4], ddof=1).compute(0.5)
    assert f.sigma == pytest.approx(0.02**0.5)


def test_state_roundtrip():
    fb = fed([0.1, 0.2, 0.3], window=3)
    other = ImprovementFeedback(window=3, lam=0.1)
    other.load_state_dict(fb.state_dict())
    other.push(0.4)
    assert list(other.history) == [0.2, 0.3, 0.4]


def test_clustered_se_by_hand():
    """Three prompts of 3, 2 and 4 responses: J = 6/9, cluster sums of y − J are 0, −4/3, 4/3, so
    Var = 3/2 · (32/9) / 81 = 16/243 and SE = 4 / (9·√3)."""
    y = [1, 0, 1, 0, 0, 1, 1, 1, 1]
    g = ["a", "a", "a", "b", "b", "c", "c", "c", "c"]
    assert clustered_se(y, g) == pytest.approx(4 / (9 * math.sqrt(3)), rel=1e-12)


def test_clustered_se_is_the_se_of_prompt_means_for_equal_groups_and_undefined_for_one():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(16, 8)).astype(float)
    means = y.mean(1)
    se = clustered_se(y.ravel(), np.repeat(np.arange(16), 8))
    assert se == pytest.approx(means.std(ddof=1) / 4, rel=1e-12)
    assert math.isnan(clustered_se([1.0, 0.0], [0, 0]))
    with pytest.raises(ValueError, match="one length"):
        clustered_se([1.0, 0.0], [0])
