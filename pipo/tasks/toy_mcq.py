"""Toy multiple choice in four "domains", scored by the real MCQ verifier.

The tiny scale's stand-in for SciKnowEval (Biology, Chemistry, Material, Physics). A question lists
four distinct digits, options A–D; each domain asks for another one: Biology the largest, Chemistry
the smallest, Material the only even one, Physics the one closest to 5. The answer is the letter in
``<answer>…</answer>``. Every domain is one "level" of the generator.
"""

from __future__ import annotations

import itertools
import random

from pipo.tasks.toy_code import mix_examples
from pipo.tasks.toy_math import draw_splits

LETTERS = "ABCD"
DOMAINS = ("bio", "chem", "mat", "phys")  # levels 1..4
LEVELS = (1, 2, 3, 4)
WORDS = ("<answer>", "</answer>")  # tokens of the tiny tokenizer beyond single characters


def _answer(domain: str, opts: tuple[int, ...]) -> int | None:
    if domain == "bio":
        best = max(opts)
    elif domain == "chem":
        best = min(opts)
    elif domain == "mat":
        evens = [o for o in opts if o % 2 == 0]
        return opts.index(evens[0]) if len(evens) == 1 else None
    else:
        dist = [abs(o - 5) for o in opts]
        best = opts[dist.index(min(dist))] if dist.count(min(dist)) == 1 else None
    return opts.index(best) if best is not None and opts.count(best) == 1 else None


def _pool(level: int) -> list[tuple[int, ...]]:
    domain = DOMAINS[level - 1]
    return [opts for opts in itertools.permutations(range(10), len(LETTERS)) if _answer(domain, opts) is not None]


def answer_text(letter: str) -> str:
    return f"<answer>{letter}</answer>"


def _problem(level: int, opts: tuple[int, ...], rng: random.Random) -> dict:
    domain = DOMAINS[level - 1]
    right = LETTERS[_answer(domain, opts)]
    wrong = rng.choice([c for c in LETTERS if c != right])
    return {
        "prompt": f"{domain}:{' '.join(map(str, opts))}\n",
        "ground_truth": right,
        "level": level,
        "solution": answer_text(right),
        "sloppy": answer_text(wrong),
    }


def make_splits(eval_splits: dict[str, dict], train_size: int, seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    pools = {}
    for level in LEVELS:
        pools[level] = _pool(level)
        rng.shuffle(pools[level])
    drawn = draw_splits(pools, eval_splits, train_size, rng, "toy_mcq")
    return {name: [_problem(level, opts, rng) for level, opts in items] for name, items in drawn.items()}


def sft_examples(problems: list[dict], correct_fraction: list[float], seed: int, reprompt_fraction: float = 0.0):
    """A domain-L answer is right with probability ``correct_fraction[L-1]``, else a wrong letter."""
    return mix_examples(problems, correct_fraction, seed, reprompt_fraction, len(LEVELS))
