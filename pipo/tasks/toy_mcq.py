"""Toy multiple choice in four "domains", scored by the real MCQ verifier.

The tiny scale's stand-in for SciKnowEval (Biology, Chemistry, Material, Physics). A question gives
a digit q and four distinct digits as options A–D (``bio:7?A3B7C1D9``); exactly one option is f(q),
and each domain has its own f: Biology q, Chemistry q + 1, Material 2q, Physics 9 − q (mod 10).
Where the right option stands also follows from q (``POSITION``), so a model can learn the answer
from q alone — a tiny model does; finding f(q) among the options it does not, in a short warm-up.
Every split holds each answer letter equally often (to one question), so answering one letter
throughout scores 25 %. The answer is the letter in ``<answer>…</answer>``. Every domain is one
"level" of the generator.

SDPO's teacher prompt here (``reprompt_text``) is the question, the demonstration, and a line break
that stands for SDPO's "Correctly solve the original question." — SDPO's template does not repeat
the question either. The warm-up also teaches the one skill the self-teacher needs, as a pretrained
LLM has it: shown an answer in that prompt, answer as it does. Its demonstrations are any letter,
right or wrong, so copying is the only way to fit them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Hashable, Sequence

LETTERS = "ABCD"
DOMAINS = ("bio", "chem", "mat", "phys")  # levels 1..4
RULES = {"bio": lambda q: q, "chem": lambda q: (q + 1) % 10, "mat": lambda q: 2 * q % 10, "phys": lambda q: 9 - q}
POSITION = {  # the right option's index
    "bio": lambda q: q % 4, "chem": lambda q: (q + 1) % 4, "mat": lambda q: q // 3 % 4, "phys": lambda q: (9 - q) % 4,
}  # fmt: skip
LEVELS = (1, 2, 3, 4)
WORDS = ("<answer>", "</answer>")  # tokens of the tiny tokenizer beyond single characters

Item = tuple[int, tuple[int, ...]]  # (q, options)


def _pools(level: int) -> dict[str, list[Item]]:
    """Every (q, options) of a domain, by answer letter: f(q) at its position, three other distinct digits."""
    domain = DOMAINS[level - 1]
    out: dict[str, list[Item]] = {c: [] for c in LETTERS}
    for q in range(10):
        right, pos = RULES[domain](q), POSITION[domain](q)
        for others in itertools.permutations([d for d in range(10) if d != right], len(LETTERS) - 1):
            out[LETTERS[pos]].append((q, (*others[:pos], right, *others[pos:])))
    return out


def balanced(n: int, keys: Sequence[Hashable], rng: random.Random) -> list:
    """``n`` keys in random order, each ``n // len(keys)`` or one more times (the extras: distinct, drawn)."""
    out = list(keys) * (n // len(keys)) + rng.sample(list(keys), n % len(keys))
    rng.shuffle(out)
    return out


def reprompt_text(prompt: str, demonstration: str) -> str:
    """SDPO's teacher prompt: the question, a successful response to it, then answer again."""
    return f"{prompt}{demonstration}\n"


def answer_text(letter: str) -> str:
    return f"<answer>{letter}</answer>"


def _problem(level: int, item: Item, rng: random.Random) -> dict:
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
    """Evaluation splits of distinct problems, then ``train_size`` training problems drawn from the rest.

    Every split holds each answer letter equally often (to one); the training split also each domain,
    and each letter within a domain (drawn with replacement from the problems no evaluation split holds).
    """
    rng = random.Random(seed)
    pools = {level: _pools(level) for level in LEVELS}
    for by_letter in pools.values():
        for pool in by_letter.values():
            rng.shuffle(pool)
    out: dict[str, list[dict]] = {}
    for name, spec in eval_splits.items():
        level, size = int(spec["level"]), int(spec["size"])
        if level not in pools:
            raise ValueError(f"toy_mcq split {name!r}: unknown level {level} (levels: {list(LEVELS)})")
        letters = balanced(size, LETTERS, rng)
        for c in LETTERS:
            if letters.count(c) > len(pools[level][c]) - 1:  # one left for training
                raise ValueError(f"toy_mcq split {name!r}: {size} problems asked, level {level} has too few left")
        out[name] = [_problem(level, pools[level][c].pop(), rng) for c in letters]
    cells = balanced(train_size, list(itertools.product(LEVELS, LETTERS)), rng)
    out["train"] = [_problem(level, rng.choice(pools[level][c]), rng) for level, c in cells]
    return out


def sft_examples(
    problems: list[dict], correct_fraction: list[float], seed: int, reprompt_fraction: float = 0.0
) -> list[tuple[str, str]]:
    """(prompt, response) pairs of the base model's warm-up.

    A ``reprompt_fraction`` of the problems come in SDPO's teacher prompt with a demonstration of a
    letter drawn uniformly (right or wrong), and the response is that same answer. The others are the
    plain question, answered right with probability ``correct_fraction[L-1]`` (domain L), else with a
    wrong letter.
    """
    if len(correct_fraction) != len(LEVELS):
        raise ValueError(f"need one correct fraction per level ({len(LEVELS)}), got {len(correct_fraction)}")
    rng = random.Random(seed)
    out = []
    for p in problems:
        if rng.random() < reprompt_fraction:
            demo = answer_text(rng.choice(LETTERS))
            out.append((reprompt_text(p["prompt"], demo), demo))
        elif rng.random() < correct_fraction[int(p["level"]) - 1]:
            out.append((p["prompt"], p["solution"]))
        else:
            out.append((p["prompt"], p["sloppy"]))
    return out
