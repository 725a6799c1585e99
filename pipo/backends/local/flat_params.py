"""A model's trainable parameters as views into one buffer, and their gradients into another.

At tiny scale a step's fixed costs — gradient norm, clipping, the AdamW update — are one small kernel
per tensor (24 for the stand-in models) and dominate a short update (e.g. PIPO's verification pass on
a few dozen rows). Over one flat buffer each is a single kernel; per element the arithmetic is
unchanged (AdamW is element-wise; the norm is the same sum, in another order).
"""

from __future__ import annotations

import torch


class FlatParameters:
    """``module``'s trainable parameters, re-seated as views of ``self.param`` (one leaf tensor, the
    optimizer's only parameter); each parameter's gradient is a view of ``self.param.grad``."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.param = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.params]))
        self.param.grad = torch.zeros_like(self.param)
        self.grads: list[torch.Tensor] = []
        offset = 0
        for p in self.params:
            n = p.numel()
            p.data = self.param.data[offset : offset + n].view_as(p)
            self.grads.append(self.param.grad[offset : offset + n].view_as(p))
            offset += n

    def zero_grad(self) -> None:
        """Zero the gradient buffer and (re)attach every parameter's view of it, so backward accumulates
        there even after something set a ``.grad`` to None (``module.zero_grad()`` does)."""
        self.param.grad.zero_()
        for p, g in zip(self.params, self.grads, strict=True):
            p.grad = g

    def clip_grad_norm_(self, max_norm: float) -> float:
        """``torch.nn.utils.clip_grad_norm_`` on the flat gradient; returns the norm before clipping."""
        grad = self.param.grad
        norm = torch.linalg.vector_norm(grad)
        value = norm.item()
        if value + 1e-6 > max_norm:  # below it the coefficient is exactly 1: skip the multiply
            grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))
        return value


def flat_optimizer_state(saved: dict) -> dict:
    """An optimizer state saved with one entry per parameter tensor (checkpoints written before the
    parameters were flattened) as the state of the one flat parameter: the moments concatenated in
    parameter order, the step count shared. A flat state is returned unchanged."""
    group = saved["param_groups"][0]
    ids = group["params"]
    if len(saved["param_groups"]) != 1:
        raise ValueError("expected an optimizer state with one parameter group")
    if len(ids) == 1:
        return saved
    state = saved["state"]
    flat = {}
    if state:
        flat[0] = {"step": state[ids[0]]["step"]}
        for key in ("exp_avg", "exp_avg_sq"):
            flat[0][key] = torch.cat([state[i][key].reshape(-1) for i in ids])
    return {"state": flat, "param_groups": [{**group, "params": [0]}]}
