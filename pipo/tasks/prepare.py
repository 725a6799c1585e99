"""Prepare a task's datasets as verl-format parquet files, one per split.

    python -m pipo.tasks.prepare task=math [out_dir=data] [source=hub|DIR] [strict=true]

Writes ``<out_dir>/<task>/train.parquet`` and ``<out_dir>/<task>/<benchmark>.parquet`` with verl's
columns: ``data_source`` (the dataset for training rows, the benchmark's name for benchmark rows),
``prompt`` (chat messages), ``ability``, ``reward_model`` (``style``, ``ground_truth``) and
``extra_info`` (``split``, ``index``, ``dataset``, …). ``source=hub`` (default) downloads the Hugging Face datasets
of PIPO_SPEC §4; ``source=DIR`` reads local copies laid out as ``DIR/<owner>/<name>/<config>/<split>.jsonl``
(how the tests run, and how to use mirrored data). A row that does not fit its dataset's schema is
reported (source, index, reason) and skipped, never altered. Counts are printed and checked
against the expected sizes; a difference is a warning, or an error with ``strict=true``.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipo.tasks.math_verifier import last_boxed

MATH_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."
CODE_STDIO_SUFFIX = (
    "\nWrite a Python 3 program that reads the input from standard input and prints the answer to standard "
    "output. Put the program in a ```python code block."
)
CODE_FUNCTION_SUFFIX = "\nWrite the complete Python function in a ```python code block."
TOOL_SYSTEM = (
    "You may call the tools below. To call them, answer with <tool_call>, one JSON object per line "
    '({{"name": ..., "parameters": {{...}}}}), then </tool_call>.\nTools:\n{tools}'
)
MCQ_SUFFIX = "\nAnswer with the letter of the correct option inside <answer></answer>."


class RowError(ValueError):
    """A row that does not fit its dataset's schema."""


def need(row: dict, *keys: str, types: tuple[type, ...] = (str,)) -> list[Any]:
    """The values of ``keys`` in ``row``; a RowError names the first missing or mistyped one."""
    out = []
    for key in keys:
        if key not in row or row[key] is None:
            raise RowError(f"missing field {key!r}")
        if not isinstance(row[key], types):
            raise RowError(
                f"field {key!r} is {type(row[key]).__name__}, expected {'/'.join(t.__name__ for t in types)}"
            )
        out.append(row[key])
    return out


def answer_text(value: Any) -> str:
    """A ground-truth answer as text (``27.0`` → ``27``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise RowError("empty answer")
    return text


# -- converters: one raw row -> (prompt text or chat messages, ground truth, extra info) ---------
Converted = tuple[str | list[dict], str, dict]


def math_lighteval(row: dict) -> Converted:
    problem, solution = need(row, "problem", "solution")
    answer = last_boxed(solution)
    if not answer or not answer.strip():
        raise RowError("the solution has no \\boxed{} answer")
    return problem + MATH_SUFFIX, answer.strip(), {"level": row.get("level"), "type": row.get("type")}


def math_answer(question_key: str, answer_keys: tuple[str, ...]) -> Callable[[dict], Converted]:
    """A math benchmark row: its question, and the first of ``answer_keys`` it has."""

    def convert(row: dict) -> Converted:
        (question,) = need(row, question_key)
        key = next((k for k in answer_keys if row.get(k) is not None), None)
        if key is None:
            raise RowError(f"missing field {answer_keys[0]!r}")
        value = row[key]
        if isinstance(value, list):
            if not value:
                raise RowError(f"field {key!r} is an empty list")
            value = value[0]
        if not isinstance(value, str | int | float):
            raise RowError(f"field {key!r} is {type(value).__name__}, expected a string or number")
        return question + MATH_SUFFIX, answer_text(value), {"id": str(row.get("id", row.get("unique_id", "")))}

    return convert


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


def _calls_from_toolrl(ground_truth: str) -> list[dict]:
    if "<tool_call>" not in ground_truth:
        return []
    body = ground_truth.split("<tool_call>", 1)[1].split("</tool_call>", 1)[0]
    calls = []
    for line in filter(str.strip, body.strip().splitlines()):
        try:
            call = json.loads(line)
        except json.JSONDecodeError as err:
            raise RowError(f"a ground-truth tool call is not JSON ({err})") from None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RowError("a ground-truth tool call has no name")
        args = call.get("parameters", call.get("arguments", {}))
        if not isinstance(args, dict):
            raise RowError("a ground-truth tool call's parameters are not an object")
        calls.append({"name": call["name"], "arguments": {k: [v] for k, v in args.items()}})
    return calls


def toolrl(row: dict) -> Converted:
    """A row of ToolRL's processed parquet (RLLA, API-Bank): verl columns, ToolRL's ground-truth text."""
    (prompt,) = need(row, "prompt", types=(list,))
    (reward,) = need(row, "reward_model", types=(dict,))
    if not isinstance(reward.get("ground_truth"), str):
        raise RowError("reward_model.ground_truth must be text")
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
        raise RowError("prompt must be a list of chat messages")
    return prompt, json.dumps({"calls": _calls_from_toolrl(reward["ground_truth"])}), dict(row.get("extra_info") or {})


def bfcl(row: dict) -> Converted:
    """A BFCL (v3, AST categories) question joined with its possible answer (``row["possible_answer"]``)."""
    (question,) = need(row, "question", types=(list,))
    (functions,) = need(row, "function", types=(list,))
    (answer,) = need(row, "possible_answer", types=(list,))
    turn = question[0] if question and isinstance(question[0], list) else question
    if not turn or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in turn):
        raise RowError("question must hold chat messages")
    calls = []
    for item in answer:
        if not isinstance(item, dict) or len(item) != 1:
            raise RowError("each possible answer must be {function name: {parameter: [allowed values]}}")
        ((name, params),) = item.items()
        if not isinstance(params, dict) or not all(isinstance(v, list) and v for v in params.values()):
            raise RowError(f"possible answer for {name!r} must map each parameter to allowed values")
        calls.append({"name": name, "arguments": params})
    system = {"role": "system", "content": TOOL_SYSTEM.format(tools=json.dumps(functions))}
    return [system, *turn], json.dumps({"calls": calls}), {"id": row.get("id")}


def sciknoweval(row: dict) -> Converted:
    question, key = need(row, "question", "answerKey")
    (choices,) = need(row, "choices", types=(dict,))
    texts, labels = choices.get("text"), choices.get("label")
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels) or not texts:
        raise RowError("choices must hold equally long 'text' and 'label' lists")
    if key.strip() not in labels:
        raise RowError(f"answerKey {key!r} is not one of the labels {labels}")
    options = "\n".join(f"{label}. {text}" for label, text in zip(labels, texts, strict=True))
    return f"{question}\n{options}{MCQ_SUFFIX}", key.strip(), {"domain": row.get("domain"), "type": row.get("type")}


def is_l3_mcq(row: dict) -> bool:
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    return details.get("level") == "L3" and row.get("type") in ("mcq-4-choices", "mcq-2-choices")


# -- sources ------------------------------------------------------------------------------------
@dataclass
class Source:
    """One dataset split and how it becomes one output split."""

    name: str  # output split: "train" or a benchmark name
    hf_id: str
    split: str
    convert: Callable[[dict], Converted]
    expected: int | None = None
    config: str | None = None
    keep: Callable[[dict], bool] | None = None  # rows of the dataset that belong to this split
    loader: str = "datasets"  # datasets | bfcl | lcb | local (not on the hub: source=DIR required)
    extra: dict = field(default_factory=dict)


BFCL_CATEGORIES = {"simple": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200}

SOURCES: dict[str, list[Source]] = {
    "math": [
        Source("train", "DigitalLearningGmbH/MATH-lighteval", "train", math_lighteval, 7500),
        Source("MATH500", "HuggingFaceH4/MATH-500", "test", math_answer("problem", ("answer",)), 500),
        Source("AIME25", "math-ai/aime25", "test", math_answer("problem", ("answer",)), 30),
        Source("AMC23", "math-ai/amc23", "test", math_answer("question", ("answer",)), 40),
        Source("Minerva", "math-ai/minervamath", "test", math_answer("question", ("answer",)), 272),
        Source(
            "OlympiadBench", "math-ai/olympiadbench", "test", math_answer("question", ("final_answer", "answer")), 675
        ),
    ],
    "code": [
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
    ],
    "tool": [
        Source("train", "ToolRL/rlla_4k", "train", toolrl, 3920, loader="local"),
        Source("RLLA", "ToolRL/rlla_4k", "test", toolrl, 80, loader="local"),
        Source(
            "BFCL",
            "gorilla-llm/Berkeley-Function-Calling-Leaderboard",
            "test",
            bfcl,
            sum(BFCL_CATEGORIES.values()),
            loader="bfcl",
        ),
        Source("APIBank", "ToolRL/apibank", "test", toolrl, None, loader="local"),
    ],
    "sciknoweval": [
        Source(
            domain,
            "hicai-zju/SciKnowEval",
            "test",
            sciknoweval,
            n,
            config=domain,
            keep=is_l3_mcq,
            extra={"holdout": True},
        )
        for domain, n in (("Biology", 50), ("Chemistry", 210), ("Material", 94), ("Physics", 80))
    ],
}
HOLDOUT_FRACTION, HOLDOUT_SEED = 0.1, 42  # SciKnowEval: SDPO's 90/10 train/test split, seed 42


def _json_lines(text: str) -> list[Any]:
    """One value per non-blank line; a line that is not JSON stays a string (reported as a bad row)."""
    out = []
    for line in text.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append(line)
    return out


def _read_local(path: Path) -> list[Any]:
    if path.with_suffix(".jsonl").exists():
        return _json_lines(path.with_suffix(".jsonl").read_text(encoding="utf-8"))
    if path.with_suffix(".json").exists():  # a JSON array, or JSON lines (BFCL's .json files are)
        text = path.with_suffix(".json").read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return _json_lines(text)
        return data if isinstance(data, list) else [data]
    if path.with_suffix(".parquet").exists():
        return pd.read_parquet(path.with_suffix(".parquet")).to_dict("records")
    raise FileNotFoundError(f"no {path}.jsonl, .json or .parquet")


def load_rows(src: Source, source: str) -> tuple[str, list[Any]]:
    """(where the rows came from, the rows) for ``src`` from the hub or a local directory."""
    if source != "hub":
        if src.loader == "bfcl":
            return _bfcl_rows(Path(source) / src.hf_id)
        path = Path(source) / src.hf_id / (src.config or "default") / src.split
        return str(path), _read_local(path)
    if src.loader == "local":
        raise SystemExit(
            f"{src.hf_id} is not on the Hugging Face hub: get ToolRL's processed data "
            f"(github.com/qiancheng0/ToolRL, dataset/) and pass source=DIR with "
            f"DIR/{src.hf_id}/default/{src.split}.parquet"
        )
    if src.loader == "bfcl":
        from huggingface_hub import snapshot_download

        return _bfcl_rows(Path(snapshot_download(src.hf_id, repo_type="dataset")))
    import datasets

    if src.loader == "lcb":  # its loading script is gone from `datasets`: read its JSON files directly
        files = [f"hf://datasets/{src.hf_id}/test{s}.jsonl" for s in ("", "2", "3", "4", "5", "6")]
        ds = datasets.load_dataset("json", data_files=files, split="train")
    else:
        ds = datasets.load_dataset(src.hf_id, src.config, split=src.split)
    return f"{src.hf_id}/{src.config or 'default'}/{src.split}", list(ds)


def _bfcl_rows(root: Path) -> tuple[str, list[Any]]:
    rows = []
    for category in BFCL_CATEGORIES:
        questions = _read_local(root / f"BFCL_v3_{category}")
        answers = {
            a.get("id"): a.get("ground_truth")
            for a in _read_local(root / "possible_answer" / f"BFCL_v3_{category}")
            if isinstance(a, dict)
        }
        for q in questions:
            rows.append({**q, "possible_answer": answers.get(q.get("id"))} if isinstance(q, dict) else q)
    return str(root), rows


def verl_row(task: str, src: Source, index: int, converted: Converted) -> dict:
    prompt, truth, extra = converted
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    return {
        "data_source": src.hf_id,  # a benchmark's rows get the benchmark's name (``prepare``)
        "prompt": messages,
        "ability": task,
        "reward_model": {"style": "rule", "ground_truth": truth},
        "extra_info": {
            "split": src.name,
            "index": index,
            "dataset": src.hf_id,
            **{k: v for k, v in extra.items() if v is not None},
        },
    }


def convert_rows(task: str, src: Source, where: str, rows: Iterable[Any], problems: list[str]) -> list[dict]:
    """Convert ``rows``; each bad row adds ``"<where>, row <i>: <reason>"`` to ``problems``."""
    out = []
    for i, row in enumerate(rows):
        try:
            if isinstance(row, str):
                raise RowError("not valid JSON")
            if not isinstance(row, dict):
                raise RowError(f"expected an object, got {type(row).__name__}")
            if src.keep is not None and not src.keep(row):
                continue
            out.append(verl_row(task, src, i, src.convert(row)))
        except RowError as err:
            problems.append(f"{where}, row {i}: {err}")
    return out


def holdout(rows: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, test): a seeded shuffle, the last ``fraction`` (rounded up) held out."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_test = -(-len(rows) * fraction // 1) if rows else 0
    cut = len(rows) - int(n_test)
    return [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]


def prepare(task: str, out_dir: str | Path = "data", source: str = "hub", strict: bool = False) -> dict[str, int]:
    """Write the task's splits; returns ``{split: rows written}``. Prints counts and bad rows."""
    if task not in SOURCES:
        raise SystemExit(f"unknown task {task!r} (known: {sorted(SOURCES)})")
    out = Path(out_dir) / task
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[dict]] = {}
    problems: list[str] = []
    mismatches: list[str] = []
    for src in SOURCES[task]:
        where, rows = load_rows(src, source)
        converted = convert_rows(task, src, where, rows, problems)
        if src.extra.get("holdout"):
            train, converted = holdout(converted, HOLDOUT_FRACTION, HOLDOUT_SEED)
            splits.setdefault("train", []).extend(train)
        splits.setdefault(src.name, []).extend(converted)
        if src.expected is not None and len(splits[src.name]) != src.expected:
            mismatches.append(f"{task}/{src.name}: {len(splits[src.name])} rows, expected {src.expected}")
    for problem in problems:
        print(f"skipped {problem}", file=sys.stderr)
    counts = {}
    for name, rows in splits.items():
        if name != "train":  # verl groups validation metrics by data_source; benchmarks may share a dataset
            rows = [{**row, "data_source": name} for row in rows]
        path = out / f"{name}.parquet"
        tmp = path.with_suffix(".parquet.tmp")
        pd.DataFrame(rows).to_parquet(tmp, index=False)
        tmp.replace(path)
        counts[name] = len(rows)
        print(f"{path}: {len(rows)} rows")
    print(f"{len(problems)} row(s) skipped")
    for m in mismatches:
        print(f"{'error' if strict else 'warning'}: {m}", file=sys.stderr)
    if strict and mismatches:
        raise SystemExit(1)
    return counts


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    opts = {"out_dir": "data", "source": "hub", "strict": "false"}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in {"task", *opts}:
            raise SystemExit(f"bad argument {arg!r}: use task=… out_dir=… source=hub|DIR strict=true|false")
        opts[key] = value
    if "task" not in opts:
        raise SystemExit("task=… is required (math, code, tool, sciknoweval)")
    prepare(opts["task"], opts["out_dir"], opts["source"], opts["strict"].lower() in ("1", "true", "yes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
