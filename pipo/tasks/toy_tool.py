"""Toy tool calls: map a short request to a JSON tool call, scored by the real tool verifiers.

The tiny scale's stand-in for the paper's tool-use task (RLLA, BFCL, API-Bank). A request names an
operation by one of its synonyms and gives its arguments: ``T:plus 3 4`` → the call
``<tool_call>{"name": "add", "parameters": {"a": 3, "b": 4}}</tool_call>``. Level 1: one-argument
tools; level 2: two-argument tools. Training is scored with ToolRL's reward, the benchmarks with
exact call matching (``pipo.tasks.tool_verifier``).
"""

from __future__ import annotations

import json
import random

from pipo.tasks.toy_code import mix_examples
from pipo.tasks.toy_math import draw_splits

# tool -> (parameter names, request synonyms)
TOOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "neg": (("a",), ("neg", "minus", "flip", "invert")),
    "sq": (("a",), ("sq", "square", "pow2", "area")),
    "abs": (("a",), ("abs", "size", "mag", "norm")),
    "inc": (("a",), ("inc", "next", "succ", "bump")),
    "add": (("a", "b"), ("add", "plus", "sum", "total")),
    "mul": (("a", "b"), ("mul", "times", "prod", "scale")),
    "max": (("a", "b"), ("max", "top", "big", "most")),
    "min": (("a", "b"), ("min", "low", "small", "least")),
}
LEVELS = (1, 2)  # arguments per call
# Tokens of the tiny tokenizer beyond single characters: Qwen3's own <tool_call> tokens, and merges
# for the JSON around a call, so a call is about 20 tokens instead of 64 characters.
WORDS = ("<tool_call>", "</tool_call>", '{"name":"', '","parameters":{', "}}", '"a":', '"b":')


def _pool(level: int) -> list[tuple[str, str, tuple[int, ...]]]:
    out = []
    for name, (params, synonyms) in TOOLS.items():
        if len(params) != level:
            continue
        values = [(v,) for v in range(-99, 100)] if level == 1 else [(a, b) for a in range(30) for b in range(30)]
        out += [(name, syn, vals) for syn in synonyms for vals in values]
    return out


def call_text(name: str, args: dict) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'parameters': args}, separators=(',', ':'))}</tool_call>"


def _problem(level: int, item) -> dict:
    name, synonym, values = item
    args = dict(zip(TOOLS[name][0], values, strict=True))
    return {
        "prompt": f"T:{synonym} {' '.join(map(str, values))}\n",
        "ground_truth": json.dumps({"calls": [{"name": name, "arguments": {k: [v] for k, v in args.items()}}]}),
        "level": level,
        "solution": call_text(name, args),
        "sloppy": call_text(synonym, args),  # the synonym taken for the tool's name
    }


def make_splits(eval_splits: dict[str, dict], train_size: int, seed: int) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    pools = {}
    for level in LEVELS:
        pool = _pool(level)
        rng.shuffle(pool)
        pools[level] = pool
    drawn = draw_splits(pools, eval_splits, train_size, rng, "toy_tool")
    return {name: [_problem(level, item) for level, item in items] for name, items in drawn.items()}


def sft_examples(problems: list[dict], correct_fraction: list[float], seed: int, reprompt_fraction: float = 0.0):
    """A level-L call is right with probability ``correct_fraction[L-1]``, else names the synonym."""
    return mix_examples(problems, correct_fraction, seed, reprompt_fraction, len(LEVELS))
