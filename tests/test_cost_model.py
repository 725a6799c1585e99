"""The cost model's degenerate-group share (tests/bench/cost_model.py), against numerical integration."""

import sys
from pathlib import Path

import pytest
from scipy import integrate, stats

sys.path.insert(0, str(Path(__file__).parent / "bench"))
from cost_model import degenerate_share, paper_replayed


@pytest.mark.parametrize("a, b", [(0.6, 0.3), (2.0, 5.0), (0.2, 0.9)])
def test_the_beta_fit_recovers_a_known_success_distribution(a, b):
    pdf = stats.beta(a, b).pdf
    pass8 = 1 - integrate.quad(lambda p: (1 - p) ** 8 * pdf(p), 0, 1)[0]
    degenerate = integrate.quad(lambda p: (p**8 + (1 - p) ** 8) * pdf(p), 0, 1)[0]
    assert degenerate_share(a / (a + b), pass8, 8) == pytest.approx(degenerate, rel=1e-5)


def test_every_row_counts_where_no_group_is_degenerate():
    assert paper_replayed("ppo", 1) == paper_replayed("dapo", 8) == 1.0
    assert 0 < paper_replayed("grpo", 8) < 1
