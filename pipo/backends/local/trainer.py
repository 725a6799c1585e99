"""The local trainer: one process, a Hugging Face model, any cell on CPU or one GPU.

``LocalTrainer.train_step`` reads like PIPO_SPEC §1 steps 1-9. Advantages, policy losses and
KL come from verl's ``core_algos``; PIPO's parts from ``pipo.algorithm``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer
from verl.trainer.ppo.core_algos import agg_loss, get_adv_estimator_fn, kl_penalty

from pipo.algorithm import (
    AttributionConfig,
    ImprovementFeedback,
    PIPOState,
    PreviousBatch,
    actor_config,
    decide,
    get_attribution_fn,
    pi_rewards,
    policy_loss,
)
from pipo.backends.local.evaluate import evaluate
from pipo.backends.local.rollout import Rollout, generate, log_probs
from pipo.records import RunRecord
from pipo.tasks import TaskData, get_verifier
from pipo.wandb_mirror import WandbMirror

log = logging.getLogger(__name__)
CKPT_NAME = "state.pt"


def step_seed(seed: int, step: int, stream: int) -> int:
    """A seed for (cell seed, step, stream): sampling never depends on how the run got there."""
    return int(np.random.SeedSequence([seed, step, stream]).generate_state(1)[0])


class LocalTrainer:
    """Trains one cell and keeps its run record (metrics, evaluations, checkpoints, status)."""

    def __init__(
        self, cfg: DictConfig, task: TaskData, model_path: Path, record: RunRecord, wandb: WandbMirror
    ) -> None:
        self.cfg, self.task, self.record, self.wandb = cfg, task, record, wandb
        a, s = cfg.algorithm, cfg.scale
        self.device = torch.device(cfg.backend.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.policy = AutoModelForCausalLM.from_pretrained(model_path).to(self.device)
        self.ref = None
        if a.use_kl_loss:
            self.ref = copy.deepcopy(self.policy).eval().requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.policy.parameters(), lr=s.lr, betas=tuple(s.betas), weight_decay=s.weight_decay
        )
        self.verifier = get_verifier(cfg.task.verifier)
        self.prompts_per_step = a.batch_size // s.batch_divisor
        self.mini_batch = a.mini_batch_size // s.batch_divisor * a.rollout_n  # responses per optimizer step
        self.actor_cfg = actor_config(
            a.policy_loss, a.loss_agg_mode, a.clip_ratio_low, a.clip_ratio_high, a.clip_ratio_c, a.rollout_n
        )
        self.adv_fn = get_adv_estimator_fn(a.adv_estimator)
        p = cfg.pipo
        self.pipo = None
        if p.enabled:
            self.pipo = PIPOState(ImprovementFeedback(p.window, p.lam, p.min_history, p.eps, p.ddof, p.delta_clip))
            self.attribution_fn = get_attribution_fn(a.name)
            self.attribution_cfg = AttributionConfig(group_size=a.rollout_n, group_norm=p.group_norm)
        self.step = 0

    # -- data --------------------------------------------------------------------------------
    def batch_problems(self, step: int) -> list[dict]:
        """The prompts of iteration ``step`` (1-based): epochs of seeded permutations of the train split."""
        n, per = len(self.task.train), self.prompts_per_step
        out = []
        for pos in range((step - 1) * per, step * per):
            epoch, i = divmod(pos, n)
            perm = np.random.default_rng([self.cfg.seed, epoch]).permutation(n)
            out.append(self.task.train[perm[i]])
        return out

    # -- one iteration -----------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, Any]:
        a, s = self.cfg.algorithm, self.cfg.scale
        m: dict[str, Any] = {}
        t0 = time.perf_counter()
        torch.manual_seed(step_seed(self.cfg.seed, step, 0))
        problems = self.batch_problems(step)
        roll = generate(
            self.policy,
            self.tokenizer,
            [p["prompt"] for p in problems],
            a.rollout_n,
            s.max_prompt_length,
            s.max_response_length,
            s.temperature,
        )
        scores = torch.tensor(
            [self.verifier(y, problems[g]["ground_truth"]) for y, g in zip(roll.responses, roll.group, strict=True)]
        )
        m["timing/gen"] = time.perf_counter() - t0

        # 1. performance estimate J_t: mean verifier score of the whole batch
        J = scores.mean().item()
        m.update({"critic/score/mean": J, "response_length/mean": roll.response_mask.sum(-1).mean().item()})

        # old log-probs of B_t under the sampler θ_t, taken before the verification step moves θ
        t = time.perf_counter()
        with torch.no_grad():
            old_lp = self._log_probs(self.policy, roll)
            ref_lp = self._log_probs(self.ref, roll) if self.ref is not None else None
        m["timing/old_log_prob"] = time.perf_counter() - t

        # advantages of B_t as the base algorithm defines them (verl's estimator)
        token_rewards = torch.zeros_like(roll.response_mask)
        last = roll.response_mask.sum(-1).long().clamp(min=1) - 1
        token_rewards[torch.arange(len(scores)), last] = scores
        advantages, _ = self.adv_fn(
            token_level_rewards=token_rewards,
            response_mask=roll.response_mask,
            index=roll.group,
            norm_adv_by_std_in_grpo=a.norm_adv_by_std,
        )

        if self.pipo is not None:
            # 2-4. window anchor, standardized improvement δ_t, rectification φ
            fb = self.pipo.feedback.compute(J)
            m.update(fb.as_metrics())
            # 5-7. PI rewards on B_{t-1} and the verification update from θ_t
            m.update(self.verification_step(fb))

        # 8. exploration update: the base algorithm on B_t, from θ'_t
        t = time.perf_counter()
        m.update(
            self.update(
                roll.input_ids,
                roll.attention_mask,
                roll.position_ids,
                roll.response_mask,
                old_lp,
                advantages,
                ref_lp,
                lr=s.lr,
                prefix="actor",
            )
        )
        m["timing/update_actor"] = time.perf_counter() - t

        if self.pipo is not None:
            # 9. J_t joins the window; B_t (with its attributions) becomes the previous batch
            self.pipo.feedback.push(J)
            attributions = self.attribution_fn(
                {"advantages": advantages, "response_mask": roll.response_mask}, self.attribution_cfg
            )
            self.pipo.previous = PreviousBatch(
                roll.input_ids, roll.attention_mask, roll.position_ids, roll.response_mask, old_lp, attributions
            )
        m["timing/step"] = time.perf_counter() - t0
        return m

    def verification_step(self, fb) -> dict[str, Any]:
        """Steps 5-7: the retrospective update on the previous batch, or a skip that touches nothing."""
        prev = self.pipo.previous
        rewards = pi_rewards(fb.phi, prev.attributions) if prev is not None and fb.phi is not None else None
        decision = decide(fb, prev is not None, rewards, None if prev is None else prev.response_mask)
        m: dict[str, Any] = {
            "pipo/verified": float(decision.verify),
            "pipo/suppressed": float(fb.delta is not None and fb.delta < 0),
            "pipo/units": 0.0,
            "pipo/pi_loss": None,
            "pipo/clipfrac": None,
            "timing/verify": 0.0,
        }
        if not decision.verify:
            return m
        t = time.perf_counter()
        upd = self.update(
            prev.input_ids,
            prev.attention_mask,
            prev.position_ids,
            prev.response_mask,
            prev.old_log_probs,
            rewards,
            None,
            lr=self.cfg.pipo.lr,
            prefix="pipo",
        )
        m.update(
            {
                "pipo/pi_loss": upd["pipo/pg_loss"],
                "pipo/clipfrac": upd["pipo/pg_clipfrac"],
                "pipo/grad_norm": upd["pipo/grad_norm"],
                "pipo/units": float(((rewards != 0) & (prev.response_mask > 0)).sum().item()),
                "timing/verify": time.perf_counter() - t,
            }
        )
        return m

    def _log_probs(self, model, roll: Rollout) -> torch.Tensor:
        return log_probs(model, roll.input_ids, roll.attention_mask, roll.position_ids, roll.response_length)

    def update(
        self, input_ids, attention_mask, position_ids, response_mask, old_lp, advantages, ref_lp, lr: float, prefix: str
    ) -> dict[str, float]:
        """One pass of mini-batch optimizer steps with the base algorithm's policy loss (+ KL loss).

        Used for the exploration update (advantages) and the verification update (PI rewards, no KL).
        """
        a, s = self.cfg.algorithm, self.cfg.scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.policy.train()
        sums: dict[str, float] = {}
        n_mb = 0
        R = response_mask.shape[1]
        for i in range(0, len(input_ids), self.mini_batch):
            sl = slice(i, i + self.mini_batch)
            mask = response_mask[sl]
            lp = log_probs(self.policy, input_ids[sl], attention_mask[sl], position_ids[sl], R)
            loss, pg_m = policy_loss(self.actor_cfg, lp, old_lp[sl], advantages[sl], mask)
            stats = {"pg_loss": loss.item(), "pg_clipfrac": pg_m["actor/pg_clipfrac"], "ppo_kl": pg_m["actor/ppo_kl"]}
            if ref_lp is not None:
                kl = agg_loss(kl_penalty(lp, ref_lp[sl], a.kl_type), mask, a.loss_agg_mode)
                loss = loss + a.kl_coef * kl
                stats["kl_loss"] = kl.item()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.grad_clip).item()
            stats["grad_norm"] = grad_norm
            if math.isfinite(grad_norm):
                self.optimizer.step()
            else:
                log.warning("step %d: non-finite grad norm in the %s update; optimizer step skipped", self.step, prefix)
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
            n_mb += 1
        self.policy.eval()
        out = {f"{prefix}/{k}": v / n_mb for k, v in sums.items()}
        out[f"{prefix}/lr"] = lr
        return out

    # -- checkpoints -------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        state = {
            "step": self.step,
            "model": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pipo": None if self.pipo is None else self.pipo.state_dict(),
        }
        path = self.record.ckpt_dir / CKPT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)

    def load_checkpoint(self) -> bool:
        path = self.record.ckpt_dir / CKPT_NAME
        if not path.exists():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # noqa: BLE001 - an unreadable checkpoint means starting over, loudly
            log.warning("checkpoint %s is unreadable (%s); starting the cell from step 0", path, err)
            return False
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.pipo is not None and state["pipo"] is not None:
            self.pipo.load_state_dict(state["pipo"])
        self.step = state["step"]
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
            self.verifier,
            s.max_prompt_length,
            s.max_response_length,
            s.temperature,
            s.eval.mean_at_k,
            s.eval.batch_size,
        )
        result.update(step=self.step, seconds=time.perf_counter() - t)
        self.record.add_eval(result)
        flat = {f"val/{b}/pass@1": e["pass@1"] for b, e in result["benchmarks"].items()}
        flat.update({f"val/avg/{k}": v for k, v in result["avg"].items()})
        self.wandb.log(flat, step=self.step)
        return result

    def fit(self) -> dict:
        """Train to ``scale.steps``, resuming from the last checkpoint; returns the final evaluation."""
        s = self.cfg.scale
        if self.load_checkpoint():
            log.info("resuming from the checkpoint at step %d", self.step)
        self.record.rewind(self.step)
        self.record.set_status("running", step=self.step, total_steps=s.steps)
        if not any(e["step"] == 0 for e in self.record.evals()) and self.step == 0:
            self.run_eval()
        last_eval = self.record.evals()[-1]
        bar = tqdm(
            total=s.steps,
            initial=self.step,
            desc=self.cfg.algorithm.name + ("+pipo" if self.pipo else ""),
            unit="step",
            dynamic_ncols=True,
        )
        while self.step < s.steps:
            self.step += 1
            metrics = self.train_step(self.step)
            self.record.append_metrics({"step": self.step, **metrics})
            self.wandb.log(metrics, step=self.step)
            if self.step % s.eval.every == 0 or self.step == s.steps:
                last_eval = self.run_eval()
            if self.step % s.save_every == 0 or self.step == s.steps:
                self.save_checkpoint()
                self.record.set_status("running", step=self.step, total_steps=s.steps)
            bar.update(1)
            bar.set_postfix(score=f"{metrics['critic/score/mean']:.3f}", val=f"{last_eval['avg']['pass@1']:.3f}")
        bar.close()
        return last_eval
