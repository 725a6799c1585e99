"""The actor worker extension: PIPO's verification update at its own learning rate η_PI.

verl's ``update_actor`` runs the actor's mini-batches with the policy loss, and on the last one
steps the LR scheduler. The verification update (PIPO_SPEC §1 step 7) must instead run at η_PI,
with the base algorithm's policy loss alone (no KL, no entropy term), and must not advance the
schedule: the exploration update that follows is the iteration's one scheduled step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from tensordict import TensorDict
from verl.single_controller.base.decorator import make_nd_compute_dataproto_dispatch_fn, register
from verl.utils import tensordict_utils as tu
from verl.workers.engine_workers import ActorRolloutRefWorker
from verl.workers.utils.losses import ppo_loss

PI_LR_KEY = "pipo_lr"  # the η_PI of a verification batch, sent with it (non-tensor data)


@contextmanager
def pi_learning_rate(optimizer: torch.optim.Optimizer, scheduler: Any | None, lr: float) -> Iterator[None]:
    """Run the block at learning rate ``lr``; afterwards the optimizer's learning rates and the
    scheduler's state (its step count) are what they were, whatever the block stepped."""
    saved_lrs = [group["lr"] for group in optimizer.param_groups]
    saved_schedule = scheduler.state_dict() if scheduler is not None else None
    for group in optimizer.param_groups:
        group["lr"] = lr
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.load_state_dict(saved_schedule)
        for group, saved in zip(optimizer.param_groups, saved_lrs, strict=True):
            group["lr"] = saved


def verification_loss_config(actor_config: Any) -> Any:
    """The actor's loss config without the KL and entropy terms (the base algorithm's policy loss only)."""
    return dataclasses.replace(actor_config, use_kl_loss=False, entropy_coeff=0.0)


class PIPOActorRolloutRefWorker(ActorRolloutRefWorker):
    """verl's actor/rollout/ref worker plus ``update_actor_pi``; nothing else changes."""

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def update_actor_pi(self, data: TensorDict) -> TensorDict | None:
        """The verification update on ``data`` (PI rewards as advantages) at the learning rate it carries."""
        lr = float(tu.pop(data, key=PI_LR_KEY))
        engine = self.actor.engine
        stock_loss = self.loss_fn
        self.actor.set_loss_fn(partial(ppo_loss, config=verification_loss_config(stock_loss.keywords["config"])))
        try:
            with pi_learning_rate(engine.optimizer, engine.lr_scheduler, lr):
                output = self.actor.train_mini_batch(data=data)
        finally:
            self.actor.set_loss_fn(stock_loss)
        return output.cpu() if output is not None else None
