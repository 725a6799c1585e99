"""The authors' verification losses (pipo.algorithm.losses) against their formulas written out."""

import pytest
import torch

from pipo.algorithm import actor_config, policy_loss
from pipo.algorithm.settings import NO_DUAL_CLIP, SYMMETRIC, verification_loss_name

LOG_RATIO = torch.log(torch.tensor([[0.5, 1.1, 1.5], [0.7, 1.0, 2.0]]))
ADVANTAGES = torch.tensor([[1.0, -2.0, 0.5], [-1.0, 3.0, -0.5]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def loss(name: str, low: float = 0.2, high: float = 0.28) -> float:
    config = actor_config(name, "token-mean", low, high, 3.0, 1)
    value, _ = policy_loss(config, LOG_RATIO, torch.zeros_like(LOG_RATIO), ADVANTAGES, MASK)
    return value.item()


def test_the_symmetric_surrogate_is_minus_c_min_rho_clip_rho_with_the_low_clip_only():
    # ρ = 0.5 1.1 1.5 / 0.7 1.0 (2.0 masked); clip(ρ, 0.8, 1.2) = 0.8 1.1 1.2 / 0.8 1.0
    # −C·min(ρ, clip ρ): −1·0.5, 2·1.1, −0.5·1.2 / 1·0.7, −3·1.0 → mean over 5 tokens
    expected = (-0.5 + 2.2 - 0.6 + 0.7 - 3.0) / 5
    assert loss(SYMMETRIC) == pytest.approx(expected, rel=1e-6)


def test_the_authors_ppo_loss_has_no_dual_clip():
    # max(−Aρ, −A·clip(ρ, 0.8, 1.28)): A=1,ρ=.5 → max(−.5, −.8) = −.5; A=−2,ρ=1.1 → 2.2; A=.5,ρ=1.5 → max(−.75, −.64)
    # = −.64; A=−1,ρ=.7 → max(.7, .8) = .8; A=3,ρ=1 → −3. The dual clip (c = 3) would bound nothing here,
    # so a case where it does: A = −1, ρ = 5 gives 5 without it and 3 with it
    expected = (-0.5 + 2.2 - 0.64 + 0.8 - 3.0) / 5
    assert loss(NO_DUAL_CLIP) == pytest.approx(expected, rel=1e-6)
    big = torch.log(torch.tensor([[5.0]]))
    minus = torch.tensor([[-1.0]])
    ones = torch.ones(1, 1)
    for name, value in ((NO_DUAL_CLIP, 5.0), ("vanilla", 3.0)):
        config = actor_config(name, "token-mean", 0.2, 0.2, 3.0, 1)
        assert policy_loss(config, big, torch.zeros(1, 1), minus, ones)[0].item() == pytest.approx(value)


def test_which_loss_the_verification_uses():
    assert verification_loss_name("base", "vanilla", critic=False) == "vanilla"
    assert verification_loss_name("authors", "vanilla", critic=False) == SYMMETRIC
    assert verification_loss_name("authors", "vanilla", critic=True) == NO_DUAL_CLIP
    assert verification_loss_name("authors", "gspo", critic=False) == "gspo"
