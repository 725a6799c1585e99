"""The realized-improvement probe (docs/ALGORITHM.md, "Is the feedback right?").

Before every iteration the policy θ_t is scored on a fixed set of N training prompts, k sampled
responses each, always with the same sampling seed (common random numbers: consecutive policies
are compared on the same draws, so the step-to-step difference of the score measures the update,
not the draw). The score is the training verifier's clean verdict (``task.reward_noise`` never
applies), at the rollout's temperature, top-p and lengths: the quantity J_t estimates.

The probe observes and never steers: it samples without gradients, inside a forked RNG seeded by
its own seed (the run's RNG state is neither read nor advanced), and leaves the model's mode as it
found it. A run trains bit-identically with it on or off (tests/backends/test_probe.py).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipo.algorithm.feedback import clustered_se
from pipo.backends.local.rollout import generate
from pipo.tasks import Verifier

PROBE_STREAM = 5  # the probe's seed stream (pipo.backends.local.trainer.step_seed): 0-3 are the run's


class Probe:
    """Scores a policy on fixed prompts with a fixed sampling seed.

    Args:
        problems: the fixed training problems (``prompt``, ``ground_truth``).
        samples: k, responses per prompt.
        seed: the sampling seed of every call.
        verifier: the training verifier (its clean score).
        tokenizer, max_prompt_length, max_new_tokens, temperature, top_p: the rollout's settings.
        batch_size: responses per ``generate`` call at most (whole prompts).
    """

    def __init__(
        self,
        problems: list[dict],
        samples: int,
        seed: int,
        verifier: Verifier,
        tokenizer: PreTrainedTokenizerBase,
        max_prompt_length: int,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        batch_size: int,
    ) -> None:
        if not problems or samples < 1:
            raise ValueError(f"the probe needs at least one prompt and one sample ({len(problems)}, {samples})")
        self.problems, self.samples, self.seed, self.verifier = problems, samples, seed, verifier
        self.tokenizer = tokenizer
        self.lengths = (max_prompt_length, max_new_tokens)
        self.temperature, self.top_p = temperature, top_p
        self.prompts_per_call = max(1, batch_size // samples)

    def score(self, policy: PreTrainedModel) -> dict[str, float]:
        """``probe/score`` (mean verifier score of the N·k responses), ``probe/se`` (its standard error,
        clustered by prompt) and ``timing/probe`` (seconds)."""
        t = time.perf_counter()
        device = policy.device
        scores: list[float] = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            for i in range(0, len(self.problems), self.prompts_per_call):
                # reseeded per batch: a batch's draws do not depend on how long the batch before it ran
                torch.manual_seed(self.seed + i)
                chunk = self.problems[i : i + self.prompts_per_call]
                roll = generate(
                    policy,
                    self.tokenizer,
                    [p["prompt"] for p in chunk],
                    self.samples,
                    *self.lengths,
                    self.temperature,
                    top_p=self.top_p,
                )
                scores += self.verifier.many(roll.responses, [chunk[g]["ground_truth"] for g in roll.group])
        groups = np.repeat(np.arange(len(self.problems)), self.samples)
        return {
            "probe/score": float(np.mean(scores)),
            "probe/se": clustered_se(scores, groups),
            "timing/probe": time.perf_counter() - t,
        }


def probe_problems(train: list[dict], prompts: int, seed: int) -> list[dict]:
    """``prompts`` training problems drawn without replacement by ``seed`` (the same for the whole run)."""
    if prompts > len(train):
        raise ValueError(f"probe.prompts={prompts}: the training split has {len(train)} problems")
    idx = np.random.default_rng(seed).choice(len(train), prompts, replace=False)
    return [train[i] for i in sorted(idx)]
