"""SDPO's self-distillation pieces that do not depend on a backend (arXiv 2601.20802, Table 5).

The teacher is the policy's EMA copy re-prompted with a successful sibling rollout; the student is
the policy on the plain prompt. The local trainer and the verl backend both use these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def demonstrations(scores: Sequence[float] | torch.Tensor, group: Sequence, threshold: float) -> list[int | None]:
    """For each response, the first *other* response of its group scoring ≥ threshold (None if none)."""
    group = np.asarray(group)
    out: list[int | None] = []
    for i, g in enumerate(group):
        out.append(next((j for j in np.flatnonzero(group == g) if j != i and scores[j] >= threshold), None))
    return out


def sdpo_token_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, teacher_log_prob: torch.Tensor, is_clip: float
) -> torch.Tensor:
    """Per-token sampled-token reverse KL: w · stopgrad(log π_s − log π_t) · log π_s, w = min(π_s/π_old, clip)."""
    weight = torch.exp(log_prob - old_log_prob).clamp(max=is_clip).detach()
    return weight * (log_prob - teacher_log_prob).detach() * log_prob


@torch.no_grad()
def ema_update(teacher: torch.nn.Module, student: torch.nn.Module, tau: float) -> None:
    """teacher ← (1 − τ) teacher + τ student, parameter by parameter (in the teacher's device and dtype:
    verl keeps its reference model, SDPO's teacher there, in bf16 beside the fp32 actor)."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.lerp_(s.to(device=t.device, dtype=t.dtype), tau)
