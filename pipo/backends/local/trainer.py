"""The local trainer: one process, a Hugging Face model, any cell on CPU or one GPU.

``LocalTrainer.train_step`` reads like steps 1-9 of ``docs/ALGORITHM.md``: it scores B_t (step 1)
and hands the rest to PIPO's controller (``pipo.algorithm.controller``), giving it the two things
that need the model: ``replay`` (step 7's update) and the base update (step 8). Advantages, policy
and value losses and KL come from verl's ``core_algos``; what the base algorithm needs (critic,
self-teacher, reference) from its registered definition; the base algorithms' own pieces (DAPO's
sampling and overlong penalty, SDPO's self-teacher) from ``pipo.backends.local.base_algorithms``.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer
from transformers.utils import logging as hf_logging
from verl.trainer.ppo.core_algos import agg_loss, compute_value_loss, get_adv_estimator_fn, kl_penalty

from pipo.algorithm import (
    Explored,
    PIPOController,
    PIPOSettings,
    actor_config,
    needs_critic,
    needs_reference,
    needs_self_teacher,
    policy_loss,
)
from pipo.algorithm.feedback import clustered_se
from pipo.algorithm.pi_optimizer import UpdateCosine, verification_optimizer
from pipo.algorithm.self_distillation import ema_update, sdpo_token_loss
from pipo.algorithm.settings import NO_DUAL_CLIP, verification_loss_name
from pipo.backends.local import base_algorithms as base
from pipo.backends.local.evaluate import evaluate
from pipo.backends.local.flat_params import FlatParameters, flat_optimizer_state
from pipo.backends.local.probe import PROBE_STREAM, Probe, probe_problems
from pipo.backends.local.rollout import Rollout, concat_rollouts, generate, log_probs
from pipo.config import budget
from pipo.records import RunRecord
from pipo.signals import DeferredSignals
from pipo.tasks import TaskData, get_verifier
from pipo.wandb_mirror import WandbMirror

log = logging.getLogger(__name__)
CKPT_NAME = "state.pt"
# (log-probs of the forwarded rows, their indices, the whole mini-batch's slice) → (loss, stats)
LossFn = Callable[[torch.Tensor, torch.Tensor, slice], tuple[torch.Tensor, dict[str, float]]]


CRITIC_HEAD_SEED = 0  # the value head's initialisation: part of the starting model, the same for every seed


def _critic_from(model_path: Path) -> torch.nn.Module:
    """PPO's critic: the base model with a fresh one-output value head, initialised from a fixed seed
    (torch's global generator starts from a random seed in every process), and no dropout before it
    (transformers' default is 0.1; verl's critic has none, and the value loss compares its predictions
    with deterministic old values). transformers' report of the new head's missing weights is
    expected, so it is silenced."""
    config = AutoConfig.from_pretrained(model_path, num_labels=1)
    config.classifier_dropout = 0.0
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(CRITIC_HEAD_SEED)
            return AutoModelForTokenClassification.from_pretrained(model_path, config=config)
    finally:
        hf_logging.set_verbosity(verbosity)


def _batch_totals(mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """A mini-batch's loss denominators (verl's ``agg_loss``): valid tokens and non-empty sequences."""
    return {"batch_num_tokens": mask.sum(), "global_batch_size": (mask.sum(-1) > 0).sum()}


def step_seed(seed: int, step: int, stream: int) -> int:
    """A seed for (cell seed, step, stream): sampling never depends on how the run got there."""
    return int(np.random.SeedSequence([seed, step, stream]).generate_state(1)[0])


def _current_pipo_state(state: dict) -> dict:
    """A checkpoint's PIPO state in the controller's layout (checkpoints before it kept B_{t-1} flat)."""
    prev = state["previous"]
    if prev is None or "batch" in prev:
        return state
    batch = {k: v for k, v in prev.items() if k != "attributions"}
    return {
        **state,
        "previous": {"batch": batch, "attributions": prev["attributions"], "response_mask": prev["response_mask"]},
    }


class LocalTrainer:
    """Trains one cell and keeps its run record (metrics, evaluations, checkpoints, status)."""

    def __init__(
        self, cfg: DictConfig, task: TaskData, model_path: Path, record: RunRecord, wandb: WandbMirror
    ) -> None:
        # resolved once: an interpolated key (pipo.lr = ${scale.lr}) is otherwise parsed on every read
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        self.cfg, self.task, self.record, self.wandb = cfg, task, record, wandb
        a, s = cfg.algorithm, cfg.scale
        self.device = torch.device(cfg.backend.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.policy = AutoModelForCausalLM.from_pretrained(model_path).to(self.device)
        # frozen reference (KL), EMA self-teacher (SDPO), critic (PPO): only what the algorithm uses
        self.ref = None
        if needs_reference(a):
            self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.teacher = None
        if needs_self_teacher(a):
            self.teacher = copy.deepcopy(self.policy).eval().requires_grad_(False)
        # parameters in one buffer each (one kernel per norm, clip and AdamW step), after the copies above
        self.flat = FlatParameters(self.policy)
        self.optimizer = self._adamw(self.flat, s.lr)
        self.critic = self.critic_optimizer = self.critic_flat = None
        if needs_critic(a):
            self.critic = _critic_from(model_path).to(self.device)
            self.critic_flat = FlatParameters(self.critic)
            self.critic_optimizer = self._adamw(self.critic_flat, s.critic_lr)
        self.verifier = get_verifier(cfg.task.verifier)
        self.eval_verifier = get_verifier(cfg.task.eval_verifier or cfg.task.verifier)
        self.prompts_per_step = a.batch_size // s.batch_divisor
        self.mini_batch = a.mini_batch_size // s.batch_divisor * a.rollout_n  # responses per optimizer step
        self.pipo = self.pi_optimizer = None
        if cfg.pipo.enabled:
            self.pipo = PIPOController(PIPOSettings.from_config(cfg.pipo), a.name, a.rollout_n, seed=cfg.seed)
            self.pi_optimizer = verification_optimizer(cfg.pipo.optimizer, self.optimizer)
        # the authors' gated PPO trains B_t without the dual clip too (docs/FIDELITY.md row 12)
        loss = NO_DUAL_CLIP if self.pipo is not None and self.pipo.gated else a.policy_loss
        self.actor_cfg = self._actor_config(loss)
        pi_loss = verification_loss_name(cfg.pipo.pi_loss, loss, self.critic is not None)
        self.pi_actor_cfg = self._actor_config(pi_loss)
        self.probe = self._probe() if cfg.probe.prompts > 0 else None
        self.step = 0
        self.cursor = 0  # training problems consumed so far
        self._order: tuple[int, np.ndarray] | None = None  # (epoch, its permutation of the train split)

    def _probe(self) -> Probe:
        """The realized-improvement probe (``probe.*``): its prompts and its sampling seed are fixed for the run."""
        s, seed = self.cfg.scale, self.cfg.seed
        problems = probe_problems(self.task.train, self.cfg.probe.prompts, step_seed(seed, 0, PROBE_STREAM))
        return Probe(
            problems,
            self.cfg.probe.samples,
            step_seed(seed, 1, PROBE_STREAM),
            self.verifier,
            self.tokenizer,
            s.max_prompt_length,
            s.max_response_length,
            s.temperature,
            s.top_p,
            s.eval.batch_size,
        )

    def _actor_config(self, loss: str):
        a = self.cfg.algorithm
        return actor_config(loss, a.loss_agg_mode, a.clip_ratio_low, a.clip_ratio_high, a.clip_ratio_c, a.rollout_n)

    # -- data --------------------------------------------------------------------------------
    def next_problems(self, count: int) -> list[dict]:
        """The next ``count`` training problems: epochs of seeded permutations of the train split
        (``scale.shuffle=false``: epochs of the split in its own order)."""
        n = len(self.task.train)
        out = []
        for pos in range(self.cursor, self.cursor + count):
            epoch, i = divmod(pos, n)
            if self.cfg.scale.shuffle:
                i = self._epoch_order(epoch)[i]
            out.append(self.task.train[i])
        self.cursor += count
        return out

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """The training split's seeded permutation for ``epoch`` (drawn once per epoch, not per problem)."""
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.task.train)))
        return self._order[1]

    def sample(self, step: int) -> tuple[list[dict], Rollout, torch.Tensor, torch.Tensor, dict[str, float]]:
        """Sample B_t from π_θt and score it with the verifier.

        Returns the problems and rollout the update trains on (after DAPO's group filter), their
        verifier scores, and the scores of *every* sampled response (J_t is taken from those). With
        ``task.reward_noise`` p, every score is what the trainer sees: each outcome s is 1 − s with
        probability p (drawn from the step's own generator); the clean mean is logged beside.
        """
        a, s = self.cfg.algorithm, self.cfg.scale
        noise = self.cfg.task.reward_noise
        flips = np.random.default_rng(step_seed(self.cfg.seed, step, 3))
        kept_problems, kept_rolls, kept_scores, all_scores, all_clean = [], [], [], [], []
        rounds = a.max_gen_rounds if a.filter_groups else 1
        for _ in range(rounds):
            problems = self.next_problems(self.prompts_per_step)
            roll = generate(
                self.policy,
                self.tokenizer,
                [p["prompt"] for p in problems],
                a.rollout_n,
                s.max_prompt_length,
                s.max_response_length,
                s.temperature,
                with_log_probs=True,
                top_p=s.top_p,
            )
            scores = torch.tensor(self.verifier.many(roll.responses, [problems[g]["ground_truth"] for g in roll.group]))
            all_clean.append(scores)
            if noise > 0:
                flip = torch.from_numpy(flips.random(len(scores)) < noise)
                scores = torch.where(flip, 1.0 - scores, scores)
            all_scores.append(scores)
            groups = base.informative_groups(scores, roll.group) if a.filter_groups else list(range(len(problems)))
            keep = set(groups)
            rows = [i for i, g in enumerate(roll.group) if g in keep]
            kept_problems += [problems[g] for g in groups]
            kept_rolls.append(roll.select(rows))
            kept_scores.append(scores[rows])
            if len(kept_problems) >= self.prompts_per_step:
                break
        roll = concat_rollouts(kept_rolls, self.tokenizer.pad_token_id)
        scores = torch.cat(kept_scores)
        m = {"sampling/rounds": float(len(all_scores)), "sampling/kept_groups": float(len(kept_problems))}
        if noise > 0:  # the verifier's own verdict on the same responses
            m["critic/clean_score/mean"] = torch.cat(all_clean).float().mean().item()
        if len(kept_problems) > self.prompts_per_step:  # DAPO: the batch is full, drop the surplus groups
            keep = self.prompts_per_step * a.rollout_n
            roll, scores, kept_problems = (
                roll.select(list(range(keep))),
                scores[:keep],
                kept_problems[: self.prompts_per_step],
            )
        elif a.filter_groups and len(kept_problems) < self.prompts_per_step:
            log.warning(
                "step %d: %d of %d groups are informative after %d generation rounds "
                "(algorithm.max_gen_rounds); training on those",
                step,
                len(kept_problems),
                self.prompts_per_step,
                rounds,
            )
        return kept_problems, roll, scores, torch.cat(all_scores), m

    # -- one iteration -----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Any]:
        # the probe's score of θ_t (probe/score, outside timing/step): it observes, unless J_t is its score
        m: dict[str, Any] = self.probe.score(self.policy) if self.probe is not None else {}
        t0 = time.perf_counter()
        torch.manual_seed(step_seed(self.cfg.seed, step, 0))
        problems, roll, scores, all_scores, sampling = self.sample(step)
        m.update(sampling, **{"timing/gen": time.perf_counter() - t0})

        # 1. performance estimate J_t: mean verifier score of every response sampled from π_θt, and its
        # standard error clustered by prompt (every round's responses are n per prompt, in order)
        # (pipo.performance=trained: mean sequence reward of the batch trained on, below; probe: the probe's)
        J = all_scores.mean().item()
        m.update({"critic/score/mean": J, "response_length/mean": roll.response_mask.sum(-1).mean().item()})
        m["pipo/J_se"] = clustered_se(all_scores.numpy(), np.arange(len(all_scores)) // self.cfg.algorithm.rollout_n)
        performance = self.cfg.pipo.performance if self.pipo is not None else "verifier"
        trained_J = performance == "trained"
        if performance == "probe":
            J, m["pipo/J_se"] = m["probe/score"], m["probe/se"]

        if not len(scores):  # DAPO kept no group: nothing to attribute or train on this iteration
            if self.pipo is not None and not trained_J:  # (no trained batch: no J_t, PIPO waits)
                m.update(self.pipo.idle(J, self.replay))
            m["timing/step"] = time.perf_counter() - t0
            return m

        # old log-probs of B_t under the sampler θ_t: the sampler's own (kept before the verification
        # step moves θ), not a second forward pass
        t = time.perf_counter()
        with torch.no_grad():
            old_lp = roll.log_probs if roll.log_probs is not None else self._log_probs(self.policy, roll)
            ref_lp = self._log_probs(self.ref, roll) if self.ref is not None else None
        m["timing/ref"] = time.perf_counter() - t  # the KL reference's forward (verl's name for it)

        # the base algorithm's learning signal on B_t
        t = time.perf_counter()
        signal = self.learning_signal(problems, roll, scores, old_lp, ref_lp, m)
        m["timing/signal"] = time.perf_counter() - t  # incl. PPO's values, SDPO's teacher forward
        sequence_rewards = signal.pop("sequence_rewards")
        if trained_J:
            J = sequence_rewards.mean().item()
            m["pipo/J_se"] = clustered_se(sequence_rewards.cpu().numpy(), roll.group)
        if self.pipo is not None and (gate := self.pipo.gate(J)) is not None:  # the authors' PPO
            signal["advantages"] = signal["advantages"] * gate
            m["pipo/gate"] = gate

        def explore() -> Explored:  # 8. the base algorithm's update on B_t
            t = time.perf_counter()
            out = self.exploration_update(roll, old_lp, ref_lp, signal, step)
            out["timing/update_actor"] = time.perf_counter() - t
            batch = {
                "input_ids": roll.input_ids,
                "attention_mask": roll.attention_mask,
                "position_ids": roll.position_ids,
                "response_mask": roll.response_mask,
                "old_log_probs": old_lp,
            }
            if ref_lp is not None and self.cfg.algorithm.use_kl_loss and self.cfg.pipo.kl_in_verification:
                batch["ref_log_probs"] = ref_lp
            return Explored(out, batch, {**signal, "response_mask": roll.response_mask})

        if self.pipo is None:
            m.update(explore().metrics)
        else:  # 2-7 before the base update, 9 after it
            m.update(self.pipo.iteration(J, self.replay, explore))
            if "critic/clean_score/mean" in m:  # task.reward_noise: J_t is the noisy one; the clean one beside
                m["pipo/J_clean"] = m["critic/clean_score/mean"]
        m["timing/step"] = time.perf_counter() - t0
        return m

    def learning_signal(self, problems, roll: Rollout, scores, old_lp, ref_lp, m: dict) -> dict[str, torch.Tensor]:
        """Advantages (PPO, GRPO, GSPO, DAPO) or teacher log-probs (SDPO) of B_t, as the base algorithm defines
        them, and ``sequence_rewards``: each response's summed (shaped) reward, its score for SDPO."""
        a, s = self.cfg.algorithm, self.cfg.scale
        mask = roll.response_mask
        scores = scores.to(mask.device)  # the verifier's scores come as a CPU tensor
        if self.teacher is not None:
            teacher_lp, has_teacher = base.self_teacher_log_probs(
                self.teacher, self.tokenizer, problems, roll, scores, self.task.reprompt, a.success_threshold
            )
            m["sdpo/demo_fraction"] = has_teacher.float().mean().item()
            return {
                "sequence_rewards": scores.float(),
                "teacher_log_probs": teacher_lp,
                "student_log_probs": old_lp,
                "distill_mask": mask * has_teacher[:, None],
            }
        rewards = scores.clone()
        if a.overlong_buffer_fraction > 0:  # DAPO's soft overlong penalty
            penalty = base.overlong_penalty(
                mask.sum(-1),
                s.max_response_length,
                round(a.overlong_buffer_fraction * s.max_response_length),
                a.overlong_penalty_factor,
            )
            rewards = rewards + penalty
            m["sampling/overlong_fraction"] = (penalty < 0).float().mean().item()
        token_rewards = torch.zeros_like(mask)
        token_rewards[torch.arange(len(rewards), device=mask.device), mask.sum(-1).long().clamp(min=1) - 1] = rewards
        if a.use_kl_in_reward:  # PPO: per-token KL penalty in the reward (verl's apply_kl_penalty)
            kld = kl_penalty(old_lp, ref_lp, a.kl_type) * mask
            token_rewards = token_rewards - a.kl_coef * kld
            m["actor/reward_kl_penalty"] = (kld.sum(-1) / mask.sum(-1).clamp(min=1)).mean().item()
        if self.critic is not None:  # a value-based estimator (PPO: verl's GAE)
            with torch.no_grad():
                values = self._values(roll)
            adv, returns = get_adv_estimator_fn(a.adv_estimator)(
                token_level_rewards=token_rewards, values=values, response_mask=mask, gamma=a.gamma, lam=a.gae_lambda
            )
            return {"advantages": adv, "returns": returns, "values": values, "sequence_rewards": token_rewards.sum(-1)}
        estimator = get_adv_estimator_fn(a.adv_estimator)
        kwargs = {
            "token_level_rewards": token_rewards,
            "response_mask": mask,
            "index": roll.group,
            "norm_adv_by_std_in_grpo": a.norm_adv_by_std,
        }
        accepted = inspect.signature(estimator).parameters  # verl's outcome estimators differ in their options
        adv, _ = estimator(**{k: v for k, v in kwargs.items() if k in accepted})
        return {"advantages": adv, "sequence_rewards": token_rewards.sum(-1)}

    def exploration_update(self, roll: Rollout, old_lp, ref_lp, signal: dict, step: int) -> dict[str, float]:
        a, s = self.cfg.algorithm, self.cfg.scale
        m: dict[str, float] = {}
        if self.critic is not None:
            t = time.perf_counter()
            m.update(self.critic_update(roll, signal["returns"], signal["values"]))
            m["timing/update_critic"] = time.perf_counter() - t
            if step <= a.critic_warmup_steps:
                return m
        if self.teacher is not None:
            loss_fn = self._distillation_loss(old_lp, signal, roll.response_mask)
        else:
            loss_fn = self._policy_gradient_loss(old_lp, signal["advantages"], roll.response_mask, ref_lp)
        m.update(
            self.actor_pass(
                roll.input_ids,
                roll.attention_mask,
                roll.position_ids,
                roll.response_length,
                loss_fn,
                lr=s.lr,
                prefix="actor",
            )
        )
        if self.teacher is not None:
            ema_update(self.teacher, self.policy, a.teacher_ema)
        return m

    def replay(self, batch: dict[str, torch.Tensor], rewards: torch.Tensor, lr: float) -> dict[str, float]:
        """Step 7's update: the verification loss (``pipo.pi_loss``; the base policy loss by default) on the
        stored ``batch`` with ``rewards`` as advantages, at ``lr``, with ``pipo.optimizer``'s optimizer,
        and the KL loss with ``pipo.kl_in_verification``. Without a KL term, rows whose rewards are all
        zero add no gradient and are not forwarded."""
        mask = batch["response_mask"]
        ref_lp = batch.get("ref_log_probs") if self.cfg.pipo.kl_in_verification else None
        loss_fn = self._policy_gradient_loss(batch["old_log_probs"], rewards, mask, ref_lp, self.pi_actor_cfg)
        active = None if ref_lp is not None else ((rewards != 0) & (mask > 0)).any(-1)
        with UpdateCosine(self.pi_optimizer) as cosine:
            upd = self.actor_pass(
                batch["input_ids"],
                batch["attention_mask"],
                batch["position_ids"],
                mask.shape[1],
                loss_fn,
                lr=lr,
                prefix="pipo",
                active=active,
                optimizer=self.pi_optimizer,
            )
        return {
            "pi_loss": upd["pipo/pg_loss"],
            "clipfrac": upd.get("pipo/pg_clipfrac"),  # not measured when no row carried a PI reward
            "grad_norm": upd["pipo/grad_norm"],
            "update_cos": cosine.mean(),
            "replayed_fraction": 1.0 if active is None else active.float().mean().item(),
        }

    # -- losses ------------------------------------------------------------------------------
    def _policy_gradient_loss(self, old_lp, advantages, mask, ref_lp, config=None) -> LossFn:
        """A registered verl policy loss (``config``'s; default the base algorithm's) + the KL loss when the
        algorithm has one and ``ref_lp`` is given."""
        a = self.cfg.algorithm
        config = config or self.actor_cfg

        def loss_fn(lp: torch.Tensor, rows: torch.Tensor, sl: slice) -> tuple[torch.Tensor, dict[str, float]]:
            totals = _batch_totals(mask[sl])  # the mini-batch's normalisation, whichever rows are forwarded
            loss, pg = policy_loss(config, lp, old_lp[rows], advantages[rows], mask[rows], **totals)
            stats = {"pg_loss": loss.item(), "pg_clipfrac": pg["actor/pg_clipfrac"], "ppo_kl": pg["actor/ppo_kl"]}
            if ref_lp is not None and a.use_kl_loss:
                kl = agg_loss(kl_penalty(lp, ref_lp[rows], a.kl_type), mask[rows], a.loss_agg_mode, **totals)
                loss = loss + a.kl_coef * kl
                stats["kl_loss"] = kl.item()
            return loss, stats

        return loss_fn

    def _distillation_loss(self, old_lp, signal: dict, mask) -> LossFn:
        """SDPO: sampled-token reverse KL to the self-teacher, over the tokens of the responses that have a
        demonstration and normalised by them (lasgroup/SDPO's loss mask); the others add nothing."""
        a = self.cfg.algorithm
        distill = signal["distill_mask"]

        def loss_fn(lp: torch.Tensor, rows: torch.Tensor, sl: slice) -> tuple[torch.Tensor, dict[str, float]]:
            loss_mat = sdpo_token_loss(lp, old_lp[rows], signal["teacher_log_probs"][rows], a.is_clip)
            totals = {k: v.clamp(min=1) for k, v in _batch_totals(distill[sl]).items()}  # 0 demonstrated: loss 0
            loss = agg_loss(loss_mat, distill[rows], a.loss_agg_mode, **totals)
            return loss, {"pg_loss": loss.item()}

        return loss_fn

    # -- passes over a batch -----------------------------------------------------------------
    def _log_probs(self, model, roll: Rollout) -> torch.Tensor:
        return log_probs(model, roll.input_ids, roll.attention_mask, roll.position_ids, roll.response_length)

    def _values(self, roll: Rollout) -> torch.Tensor:
        """V(s) before each response token, (bs, response_length) (verl's critic layout)."""
        out = self.critic(
            input_ids=roll.input_ids, attention_mask=roll.attention_mask, position_ids=roll.position_ids
        ).logits[..., 0]
        return out[:, -roll.response_length - 1 : -1].float()

    def actor_pass(
        self,
        input_ids,
        attention_mask,
        position_ids,
        response_length: int,
        loss_fn: LossFn,
        lr: float,
        prefix: str,
        active: torch.Tensor | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> dict[str, float]:
        """One pass of mini-batch optimizer steps on the policy (exploration or verification update),
        with ``optimizer`` (default: the actor's AdamW).

        ``active`` (bs,) marks the rows whose loss can be non-zero; only those are forwarded. The
        others would add exactly zero gradient, and the loss keeps the whole mini-batch's
        normalisation, so the update equals the pass over every row. A mini-batch without an active
        row still takes its optimizer step, on a zero gradient, as the full pass would (AdamW's moments
        and step count move on).
        """
        optimizer = optimizer or self.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr
        if not self.policy.training:  # left in train mode between passes (sampling switches it itself)
            self.policy.train()
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for i in range(0, len(input_ids), self.mini_batch):
            sl = slice(i, i + self.mini_batch)
            rows = torch.arange(i, min(i + self.mini_batch, len(input_ids)), device=input_ids.device)
            if active is not None:
                rows = rows[active[sl]]
            if len(rows):
                lp = log_probs(self.policy, input_ids[rows], attention_mask[rows], position_ids[rows], response_length)
                loss, stats = loss_fn(lp, rows, sl)
                stats["grad_norm"] = self._step(self.flat, optimizer, loss, prefix)
            else:  # its loss is exactly zero; its diagnostics (clip fraction, KL) are not measured
                stats = {"pg_loss": 0.0, "grad_norm": self._step(self.flat, optimizer, None, prefix)}
            for k, v in stats.items():
                sums[k], counts[k] = sums.get(k, 0.0) + v, counts.get(k, 0) + 1
        return {**{f"{prefix}/{k}": v / counts[k] for k, v in sums.items()}, f"{prefix}/lr": lr}

    def critic_update(self, roll: Rollout, returns, values) -> dict[str, float]:
        """One pass of mini-batch steps on the critic with verl's clipped value loss."""
        a = self.cfg.algorithm
        self.critic.train()
        sums: dict[str, float] = {}
        n_mb = 0
        R = roll.response_length
        for i in range(0, len(roll.input_ids), self.mini_batch):
            sl = slice(i, i + self.mini_batch)
            vpred = (
                self.critic(
                    input_ids=roll.input_ids[sl],
                    attention_mask=roll.attention_mask[sl],
                    position_ids=roll.position_ids[sl],
                )
                .logits[..., 0][:, -R - 1 : -1]
                .float()
            )
            loss, clipfrac = compute_value_loss(
                vpred, returns[sl], values[sl], roll.response_mask[sl], a.cliprange_value, a.loss_agg_mode
            )
            grad_norm = self._step(self.critic_flat, self.critic_optimizer, loss, "critic")
            for k, v in {"vf_loss": loss.item(), "vf_clipfrac": clipfrac.item(), "grad_norm": grad_norm}.items():
                sums[k] = sums.get(k, 0.0) + v
            n_mb += 1
        self.critic.eval()
        return {f"critic/{k}": v / n_mb for k, v in sums.items()}

    def _adamw(self, flat: FlatParameters, lr: float) -> torch.optim.AdamW:
        s = self.cfg.scale
        return torch.optim.AdamW([flat.param], lr=lr, betas=tuple(s.betas), weight_decay=s.weight_decay, fused=True)

    def _step(self, flat: FlatParameters, optimizer, loss: torch.Tensor | None, what: str) -> float:
        """Backward, clip, step; ``loss=None``: a step on an all-zero gradient (nothing to forward)."""
        flat.zero_grad()
        if loss is not None:
            loss.backward()
        grad_norm = flat.clip_grad_norm_(self.cfg.scale.grad_clip)
        if math.isfinite(grad_norm):
            optimizer.step()
        else:
            log.warning("step %d: non-finite grad norm in the %s update; optimizer step skipped", self.step, what)
        return grad_norm

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {
            "step": self.step,
            "cursor": self.cursor,
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pipo": None if self.pipo is None else self.pipo.state_dict(),
        }
        if self.pi_optimizer is not None and self.pi_optimizer is not self.optimizer:
            state["pi_optimizer"] = self.pi_optimizer.state_dict()
        if self.teacher is not None:
            state["teacher"] = self.teacher.state_dict()
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
            state["critic_optimizer"] = self.critic_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(flat_optimizer_state(state["optimizer"]))
        if self.pipo is not None and state["pipo"] is not None:
            self.pipo.load_state_dict(_current_pipo_state(state["pipo"]))
        if "pi_optimizer" in state:
            self.pi_optimizer.load_state_dict(state["pi_optimizer"])
        if self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
            self.critic_optimizer.load_state_dict(flat_optimizer_state(state["critic_optimizer"]))
        self.step, self.cursor = state["step"], state["cursor"]

    def save_checkpoint(self) -> None:
        path = self.record.ckpt_dir / CKPT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)

    def load_checkpoint(self) -> bool:
        path = self.record.ckpt_dir / CKPT_NAME
        if not path.exists():
            return False
        fresh = copy.deepcopy(self.state_dict())  # a part that fails to load must not leave the others loaded
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
            self.load_state_dict(state)
        except Exception as err:  # noqa: BLE001 - an unreadable checkpoint means starting over, loudly
            self.load_state_dict(fresh)
            log.warning("checkpoint %s is unreadable (%s); starting the cell from step 0", path, err)
            return False
        return True

    # -- the run -----------------------------------------------------------------------------
    def run_eval(self) -> dict:
        s = self.cfg.scale
        torch.manual_seed(step_seed(self.cfg.seed, self.step, 1))
        t = time.perf_counter()
        result = evaluate(
            self.policy,
            self.tokenizer,
            self.task.benchmarks,
            self.task.stands_for,
            self.eval_verifier,
            s.max_prompt_length,
            s.max_response_length,
            s.temperature,
            s.eval.mean_at_k,
            s.eval.batch_size,
            s.eval.temperature,
            top_p=s.top_p,
        )
        result.update(step=self.step, seconds=time.perf_counter() - t)
        self.record.add_eval(result)
        self.wandb.save(self.record.path / "eval.json")  # the per-problem outcomes travel as the file
        flat = {f"val/{b}/{k}": e[k] for b, e in result["benchmarks"].items() for k in ("pass@1", "correct", "n")}
        flat.update({f"val/avg/{k}": v for k, v in result["avg"].items()})
        self.wandb.log(flat, step=self.step)
        return result

    def finished(self) -> bool:
        """The budget is spent (``pipo.config.budget``): ``scale.steps`` iterations, or, when prompts bound
        the run, ``algorithm.epochs`` passes of sampled prompts over the training split."""
        if self.step >= self.cfg.scale.steps:
            return True
        return budget(self.cfg).bound == "prompts" and self.cursor >= self.cfg.algorithm.epochs * len(self.task.train)

    def fit(self) -> dict:
        """Train until the budget is spent, resuming from the last checkpoint; returns the final evaluation."""
        s = self.cfg.scale
        resumed = (self.record.status() or {}).get("resumed_from", [])
        if self.load_checkpoint():
            log.info("resuming from the checkpoint at step %d", self.step)
            resumed = [*resumed, self.step]
        self.record.rewind(self.step)
        self.record.set_status("running", step=self.step, total_steps=s.steps, resumed_from=resumed)
        if self.step == 0 and not any(e["step"] == 0 for e in self.record.evals()):
            self.run_eval()
        last_eval = self.record.evals()[-1]
        name = self.cfg.algorithm.name + ("+pipo" if self.pipo else "")
        bar = tqdm(total=s.steps, initial=self.step, desc=name, unit="step", dynamic_ncols=True)
        with DeferredSignals() as stop:
            while not self.finished():
                self.step += 1
                metrics = self.train_step(self.step)
                self.record.append_metrics({"step": self.step, **metrics})
                self.wandb.log(metrics, step=self.step)
                last = self.finished()
                if self.step % s.eval.every == 0 or last:
                    last_eval = self.run_eval()
                if self.step % s.save_every == 0 or last or stop.pending:
                    self.save_checkpoint()
                    self.record.set_status("running", step=self.step, total_steps=s.steps)
                bar.update(1)
                bar.set_postfix(score=f"{metrics['critic/score/mean']:.3f}", val=f"{last_eval['avg']['pass@1']:.3f}")
                if stop.pending:
                    log.warning("stop signal received: checkpoint written at step %d", self.step)
                    stop.deliver()
        bar.close()
        return last_eval
