"""The PIPO controller with a recording backend: order of the steps, skips, PI rewards, checkpoint state."""

import pytest
import torch

from pipo.algorithm import Explored, Feedback, PIPOController, PIPOSettings

SETTINGS = PIPOSettings(lam=0.5, window=3, min_history=2, eps=0.0, ddof=0, delta_clip=None, lr=0.25, group_norm="size")
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def replay(self, batch, rewards, lr):
        self.calls.append(("replay", batch, rewards.clone(), lr))
        return {"pi_loss": -1.0, "clipfrac": 0.0, "grad_norm": 2.0, "replayed_fraction": 0.5}

    def explorer(self, name: str, advantages: list[float]):
        def explore() -> Explored:
            self.calls.append(("explore", name))
            adv = torch.tensor(advantages)[:, None] * MASK
            return Explored({"actor/pg_loss": 0.5}, name, {"advantages": adv, "response_mask": MASK})

        return explore


def test_steps_in_order_with_skips_and_pi_rewards():
    controller, backend = PIPOController(SETTINGS, "grpo", group_size=2), Recorder()
    m1 = controller.iteration(0.2, backend.replay, backend.explorer("B1", [1.0, -1.0]))
    m2 = controller.iteration(0.4, backend.replay, backend.explorer("B2", [0.5, -0.5]))
    assert m1["pipo/verified"] == m2["pipo/verified"] == 0.0 and m2["pipo/delta"] is None  # |H| < 2
    assert backend.calls == [("explore", "B1"), ("explore", "B2")]
    m3 = controller.iteration(0.4, backend.replay, backend.explorer("B3", [0.0, 0.0]))
    # window [0.2, 0.4]: μ 0.3, σ 0.1 → δ = 1, φ = 1; B2 replayed before B3's own update, at η_PI
    assert m3["pipo/delta"] == pytest.approx(1.0) and m3["pipo/verified"] == 1.0
    kind, batch, rewards, lr = backend.calls[2]
    assert (kind, batch, lr) == ("replay", "B2", 0.25) and backend.calls[3] == ("explore", "B3")
    torch.testing.assert_close(rewards, torch.tensor([[0.25, 0.25, 0.0], [-0.25, 0.0, 0.0]]))  # φ·A/G
    assert m3["pipo/units"] == 3.0 and m3["pipo/replayed_fraction"] == 0.5 and m3["pipo/pi_loss"] == -1.0  # backend's
    assert m3["actor/pg_loss"] == 0.5  # the base update's metrics come back with PIPO's
    # window [0.2, 0.4, 0.4]: δ < 0 → φ = λδ, but B3's advantages are all zero: skipped, nothing replayed
    m4 = controller.iteration(0.1, backend.replay, backend.explorer("B4", [1.0, 1.0]))
    assert m4["pipo/suppressed"] == 1.0 and m4["pipo/verified"] == 0.0 and len(backend.calls) == 5


def test_an_idle_iteration_still_verifies_the_previous_batch():
    controller, backend = PIPOController(SETTINGS, "grpo", group_size=2), Recorder()
    m = controller.idle(0.3, backend.replay)  # nothing before it: nothing to verify
    assert m["pipo/verified"] == 0.0 and backend.calls == []
    controller.iteration(0.2, backend.replay, backend.explorer("B2", [1.0, -1.0]))
    # DAPO kept no group of B_3: window [0.3, 0.2] (μ 0.25, σ 0.05), J 0.35 → δ = 2, B_2 replayed with φ = 2
    m = controller.idle(0.35, backend.replay)
    assert m["pipo/delta"] == pytest.approx(2.0) and m["pipo/verified"] == 1.0
    kind, batch, rewards, _ = backend.calls[-1]
    assert (kind, batch) == ("replay", "B2")
    torch.testing.assert_close(rewards, torch.tensor([[1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]))  # 2 · (±1) / G
    assert controller.previous is None and list(controller.feedback.history) == [0.3, 0.2, 0.35]


def test_state_round_trip():
    a, backend = PIPOController(SETTINGS, "grpo", group_size=2), Recorder()
    for J in (0.2, 0.4):
        a.iteration(J, backend.replay, backend.explorer(f"B{J}", [1.0, -1.0]))
    b = PIPOController(SETTINGS, "grpo", group_size=2)
    b.load_state_dict(a.state_dict())
    assert list(b.feedback.history) == [0.2, 0.4] and b.previous.batch == "B0.4"
    torch.testing.assert_close(b.previous.attributions, a.previous.attributions)
    m_a = a.iteration(0.5, backend.replay, backend.explorer("x", [0.0, 0.0]))
    m_b = b.iteration(0.5, backend.replay, backend.explorer("x", [0.0, 0.0]))
    assert {k: v for k, v in m_a.items() if not k.startswith("timing/")} == {
        k: v for k, v in m_b.items() if not k.startswith("timing/")
    }


def run_controls(control: str) -> tuple[Recorder, list[dict]]:
    """J = 0.2, 0.4, 0.4, 0.1 with window K = 3: δ undefined, undefined, 1, −2.357 (φ = 1, −1.179)."""
    from dataclasses import replace

    controller, backend = PIPOController(replace(SETTINGS, control=control), "grpo", group_size=2, seed=3), Recorder()
    metrics = [
        controller.iteration(J, backend.replay, backend.explorer(f"B{i}", adv))
        for i, (J, adv) in enumerate(
            [(0.2, [1.0, -1.0]), (0.4, [1.0, -1.0]), (0.4, [0.5, -0.5]), (0.1, [1.0, 1.0])], start=1
        )
    ]
    return backend, metrics


def replays(backend: Recorder) -> list[tuple[str, torch.Tensor]]:
    return [(call[1], call[2]) for call in backend.calls if call[0] == "replay"]


def test_controls_keep_the_steps_and_replace_the_feedback():
    window = [0.2, 0.4, 0.4]
    mu = sum(window) / 3
    delta4 = (0.1 - mu) / (sum((x - mu) ** 2 for x in window) / 3) ** 0.5
    a2 = torch.tensor([[0.5, 0.5, 0.0], [-0.5, 0.0, 0.0]])  # B_2's attributions A/G on MASK
    a3 = a2 / 2  # B_3's
    none, m_none = run_controls("none")
    assert [b for b, _ in replays(none)] == ["B2", "B3"]
    torch.testing.assert_close(replays(none)[1][1], 0.5 * delta4 * a3)  # φ = λδ
    # flip: −φ, on the same batches
    flip, m_flip = run_controls("flip")
    assert [b for b, _ in replays(flip)] == ["B2", "B3"]
    torch.testing.assert_close(replays(flip)[0][1], -1.0 * a2)
    torch.testing.assert_close(replays(flip)[1][1], -0.5 * delta4 * a3)
    assert m_flip[3]["pipo/phi"] == pytest.approx(0.5 * delta4) and m_flip[3]["pipo/phi_applied"] == pytest.approx(
        -0.5 * delta4
    )
    # zero: the same replays with every reward 0; nothing carries a PI reward
    zero, m_zero = run_controls("zero")
    assert [b for b, _ in replays(zero)] == ["B2", "B3"]
    assert all(torch.equal(r, torch.zeros(2, 3)) for _, r in replays(zero))
    assert [m["pipo/verified"] for m in m_zero] == [m["pipo/verified"] for m in m_none] == [0, 0, 1, 1]
    assert m_zero[2]["pipo/units"] == 0.0 and m_none[2]["pipo/units"] == 3.0
    # shuffle: the first δ has no earlier one to draw (no step); then φ of the one earlier δ (= 1)
    shuffle, m_shuffle = run_controls("shuffle")
    assert m_shuffle[2]["pipo/verified"] == 0.0 and [b for b, _ in replays(shuffle)] == ["B3"]
    torch.testing.assert_close(replays(shuffle)[0][1], 1.0 * a3)


def test_shuffle_draws_uniformly_from_earlier_deltas_and_resumes_its_draws():
    from dataclasses import replace

    settings = replace(SETTINGS, control="shuffle", window=8)
    a, backend = PIPOController(settings, "grpo", group_size=2, seed=5), Recorder()
    Js = [0.1, 0.3, 0.2, 0.6, 0.4, 0.5, 0.35, 0.45, 0.55]
    for J in Js[:5]:
        a.iteration(J, backend.replay, backend.explorer("B", [1.0, -1.0]))
    b = PIPOController(settings, "grpo", group_size=2)
    b.load_state_dict(a.state_dict())
    applied_a = [a.iteration(J, backend.replay, backend.explorer("B", [1.0, -1.0]))["pipo/phi_applied"] for J in Js[5:]]
    applied_b = [b.iteration(J, backend.replay, backend.explorer("B", [1.0, -1.0]))["pipo/phi_applied"] for J in Js[5:]]
    assert applied_a == applied_b  # the draws continue where the checkpoint left them
    earlier = {round(d if d >= 0 else 0.5 * d, 12) for d in a.deltas[:-1]}
    assert {round(p, 12) for p in applied_a} <= earlier
    # many draws from δ = (1, 2, 3): each about a third of the time
    c = PIPOController(settings, "grpo", group_size=2, seed=0)
    c.deltas = [1.0, 2.0, 3.0, 9.0]  # 9.0: "this iteration's" δ, never drawn
    draws = [c.applied_phi(Feedback(0.5, 0.4, 0.1, 9.0, 9.0, 3)) for _ in range(3000)]
    assert set(draws) == {1.0, 2.0, 3.0}
    assert all(abs(draws.count(v) / 3000 - 1 / 3) < 0.04 for v in (1.0, 2.0, 3.0))
