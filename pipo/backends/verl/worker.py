"""The actor worker extension: PIPO's verification update at its own learning rate η_PI, and SDPO.

verl's ``update_actor`` runs the actor's mini-batches with the policy loss, and on the last one
steps the LR scheduler. The verification update (docs/ALGORITHM.md, step 7) must instead run at η_PI,
with the base algorithm's policy loss alone (no KL, no entropy term), with ``pipo.optimizer``'s
optimizer (``pipo.algorithm.pi_optimizer``; ``separate`` keeps its state in each checkpoint), and
must not advance the schedule: the exploration update that follows is the iteration's one scheduled step.
The authors' semantics (``pipo=authors``) switch the last three: their loss (``pipo.pi_loss``), the KL
term kept (``pipo.kl_in_verification``), one more scheduler step (``pipo.scheduler_step``).

For SDPO (``pipo.backends.verl.sdpo``) the worker's reference model is the EMA teacher: the actor's
loss becomes SDPO's (``use_sdpo_loss``), the teacher follows the actor (``ema_update_teacher``) and
is saved with each checkpoint (``save_teacher`` / ``load_teacher``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tensordict import TensorDict
from verl.single_controller.base.decorator import Dispatch, make_nd_compute_dataproto_dispatch_fn, register
from verl.trainer.ppo.core_algos import agg_loss
from verl.utils import tensordict_utils as tu
from verl.utils.device import get_device_id
from verl.utils.metric import AggregationType, Metric
from verl.workers.engine_workers import ActorRolloutRefWorker
from verl.workers.utils.losses import ppo_loss
from verl.workers.utils.padding import no_padding_2_padding

from pipo.algorithm import losses  # noqa: F401 - registers the authors' verification losses in this process
from pipo.algorithm.pi_optimizer import UpdateCosine, verification_optimizer
from pipo.algorithm.self_distillation import ema_update, sdpo_token_loss

PI_LR_KEY = "pipo_lr"  # the η_PI of a verification batch, sent with it (non-tensor data)
PI_OPTIMIZER_KEY = "pipo_optimizer"  # and the verification optimizer's kind (pipo.optimizer)
PI_LOSS_KEY = "pipo_loss_mode"  # the verification loss's registered name (pipo.pi_loss)
PI_KL_KEY = "pipo_kl"  # whether the actor's KL loss term stays in it (pipo.kl_in_verification)
PI_SCHEDULE_KEY = "pipo_scheduler_step"  # whether it advances the LR schedule (pipo.scheduler_step)
PI_SKIP_KEY = "pipo_skip_unrewarded"  # whether rows without a PI reward are left out of the forward passes
TEACHER_DIR = "sdpo_teacher"  # in a checkpoint folder: each rank's shard of the EMA teacher
PI_OPTIMIZER_DIR = "pipo_optimizer"  # each rank's state of a separate verification optimizer


@contextmanager
def pi_learning_rate(
    optimizer: torch.optim.Optimizer, scheduler: Any | None, lr: float, advance_schedule: bool = False
) -> Iterator[None]:
    """Run the block at learning rate ``lr``; afterwards the optimizer's learning rates and the
    scheduler's state (its step count) are what they were, whatever the block stepped.
    ``advance_schedule`` (the authors'): the scheduler keeps the step the block took, and the learning
    rates become the schedule's."""
    saved_lrs = [group["lr"] for group in optimizer.param_groups]
    saved_schedule = scheduler.state_dict() if scheduler is not None else None
    for group in optimizer.param_groups:
        group["lr"] = lr
    try:
        yield
    finally:
        if scheduler is not None and advance_schedule:
            saved_lrs = scheduler.get_last_lr()
        elif scheduler is not None:
            scheduler.load_state_dict(saved_schedule)
        for group, saved in zip(optimizer.param_groups, saved_lrs, strict=True):
            group["lr"] = saved


def sdpo_loss(config: Any, model_output: dict, data: TensorDict, dp_group=None, is_clip: float = 2.0):
    """SDPO's per-token sampled-token reverse KL to the teacher (``sdpo_token_loss``) over the tokens of
    the responses with a demonstration, aggregated over the global mini-batch as verl's ``ppo_loss`` does.
    SDPO's step sets the batch's ``loss_mask`` to those tokens (``pipo.backends.verl.sdpo``), so verl's
    ``batch_num_tokens`` counts them: the loss is normalised by the demonstrated tokens (lasgroup/SDPO)."""
    log_prob = no_padding_2_padding(model_output["log_probs"], data)
    info = config.global_batch_info
    info.update(
        dp_size=data["dp_size"],
        batch_num_tokens=max(data["batch_num_tokens"], 1),  # a mini-batch without a demonstration: loss 0
        global_batch_size=max(data["global_batch_size"], 1),
        loss_scale_factor=config.loss_scale_factor,
    )
    d = data.select("loss_mask", "old_log_probs", "teacher_log_probs", "sdpo_mask").to_padded_tensor()
    loss_mat = sdpo_token_loss(log_prob, d["old_log_probs"], d["teacher_log_probs"], is_clip)
    mask = (d["loss_mask"] * d["sdpo_mask"]).to(bool)
    loss = agg_loss(loss_mat=loss_mat, loss_mask=mask, loss_agg_mode=config.loss_agg_mode, **info)
    global_norm = info["dp_size"] > 1 or any(
        info[k] is not None for k in ("batch_num_tokens", "global_batch_size", "loss_scale_factor")
    )
    aggregation = AggregationType.SUM if global_norm else AggregationType.MEAN  # as ppo_loss reports it
    return loss, {"actor/pg_loss": Metric(value=loss, aggregation=aggregation)}


def _local(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a parameter (FSDP2 keeps DTensors), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


def rewarded_rows(data: TensorDict) -> torch.Tensor:
    """(bs,) bool: the rows with a non-zero advantage (their PI reward) on some response token."""
    advantages = data["advantages"].to_padded_tensor(0.0)
    return ((advantages != 0) & (data["response_mask"].to_padded_tensor(0) > 0)).any(-1)


@contextmanager
def forward_rewarded_rows(engine: Any) -> Iterator[list[float]]:
    """Within the block, each mini-batch ``engine`` trains on forwards only its rows with a PI reward.

    A row without one has zero loss and zero gradient under every policy loss (it is multiplied by
    its advantage) when the verification loss has no KL term: leaving it out changes nothing if the
    loss keeps the whole mini-batch's denominators. So ``batch_num_tokens`` stays the mini-batch's
    all-reduced token count (``global_batch_size`` already comes with the batch). Every data-parallel
    rank forwards the same number of rows, the largest rewarded count across ranks topped up with its own
    unrewarded rows, rounded up to whole micro-batches, at least one (FSDP's collectives need the same
    micro-batches on every rank; a mini-batch without a reward still takes its optimizer step, as in the
    full replay). Yields the fraction of rows forwarded per mini-batch."""
    original, own = engine.forward_backward_batch, "forward_backward_batch" in vars(engine)
    fractions: list[float] = []

    def forward_backward_batch(data: TensorDict, loss_function, forward_only: bool = False):
        if forward_only:
            return original(data, loss_function, forward_only)
        group = engine.get_data_parallel_group()
        tokens = data["loss_mask"].to_padded_tensor(0).sum().to(get_device_id())  # where verl reduces its own
        active = rewarded_rows(data)
        count = active.sum().to(get_device_id())
        if torch.distributed.is_initialized():
            torch.distributed.all_reduce(tokens, op=torch.distributed.ReduceOp.SUM, group=group)
            torch.distributed.all_reduce(count, op=torch.distributed.ReduceOp.MAX, group=group)
        unit = tu.get_non_tensor_data(data, "force_group_size", 1)
        if not tu.get_non_tensor_data(data, "use_dynamic_bsz", True):
            unit *= tu.get_non_tensor_data(data, "micro_batch_size_per_gpu", 1)
        keep = min(len(data), max(unit, -(-int(count.item()) // unit) * unit))
        order = torch.cat([active.nonzero()[:, 0], (~active).nonzero()[:, 0]])
        rows = order[:keep].sort().values
        fractions.append(keep / len(data))
        batch_num_tokens = int(tokens.item())

        def loss(model_output, data: TensorDict, dp_group=None):
            tu.assign_non_tensor(data, batch_num_tokens=batch_num_tokens)  # the whole mini-batch's
            return loss_function(model_output=model_output, data=data, dp_group=dp_group)

        return original(tu.index_select_tensor_dict(data, rows), loss, forward_only)

    engine.forward_backward_batch = forward_backward_batch
    try:
        yield fractions
    finally:
        if own:
            engine.forward_backward_batch = original
        else:
            del engine.forward_backward_batch  # the class's method again


def verification_loss_config(actor_config: Any, loss_mode: str | None = None, kl: bool = False) -> Any:
    """The actor's loss config for the verification update: the policy loss ``loss_mode`` (default the
    actor's), no entropy term, and the KL loss term only with ``kl`` (and only if the actor has one)."""
    policy = actor_config.policy_loss
    if loss_mode is not None:
        policy = dataclasses.replace(policy, loss_mode=loss_mode)
    use_kl = bool(kl and actor_config.use_kl_loss)
    return dataclasses.replace(actor_config, use_kl_loss=use_kl, entropy_coeff=0.0, policy_loss=policy)


class PIPOActorRolloutRefWorker(ActorRolloutRefWorker):
    """verl's actor/rollout/ref worker plus PIPO's ``update_actor_pi`` and SDPO's teacher methods."""

    def pi_optimizer(self, kind: str) -> torch.optim.Optimizer:
        """The verification optimizer of ``kind`` over the actor's parameters (made once per worker)."""
        actor = self.actor.engine.optimizer
        if kind == "shared":
            return actor
        made = getattr(self, "_pi_optimizer", None)
        if made is None:
            made = self._pi_optimizer = verification_optimizer(kind, actor)
        return made

    @register(dispatch_mode=make_nd_compute_dataproto_dispatch_fn(mesh_name="actor"))
    def update_actor_pi(self, data: TensorDict) -> TensorDict | None:
        """The verification update on ``data`` (PI rewards as advantages) at the learning rate and with
        the optimizer it carries; its metrics gain ``pipo/update_cos`` (one value per optimizer step)."""
        lr = float(tu.pop(data, key=PI_LR_KEY))
        engine = self.actor.engine
        actor_optimizer, optimizer = (
            engine.optimizer,
            self.pi_optimizer(tu.pop(data, key=PI_OPTIMIZER_KEY, default="shared")),
        )
        loss_mode, kl = tu.pop(data, key=PI_LOSS_KEY, default=None), tu.pop(data, key=PI_KL_KEY, default=False)
        advance = bool(tu.pop(data, key=PI_SCHEDULE_KEY, default=False))
        skip = bool(tu.pop(data, key=PI_SKIP_KEY, default=False))
        stock_loss = self.loss_fn
        config = verification_loss_config(stock_loss.keywords["config"], loss_mode, kl)
        self.actor.set_loss_fn(partial(ppo_loss, config=config))
        engine.optimizer = optimizer  # verl's optimizer_step steps engine.optimizer
        try:
            with (
                pi_learning_rate(optimizer, engine.lr_scheduler, lr, advance),
                UpdateCosine(optimizer) as cosine,
                forward_rewarded_rows(engine) if skip else nullcontext([]) as forwarded,
            ):
                output = self.actor.train_mini_batch(data=data)
        finally:
            engine.optimizer = actor_optimizer
            self.actor.set_loss_fn(stock_loss)
        if output is None:
            return None
        output = output.cpu()
        extra = {"pipo/update_cos": cosine.values, "pipo/replayed_fraction": forwarded}
        extra = {k: v for k, v in extra.items() if v}
        if extra:
            tu.assign_non_tensor_data(output, "metrics", {**tu.get(output, "metrics", {}), **extra})
        return output

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def save_pi_optimizer(self, folder: str) -> None:
        """This rank's state of a separate verification optimizer into ``folder/pipo_optimizer/rank_<r>.pt``."""
        made = getattr(self, "_pi_optimizer", None)
        if made is None:
            return
        out = Path(folder) / PI_OPTIMIZER_DIR
        out.mkdir(parents=True, exist_ok=True)
        torch.save(made.state_dict(), out / f"rank_{self.rank}.pt")

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def load_pi_optimizer(self, folder: str, kind: str) -> bool:
        """Restore the state ``save_pi_optimizer`` wrote; False if the checkpoint has none."""
        path = Path(folder) / PI_OPTIMIZER_DIR / f"rank_{self.rank}.pt"
        if not path.exists():
            return False
        self.pi_optimizer(kind).load_state_dict(torch.load(path, map_location="cpu", weights_only=False))
        return True

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def use_sdpo_loss(self, is_clip: float) -> None:
        """From now on the actor's update uses SDPO's loss (the verification update still swaps in its own)."""
        self.loss_fn = partial(sdpo_loss, config=self.loss_fn.keywords["config"], is_clip=is_clip)
        self.actor.set_loss_fn(self.loss_fn)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def ema_update_teacher(self, tau: float) -> None:
        """teacher ← (1 − τ) teacher + τ actor, each rank on its own shards (same FSDP layout)."""
        ema_update(self.ref.engine.module, self.actor.engine.module, tau)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def save_teacher(self, folder: str) -> None:
        """This rank's shard of the EMA teacher into ``folder/sdpo_teacher/rank_<r>.pt``."""
        out = Path(folder) / TEACHER_DIR
        out.mkdir(parents=True, exist_ok=True)
        shard = {name: _local(p).detach().cpu() for name, p in self.ref.engine.module.named_parameters()}
        torch.save(shard, out / f"rank_{self.rank}.pt")

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def load_teacher(self, folder: str) -> bool:
        """Restore the EMA teacher saved by ``save_teacher``; False if the checkpoint has none."""
        path = Path(folder) / TEACHER_DIR / f"rank_{self.rank}.pt"
        if not path.exists():
            return False
        shard = torch.load(path, map_location="cpu")
        params = dict(self.ref.engine.module.named_parameters())
        if set(shard) != set(params):
            raise ValueError(f"{path} holds another model's teacher (parameter names differ)")
        with torch.no_grad():
            for name, p in params.items():
                _local(p).copy_(shard[name])
        return True
