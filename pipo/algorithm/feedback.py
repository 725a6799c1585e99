"""Improvement feedback (docs/ALGORITHM.md, steps 2-4 and 9): sliding-window anchor, δ and its rectification φ."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


def rectify(delta: float, lam: float) -> float:
    """φ_λ(δ) = δ if δ ≥ 0 else λ·δ."""
    return delta if delta >= 0 else lam * delta


@dataclass(frozen=True)
class Feedback:
    """The improvement signal of one iteration; ``delta``/``phi`` are None while undefined."""

    J: float
    mu: float | None
    sigma: float | None
    delta: float | None
    phi: float | None
    history: int  # |H_t|

    def as_metrics(self) -> dict[str, float | None]:
        return {
            "pipo/J": self.J,
            "pipo/mu": self.mu,
            "pipo/sigma": self.sigma,
            "pipo/delta": self.delta,
            "pipo/phi": self.phi,
            "pipo/history": float(self.history),
        }


class ImprovementFeedback:
    """Keeps the window H of the last K performance estimates and turns a new J_t into feedback.

    Args:
        window: K, the number of past J values in the anchor.
        lam: λ of the rectification.
        min_history: δ is undefined while |H_t| is smaller.
        eps: ε in δ = (J − μ) / (σ + ε).
        ddof: degrees of freedom of σ (0: population std).
        delta_clip: optional bound on |δ|.
    """

    def __init__(
        self,
        window: int,
        lam: float,
        min_history: int = 2,
        eps: float = 1e-6,
        ddof: int = 0,
        delta_clip: float | None = None,
    ) -> None:
        self.window, self.lam, self.min_history = window, lam, min_history
        self.eps, self.ddof, self.delta_clip = eps, ddof, delta_clip
        self.history: deque[float] = deque(maxlen=window)

    def compute(self, J: float) -> Feedback:
        """Feedback of J_t against the current window (the window is not changed)."""
        h = list(self.history)
        if not h:
            return Feedback(J, None, None, None, None, 0)
        mu = sum(h) / len(h)
        dof = len(h) - self.ddof
        sigma = math.sqrt(sum((x - mu) ** 2 for x in h) / dof) if dof > 0 else 0.0
        if len(h) < self.min_history:
            return Feedback(J, mu, sigma, None, None, len(h))
        delta = (J - mu) / (sigma + self.eps)
        if self.delta_clip is not None:
            delta = max(-self.delta_clip, min(self.delta_clip, delta))
        return Feedback(J, mu, sigma, delta, rectify(delta, self.lam), len(h))

    def push(self, J: float) -> None:
        """Step 9: J_t joins the window (the oldest value leaves once K are held)."""
        self.history.append(float(J))

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = deque(state["history"], maxlen=self.window)
