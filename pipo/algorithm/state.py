"""What PIPO carries from one iteration to the next, and what checkpoints must hold."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from pipo.algorithm.feedback import ImprovementFeedback


@dataclass
class PreviousBatch:
    """B_{t-1} as its own exploration update used it. Tensors are (bs, seq) or (bs, response_length)."""

    input_ids: torch.Tensor  # prompt (left-padded) + response
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor
    old_log_probs: torch.Tensor  # of the policy that generated it
    attributions: torch.Tensor  # a_u, zero outside the response mask


class PIPOState:
    """The window of past J values and the previous batch."""

    def __init__(self, feedback: ImprovementFeedback) -> None:
        self.feedback = feedback
        self.previous: PreviousBatch | None = None

    def state_dict(self) -> dict:
        prev = (
            None if self.previous is None else {f.name: getattr(self.previous, f.name) for f in fields(PreviousBatch)}
        )
        return {"feedback": self.feedback.state_dict(), "previous": prev}

    def load_state_dict(self, state: dict) -> None:
        self.feedback.load_state_dict(state["feedback"])
        prev = state["previous"]
        self.previous = None if prev is None else PreviousBatch(**{f.name: prev[f.name] for f in fields(PreviousBatch)})
