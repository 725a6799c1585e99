"""Code verifier: run a response's program against the task's tests in the sandbox.

Ground truth (a JSON string, written by ``pipo.tasks.prepare`` or a stand-in generator):

- ``{"kind": "stdio", "tests": [{"input": str, "output": str}, ...]}`` — TACO / LiveCodeBench
  standard-input problems: the program reads ``input`` and must print ``output`` (compared token
  by token, numbers with a 1e-6 tolerance);
- ``{"kind": "function", "tests": str}`` — HumanEval / MBPP / call-based problems: Python code
  (asserts) run after the program, with pristine builtins; passing means it ran to its end.

Score: 1.0 when every test passes, else 0.0. A response without code, a malformed ground truth, a
crash, a timeout or any sandbox refusal scores 0.0.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence

from pipo.tasks.sandbox import Limits, Sandbox

_FENCE = re.compile(r"```(?:python|py|Python3?|python3)?[ \t]*\n(.*?)```", re.DOTALL)
_SANDBOX: Sandbox | None = None


def sandbox() -> Sandbox:
    """The process's shared sandbox (``PIPO_SANDBOX_WORKERS`` fork servers, default: CPU count)."""
    global _SANDBOX
    if _SANDBOX is None:
        _SANDBOX = Sandbox(workers=int(os.environ.get("PIPO_SANDBOX_WORKERS", os.cpu_count() or 1)))
    return _SANDBOX


def extract_program(response: str) -> str:
    """The last fenced Python block of ``response``, or the whole response when it has none."""
    blocks = _FENCE.findall(response)
    return blocks[-1] if blocks else response


def outputs_match(got: str, expected: str, tol: float = 1e-6) -> bool:
    """Whitespace-insensitive comparison, token by token; numeric tokens within ``tol``."""
    a, b = got.split(), expected.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if not (math.isfinite(fx) and math.isfinite(fy)) or abs(fx - fy) > tol * max(1.0, abs(fy)):
            return False
    return True


def _parse_truth(ground_truth: str) -> dict | None:
    try:
        truth = json.loads(ground_truth)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(truth, dict):
        return None
    if truth.get("kind") == "stdio" and isinstance(truth.get("tests"), list) and truth["tests"]:
        ok = all(isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)
                 for t in truth["tests"])  # fmt: skip
        return truth if ok else None
    if truth.get("kind") == "function" and isinstance(truth.get("tests"), str) and truth["tests"].strip():
        return truth
    return None


def _limits(truth: dict) -> Limits:
    """The problem's own time limit (``timeout_s``, 0.1–60 s) or the default."""
    try:
        timeout = float(truth.get("timeout_s", Limits.timeout_s))
    except (TypeError, ValueError):
        timeout = Limits.timeout_s
    return Limits(timeout_s=min(max(timeout, 0.1), 60.0) if math.isfinite(timeout) else Limits.timeout_s)


def code_score(response: str, ground_truth: str) -> float:
    """1.0 if the program in ``response`` passes every test of ``ground_truth``, else 0.0."""
    return code_scores([response], [ground_truth])[0]


_CACHE: dict[tuple[str, str], float] = {}


def code_scores(responses: Sequence[str], truths: Sequence[str]) -> list[float]:
    """Score many responses at once, spread over the sandbox's workers (repeated pairs run once)."""
    keys = list(zip(responses, truths, strict=True))
    todo = list(dict.fromkeys(k for k in keys if k not in _CACHE))
    if todo:
        if len(_CACHE) > 1 << 16:
            _CACHE.clear()
        _CACHE.update(zip(todo, _run([r for r, _ in todo], [t for _, t in todo]), strict=True))
    return [_CACHE[k] for k in keys]


def _run(responses: Sequence[str], truths: Sequence[str]) -> list[float]:
    jobs, owner = [], []
    parsed = [_parse_truth(t) if isinstance(t, str) else None for t in truths]
    for i, (resp, truth) in enumerate(zip(responses, parsed, strict=True)):
        program = extract_program(resp) if isinstance(resp, str) else ""
        if truth is None or not program.strip():
            continue
        limits = _limits(truth)
        if truth["kind"] == "function":
            jobs.append({"program": program, "tests": truth["tests"], "limits": limits})
            owner.append((i, None))
        else:
            for t in truth["tests"]:
                jobs.append({"program": program, "stdin": t["input"], "limits": limits})
                owner.append((i, t["output"]))
    passed = [truth is not None for truth in parsed]
    for (i, expected), result in zip(owner, sandbox().run_many(jobs), strict=True):
        if expected is None:
            ok = result.passed
        else:
            ok = result.status == "ok" and outputs_match(result.stdout, expected)
        passed[i] = passed[i] and ok
    has_job = {i for i, _ in owner}
    return [1.0 if passed[i] and i in has_job else 0.0 for i in range(len(responses))]
