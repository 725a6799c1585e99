"""Task name → data and verifier."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipo.tasks import toy_code, toy_math, toy_mcq, toy_tool
from pipo.tasks.code_verifier import code_score, code_scores
from pipo.tasks.math_verifier import math_score
from pipo.tasks.mcq_verifier import mcq_score
from pipo.tasks.tool_verifier import TOOL_REWARD_RANGE, tool_exact, tool_reward


@dataclass(frozen=True)
class Verifier:
    """A task's verifier: ``score(response, ground_truth)`` within ``[low, high]``; never raises."""

    name: str
    score: Callable[[str, str], float]
    low: float = 0.0
    high: float = 1.0
    batch: Callable[[Sequence[str], Sequence[str]], list[float]] | None = None  # faster many at once

    def __call__(self, response: str, ground_truth: str) -> float:
        return self.score(response, ground_truth)

    def many(self, responses: Sequence[str], truths: Sequence[str]) -> list[float]:
        if self.batch is not None:
            return self.batch(responses, truths)
        return [self.score(r, t) for r, t in zip(responses, truths, strict=True)]


VERIFIERS: dict[str, Verifier] = {
    v.name: v
    for v in (
        Verifier("math", math_score),
        Verifier("code", code_score, batch=code_scores),
        Verifier("tool", tool_reward, *TOOL_REWARD_RANGE),
        Verifier("tool_exact", tool_exact),
        Verifier("mcq", mcq_score),
    )
}


def get_verifier(name: str) -> Verifier:
    if name not in VERIFIERS:
        raise ValueError(f"unknown verifier {name!r} (known: {sorted(VERIFIERS)})")
    return VERIFIERS[name]


@dataclass
class TaskData:
    """A task's splits as the trainer reads them; problems are ``{"prompt", "ground_truth", ...}``."""

    train: list[dict[str, Any]]
    benchmarks: dict[str, list[dict[str, Any]]]  # split name -> problems
    stands_for: dict[str, str]  # split name -> paper benchmark
    sft_examples: list[tuple[str, str]]  # the tiny base model's supervised warm-up
    reprompt: Callable[[str, str], str]  # (prompt, demonstration) -> SDPO teacher prompt
    key: str  # identifies the data (part of the tiny model cache key)
    words: tuple[str, ...] = ()  # extra multi-character tokens of the tiny tokenizer


# stand-in generator -> (module, the option naming the base model's per-level share of right answers)
GENERATORS = {
    "toy_math": (toy_math, "sft_boxed_fraction"),
    "toy_code": (toy_code, "sft_correct_fraction"),
    "toy_tool": (toy_tool, "sft_correct_fraction"),
    "toy_mcq": (toy_mcq, "sft_correct_fraction"),
}


def load_standin(task: Any) -> TaskData:
    """The tiny-scale stand-in of ``task`` (a TaskConfig)."""
    st = task.standin
    if st.generator not in GENERATORS:
        raise ValueError(
            f"task {task.name!r}: unknown stand-in generator {st.generator!r} (known: {sorted(GENERATORS)})"
        )
    module, fraction_key = GENERATORS[st.generator]
    specs = {name: {"level": sp.level, "size": sp.size, "kind": sp.kind} for name, sp in st.splits.items()}
    splits = module.make_splits(specs, st.train_size, st.data_seed)
    train = splits.pop("train")
    fractions = list(st.options.get(fraction_key, [1.0] * len(module.LEVELS)))
    reprompt = float(st.options.get("sft_reprompt_fraction", 0.0))
    examples = module.sft_examples(train, fractions, st.data_seed, reprompt)
    blob = json.dumps([examples, splits], sort_keys=True)  # the content itself: any change makes a new key
    return TaskData(
        train=train,
        benchmarks=splits,
        stands_for={name: sp.stands_for for name, sp in st.splits.items()},
        sft_examples=examples,
        reprompt=toy_math.reprompt_text,
        key=hashlib.sha256(blob.encode()).hexdigest()[:12],
        words=tuple(getattr(module, "WORDS", ())),
    )
