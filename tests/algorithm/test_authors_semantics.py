"""The authors' released PIPO (JacckMa/pipo_verl 7f48e23) as settings of the one controller, each
against a hand computation of what that code does (docs/FIDELITY.md, rows 4-11)."""

from dataclasses import replace
from statistics import fmean, pstdev

import pytest
import torch

from pipo.algorithm import AttributionConfig, Explored, ImprovementFeedback, PIPOController, PIPOSettings
from pipo.algorithm.attribution import group_relative_attribution

PAPER = PIPOSettings(lam=0.1, window=8, min_history=2, eps=1e-6, ddof=0, delta_clip=None, lr=1e-6, group_norm="size")


def test_the_authors_window_holds_the_current_value_and_every_value_twice():
    fb = ImprovementFeedback(8, 0.1, min_history=8, eps=0.0, rule="authors", diff_clip=5.0, sigma_floor=1e-6)
    Js = [0.2, 0.4, 0.3, 0.5, 0.6, 0.1]
    out = []
    for J in Js:
        out.append(fb.compute(J))
        fb.push(J)
    # their deque (maxlen 8): J_t appended before μ, σ are read, and again after the update
    assert [f.delta for f in out[:4]] == [None] * 4 and [f.history for f in out[:4]] == [1, 3, 5, 7]
    anchor5 = [0.2, 0.4, 0.4, 0.3, 0.3, 0.5, 0.5, 0.6]  # the 8 newest of 0.2 0.2 0.4 0.4 0.3 0.3 0.5 0.5 0.6
    assert out[4].mu == pytest.approx(fmean(anchor5)) and out[4].sigma == pytest.approx(pstdev(anchor5))
    assert out[4].delta == pytest.approx((0.6 - fmean(anchor5)) / pstdev(anchor5))  # first defined at t = 5
    anchor6 = [0.4, 0.3, 0.3, 0.5, 0.5, 0.6, 0.6, 0.1]
    assert out[5].delta == pytest.approx((0.1 - fmean(anchor6)) / pstdev(anchor6))
    assert out[5].phi == pytest.approx(0.1 * out[5].delta)
    # the paper's rule on the same values: the K values before J_t, once each, defined from t = 3
    paper = ImprovementFeedback(8, 0.1)
    deltas = []
    for J in Js:
        deltas.append(paper.compute(J).delta)
        paper.push(J)
    assert deltas[2] == pytest.approx((0.3 - 0.3) / (pstdev([0.2, 0.4]) + 1e-6))


def test_the_authors_sigma_floor_and_difference_clip():
    fb = ImprovementFeedback(4, 0.1, min_history=1, eps=0.0, rule="authors", diff_clip=5.0, sigma_floor=1e-6)
    assert fb.compute(7.0).sigma == 1.0  # one value: σ counts as 1
    fb.push(3.0)
    # window [3, 3, 20]: μ = 26/3, J − μ = 11.33 is clipped to 5 before the division
    f = fb.compute(20.0)
    assert f.delta == pytest.approx(5.0 / pstdev([3.0, 3.0, 20.0]))
    flat = ImprovementFeedback(4, 0.1, min_history=1, eps=0.0, rule="authors", sigma_floor=1e-6)
    flat.push(0.5)
    assert flat.compute(0.5).sigma == 1.0 and flat.compute(0.5).delta == 0.0  # σ = 0 < floor: 1


def test_l1_group_attribution_is_the_authors():
    # 0/1 rewards, G = 8, one correct: GRPO's advantages, then G·Ā / Σ|Ā| = +G/(2k), −G/(2(G−k))
    scores = torch.tensor([1.0] + [0.0] * 7)
    adv = (scores - scores.mean()) / (scores.std() + 1e-6)
    mask = torch.tensor([[1.0, 1.0, 0.0]] * 8)
    a = group_relative_attribution(
        {"advantages": adv[:, None] * mask, "response_mask": mask}, AttributionConfig(8, "l1")
    )
    assert a[0, 0].item() == pytest.approx(4.0, rel=1e-5) and a[1, 1].item() == pytest.approx(-8 / 14, rel=1e-5)
    assert (a[:, 2] == 0).all()  # padding carries nothing
    size = group_relative_attribution(
        {"advantages": adv[:, None] * mask, "response_mask": mask}, AttributionConfig(8, "size")
    )
    assert size[0, 0].item() == pytest.approx(adv[0].item() / 8)  # the paper's A/G: +0.309


class Recorder:
    def __init__(self) -> None:
        self.rewards: list[torch.Tensor] = []

    def replay(self, batch, rewards, lr):
        self.rewards.append(rewards.clone())
        return {"pi_loss": 0.0, "clipfrac": 0.0, "grad_norm": 1.0}


def test_the_reward_clamp_comes_before_lambda():
    mask = torch.ones(2, 1)
    controller, backend = PIPOController(replace(PAPER, reward_clip=10.0), "ppo", group_size=1), Recorder()

    def explore():
        return Explored({}, "B", {"advantages": torch.tensor([[5.0], [-1.0]]), "response_mask": mask})

    for J in (0.5, 0.5):  # window [0.5, 0.5]: σ = 0
        controller.iteration(J, backend.replay, explore)
    controller.iteration(0.5 - 3e-6, backend.replay, explore)  # δ = −3e-6 / (0 + 1e-6) = −3
    # the authors: λ · clamp(δ · a, ±10) = 0.1 · [−10, 3]; the paper's φ_λ(δ)·a would give 0.1 · [−15, 3]
    torch.testing.assert_close(backend.rewards[-1], torch.tensor([[-1.0], [0.3]]), rtol=1e-4, atol=1e-6)


def test_the_ppo_gate_reads_the_window_before_the_current_value_and_has_no_lambda():
    settings = replace(PAPER, ppo_gate=2.0, reward_clip=10.0, sigma_floor=1e-6, diff_clip=5.0, eps=0.0, group_norm="l1")
    controller, backend = PIPOController(settings, "ppo", group_size=1), Recorder()
    assert controller.gate(0.7) == 0.0  # empty window: μ := J, ξ' = 0 (the first update has no gradient)
    mask = torch.ones(2, 1)

    def explore():
        return Explored({}, "B", {"advantages": torch.tensor([[0.5], [-2.0]]), "response_mask": mask})

    for J in (0.2, 0.4):
        controller.iteration(J, backend.replay, explore)
    # window [0.2, 0.4]: μ 0.3, population σ 0.1 ⇒ ξ'(0.35) = 0.5, ξ'(0.9) = 6 → clipped to 2
    assert controller.gate(0.35) == pytest.approx(0.5)
    assert controller.gate(0.9) == 2.0 and controller.gate(-0.9) == -2.0
    controller.iteration(0.25, backend.replay, explore)  # δ = (0.25 − 0.3) / 0.1 = −0.5 < 0
    # attribution Ā/(|Ā|+1e-6) ≈ ±1, reward clamp(δ·a, ±10) with no λ (the authors' ppo_layback ignores it)
    torch.testing.assert_close(backend.rewards[-1], torch.tensor([[-0.5], [0.5]]), rtol=1e-4, atol=1e-6)
    assert PIPOController(settings, "grpo", group_size=2).gate(0.9) is None  # group methods: no gate


def test_with_lambda_zero_a_worse_j_takes_no_step_under_either_semantics():
    mask = torch.ones(2, 1)

    def explore():
        return Explored({}, "B", {"advantages": torch.tensor([[0.5], [-2.0]]), "response_mask": mask})

    authors = replace(PAPER, lam=0.0, reward_clip=10.0, skip_zero=False, ppo_gate=2.0, group_norm="l1")
    for settings, algorithm in ((replace(PAPER, lam=0.0), "grpo"), (authors, "ppo"), (authors, "grpo")):
        controller, backend = (
            PIPOController(settings, algorithm, group_size=2 if algorithm == "grpo" else 1),
            Recorder(),
        )
        for J in (0.2, 0.4):
            controller.iteration(J, backend.replay, explore)
        before = len(backend.rewards)
        m = controller.iteration(0.1, backend.replay, explore)  # δ < 0
        assert m["pipo/delta"] < 0 and m["pipo/verified"] == 0.0 and len(backend.rewards) == before, algorithm


def test_the_authors_replay_runs_even_when_every_reward_is_zero():
    mask = torch.ones(2, 1)

    def explore():
        return Explored({}, "B", {"advantages": torch.zeros(2, 1), "response_mask": mask})  # uniform groups

    for skip_zero, steps in ((True, 0), (False, 1)):
        controller, backend = PIPOController(replace(PAPER, skip_zero=skip_zero), "grpo", 2), Recorder()
        for J in (0.2, 0.4, 0.9):
            m = controller.iteration(J, backend.replay, explore)
        assert len(backend.rewards) == steps and m["pipo/verified"] == float(not skip_zero)
