"""Toy code: turn a chain of integer operations into a Python program, checked by execution.

The tiny scale's stand-in for the paper's code task. A problem is a chain of 1–3 operations
(``+k``, ``-k``, ``*k``, ``//k``, ``%k``) applied left to right to an integer x; the program must
respect that order (``+3*2`` is ``(x+3)*2``). Two kinds, like the real benchmarks:

- ``stdio`` (TACO, LiveCodeBench): ``S:+3*2`` → ``print((int(input())+3)*2)``, run on test inputs;
- ``function`` (HumanEval, MBPP): ``F:+3*2`` → ``f=lambda x:(x+3)*2``, checked by asserts.

Both go through the same sandbox and verifier (``pipo.tasks.code_verifier``) as real code.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from pipo.tasks.toy_math import draw_splits, reprompt_text

OPS = ("+", "-", "*", "//", "%")
LEVELS = (1, 2, 3)  # number of operations
KINDS = ("stdio", "function")
_TEST_INPUTS = (7, 23, 58)
WORDS = ("print(", "int(input())", "f=lambda x:")  # tokens of the tiny tokenizer beyond characters


def _all_chains(level: int) -> list[tuple[tuple[str, int], ...]]:
    steps = [(op, k) for op in OPS for k in range(2, 40)]
    if level == 1:
        return [(s,) for s in steps]
    rng = random.Random(level)  # level 2 and 3 chains: a fixed sample of the (large) product
    return [tuple(rng.choice(steps) for _ in range(level)) for _ in range(30000)]


def expression(chain, var: str = "x") -> str:
    """The chain as one Python expression in ``var``, parenthesised where the order needs it."""
    expr, additive = var, False  # additive: the expression's top level has a + or -
    for op, k in chain:
        if op in ("*", "//", "%") and additive:
            expr, additive = f"({expr})", False
        expr = f"{expr}{op}{k}"
        additive = additive or op in ("+", "-")
    return expr


def evaluate(chain, x: int) -> int:
    for op, k in chain:
        x = {"+": x + k, "-": x - k, "*": x * k, "//": x // k, "%": x % k}[op]
    return x


def prompt_text(chain, kind: str) -> str:
    return f"{'S' if kind == 'stdio' else 'F'}:{''.join(f'{op}{k}' for op, k in chain)}\n"


def solution_text(chain, kind: str) -> str:
    if kind == "stdio":
        return f"print({expression(chain, 'int(input())')})"
    return f"f=lambda x:{expression(chain)}"


def sloppy_text(chain, kind: str) -> str:
    """A plausible program that always fails: the input used as text (no ``int()``), or a function
    that computes the value but never returns it."""
    if kind == "stdio":
        return f"print({expression(chain, 'input()')})"
    return f"def f(x):{expression(chain)}"


def ground_truth(chain, kind: str) -> str:
    if kind == "stdio":
        tests = [{"input": f"{x}\n", "output": f"{evaluate(chain, x)}\n"} for x in _TEST_INPUTS]
        return json.dumps({"kind": "stdio", "tests": tests, "timeout_s": 2})
    asserts = "\n".join(f"assert f({x}) == {evaluate(chain, x)}" for x in _TEST_INPUTS)
    return json.dumps({"kind": "function", "tests": asserts, "timeout_s": 2})


def _problem(level: int, chain, kind: str) -> dict:
    return {
        "prompt": prompt_text(chain, kind),
        "ground_truth": ground_truth(chain, kind),
        "level": level,
        "kind": kind,
        "solution": solution_text(chain, kind),
        "sloppy": sloppy_text(chain, kind),
    }


def make_splits(eval_splits: dict[str, dict], train_size: int, seed: int) -> dict[str, list[dict]]:
    """Evaluation splits ``{name: {"level", "size", "kind"}}`` of distinct chains, and a training split."""
    rng = random.Random(seed)
    pools = {}
    for level in LEVELS:
        pool = list(dict.fromkeys(_all_chains(level)))
        rng.shuffle(pool)
        pools[level] = pool
    for name, spec in eval_splits.items():
        if spec.get("kind") not in KINDS:
            raise ValueError(f"toy_code split {name!r}: kind must be one of {KINDS}, got {spec.get('kind')!r}")
    drawn = draw_splits(pools, eval_splits, train_size, rng, "toy_code")
    out = {
        name: [_problem(level, c, eval_splits[name]["kind"]) for level, c in items]
        for name, items in drawn.items()
        if name != "train"
    }
    out["train"] = [_problem(level, c, rng.choice(KINDS)) for level, c in drawn["train"]]
    return out


def sft_examples(problems: list[dict], correct_fraction: list[float], seed: int, reprompt_fraction: float = 0.0):
    """(prompt, response) pairs: a level-L solution is right with probability ``correct_fraction[L-1]``,
    else sloppy (:func:`sloppy_text`)."""
    return mix_examples(problems, correct_fraction, seed, reprompt_fraction, len(LEVELS))


def mix_examples(
    problems: list[dict],
    fractions: list[float],
    seed: int,
    reprompt_fraction: float,
    n_levels: int,
    reprompt: Callable[[str, str], str] = reprompt_text,
) -> list[tuple[str, str]]:
    """Each problem's ``solution`` with probability ``fractions[level-1]``, else its ``sloppy`` answer;
    a ``reprompt_fraction`` show the solution in context first (SDPO's teacher prompt, ``reprompt``:
    the task's, ``TaskDefinition.reprompt``)."""
    if len(fractions) != n_levels:
        raise ValueError(f"need one correct fraction per level ({n_levels}), got {len(fractions)}")
    rng = random.Random(seed)
    out = []
    for p in problems:
        if rng.random() < reprompt_fraction:
            out.append((reprompt(p["prompt"], p["solution"]), p["solution"]))
        elif rng.random() < fractions[int(p["level"]) - 1]:
            out.append((p["prompt"], p["solution"]))
        else:
            out.append((p["prompt"], p["sloppy"]))
    return out
