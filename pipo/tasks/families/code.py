"""Code generation (Table 2): train on TACO, evaluate on TACO, LiveCodeBench v6, HumanEval, MBPP (Pass@1).

Verifier: the program runs in the sandbox against the problem's tests (``pipo.tasks.code_verifier``).
Tiny scale: toy operation chains (``pipo.tasks.toy_code``). Config: ``conf/task/code.yaml``.
"""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from typing import Any

from pipo.tasks import toy_code, toy_math
from pipo.tasks.code_verifier import code_score, code_scores
from pipo.tasks.registry import TaskDefinition, TeacherPrompt, Verifier, register_task
from pipo.tasks.sources import Converted, RowError, Source, need

CODE_STDIO_SUFFIX = (
    "\nWrite a Python 3 program that reads the input from standard input and prints the answer to standard "
    "output. Put the program in a ```python code block."
)
CODE_FUNCTION_SUFFIX = "\nWrite the complete Python function in a ```python code block."
# SDPO's teacher prompt at paper scale: SDPO's wording, its demonstration named for what the verifier checks
CODE_TEACHER_PROMPT = TeacherPrompt(
    reprompt="{prompt}{solution}\n\nCorrectly solve the original problem: write a program that passes all its tests.\n",
    solution="\nCorrect solution (it passes all the tests):\n\n{solution}\n\n",
)


def _stdio_text(value: Any) -> str:
    if isinstance(value, list):
        value = "\n".join(map(str, value))
    if not isinstance(value, str):
        raise RowError(f"a test input/output is {type(value).__name__}, expected text")
    return value if value.endswith("\n") else value + "\n"


def taco(row: dict) -> Converted:
    question, io_text = need(row, "question", "input_output")
    try:
        io = json.loads(io_text)
        inputs, outputs = io["inputs"], io["outputs"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise RowError(f"input_output is not {{'inputs', 'outputs'}} JSON ({err})") from None
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs) or not inputs:
        raise RowError("input_output needs equally long, non-empty 'inputs' and 'outputs' lists")
    if io.get("fn_name"):
        lines = [
            f"_out = {io['fn_name']}(*{args!r})\nassert _out == {exp!r} or [_out] == {exp!r}"
            for args, exp in zip(inputs, outputs, strict=True)
        ]
        truth = {"kind": "function", "tests": "\n".join(lines)}
        prompt = question + "\n" + (row.get("starter_code") or "") + CODE_FUNCTION_SUFFIX
    else:
        tests = [{"input": _stdio_text(i), "output": _stdio_text(o)} for i, o in zip(inputs, outputs, strict=True)]
        truth = {"kind": "stdio", "tests": tests}
        prompt = question + CODE_STDIO_SUFFIX
    return prompt, json.dumps(truth), {"difficulty": row.get("difficulty"), "source": row.get("source")}


def _lcb_tests(text: str) -> list[dict]:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:  # LiveCodeBench stores most private tests compressed: base64 → zlib → pickle → JSON
        return json.loads(pickle.loads(zlib.decompress(base64.b64decode(text.encode()))))
    except Exception as err:  # noqa: BLE001
        raise RowError(f"private_test_cases cannot be decoded ({type(err).__name__})") from None


def livecodebench(row: dict) -> Converted:
    title, content, public, private = need(
        row, "question_title", "question_content", "public_test_cases", "private_test_cases"
    )
    tests = _lcb_tests(public) + (_lcb_tests(private) if private else [])
    if not tests or not all(isinstance(t, dict) and {"input", "output"} <= t.keys() for t in tests):
        raise RowError("no test cases with 'input' and 'output'")
    starter = row.get("starter_code") or ""
    if tests[0].get("testtype") == "functional":
        try:
            func = json.loads(row.get("metadata") or "{}")["func_name"]
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RowError("a functional problem without metadata.func_name") from None
        lines = []
        for t in tests:
            args = [json.loads(line) for line in t["input"].split("\n") if line.strip()]
            lines.append(f"assert Solution().{func}(*{args!r}) == {json.loads(t['output'])!r}")
        truth = {"kind": "function", "tests": "\n".join(lines)}
        prompt = f"{title}\n{content}\n{starter}{CODE_FUNCTION_SUFFIX}"
    else:
        truth = {
            "kind": "stdio",
            "tests": [{"input": _stdio_text(t["input"]), "output": _stdio_text(t["output"])} for t in tests],
        }
        prompt = f"{title}\n{content}{CODE_STDIO_SUFFIX}"
    return prompt, json.dumps(truth), {"question_id": row.get("question_id"), "contest_date": row.get("contest_date")}


def in_lcb_v6_window(row: dict) -> bool:
    """LiveCodeBench v6 as the paper uses it: contests from 2025-02-01 to 2025-05-01."""
    return "2025-02-01" <= str(row.get("contest_date", ""))[:10] <= "2025-05-01"


def humaneval(row: dict) -> Converted:
    prompt, test, entry = need(row, "prompt", "test", "entry_point")
    return (
        prompt + CODE_FUNCTION_SUFFIX,
        json.dumps({"kind": "function", "tests": f"{test}\ncheck({entry})"}),
        {"task_id": row.get("task_id")},
    )


def mbpp(row: dict) -> Converted:
    (text,) = need(row, "text")
    (tests,) = need(row, "test_list", types=(list,))
    if not tests or not all(isinstance(t, str) for t in tests):
        raise RowError("test_list must be a non-empty list of strings")
    setup = row.get("test_setup_code") or ""
    prompt = f"{text}\nYour code should pass this test:\n{tests[0]}{CODE_FUNCTION_SUFFIX}"
    return (
        prompt,
        json.dumps({"kind": "function", "tests": "\n".join([setup, *tests])}),
        {"task_id": row.get("task_id")},
    )


TASK = register_task(
    TaskDefinition(
        name="code",
        generator="toy_code",
        standin=toy_code,
        verifiers=(Verifier("code", code_score, batch=code_scores),),
        reprompt=toy_math.reprompt_text,  # tiny scale: the demonstration, then the question again (every task's)
        teacher_prompt=CODE_TEACHER_PROMPT,
        sources=(
            Source("train", "BAAI/TACO", "train", taco, 25443),
            Source("TACO", "BAAI/TACO", "test", taco, 1000),
            Source(
                "LCBv6",
                "livecodebench/code_generation_lite",
                "test",
                livecodebench,
                None,
                keep=in_lcb_v6_window,
                loader="lcb",
            ),
            Source("HumanEval", "openai/openai_humaneval", "test", humaneval, 164),
            Source("MBPP", "google-research-datasets/mbpp", "test", mbpp, 500, config="full"),
        ),
        paper_tables=("table2",),
    )
)
