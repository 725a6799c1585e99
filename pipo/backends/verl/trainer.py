"""PIPO inside verl 0.9's synchronous trainer (v1, ``trainer_mode=sync``), without forking verl.

``PIPOTrainer`` is verl's ``PPOTrainerSync``; its actor update becomes steps 1-9 of
``docs/ALGORITHM.md``, driven by PIPO's controller (``pipo.algorithm.controller``, as on the local
backend). What verl's engine does is this trainer's part:

1. J_t: the mean verifier score (``acc``) of every response of B_t, with the groups DAPO's filter
   dropped counted back in (verl reports them per score value);
7. the replay of the stored B_{t-1} with its PI rewards (``update_actor_pi`` of the worker
   extension: η_PI, the base policy loss alone, the LR schedule not advanced);
8. verl's own actor update on B_t (its old log-probs were computed before step 7); B_t's training
   fields are what the controller keeps for the next step.

The controller's state is saved as ``pipo.pt`` in each of verl's ``global_step_N`` checkpoints and restored on
resume; the ``pipo/*`` metrics go through verl's tracker with the step's own metrics.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer
from verl.trainer.ppo.v1.replay_buffer import DAPO_FILTERED_REWARD_COUNTS_KEY
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path
from verl.utils.metric.utils import reduce_metrics
from verl.workers.utils.padding import response_to_nested

from pipo.algorithm.algorithms import base_algorithm
from pipo.algorithm.controller import Explored, PIPOController, PIPOSettings
from pipo.algorithm.feedback import clustered_se
from pipo.algorithm.settings import verification_loss_name
from pipo.backends.verl.worker import (
    PI_KL_KEY,
    PI_LOSS_KEY,
    PI_LR_KEY,
    PI_OPTIMIZER_KEY,
    PI_SCHEDULE_KEY,
    PI_SKIP_KEY,
    PIPOActorRolloutRefWorker,
)
from pipo.config import CONF_DIR

log = logging.getLogger(__name__)

PARTITION = "pipo_previous"  # the TransferQueue partition the previous batch is replayed from
STATE_FILE = "pipo.pt"
# fields of B_t that the verification update must not see: B_{t-1}'s reward/KL/critic bookkeeping
NOT_REPLAYED = (
    "ref_log_prob",
    "values",
    "returns",
    "rm_scores",
    "token_level_rewards",
    "token_level_scores",
    "rollout_log_probs",
    "rollout_is_weights",
    "entropy",
    "extra_fields",
    "teacher_log_probs",
    "sdpo_mask",
)


def performance(scores: list[float], filtered: dict[float, int] | None, group_size: int) -> float:
    """J_t: the mean verifier score of every response sampled this step, the responses of the groups
    DAPO's filter dropped included (``filtered``: score shared by a dropped group → number of groups)."""
    total, count = float(sum(scores)), len(scores)
    for score, groups in (filtered or {}).items():
        total += float(score) * groups * group_size
        count += groups * group_size
    if count == 0:
        raise ValueError("J_t is undefined: the step sampled no responses")
    return total / count


def performance_se(scores: list[float], groups: list[str], filtered: dict[float, int] | None, group_size: int) -> float:
    """J_t's standard error (``pipo.algorithm.feedback.clustered_se``), the responses clustered by the prompt
    they answer (``groups``), each group DAPO's filter dropped counted as a cluster of ``group_size``
    responses with its shared score (``filtered`` as for :func:`performance`)."""
    values, clusters = list(scores), list(groups)
    for k, (score, count) in enumerate((filtered or {}).items()):
        for j in range(count):
            values += [float(score)] * group_size
            clusters += [f"dropped {k}.{j}"] * group_size
    return clustered_se(values, clusters)


def response_groups(keys: list[str], tags: list[dict]) -> list[str]:
    """The prompt each response answers, from verl's TransferQueue keys ``{uid}_{session_id}_{index}``; the
    rows that even out data-parallel shards (``is_padding``) are not responses."""
    return [key.split("_")[0] for key, tag in zip(keys, tags, strict=True) if not tag.get("is_padding", False)]


def trained_rewards(fields: TensorDict, tags: list[dict]) -> torch.Tensor:
    """The summed ``token_level_rewards`` of each response the update trains on (DAPO: after its filter; PPO:
    the KL penalty in the reward included), padding rows left out."""
    key = "token_level_rewards" if "token_level_rewards" in fields.keys() else "rm_scores"  # (no KL in the reward)
    rewards = fields[key].to_padded_tensor(0.0).sum(-1)
    kept = [i for i, tag in enumerate(tags) if not tag.get("is_padding", False)]
    if not kept:
        raise ValueError("J_t is undefined: the step trains on no responses")
    return rewards[kept]


def trained_performance(fields: TensorDict, tags: list[dict]) -> float:
    """J_t under ``pipo.performance=trained`` (the authors'): the mean of :func:`trained_rewards`."""
    return trained_rewards(fields, tags).mean().item()


def log_performance_se(fields: TensorDict, batch: Any, metrics: dict, group_size: int, trained: bool) -> None:
    """``pipo/J_se`` into the step's ``metrics``: the standard error of J_t (the verifier's, or with
    ``trained`` the trained batch's rewards), clustered by prompt."""
    groups = response_groups(batch.keys, batch.tags)
    if trained:
        metrics["pipo/J_se"] = clustered_se(trained_rewards(fields, batch.tags).cpu().numpy(), groups)
        return
    filtered = metrics.get(DAPO_FILTERED_REWARD_COUNTS_KEY)
    metrics["pipo/J_se"] = performance_se(verifier_scores(fields, batch.tags), groups, filtered, group_size)


def verifier_scores(fields: TensorDict, tags: list[dict]) -> list[float]:
    """The ``acc`` of each response (pipo/backends/verl/reward.py), read as verl's DAPO filter reads it;
    the rows verl added to even out data-parallel shards (``is_padding``) are not responses."""
    out = []
    for value, tag in zip(fields["extra_fields"], tags, strict=True):
        if tag.get("is_padding", False):
            continue
        extra = getattr(value, "data", value)
        info = extra.get("reward_extra_info", {}) if isinstance(extra, dict) else {}
        if "acc" not in info:
            raise KeyError(
                "a response has no verifier score 'acc' in its reward_extra_info: PIPO's J_t needs the reward "
                "function to return {'score': …, 'acc': …} (pipo/backends/verl/reward.py does)"
            )
        out.append(float(info["acc"]))
    return out


def attribution_inputs(fields: TensorDict) -> dict[str, torch.Tensor]:
    """What B_t's update learned from, padded to (bs, response_length): the attribution's inputs.
    ``advantages`` always; SDPO's steps also wrote the teacher's log-probs and its mask."""
    out = {
        "advantages": fields["advantages"].to_padded_tensor(0.0),
        "response_mask": fields["response_mask"].to_padded_tensor(0).float(),
    }
    if "teacher_log_probs" in fields.keys():
        out |= {
            "teacher_log_probs": fields["teacher_log_probs"].to_padded_tensor(0.0),
            "student_log_probs": fields["old_log_probs"].to_padded_tensor(0.0),
            "distill_mask": fields["sdpo_mask"].to_padded_tensor(0.0),
        }
    return out


def skips_unrewarded_rows(actor: DictConfig, kl_in_verification: bool) -> bool:
    """Whether the replay can leave out the rows without a PI reward and still equal the full replay
    (``pipo.backends.verl.worker.forward_rewarded_rows``): not with a KL term in the verification loss
    (those rows carry its gradient), nor where verl normalises by the micro-batch's padded width
    (``seq-mean-token-sum-norm`` without ``loss_scale_factor``)."""
    width_normalised = actor.loss_agg_mode == "seq-mean-token-sum-norm" and actor.get("loss_scale_factor") is None
    return not (kl_in_verification and actor.use_kl_loss) and not width_normalised


def pipo_settings(config: DictConfig) -> DictConfig:
    """The config's ``pipo`` section over ``conf/pipo/on.yaml`` (the one place PIPO's defaults live);
    η_PI defaults to the actor's learning rate (``pipo.optimizer=sgd`` needs its own). ``pipo.algorithm``
    names the base algorithm (its registered definition and attribution); it has no default."""
    defaults = OmegaConf.load(CONF_DIR / "pipo" / "on.yaml")
    defaults.lr = None
    defaults.algorithm = None
    settings = section(config, "pipo", {k: v for k, v in defaults.items() if k != "enabled"})
    if settings.algorithm is None:
        raise ValueError("pipo.algorithm is missing: the base algorithm PIPO attributes for (+pipo.algorithm=grpo)")
    if settings.lr is None:
        if settings.optimizer == "sgd":
            raise ValueError("pipo.optimizer=sgd needs its own η_PI: set pipo.lr (conf/scale/paper.yaml: pi_sgd_lr)")
        settings.lr = config.actor_rollout_ref.actor.optim.lr
    base_algorithm(settings.algorithm)  # registered, or a message naming the known ones
    return settings


def section(config: DictConfig, name: str, defaults: dict) -> DictConfig:
    """The config's ``name`` section over ``defaults``; a key the defaults lack is an error."""
    given = config.get(name) or {}
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {name} settings {unknown} (known: {sorted(defaults)})")
    return OmegaConf.merge(defaults, given)


def step_folder(trainer: DictConfig, step: int) -> Path:
    """verl's checkpoint folder of ``step`` (``trainer`` is verl's ``trainer`` section)."""
    return Path(trainer.default_local_dir) / f"global_step_{step}"


def resumed_folder(trainer: DictConfig, global_steps: int) -> Path | None:
    """The ``global_step_N`` folder verl resumed from, None if it started afresh (``global_steps`` 0;
    ``trainer`` is verl's ``trainer`` section)."""
    if global_steps == 0:
        return None
    if trainer.resume_mode == "resume_path":
        return Path(trainer.resume_from_path)
    return Path(find_latest_ckpt_path(os.path.abspath(trainer.default_local_dir)))


@register_trainer("pipo")
class PIPOTrainer(PPOTrainerSync):
    """verl's synchronous trainer with PIPO's verification update before each actor update."""

    def __init__(self, config: DictConfig):
        super().__init__(config)
        self.pipo = p = pipo_settings(config)
        n = config.actor_rollout_ref.rollout.n
        seed = config.actor_rollout_ref.actor.get("data_loader_seed") or 0
        self.pipo_controller = PIPOController(PIPOSettings.from_config(p), p.algorithm, n, seed=seed)

    def _build_replay_buffer(self):
        self.trainer_mode = "sync"  # trainer_mode=pipo selects this class; everything else is verl's sync mode
        return super()._build_replay_buffer()

    def _init_resource_pool_mgr(self):
        super()._init_resource_pool_mgr()
        for role in (Role.ActorRollout, Role.ActorRolloutRef, Role.Actor):
            if role in self.role_worker_mapping:
                self.role_worker_mapping[role] = ray.remote(PIPOActorRolloutRefWorker)

    # --- steps 1-9 ------------------------------------------------------------------------------
    def _update_actor(self, batch, metrics: dict):
        fields = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id)
        n = self.config.actor_rollout_ref.rollout.n
        if self.pipo.performance == "trained":  # 1
            J = trained_performance(fields, batch.tags)
        else:
            J = performance(verifier_scores(fields, batch.tags), metrics.get(DAPO_FILTERED_REWARD_COUNTS_KEY), n)
        log_performance_se(fields, batch, metrics, n, self.pipo.performance == "trained")
        if (gate := self.pipo_controller.gate(J)) is not None:  # the authors' PPO: B_t's advantages gated
            fields["advantages"] = fields["advantages"] * gate
            tq.kv_batch_put(
                keys=batch.keys,
                partition_id=batch.partition_id,
                fields=fields.select("advantages"),
                tags=batch.tags,
            )
            metrics["pipo/gate"] = gate
        updated = []

        def explore() -> Explored:  # 8: verl's own actor update (its metrics go to ``metrics``)
            updated.append(super(PIPOTrainer, self)._update_actor(batch, metrics))
            dropped = [k for k in NOT_REPLAYED if k in fields.keys()]
            if self.pipo.kl_in_verification:  # the reference is frozen: its B_t log-probs are B_{t-1}'s next time
                dropped = [k for k in dropped if k != "ref_log_prob"]
            kept = fields.exclude(*dropped)  # B_t's training fields
            if "agent_loss_mask" in kept.keys():  # SDPO trained on its demonstrated tokens; the replay on all
                kept["loss_mask"] = kept.pop("agent_loss_mask")
            return Explored({}, (kept, [dict(tag) for tag in batch.tags]), attribution_inputs(fields))

        out = self.pipo_controller.iteration(J, self.replay, explore)
        metrics.update({k: v for k, v in out.items() if v is not None})  # verl's tracker takes numbers only
        return updated[0]

    def replay(self, previous: tuple[TensorDict, list[dict]], rewards: torch.Tensor, lr: float) -> dict[str, float]:
        """Step 7's update on the workers: B_{t-1}'s fields with ``rewards`` as advantages, at ``lr``."""
        replay, tags = previous
        replay = replay.clone(recurse=False)
        replay["advantages"] = response_to_nested(rewards, replay["response_mask"])
        keys = [f"pipo_{i}" for i in range(len(replay))]
        meta = tq.kv_batch_put(keys=keys, partition_id=PARTITION, fields=replay, tags=tags)
        meta.extra_info.update(self._verification_info(lr))
        try:
            output = self.actor_rollout_wg.update_actor_pi(meta)
        finally:
            tq.kv_clear(keys=keys, partition_id=PARTITION)
        worker = reduce_metrics(dict(output["metrics"]))
        cos = worker.get("pipo/update_cos")
        return {
            "pi_loss": float(worker.get("actor/pg_loss", np.nan)),
            "clipfrac": float(worker.get("actor/pg_clipfrac", np.nan)),
            "grad_norm": float(worker.get("grad_norm", np.nan)),
            "update_cos": None if cos is None else float(cos),
            "replayed_fraction": float(worker.get("pipo/replayed_fraction", 1.0)),  # the rows forwarded
        }

    def _verification_info(self, lr: float) -> dict[str, Any]:
        """What ``update_actor`` sends with a batch, for the verification update: the same
        mini-batches, epochs and temperature, no entropy, and η_PI."""
        actor = self.config.actor_rollout_ref.actor
        size = actor.ppo_mini_batch_size * self.config.actor_rollout_ref.rollout.n
        return {
            "calculate_entropy": False,
            "distillation_use_topk": False,
            "distillation_only": False,
            "global_batch_size": size,
            "mini_batch_size": size,
            "epochs": actor.ppo_epochs,
            "seed": actor.data_loader_seed,
            "dataloader_kwargs": {"shuffle": actor.shuffle},
            "temperature": self.config.actor_rollout_ref.rollout.temperature,
            PI_LR_KEY: float(lr),
            PI_OPTIMIZER_KEY: self.pipo.optimizer,
            PI_LOSS_KEY: verification_loss_name(self.pipo.pi_loss, actor.policy_loss.loss_mode, self.use_critic),
            PI_KL_KEY: bool(self.pipo.kl_in_verification),
            PI_SCHEDULE_KEY: bool(self.pipo.scheduler_step),
            PI_SKIP_KEY: skips_unrewarded_rows(actor, self.pipo.kl_in_verification),
        }

    # --- checkpoints ----------------------------------------------------------------------------
    def pipo_state(self) -> dict[str, Any]:
        return self.pipo_controller.state_dict()

    def load_pipo_state(self, state: dict[str, Any]) -> None:
        self.pipo_controller.load_state_dict(state)

    def _save_checkpoint(self):
        folder = step_folder(self.config.trainer, self.global_steps)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{STATE_FILE}.tmp"
        torch.save(self.pipo_state(), tmp)
        tmp.replace(folder / STATE_FILE)  # before verl marks the checkpoint as the latest
        if self.pipo.optimizer == "separate":
            self.actor_rollout_wg.save_pi_optimizer(str(folder))
        super()._save_checkpoint()

    def _load_checkpoint(self):
        super()._load_checkpoint()
        folder = resumed_folder(self.config.trainer, self.global_steps)
        if folder is None:
            return
        if self.pipo.optimizer == "separate" and not all(
            self.actor_rollout_wg.load_pi_optimizer(str(folder), "separate")
        ):
            log.warning("%s has no state of the separate verification optimizer: it starts afresh", folder)
        path = folder / STATE_FILE
        if not path.exists():
            log.warning("%s has no PIPO state (%s): the window and the previous batch start empty", folder, path)
            return
        self.load_pipo_state(torch.load(path, weights_only=False))
        log.info("PIPO state restored from %s (window %s)", path, list(self.pipo_controller.feedback.history))
