"""The verification update's optimizer (``pipo.optimizer``) and the direction of its steps (``pipo/update_cos``).

- ``shared``: the actor's own optimizer, its AdamW moments and step count shared with the exploration
  update (as the authors' code does). The PI gradient is small against β₁·m, so a step can move the
  weights away from the PI loss's descent direction; ``pipo/update_cos`` shows how far.
- ``separate``: a second optimizer of the actor's class and settings, with its own state.
- ``sgd``: Eq. 11 of the paper, θ' = θ − η_PI ∇L_PI: a plain gradient step (no momentum, no decay).

Both backends use these on their own parameters (local: one flat buffer; verl: each rank's FSDP shards).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable

import torch

from pipo.algorithm.settings import OPTIMIZERS


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a parameter or gradient (FSDP2 keeps DTensors), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def verification_optimizer(kind: str, actor: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The verification update's optimizer over the actor optimizer's parameters."""
    if kind == "shared":
        return actor
    params = parameters(actor)
    if kind == "separate":  # the actor's class and settings (those its constructor takes)
        accepted = inspect.signature(type(actor)).parameters
        return type(actor)(params, **{k: v for k, v in actor.defaults.items() if k in accepted})
    if kind == "sgd":
        return torch.optim.SGD(params, lr=actor.defaults["lr"], momentum=0.0, weight_decay=0.0)
    raise ValueError(f"pipo.optimizer={kind!r}: expected one of {OPTIMIZERS}")


class UpdateCosine:
    """Within the block, every step of ``optimizer`` records cos(Δθ, −g): the parameter change it
    applied against the descent direction of the gradient it was given (after clipping). Steps on a
    zero gradient record nothing. Sums run over this rank's shards and are all-reduced over ``group``
    when torch.distributed is initialised."""

    def __init__(self, optimizer: torch.optim.Optimizer, group=None) -> None:
        self.optimizer, self.group = optimizer, group
        self.values: list[float] = []
        self._before: list[torch.Tensor] = []

    def __enter__(self) -> UpdateCosine:
        self._handles = [
            self.optimizer.register_step_pre_hook(self._pre),
            self.optimizer.register_step_post_hook(self._post),
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._before = []

    def _params(self) -> Iterable[torch.Tensor]:
        return (p for p in parameters(self.optimizer) if p.grad is not None)

    def _pre(self, *_) -> None:
        self._before = [_local(p).detach().clone() for p in self._params()]

    def _post(self, *_) -> None:
        sums = torch.zeros(3, dtype=torch.float64)
        for p, before in zip(self._params(), self._before, strict=True):
            step = (_local(p).detach() - before).double()
            grad = _local(p.grad).detach().double()
            sums += torch.stack([-(step * grad).sum(), step.square().sum(), grad.square().sum()]).cpu()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            sums = sums.to("cuda" if torch.cuda.is_available() else "cpu")  # NCCL reduces on the GPU
            torch.distributed.all_reduce(sums, group=self.group)
            sums = sums.cpu()
        dot, step_sq, grad_sq = sums.tolist()
        if step_sq > 0 and grad_sq > 0:
            self.values.append(dot / math.sqrt(step_sq * grad_sq))

    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None
