"""Toy math: seeded arithmetic problems whose answer is written in ``\\boxed{}``.

The tiny scale's stand-in for the paper's math task. Five difficulty levels; each evaluation
split draws distinct problems of one level, the training split draws from every level the
problems no evaluation split holds.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable

Problem = dict[str, str | int]

# level -> (all operand tuples, question text, answer)
_LEVELS: dict[int, tuple[Callable[[], Iterable[tuple[int, ...]]], Callable[..., str], Callable[..., int]]] = {
    1: (lambda: itertools.product(range(50), range(50)), lambda a, b: f"{a}+{b}", lambda a, b: a + b),
    2: (  # two-digit sums not in level 1: an operand of 50 or more
        lambda: ((a, b) for a, b in itertools.product(range(10, 100), repeat=2) if max(a, b) >= 50),
        lambda a, b: f"{a}+{b}",
        lambda a, b: a + b,
    ),
    3: (lambda: itertools.product(range(100), range(100)), lambda a, b: f"{a}-{b}", lambda a, b: a - b),
    4: (lambda: itertools.product(range(2, 100), range(2, 10)), lambda a, b: f"{a}*{b}", lambda a, b: a * b),
    5: (
        lambda: itertools.product(range(2, 10), range(2, 10), range(100)),
        lambda a, b, c: f"{a}*{b}+{c}",
        lambda a, b, c: a * b + c,
    ),
}
LEVELS = tuple(_LEVELS)


def prompt_text(question: str) -> str:
    """The prompt a model sees for ``question``."""
    return f"Q:{question}\nA:"


def solution_text(answer: int | str) -> str:
    """The reference response for an answer."""
    return f"\\boxed{{{answer}}}"


def _problem(level: int, operands: tuple[int, ...]) -> Problem:
    _, question, answer = _LEVELS[level]
    return {"prompt": prompt_text(question(*operands)), "ground_truth": str(answer(*operands)), "level": level}


def make_splits(eval_splits: dict[str, dict[str, int]], train_size: int, seed: int) -> dict[str, list[Problem]]:
    """Build the training split and the evaluation splits.

    Args:
        eval_splits: split name -> ``{"level": L, "size": N}``.
        train_size: number of training problems (a uniform level, then a problem of it not held
            by an evaluation split, with replacement).
        seed: the data-generation seed (fixed per task, not the cell's seed).

    Returns:
        ``{"train": [...], name: [...], ...}``, each problem ``{"prompt", "ground_truth", "level"}``.
    """
    rng = random.Random(seed)
    pools = {}
    for level, (operands, _, _) in _LEVELS.items():
        pool = list(operands())
        rng.shuffle(pool)
        pools[level] = pool
    drawn = draw_splits(pools, eval_splits, train_size, rng, "toy_math")
    return {name: [_problem(level, ops) for level, ops in items] for name, items in drawn.items()}


def draw_splits(
    pools: dict[int, list], eval_splits: dict[str, dict], train_size: int, rng: random.Random, generator: str
) -> dict[str, list[tuple[int, object]]]:
    """Deal shuffled per-level pools into evaluation splits, then draw the training split from the rest.

    Each evaluation split takes ``size`` distinct items of its ``level``; the training split draws
    ``train_size`` items (a uniform level, then an item of it no evaluation split holds, with
    replacement). Returns ``{name: [(level, item), ...], "train": [...]}``.
    """
    pools = {level: list(pool) for level, pool in pools.items()}
    out: dict[str, list[tuple[int, object]]] = {}
    for name, spec in eval_splits.items():
        level, size = int(spec["level"]), int(spec["size"])
        if level not in pools:
            raise ValueError(f"{generator} split {name!r}: unknown level {level} (levels: {sorted(pools)})")
        if size > len(pools[level]):
            raise ValueError(
                f"{generator} split {name!r}: {size} problems asked, level {level} has {len(pools[level])} left"
            )
        out[name] = [(level, item) for item in pools[level][:size]]
        pools[level] = pools[level][size:]
    for level, pool in pools.items():
        if not pool:
            raise ValueError(f"{generator}: the evaluation splits leave no level-{level} problem for training")
    levels = sorted(pools)
    out["train"] = [(level, rng.choice(pools[level])) for level in [rng.choice(levels) for _ in range(train_size)]]
    return out


def reprompt_text(prompt: str, demonstration: str) -> str:
    """SDPO's teacher prompt: a successful response to the same question in context, then the question."""
    return f"{prompt}{demonstration}\n{prompt}"


def sft_examples(
    problems: list[Problem], boxed_fraction: list[float], seed: int, reprompt_fraction: float = 0.0
) -> list[tuple[str, str]]:
    """(prompt, response) pairs for the base model's supervised warm-up.

    A level-L answer is written ``\\boxed{x}`` with probability ``boxed_fraction[L-1]``, else ``=x``.
    A ``reprompt_fraction`` of the examples show a boxed demonstration in context first (SDPO's
    teacher prompt), so the model learns to use one.
    """
    if len(boxed_fraction) != len(LEVELS):
        raise ValueError(f"sft_boxed_fraction needs one value per level ({len(LEVELS)}), got {len(boxed_fraction)}")
    rng = random.Random(seed)
    out = []
    for p in problems:
        prompt, boxed = str(p["prompt"]), solution_text(p["ground_truth"])
        if rng.random() < reprompt_fraction:
            out.append((reprompt_text(prompt, boxed), boxed))
        elif rng.random() < boxed_fraction[int(p["level"]) - 1]:
            out.append((prompt, boxed))
        else:
            out.append((prompt, f"={p['ground_truth']}"))
    return out
