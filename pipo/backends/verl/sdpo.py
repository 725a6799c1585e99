"""SDPO (arXiv 2601.20802) on verl 0.9's synchronous trainer, which has no SDPO of its own.

verl's reference model becomes SDPO's teacher (SDPO has no KL reference; docs/ALGORITHM.md, "The base
algorithms"): each step,

- ``_compute_ref_log_prob``: every response of B_t is scored by the teacher on a re-prompt (the task's,
  ``TaskDefinition.teacher_prompt``, from the config's ``sdpo`` section) holding the first other
  response of its group whose verifier score reaches the threshold (responses with no such sibling
  keep their own prompt and get no loss), through verl's ``compute_ref_log_prob``;
- ``_compute_advantage``: the per-token log-ratio teacher − student (old) is the batch's
  ``advantages`` (what PIPO attributes; verl's metrics read it), 0 where there is no demonstration;
- ``_update_actor``: verl's actor update, whose loss is SDPO's (set on the workers once, at set-up),
  then the teacher's EMA step towards the updated actor.

The teacher's weights are saved in each of verl's checkpoints (``sdpo_teacher/``) and restored on resume.

``SDPOTrainer`` (``trainer_mode=sdpo``) is SDPO alone; ``PIPOSDPOTrainer`` (``trainer_mode=pipo_sdpo``)
adds PIPO's verification update, whose loss is the vanilla clipped one (``conf/algorithm/sdpo.yaml``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import ray
import torch
import transfer_queue as tq
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1 import PPOTrainerSync, register_trainer
from verl.utils import tensordict_utils as tu
from verl.workers.utils.padding import response_from_nested, response_to_nested

from pipo.algorithm.self_distillation import demonstrations
from pipo.backends.verl.trainer import (
    PIPOTrainer,
    log_performance_se,
    resumed_folder,
    section,
    step_folder,
    verifier_scores,
)
from pipo.backends.verl.worker import PIPOActorRolloutRefWorker
from pipo.config import CONF_DIR
from pipo.tasks.registry import SDPO_TEACHER_PROMPT

log = logging.getLogger(__name__)

TEACHER_PARTITION = "sdpo_teacher"  # the TransferQueue partition the teacher's inputs go through
# SDPO's re-prompt where the config's ``sdpo`` section has none (verl's CLI): its reference code's wording.
# pipo.backends.verl.config sets the task's own (TaskDefinition.teacher_prompt)
REPROMPT_TEMPLATE = SDPO_TEACHER_PROMPT.reprompt
SOLUTION_TEMPLATE = SDPO_TEACHER_PROMPT.solution


def sdpo_settings(config: DictConfig) -> DictConfig:
    """The config's ``sdpo`` section over ``conf/algorithm/sdpo.yaml``'s values and SDPO's re-prompt."""
    a = OmegaConf.load(CONF_DIR / "algorithm" / "sdpo.yaml")
    defaults = {
        "is_clip": a.is_clip,
        "teacher_ema": a.teacher_ema,
        "success_threshold": a.success_threshold,
        "reprompt_template": REPROMPT_TEMPLATE,
        "solution_template": SOLUTION_TEMPLATE,
    }
    return section(config, "sdpo", defaults)


def reprompt(messages: list[dict], demonstration: str, settings: DictConfig) -> list[dict]:
    """The student's chat with its last user turn re-written to hold a successful sibling's response."""
    if not messages or messages[-1].get("role") != "user":
        raise ValueError("SDPO re-prompts the last user turn of a prompt; this prompt does not end with one")
    *head, last = messages
    solution = settings.solution_template.format(solution=demonstration)
    return [*head, {**last, "content": settings.reprompt_template.format(prompt=last["content"], solution=solution)}]


def teacher_inputs(
    fields: TensorDict, tags: list[dict], tokenizer: Any, settings: DictConfig, chat_kwargs: dict | None = None
) -> tuple[TensorDict, list[dict], torch.Tensor]:
    """The teacher's input for every response of B_t, in B_t's order.

    A response with a demonstration (the first *other* response of its group, ``uid``, whose ``acc``
    reaches the threshold) gets its chat re-prompted with that response's text; the others, and
    verl's DP padding rows, keep their own prompt (their loss is masked). Returns the jagged fields
    verl's ``compute_ref_log_prob`` reads, their tags and the (bs,) mask of responses with a demonstration.
    """
    padding = [tag.get("is_padding", False) for tag in tags]
    scores = iter(verifier_scores(fields, tags))
    acc = [-np.inf if pad else next(scores) for pad in padding]  # a padding row is nobody's demonstration
    uids = [str(u) for u in tu.get(fields, "uid")]
    demo = demonstrations(acc, uids, settings.success_threshold)
    prompts, responses = fields["prompts"].unbind(), fields["responses"].unbind()
    masks = fields["response_mask"].unbind()  # the student's own (tool-output tokens stay masked)
    raw = tu.get(fields, "raw_prompt")
    rows, out_tags = [], []
    for i, j in enumerate(demo):
        prompt = prompts[i]
        if j is not None and not padding[i]:
            text = tokenizer.decode(responses[j], skip_special_tokens=True)
            chat = reprompt(list(raw[i]), text, settings)
            ids = tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, tokenize=True, return_dict=False, **(chat_kwargs or {})
            )
            prompt = torch.as_tensor(list(ids), dtype=torch.int64)
        ids = torch.cat([prompt, responses[i]])
        rows.append(
            {
                "prompts": prompt,
                "responses": responses[i],
                "input_ids": ids,
                "attention_mask": torch.ones_like(ids),
                "position_ids": torch.arange(len(ids)),
                "response_mask": masks[i],
                "loss_mask": masks[i],
            }
        )
        out_tags.append({"prompt_len": len(prompt), "response_len": len(responses[i]), "seq_len": len(ids)})
    td = TensorDict(
        {k: torch.nested.as_nested_tensor([r[k] for r in rows], layout=torch.jagged) for k in rows[0]},
        batch_size=[len(rows)],
    )
    has_demo = torch.tensor([j is not None and not pad for j, pad in zip(demo, padding, strict=True)])
    return td, out_tags, has_demo


class SelfDistillation:
    """SDPO's steps in verl's synchronous trainer (mixed in before ``PPOTrainerSync`` or ``PIPOTrainer``)."""

    def __init__(self, config: DictConfig):
        super().__init__(config)
        self.sdpo = sdpo_settings(config)
        self.use_reference_policy = True  # verl's reference model is the EMA teacher (no KL term uses it)

    def _build_replay_buffer(self):
        self.trainer_mode = "sync"  # the mode names this class; everything else is verl's sync mode
        return super()._build_replay_buffer()

    def _init_resource_pool_mgr(self):
        super()._init_resource_pool_mgr()
        roles, pools = self.role_worker_mapping, self.mapping
        if Role.Actor in roles or Role.RefPolicy in roles:
            raise ValueError("SDPO's EMA teacher lives beside the actor: run verl's hybrid actor/rollout/ref worker")
        if self.config.actor_rollout_ref.model.get("lora", {}).get("rank", 0) > 0:
            raise ValueError("SDPO's EMA teacher is a full copy of the model: LoRA is not supported")
        if Role.ActorRollout in roles:  # verl adds the reference model for a KL term only
            del roles[Role.ActorRollout]
            pools[Role.ActorRolloutRef] = pools.pop(Role.ActorRollout)
        roles[Role.ActorRolloutRef] = ray.remote(PIPOActorRolloutRefWorker)

    def _compute_ref_log_prob(self, batch, metrics: dict):
        """The teacher's log-probs of each sampled token, on the re-prompted inputs."""
        select = ["raw_prompt", "prompts", "responses", "response_mask", "loss_mask", "uid", "extra_fields"]
        fields = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=select)
        chat_kwargs = self.config.data.get("apply_chat_template_kwargs")  # verl's own (e.g. enable_thinking)
        chat_kwargs = OmegaConf.to_container(chat_kwargs) if chat_kwargs else {}
        teacher, tags, has_demo = teacher_inputs(fields, batch.tags, self.tokenizer, self.sdpo, chat_kwargs)
        keys = [f"teacher_{key}" for key in batch.keys]
        meta = tq.kv_batch_put(keys=keys, partition_id=TEACHER_PARTITION, fields=teacher, tags=tags)
        meta.extra_info.update(
            {
                "calculate_entropy": False,
                "compute_loss": False,
                "temperature": self.config.actor_rollout_ref.rollout.temperature,
            }
        )
        try:
            self.ref_policy_wg.compute_ref_log_prob(meta)
            out = tq.kv_batch_get(
                keys=keys, partition_id=TEACHER_PARTITION, select_fields=["log_probs", "response_mask"]
            )
        finally:
            tq.kv_clear(keys=keys, partition_id=TEACHER_PARTITION)
        mask = fields["response_mask"]
        padded_mask = mask.to_padded_tensor(0).float() * has_demo[:, None]
        # the loss runs over the demonstrated responses' tokens, and verl normalises by the loss mask
        demonstrated = fields["loss_mask"].to_padded_tensor(0) * has_demo[:, None].to(fields["loss_mask"].dtype)
        result = TensorDict(
            {
                "teacher_log_probs": response_from_nested(out["log_probs"], out["response_mask"]),
                "sdpo_mask": response_to_nested(padded_mask, mask),
                "loss_mask": response_to_nested(demonstrated, mask),
                "agent_loss_mask": fields["loss_mask"],  # the agent loop's, for PIPO's replay of B_t
            },
            batch_size=[len(batch)],
        )
        tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=result)
        real = torch.tensor([not tag.get("is_padding", False) for tag in batch.tags])
        metrics["sdpo/demo_fraction"] = has_demo[real].float().mean().item()
        return batch

    def _compute_advantage(self, batch, metrics: dict):
        """SDPO's signal as the batch's advantages: (teacher − student) log-prob per token, masked."""
        select = ["teacher_log_probs", "old_log_probs", "sdpo_mask", "response_mask"]
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=select)
        mask = data["response_mask"]
        padded = data.select("teacher_log_probs", "old_log_probs", "sdpo_mask").to_padded_tensor()
        ratio = (padded["teacher_log_probs"] - padded["old_log_probs"]) * padded["sdpo_mask"]
        nested = response_to_nested(ratio, mask)
        fields = TensorDict({"advantages": nested, "returns": nested.clone()}, batch_size=[len(batch)])
        return tq.kv_batch_put(keys=batch.keys, partition_id=batch.partition_id, fields=fields)

    def _setup(self):
        super()._setup()
        self.actor_rollout_wg.use_sdpo_loss(float(self.sdpo.is_clip))

    def _update_actor(self, batch, metrics: dict):
        """J_t's standard error (``pipo/J_se``), verl's actor update (SDPO's loss), then
        teacher ← (1 − τ) teacher + τ actor."""
        if "pipo" not in self.config:  # (with PIPO, PIPOTrainer logs it)
            fields = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
            log_performance_se(fields, batch, metrics, self.config.actor_rollout_ref.rollout.n, trained=False)
        batch = super()._update_actor(batch, metrics)
        self.actor_rollout_wg.ema_update_teacher(float(self.sdpo.teacher_ema))
        return batch

    def _save_checkpoint(self):
        folder = step_folder(self.config.trainer, self.global_steps)
        self.actor_rollout_wg.save_teacher(str(folder.resolve()))  # before verl marks the checkpoint latest
        super()._save_checkpoint()

    def _load_checkpoint(self):
        super()._load_checkpoint()
        folder = resumed_folder(self.config.trainer, self.global_steps)
        if folder is not None and not all(self.actor_rollout_wg.load_teacher(str(folder))):
            log.warning("%s has no SDPO teacher: the teacher restarts from the reference model's weights", folder)


@register_trainer("sdpo")
class SDPOTrainer(SelfDistillation, PPOTrainerSync):
    """SDPO on verl's synchronous trainer."""


@register_trainer("pipo_sdpo")
class PIPOSDPOTrainer(SelfDistillation, PIPOTrainer):
    """SDPO with PIPO's verification update before each actor update."""
