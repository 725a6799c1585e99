"""Score model responses with a task's verifier.

    python -m pipo.tasks.score --task math responses.jsonl [-o scores.jsonl] [--workers N]

Tasks: math, code (run in the sandbox), tool (ToolRL's reward), tool_exact, mcq. Each input line
is ``{"response": str, "ground_truth": str}``. Each output line is ``{"line": n, "score": s}``; a
malformed line scores 0.0 and carries an ``"error"``, and the rest of the file is still scored.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from pipo.tasks.registry import VERIFIERS, get_verifier


def _parse(raw: str) -> tuple[str, str]:
    """(response, ground truth) of one input line; ValueError says what is wrong with it."""
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON: {err}") from None
    if not isinstance(row, dict):
        raise ValueError(f"expected a JSON object, got {type(row).__name__}")
    missing = [k for k in ("response", "ground_truth") if k not in row]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    if not isinstance(row["response"], str):
        raise ValueError(f"'response' must be a string, got {type(row['response']).__name__}")
    return row["response"], str(row["ground_truth"])


def _score_chunk(args: tuple[str, list[tuple[int, str | None, str | None, str | None]]]) -> list[dict]:
    task, rows = args
    ok = [(r, t) for _, r, t, e in rows if e is None]
    scores = iter(get_verifier(task).many([r for r, _ in ok], [t for _, t in ok]) if ok else [])
    return [{"line": n, "score": 0.0, "error": e} if e else {"line": n, "score": next(scores)} for n, _, _, e in rows]


def _chunks(lines: Iterable[str], task: str, size: int) -> Iterator[tuple[str, list]]:
    rows: list[tuple[int, str | None, str | None, str | None]] = []  # (line, response, truth, error)
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append((n, *_parse(raw), None))
        except ValueError as err:
            rows.append((n, None, None, str(err)))
        if len(rows) >= size:
            yield task, rows
            rows = []
    if rows:
        yield task, rows


def score_lines(lines: Iterable[str], task: str, workers: int = 1, chunk: int = 256) -> Iterator[dict]:
    """One result per non-blank input line, in order: ``{"line", "score"}`` plus ``"error"`` when malformed.

    Lines are scored ``chunk`` at a time, over ``workers`` processes (the code verifier runs its
    programs in parallel by itself, so it stays in this process).
    """
    chunks = _chunks(lines, task, chunk)
    if workers <= 1 or get_verifier(task).batch is not None:
        for c in chunks:
            yield from _score_chunk(c)
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for results in pool.imap(_score_chunk, chunks):
            yield from results


def main(argv: list[str] | None = None, stdout: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipo.tasks.score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", required=True, choices=sorted(VERIFIERS), help="which verifier")
    parser.add_argument("file", help="JSONL file of {response, ground_truth} rows ('-' for stdin)")
    parser.add_argument("-o", "--output", help="write scores here instead of stdout")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="scoring processes (default: CPUs)")
    args = parser.parse_args(argv)
    try:
        src = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8", errors="replace")
    except OSError as err:
        parser.error(f"cannot read {args.file}: {err}")
    out = open(args.output, "w", encoding="utf-8") if args.output else stdout
    total = errors = 0
    score_sum = 0.0
    with src:
        for result in score_lines(src, args.task, args.workers):
            out.write(json.dumps(result) + "\n")
            total += 1
            score_sum += result["score"]
            if "error" in result:
                errors += 1
                print(f"line {result['line']}: {result['error']}", file=sys.stderr)
    if out is not stdout:
        out.close()
    mean = score_sum / total if total else 0.0
    print(f"scored {total} rows with the {args.task} verifier: mean {mean:.4f}, {errors} malformed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
