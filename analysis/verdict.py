"""The verdict on a claim, by one stated rule, from the effect's 95% interval and the paper's effect.

With the interval [lo, hi] of the reproduced effect (this suite's 95% bootstrap interval) and the
paper's own effect ``paper`` (its direction, and its size where the paper reports one):

- **supported**: the interval excludes 0 on the paper's side (lo > 0 for a positive claim);
- **opposed**: the interval excludes 0 on the other side;
- **ruled out**: it contains 0 and excludes the paper's effect (the reproduced effect is shown to be
  smaller than the paper's);
- **inconclusive**: it contains both 0 and the paper's effect (or the paper gives only a direction,
  or there is no interval: one run, no per-problem outcomes);
- **not run**: no effect could be computed (the runs are missing).

"Contains" includes the end points: an interval that ends at 0 does not exclude 0.

The minimum detectable effect at the run's design (problems × seeds) is the effect a two-sided test
at α = 0.05 would detect with 80% power: (z₀.₉₇₅ + z₀.₈) × SE = 2.80 × SE, with the standard error
read off the interval's width (SE = (hi − lo) / (2 × 1.96)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SUPPORTED, OPPOSED, RULED_OUT, INCONCLUSIVE, NOT_RUN = "supported", "opposed", "ruled out", "inconclusive", "not run"
VERDICTS = (SUPPORTED, OPPOSED, RULED_OUT, INCONCLUSIVE, NOT_RUN)
Z_975, Z_80 = 1.959963984540054, 0.8416212335729143


@dataclass(frozen=True)
class Effect:
    """A reproduced effect: the point estimate and its 95% interval (``lo``/``hi`` None: no interval)."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @property
    def has_interval(self) -> bool:
        return self.lo is not None and self.hi is not None


def verdict(effect: Effect | None, paper: float | None, direction: int | None = None) -> str:
    """The rule above. ``paper``: the paper's effect (None where it gives only a direction);
    ``direction``: +1 or −1, the claim's direction where ``paper`` is None (else sign(paper))."""
    if effect is None or (isinstance(effect.value, float) and math.isnan(effect.value)):
        return NOT_RUN
    sign = direction if paper is None else (1 if paper >= 0 else -1)
    if sign not in (1, -1):
        raise ValueError(f"a claim needs the paper's effect or a direction (+1/-1), got {paper=}, {direction=}")
    if not effect.has_interval:
        return INCONCLUSIVE
    lo, hi = effect.lo, effect.hi
    if lo > 0 or hi < 0:
        return SUPPORTED if (lo > 0) == (sign > 0) else OPPOSED
    if paper is not None and (paper < lo or paper > hi):
        return RULED_OUT
    return INCONCLUSIVE


def mde(effect: Effect | None) -> float | None:
    """The minimum detectable effect (α = 0.05 two-sided, power 0.8) at the design behind ``effect``."""
    if effect is None or not effect.has_interval:
        return None
    se = (effect.hi - effect.lo) / (2 * Z_975)
    return (Z_975 + Z_80) * se
