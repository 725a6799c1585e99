"""The PIPO controller: steps 2-9 of ``docs/ALGORITHM.md`` around a backend's base update.

Both backends drive it. A backend does what needs its engine — it scores B_t (step 1, J_t), it
replays a stored batch with given per-token rewards at a given learning rate (step 7's update), and
it runs the base algorithm's update (step 8) — and the controller does everything else in order:

    fb = feedback(J_t)                       # 2-4: window anchor, δ_t, φ
    verify(fb) on B_{t-1}                    # 5-7: PI rewards R = φ·a, skip rules, replay at η_PI
    explored = explore()                     # 8: the base update on B_t, from θ'_t
    window ← J_t; B_{t-1} ← (B_t, a(B_t))    # 9

Its metrics (``pipo/*``) and its checkpoint state are the same on both backends.

``pipo.control`` replaces the feedback for controls that keep the verification update's mechanics:
``zero`` replays with every PI reward 0 (the same steps of the same optimizer, no feedback),
``shuffle`` takes φ from a uniformly drawn earlier δ, ``flip`` applies −φ. Each step is taken exactly
when the real feedback would take one (``shuffle``: and an earlier δ exists).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from pipo.algorithm.algorithms import base_algorithm
from pipo.algorithm.attribution import AttributionConfig, get_attribution_fn
from pipo.algorithm.feedback import Feedback, ImprovementFeedback, rectify
from pipo.algorithm.settings import CONTROLS, PIPOSettings
from pipo.algorithm.verification import decide, pi_rewards


class Replayer(Protocol):
    def __call__(self, batch: Any, rewards: torch.Tensor, lr: float) -> Mapping[str, float]:
        """Step 7's update: train on the stored ``batch`` with ``rewards`` (bs, response_length) in place
        of its advantages, with the verification loss (``pipo.pi_loss``), at learning rate ``lr``. Returns
        the update's ``pi_loss``, ``clipfrac``, ``grad_norm``, ``update_cos`` and ``replayed_fraction``
        (the share of rows it forwarded)."""


@dataclass
class Explored:
    """What the base update on B_t (step 8) hands back.

    Attributes:
        metrics: the update's own metrics.
        batch: B_t as the backend will replay it next iteration (opaque to the controller).
        signal: what the update learned from, (bs, response_length) each, ``response_mask`` included:
            the attribution's inputs (``advantages``; SDPO: ``teacher_log_probs``, ``student_log_probs``,
            ``distill_mask``).
    """

    metrics: Mapping[str, Any]
    batch: Any
    signal: Mapping[str, torch.Tensor]


@dataclass
class PreviousBatch:
    """B_{t-1}: the backend's batch, its attributions a_u and response mask, (bs, response_length)."""

    batch: Any
    attributions: torch.Tensor
    response_mask: torch.Tensor


class PIPOController:
    """Steps 2-9 for one run: the window of past J values, the previous batch and the decisions.

    Args:
        settings: PIPO's settings.
        algorithm: the base algorithm's name; its attribution is the one registered under it.
        group_size: G, rollouts per prompt.
        seed: seeds the draws of ``pipo.control=shuffle``.
    """

    def __init__(self, settings: PIPOSettings, algorithm: str, group_size: int, seed: int = 0) -> None:
        s = self.settings = settings
        if s.control not in CONTROLS:
            raise ValueError(f"pipo.control={s.control!r}: expected one of {CONTROLS}")
        self.feedback = ImprovementFeedback(
            s.window, s.lam, s.min_history, s.eps, s.ddof, s.delta_clip, s.window_rule, s.diff_clip, s.sigma_floor
        )
        self.attribution_fn = get_attribution_fn(algorithm)
        self.attribution_cfg = AttributionConfig(group_size=group_size, group_norm=s.group_norm)
        # the authors' PPO (pipo.ppo_gate): B_t's advantages gated, and the replay's rewards without λ
        self.gated = s.ppo_gate is not None and base_algorithm(algorithm).critic
        self.previous: PreviousBatch | None = None
        self.deltas: list[float] = []  # every δ so far (pipo.control=shuffle draws from them)
        self.rng = np.random.default_rng(seed)

    def iteration(self, J: float, replay: Replayer, explore: Callable[[], Explored]) -> dict[str, Any]:
        """One iteration from J_t (step 1, the backend's) to storing B_t; returns every metric, the
        base update's included. ``timing/pipo`` is the time PIPO adds (all but ``explore``)."""
        t0 = time.perf_counter()
        fb = self.feedback.compute(J)  # 2-4
        m: dict[str, Any] = fb.as_metrics()
        m.update(self.verify(fb, replay))  # 5-7
        m["timing/pipo"] = time.perf_counter() - t0
        explored = explore()  # 8
        m.update(explored.metrics)
        t = time.perf_counter()
        self.feedback.push(J)  # 9
        signal = explored.signal
        attributions = self.attribution_fn(signal, self.attribution_cfg)
        self.previous = PreviousBatch(explored.batch, attributions, signal["response_mask"])
        m["timing/pipo"] += time.perf_counter() - t
        return m

    def gate(self, J: float) -> float | None:
        """The factor on B_t's advantages before its update (``pipo.ppo_gate``, critic algorithms only;
        None otherwise): ask before ``iteration``, which adds J_t to the window."""
        return self.feedback.gate(J, self.settings.ppo_gate) if self.gated else None

    def idle(self, J: float, replay: Replayer) -> dict[str, Any]:
        """An iteration with no B_t to train on (DAPO kept no group): J_t and δ_t are defined, so B_{t-1}
        is still verified (steps 2-7); J_t joins the window, and there is no B_t to keep."""
        fb = self.feedback.compute(J)
        m: dict[str, Any] = fb.as_metrics()
        m.update(self.verify(fb, replay))
        self.feedback.push(J)
        self.previous = None
        return m

    def applied_phi(self, fb: Feedback) -> float | None:
        """The φ the PI rewards are made of: the feedback's own, or the control's (``pipo.control``)."""
        return self.applied(fb)[1]

    def applied(self, fb: Feedback) -> tuple[float | None, float | None]:
        """(δ, φ) the PI rewards are made of: the feedback's; ``flip``: −φ; ``shuffle``: an earlier δ
        drawn uniformly (none yet: no step); ``zero``: the real ones (the step is taken with R = 0)."""
        control = self.settings.control
        if fb.delta is None or fb.phi is None:
            return None, None
        if control == "flip":
            return fb.delta, -fb.phi
        if control != "shuffle":
            return fb.delta, fb.phi
        earlier = self.deltas[:-1]  # this iteration's δ is the last one
        if not earlier:
            return None, None
        delta = earlier[self.rng.integers(len(earlier))]
        return delta, rectify(delta, self.settings.lam)

    def rewards(self, delta: float, phi: float, attributions: torch.Tensor) -> torch.Tensor:
        """R_u = φ·a_u (step 6). With ``pipo.reward_clip`` c, as the authors' code: ±s·clamp(δ·a_u, ±c),
        s = 1 for δ ≥ 0 and λ below (λ as a loss factor after the clamp), the sign φ's. The authors'
        gated PPO (``pipo.ppo_gate``) has no λ: s = 1."""
        c = self.settings.reward_clip
        if c is None and not self.gated:
            return pi_rewards(phi, attributions)
        scale = 1.0 if delta >= 0 or self.gated else self.settings.lam
        sign = -1.0 if self.settings.control == "flip" else 1.0
        product = delta * attributions
        return sign * scale * (product if c is None else product.clamp(-c, c))

    def verify(self, fb: Feedback, replay: Replayer) -> dict[str, Any]:
        """Steps 5-7: PI rewards on B_{t-1} and its replay, or a skip that touches nothing."""
        if fb.delta is not None:
            self.deltas.append(fb.delta)
        prev = self.previous
        delta, phi = self.applied(fb)  # shuffle: one draw
        if delta is not None and delta < 0 and self.settings.lam == 0:
            phi = None  # λ = 0: a worse J_t suppresses nothing, whatever else the step would carry
        rewards = self.rewards(delta, phi, prev.attributions) if prev is not None and phi is not None else None
        mask = None if prev is None else prev.response_mask
        decision = decide(fb, prev is not None, rewards, mask, self.settings.skip_zero)
        m: dict[str, Any] = {
            "pipo/phi_applied": phi,
            "pipo/verified": float(decision.verify),
            "pipo/suppressed": float(fb.delta is not None and fb.delta < 0),
            "pipo/units": 0.0,
            "pipo/pi_loss": None,
            "pipo/clipfrac": None,
            "pipo/update_cos": None,
            "timing/verify": 0.0,
        }
        if not decision.verify:
            return m
        assert prev is not None and rewards is not None
        t = time.perf_counter()
        if self.settings.control == "zero":
            rewards = torch.zeros_like(rewards)
        units = (rewards != 0) & (prev.response_mask > 0)
        out = replay(prev.batch, rewards, self.settings.lr)
        m.update(
            {
                "pipo/pi_loss": out["pi_loss"],
                "pipo/clipfrac": out["clipfrac"],
                "pipo/grad_norm": out["grad_norm"],
                "pipo/update_cos": out.get("update_cos"),
                "pipo/units": float(units.sum().item()),
                "pipo/replayed_fraction": out.get("replayed_fraction"),  # the rows the backend forwarded
                "timing/verify": time.perf_counter() - t,
            }
        )
        return m

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        prev = self.previous
        return {
            "feedback": self.feedback.state_dict(),
            "deltas": list(self.deltas),
            "rng": self.rng.bit_generator.state,
            "previous": None
            if prev is None
            else {"batch": prev.batch, "attributions": prev.attributions, "response_mask": prev.response_mask},
        }

    def load_state_dict(self, state: dict) -> None:
        self.feedback.load_state_dict(state["feedback"])
        self.deltas = list(state.get("deltas", []))  # absent in checkpoints before pipo.control
        if "rng" in state:
            self.rng.bit_generator.state = state["rng"]
        prev = state["previous"]
        self.previous = (
            None if prev is None else PreviousBatch(prev["batch"], prev["attributions"], prev["response_mask"])
        )
