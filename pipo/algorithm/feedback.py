"""Improvement feedback (docs/ALGORITHM.md, steps 2-4 and 9): sliding-window anchor, δ and its rectification φ."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipo.algorithm.settings import WINDOW_RULES


def clustered_se(values: Sequence[float] | np.ndarray, groups: Sequence[int] | np.ndarray) -> float:
    """Standard error of the mean of ``values`` (N,) with the responses clustered by ``groups`` (N,)
    (the G responses to one prompt are not independent draws): the cluster-robust (CR1) variance

        Var(J) = G/(G − 1) · Σ_g (Σ_{i∈g} (y_i − J))² / N²,   J = Σ_i y_i / N,   G clusters,

    which for equal cluster sizes is the variance of the mean of the G cluster means, s²(ȳ_g)/G.
    NaN with fewer than two clusters."""
    y = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    if y.shape != g.shape or y.ndim != 1:
        raise ValueError(f"values {y.shape} and groups {g.shape} must be two vectors of one length")
    _, cluster = np.unique(g, return_inverse=True)
    G = int(cluster.max()) + 1 if len(y) else 0
    if G < 2:
        return math.nan
    sums = np.bincount(cluster, weights=y - y.mean(), minlength=G)
    return math.sqrt(G / (G - 1) * float(np.sum(sums**2)) / len(y) ** 2)


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
        rule: ``paper``: H_t = the K values before J_t, J_t joins once after the update; ``authors``
            (JacckMa/pipo_verl 7f48e23, ``ray_trainer.py:1622,1689``): J_t joins before μ, σ are taken
            and again after the update, so the anchor holds J_t and every value twice.
        diff_clip: optional bound on |J − μ| before the division (authors: 5).
        sigma_floor: σ below it, or a window of one value, counts as 1 (authors: 1e-6).
    """

    def __init__(
        self,
        window: int,
        lam: float,
        min_history: int = 2,
        eps: float = 1e-6,
        ddof: int = 0,
        delta_clip: float | None = None,
        rule: str = "paper",
        diff_clip: float | None = None,
        sigma_floor: float | None = None,
    ) -> None:
        if rule not in WINDOW_RULES:
            raise ValueError(f"pipo.window_rule={rule!r}: expected one of {WINDOW_RULES}")
        self.window, self.lam, self.min_history = window, lam, min_history
        self.eps, self.ddof, self.delta_clip = eps, ddof, delta_clip
        self.rule, self.diff_clip, self.sigma_floor = rule, diff_clip, sigma_floor
        self.history: deque[float] = deque(maxlen=window)

    def anchor(self, J: float) -> list[float]:
        """The values μ_t and σ_t are taken over: H_t, and under the authors' rule J_t with it."""
        h = list(self.history)
        return [*h, float(J)][-self.window :] if self.rule == "authors" else h

    def _standardize(self, J: float, h: list[float]) -> tuple[float, float, float]:
        """μ, σ of ``h`` (σ with its guards) and (J − μ) with ``diff_clip``, over a non-empty ``h``."""
        mu = sum(h) / len(h)
        dof = len(h) - self.ddof
        sigma = math.sqrt(sum((x - mu) ** 2 for x in h) / dof) if dof > 0 else 0.0
        if self.sigma_floor is not None and (sigma < self.sigma_floor or len(h) < 2):
            sigma = 1.0
        diff = J - mu
        if self.diff_clip is not None:
            diff = max(-self.diff_clip, min(self.diff_clip, diff))
        return mu, sigma, diff

    def compute(self, J: float) -> Feedback:
        """Feedback of J_t against the current window (the window is not changed)."""
        h = self.anchor(J)
        if not h:
            return Feedback(J, None, None, None, None, 0)
        mu, sigma, diff = self._standardize(J, h)
        if len(h) < self.min_history:
            return Feedback(J, mu, sigma, None, None, len(h))
        delta = diff / (sigma + self.eps)
        if self.delta_clip is not None:
            delta = max(-self.delta_clip, min(self.delta_clip, delta))
        return Feedback(J, mu, sigma, delta, rectify(delta, self.lam), len(h))

    def gate(self, J: float, bound: float) -> float:
        """The authors' PPO gate clip(ξ', ±bound): ξ' is J_t standardised against the window *before*
        J_t joins it, whatever the rule, from the first iteration on (an empty window gives 0), and
        without λ (JacckMa/pipo_verl 7f48e23, ``layback_utils.py:66-89,204-255``)."""
        h = list(self.history)
        if not h:
            return 0.0
        _, sigma, diff = self._standardize(J, h)
        return max(-bound, min(bound, diff / (sigma + self.eps)))

    def push(self, J: float) -> None:
        """Step 9: J_t joins the window (the oldest value leaves once K are held); under the authors'
        rule it joins twice (before the decision and after the update)."""
        for _ in range(2 if self.rule == "authors" else 1):
            self.history.append(float(J))

    def state_dict(self) -> dict:
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.history = deque(state["history"], maxlen=self.window)
