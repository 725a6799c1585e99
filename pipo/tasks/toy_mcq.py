"""Toy multiple choice in four "domains", scored by the real MCQ verifier.

The tiny scale's stand-in for SciKnowEval (Biology, Chemistry, Material, Physics). A question gives
a digit q and four distinct digits as options A–D (``bio:7?A3B7C1D9``); exactly one option is f(q),
and each domain has its own f: Biology q, Chemistry q + 1, Material 2q, Physics 9 − q (mod 10).
Where the right option stands also follows from q (``POSITION``), so a model can learn the answer
from q alone — a tiny model does; finding f(q) among the options it does not, in a short warm-up.
The answer is the letter in ``<answer>…</answer>``. Every domain is one "level" of the generator.
"""

from __future__ import annotations

import itertools
import random

from pipo.tasks.toy_code import mix_examples
from pipo.tasks.toy_math import draw_splits

LETTERS = "ABCD"
DOMAINS = ("bio", "chem", "mat", "phys")  # levels 1..4
RULES = {"bio": lambda q: q, "chem": lambda q: (q + 1) % 10, "mat": lambda q: 2 * q % 10, "phys": lambda q: 9 - q}
POSITION = {  # the right option's index
    "bio": lambda q: q % 4, "chem": lambda q: (q + 1) % 4, "mat": lambda q: q // 3 % 4, "phys": lambda q: (9 - q) % 4,
}  # fmt: skip
LEVELS = (1, 2, 3, 4)
WORDS = ("<answer>", "</answer>")  # tokens of the tiny tokenizer beyond single characters


def _pool(level: int) -> list[tuple[int, tuple[int, ...]]]:
    """Every (q, options) of a domain: f(q) at its position, three other distinct digits around it."""
    domain = DOMAINS[level - 1]
    out = []
    for q in range(10):
        right, pos = RULES[domain](q), POSITION[domain](q)
        for others in itertools.permutations([d for d in range(10) if d != right], len(LETTERS) - 1):
            out.append((q, (*others[:pos], right, *others[pos:])))
    return out


def answer_text(letter: str) -> str:
    return f"<answer>{letter}</answer>"


def _problem(level: int, item: tuple[int, tuple[int, ...]], rng: random.Random) -> dict:
    domain = DOMAINS[level - 1]
    q, opts = item
    right = LETTERS[opts.index(RULES[domain](q))]
    wrong = rng.choice([c for c in LETTERS if c != right])
    return {
        "prompt": f"{domain}:{q}?{''.join(f'{c}{o}' for c, o in zip(LETTERS, opts, strict=True))}\n",
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
    return {name: [_problem(level, item, rng) for level, item in items] for name, items in drawn.items()}


def sft_examples(problems: list[dict], correct_fraction: list[float], seed: int, reprompt_fraction: float = 0.0):
    """A domain-L answer is right with probability ``correct_fraction[L-1]``, else a wrong letter."""
    return mix_examples(problems, correct_fraction, seed, reprompt_fraction, len(LEVELS))
