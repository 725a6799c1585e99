"""Pieces of the base algorithms that verl's ``core_algos`` does not provide as functions.

DAPO's dynamic-sampling filter and soft overlong penalty (verl keeps them inside its trainer and
reward manager), and SDPO's self-teacher forward on the local model (its loss, demonstrations and
EMA are in ``pipo.algorithm.self_distillation``, shared with the verl backend).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipo.algorithm.self_distillation import demonstrations
from pipo.backends.local.rollout import Rollout, log_probs


def informative_groups(scores: torch.Tensor, group: np.ndarray) -> list[int]:
    """DAPO's filter: the groups whose scores are not all equal (all-correct and all-wrong groups go)."""
    keep = []
    for g in np.unique(group):
        s = scores[torch.as_tensor(group == g)]
        if len(s) == 1 or bool((s != s[0]).any()):
            keep.append(int(g))
    return keep


def overlong_penalty(lengths: torch.Tensor, max_length: int, buffer: int, factor: float) -> torch.Tensor:
    """DAPO's soft overlong penalty: 0 up to ``max_length - buffer`` tokens, then linear down to ``-factor``."""
    if buffer <= 0:
        return torch.zeros_like(lengths, dtype=torch.float32)
    exceed = lengths.float() - (max_length - buffer)
    return torch.clamp(-exceed / buffer * factor, max=0.0)


@torch.no_grad()
def self_teacher_log_probs(
    teacher: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    problems: list[dict],
    roll: Rollout,
    scores: torch.Tensor,
    reprompt: Callable[[str, str], str],
    threshold: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """log π_teacher(y_t | x re-prompted with a successful sibling, y_<t) on the student's own tokens.

    Returns teacher log-probs (bs, response_length), zero where a response has no demonstration,
    and a (bs,) bool mask of the responses that have one.
    """
    demo = demonstrations(scores, roll.group, threshold)
    rows = [i for i, j in enumerate(demo) if j is not None]
    out = torch.zeros_like(roll.response_mask)
    has = torch.zeros(len(demo), dtype=torch.bool, device=out.device)
    if not rows:
        return out, has
    prompts = [reprompt(problems[roll.group[i]]["prompt"], roll.responses[demo[i]]) for i in rows]
    enc = tokenizer(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    R = roll.response_length
    responses = roll.input_ids[rows, -R:]
    device = roll.input_ids.device
    attn = torch.cat([enc["attention_mask"].to(device), roll.response_mask[rows].long()], 1)
    ids = torch.cat([enc["input_ids"].to(device), responses], 1)
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
    out[rows] = log_probs(teacher, ids, attn, position_ids, R) * roll.response_mask[rows]
    has[rows] = True
    return out, has
