"""The PIPO controller with a recording backend: order of the steps, skips, PI rewards, checkpoint state."""

import pytest
import torch

from pipo.algorithm import Explored, PIPOController, PIPOSettings

SETTINGS = PIPOSettings(lam=0.5, window=3, min_history=2, eps=0.0, ddof=0, delta_clip=None, lr=0.25,
                        group_norm="size")
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def replay(self, batch, rewards, lr):
        self.calls.append(("replay", batch, rewards.clone(), lr))
        return {"pi_loss": -1.0, "clipfrac": 0.0, "grad_norm": 2.0}

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
    assert m3["pipo/units"] == 3.0 and m3["pipo/replayed_fraction"] == 1.0 and m3["pipo/pi_loss"] == -1.0
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
        k: v for k, v in m_b.items() if not k.startswith("timing/")}
