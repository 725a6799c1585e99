"""Prepare a task's datasets as verl-format parquet files, one per split.

    python -m pipo.tasks.prepare task=math [out_dir=data] [source=hub|DIR|authors:DIR] [strict=true]

Writes ``<out_dir>/<task>/train.parquet`` and ``<out_dir>/<task>/<benchmark>.parquet`` with verl's
columns: ``data_source`` (the dataset for training rows, the benchmark's name for benchmark rows),
``prompt`` (chat messages), ``ability``, ``reward_model`` (``style``, ``ground_truth``) and
``extra_info`` (``split``, ``index``, ``dataset``, …). ``source=hub`` (default) downloads the Hugging Face datasets
of the paper's experiments (the registered task's ``sources``, ``pipo/tasks/families/<task>.py``); ``source=DIR`` reads
local copies laid out as ``DIR/<owner>/<name>/<config>/<split>.jsonl`` (how the tests run, and how to use
mirrored data); ``source=authors:DIR`` writes the benchmarks from the authors' evaluation sets
(``pipo.tasks.authors_eval``; e.g. ``../shared/data/authors_eval``). A row that does not fit its dataset's schema is
reported (source, index, reason) and skipped, never altered. Counts are printed and checked
against the expected sizes; a difference is a warning, or an error with ``strict=true``.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from pipo.hub import hub_unreachable
from pipo.tasks.authors_eval import AUTHORS_FILES, authors_rows
from pipo.tasks.registry import TASKS
from pipo.tasks.sources import BFCL_CATEGORIES, Converted, RowError, Source

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
    if task not in TASKS or not TASKS[task].sources:
        raise SystemExit(f"unknown task {task!r} (known: {_preparable()})")
    out = Path(out_dir) / task
    out.mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[dict]] = {}
    problems: list[str] = []
    mismatches: list[str] = []
    if source.startswith("authors:"):  # the authors' evaluation sets: benchmarks only, their own sizes
        if task not in AUTHORS_FILES:
            raise SystemExit(f"the authors' evaluation sets cover {sorted(AUTHORS_FILES)}, not {task!r}")
        for benchmark in AUTHORS_FILES[task]:
            splits[benchmark] = authors_rows(task, benchmark, source.removeprefix("authors:"), problems)
        if not (out / "train.parquet").exists():
            print(f"note: their training split is not public; prepare {out}/train.parquet with source=hub or DIR")
    for src in TASKS[task].sources if not splits else ():
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


def _preparable() -> list[str]:
    """The registered tasks with paper-scale sources."""
    return sorted(name for name, definition in TASKS.items() if definition.sources)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    opts = {"out_dir": "data", "source": "hub", "strict": "false"}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or key not in {"task", *opts}:
            raise SystemExit(f"bad argument {arg!r}: use task=… out_dir=… source=hub|DIR|authors:DIR strict=true|false")
        opts[key] = value
    if "task" not in opts:
        raise SystemExit(f"task=… is required ({', '.join(_preparable())})")
    task = TASKS.get(opts["task"])
    if task is not None and opts["source"] == "hub" and (why := hub_unreachable()) is not None:
        ids = sorted({src.hf_id for src in task.sources if src.loader != "local"})
        raise SystemExit(
            f"source=hub needs the Hugging Face hub, which cannot be reached ({why}). Where there is internet, "
            f"run this same command and copy {opts['out_dir']}/{opts['task']}/ here; or download {', '.join(ids)} "
            f"as DIR/<dataset id>/<config or default>/<split>.parquet and pass source=DIR"
        )
    prepare(opts["task"], opts["out_dir"], opts["source"], opts["strict"].lower() in ("1", "true", "yes"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
