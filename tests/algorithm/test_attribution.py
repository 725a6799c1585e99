"""GRPO attribution Ã_i = A_i / G from verl's group-relative advantages, by hand."""

import numpy as np
import pytest
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from pipo.algorithm import AttributionConfig, get_attribution_fn, register_attribution


def grpo_advantages(scores, groups, length=3):
    mask = torch.ones(len(scores), length)
    rewards = torch.zeros(len(scores), length)
    rewards[:, -1] = torch.tensor(scores)
    adv, _ = compute_grpo_outcome_advantage(rewards, mask, np.array(groups))
    return adv, mask


def test_grpo_attribution_by_hand():
    # group of 4 with scores [1, 0, 0, 1]: mean 0.5, unbiased std sqrt(1/3) → A = ±0.5 / 0.57735 = ±0.8660
    adv, mask = grpo_advantages([1.0, 0.0, 0.0, 1.0], [0, 0, 0, 0])
    a = get_attribution_fn("grpo")({"advantages": adv, "response_mask": mask}, AttributionConfig(group_size=4))
    expected = 0.5 / (1 / 3) ** 0.5 / 4
    assert a[0].tolist() == pytest.approx([expected] * 3, rel=1e-5)
    assert a[1].tolist() == pytest.approx([-expected] * 3, rel=1e-5)


def test_degenerate_group_gives_zero_attribution():
    adv, mask = grpo_advantages([1.0, 1.0, 0.0, 1.0], [0, 0, 1, 1])
    a = get_attribution_fn("grpo")({"advantages": adv, "response_mask": mask}, AttributionConfig(group_size=2))
    assert torch.count_nonzero(a[:2]) == 0  # all-correct group
    assert torch.count_nonzero(a[2:]) == 6


def test_group_norm_none_and_mask():
    adv = torch.tensor([[2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    a = get_attribution_fn("grpo")({"advantages": adv, "response_mask": mask}, AttributionConfig(8, "none"))
    assert a.tolist() == [[2.0, 2.0, 0.0]]
    with pytest.raises(ValueError, match="group_norm"):
        get_attribution_fn("grpo")({"advantages": adv, "response_mask": mask}, AttributionConfig(8, "bogus"))


def test_registry_errors():
    with pytest.raises(ValueError, match="no PIPO attribution registered for 'nope'"):
        get_attribution_fn("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_attribution("grpo")(lambda data, cfg: data["advantages"])
