"""PI rewards, skip rules and the verification loss (verl's policy loss with R_u as advantages)."""

import math

import pytest
import torch

from pipo.algorithm import Feedback, actor_config, decide, pi_rewards, policy_loss


def test_pi_rewards_scale_attributions():
    a = torch.tensor([[0.25, -0.5, 0.0]])
    assert pi_rewards(-0.2, a)[0].tolist() == pytest.approx([-0.05, 0.1, 0.0])


def fb(delta):
    return Feedback(J=0.5, mu=0.4, sigma=0.1, delta=delta, phi=None if delta is None else delta, history=2)


def test_skip_rules():
    mask = torch.ones(2, 3)
    assert decide(fb(1.0), False, None, None).reason == "no previous batch"
    assert "undefined" in decide(fb(None), True, None, mask).reason
    assert decide(fb(1.0), True, torch.zeros(2, 3), mask).reason == "every PI reward is zero"
    # a non-zero reward on a padded token does not count
    padded = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    r = torch.tensor([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])
    assert not decide(fb(1.0), True, r, padded).verify
    assert decide(fb(1.0), True, torch.full((2, 3), 0.1), mask).verify


def test_verification_loss_is_the_clipped_objective_by_hand():
    cfg = actor_config("vanilla", "token-mean", 0.2, 0.2, 3.0, rollout_n=8)
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 1.0]]))
    R = torch.tensor([[1.0, -1.0, 2.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss, metrics = policy_loss(cfg, new, old, R, mask)
    # per token max(-R ρ, -R clip(ρ, 0.8, 1.2)): max(-1.5, -1.2) = -1.2; max(0.5, 0.8) = 0.8 (dual clip 3 inactive);
    # max(-2.2, -2.2) = -2.2; the 4th token is masked out. token-mean over 3 tokens.
    assert loss.item() == pytest.approx((-1.2 + 0.8 - 2.2) / 3, rel=1e-5)
    assert metrics["actor/pg_clipfrac"] == pytest.approx(2 / 3)


def test_asymmetric_clip_and_seq_mean_token_mean():
    cfg = actor_config("vanilla", "seq-mean-token-mean", 0.2, 0.28, 3.0, rollout_n=2)
    old = torch.zeros(2, 2)
    new = torch.log(torch.tensor([[1.5, 1.0], [1.25, 1.0]]))
    R = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    loss, _ = policy_loss(cfg, new, old, R, mask)
    # seq 1: tokens -min(1.5, 1.28) = -1.28 and -1 → mean -1.14; seq 2: -1.25 (below 1.28, unclipped)
    assert loss.item() == pytest.approx((-1.14 - 1.25) / 2, rel=1e-5)


def test_gradient_direction_follows_pi_reward_sign():
    cfg = actor_config("vanilla", "token-mean", 0.2, 0.2, 3.0, rollout_n=2)
    theta = torch.zeros(1, 2, requires_grad=True)
    R = torch.tensor([[0.3, -0.3]])
    loss, _ = policy_loss(cfg, theta, torch.zeros(1, 2), R, torch.ones(1, 2))
    loss.backward()
    # d/dθ of mean(-R e^θ) at θ=0 is -R/2: descending raises θ where R > 0, lowers it where R < 0
    assert theta.grad[0].tolist() == pytest.approx([-0.15, 0.15])
    assert math.isfinite(loss.item())
