"""Task name → data and verifier."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipo.tasks import toy_math
from pipo.tasks.math_verifier import math_score

Verifier = Callable[[str, str], float]
VERIFIERS: dict[str, Verifier] = {"math": math_score}


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


def load_standin(task: Any) -> TaskData:
    """The tiny-scale stand-in of ``task`` (a TaskConfig)."""
    st = task.standin
    if st.generator != "toy_math":
        raise ValueError(f"task {task.name!r}: unknown stand-in generator {st.generator!r} (known: ['toy_math'])")
    specs = {name: {"level": sp.level, "size": sp.size} for name, sp in st.splits.items()}
    splits = toy_math.make_splits(specs, st.train_size, st.data_seed)
    train = splits.pop("train")
    boxed = list(st.options.get("sft_boxed_fraction", [1.0] * len(toy_math.LEVELS)))
    reprompt = float(st.options.get("sft_reprompt_fraction", 0.0))
    examples = toy_math.sft_examples(train, boxed, st.data_seed, reprompt)
    blob = json.dumps([examples, splits], sort_keys=True)  # the content itself: any change makes a new key
    return TaskData(
        train=train,
        benchmarks=splits,
        stands_for={name: sp.stands_for for name, sp in st.splits.items()},
        sft_examples=examples,
        reprompt=toy_math.reprompt_text,
        key=hashlib.sha256(blob.encode()).hexdigest()[:12],
    )
