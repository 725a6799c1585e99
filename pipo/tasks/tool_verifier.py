"""Tool-call verifiers: ToolRL's reward for training, exact call matching for evaluation.

A response calls tools inside ``<tool_call>…</tool_call>``, one JSON object per line:
``{"name": "get_weather", "parameters": {"city": "Paris"}}`` (``"arguments"`` is accepted too).

Ground truth (JSON, written by ``pipo.tasks.prepare`` or a stand-in generator):
``{"calls": [{"name": str, "arguments": {param: [allowed value, ...]}}, ...]}``. A parameter whose
allowed values include ``""`` is optional (BFCL's convention); ToolRL and API-Bank answers have a
single allowed value. ``"calls": []`` means no tool should be called.

- :func:`tool_reward` — ToolRL's reward (Qian et al., 2025): format (0 or 1) plus correctness in
  [−3, 3] from tool-name, parameter-name and parameter-value matches; range [−3, 4].
- :func:`tool_exact` — 1.0 when the calls match the ground truth one to one (any order): same
  names, no unknown parameter, every given value allowed, every required parameter given (BFCL's
  AST check, API-Bank's and RLLA's exact match); else 0.0.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
TOOL_REWARD_RANGE = (-3.0, 4.0)


def parse_calls(response: str) -> list[dict[str, Any]] | None:
    """The calls in the ``<tool_call>`` blocks of ``response``; [] when it has none; None if malformed."""
    if not isinstance(response, str):
        return None
    blocks = _BLOCK.findall(response)
    if response.count("<tool_call>") != len(blocks) or response.count("</tool_call>") != len(blocks):
        return None  # an unclosed or stray tag
    calls = []
    for block in blocks:
        lines = [line for line in block.strip().splitlines() if line.strip()]
        if not lines:
            return None
        for line in lines:
            try:
                call = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                return None
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                return None
            args = call.get("parameters", call.get("arguments", {}))
            if not isinstance(args, dict):
                return None
            calls.append({"name": call["name"], "arguments": args})
    return calls


def parse_truth(ground_truth: str) -> list[dict[str, Any]] | None:
    """The ground truth's calls, each ``{"name", "arguments": {param: [allowed...]}}``; None if malformed."""
    try:
        truth = json.loads(ground_truth)
    except (json.JSONDecodeError, TypeError, RecursionError):
        return None
    calls = truth.get("calls") if isinstance(truth, dict) else None
    if not isinstance(calls, list):
        return None
    for call in calls:
        if not (
            isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(call.get("arguments"), dict)
        ):
            return None
        if not all(isinstance(v, list) and v for v in call["arguments"].values()):
            return None
    return calls


def values_equal(given: Any, allowed: Any) -> bool:
    """Equality as the tool benchmarks use it: numbers by value, strings case- and space-insensitive."""
    if isinstance(given, bool) or isinstance(allowed, bool):
        return given is allowed or (given == allowed and type(given) is type(allowed))
    if isinstance(given, int | float) and isinstance(allowed, int | float):
        return float(given) == float(allowed)
    if isinstance(given, str) and isinstance(allowed, str):
        return given.strip().casefold() == allowed.strip().casefold()
    if isinstance(given, list) and isinstance(allowed, list):
        return len(given) == len(allowed) and all(values_equal(g, a) for g, a in zip(given, allowed, strict=True))
    if isinstance(given, dict) and isinstance(allowed, dict):
        return given.keys() == allowed.keys() and all(values_equal(given[k], allowed[k]) for k in given)
    return given == allowed


def _value_ok(given: Any, allowed: list) -> bool:
    return any(values_equal(given, a) for a in allowed if a != "")


def _call_matches(pred: dict, truth: dict) -> bool:
    if pred["name"] != truth["name"]:
        return False
    allowed = truth["arguments"]
    if any(k not in allowed for k in pred["arguments"]):
        return False
    for key, values in allowed.items():
        if key in pred["arguments"]:
            if not _value_ok(pred["arguments"][key], values):
                return False
        elif "" not in values:
            return False
    return True


def tool_exact(response: str, ground_truth: str) -> float:
    """1.0 if the response's calls match the ground truth's one to one, in any order; else 0.0."""
    truth, pred = parse_truth(ground_truth), parse_calls(response)
    if truth is None or pred is None or len(pred) != len(truth):
        return 0.0
    unmatched = list(range(len(pred)))
    for t in truth:  # greedy matching is exact here: a prediction matching two truths is interchangeable
        hit = next((i for i in unmatched if _call_matches(pred[i], t)), None)
        if hit is None:
            return 0.0
        unmatched.remove(hit)
    return 1.0


def _overlap(a: list, b: list) -> float:
    """ToolRL's match score: multiset intersection over union (1.0 for two equal lists)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ca, cb = Counter(a), Counter(b)
    inter = sum((ca & cb).values())
    return inter / (len(a) + len(b) - inter)


def tool_reward(response: str, ground_truth: str) -> float:
    """ToolRL's reward: format ∈ {0, 1} plus correctness ∈ [−3, 3] (−3 when the calls do not parse)."""
    truth, pred = parse_truth(ground_truth), parse_calls(response)
    if truth is None or pred is None:
        return -3.0
    if not truth:  # no call expected (ToolRL: correctness 0, format 1 when no call is made)
        return 0.0 if pred else 1.0
    if not pred:
        return -3.0
    score = _overlap([t["name"] for t in truth], [p["name"] for p in pred])
    best_total = 1.0
    used: set[int] = set()
    for t in truth:
        best_total += 1.0 + len(t["arguments"])
        best, best_i = 0.0, -1
        for i, p in enumerate(pred):
            if i in used or p["name"] != t["name"]:
                continue
            s = _overlap(sorted(t["arguments"]), sorted(p["arguments"]))
            s += sum(
                1.0
                for k, allowed in t["arguments"].items()
                if k in p["arguments"] and _value_ok(p["arguments"][k], allowed)
            )
            if s > best:
                best, best_i = s, i
        if best_i >= 0:
            used.add(best_i)
            score += best
    return 1.0 + 6.0 * score / best_total - 3.0
