"""verl's file log → the run record, written by the record's own writer (pipo.records), read by the analysis."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import pipo.records
from analysis.runs import load_metrics, load_runs, scores
from pipo.backends.verl.records import VALIDATION_DIR, import_logs
from pipo.cell import SIGNATURE_VERSION, label, run_dir, signature
from pipo.config import compose_cell, to_container
from pipo.records import RunRecord

SIZES = {"train": 10, "MATH500": 4, "AIME25": 2, "AMC23": 5, "Minerva": 2, "OlympiadBench": 8}
ACC = {"MATH500": 0.5, "AIME25": 0.5, "AMC23": 0.4, "Minerva": 0.0, "OlympiadBench": 0.25}


def log_lines(rows: list[tuple[int, dict]], torn: bool = False) -> str:
    """Rows as verl's FileLogger writes them (``{"step", "data"}``), optionally a torn last line."""
    text = "".join(json.dumps({"step": s, "data": d}) + "\n" for s, d in rows)
    return text + ('{"step": 9, "da' if torn else "")


def test_verl_logs_become_the_record_through_its_own_writer(tmp_path, monkeypatch):
    cfg = compose_cell(["scale=paper", "backend=verl", f"run_root={tmp_path}", "wandb.mode=disabled"])
    record = RunRecord(run_dir(cfg))
    record.write_cell(to_container(cfg), signature(cfg), label(cfg), SIGNATURE_VERSION)
    record.set_status("done", step=3)
    val = {f"val-core/{b}/acc/mean@1": a for b, a in ACC.items()}
    (record.path / "verl_log.0.jsonl").write_text(
        log_lines(
            [
                (0, {f"val-core/{b}/acc/mean@1": 0.1 for b in ACC}),
                (1, {"actor/pg_loss": 0.5, "timing_s/step": 61.0, "pipo/J": float("nan")}),
                (2, {"actor/pg_loss": 0.4, "timing_s/step": 62.0}),  # replaced by the resumed attempt's
            ],
            torn=True,  # the attempt was killed mid-write
        )
    )
    (record.path / "verl_log.1.jsonl").write_text(
        log_lines([(2, {"actor/pg_loss": 0.3, "timing_s/step": 63.0}), (3, {"timing_s/step": 64.0, **val})])
    )
    dump = record.path / VALIDATION_DIR / "3.jsonl"  # the reward function's benchmark position and problem
    dump.parent.mkdir()
    dump.write_text("".join(json.dumps({"benchmark": 1, "problem": i, "acc": float(i == 0)}) + "\n" for i in range(2)))

    written: list[str] = []
    atomic = pipo.records.atomic_write_text

    def spy(path: Path, text: str) -> None:
        written.append(Path(path).name)
        atomic(path, text)

    monkeypatch.setattr(pipo.records, "atomic_write_text", spy)
    import_logs(record, SIZES)
    assert written == ["metrics.jsonl", "eval.json"]  # each once, by the record's writer

    curves = load_metrics(record.path)  # the training-dynamics and wall-clock figures' input
    assert curves.step.tolist() == [1, 2, 3]
    assert curves["actor/pg_loss"].tolist()[:2] == [0.5, 0.3]  # step 2: the later attempt's row
    assert curves["timing/step"].tolist() == [61.0, 63.0, 64.0]
    assert record.metrics()[0]["pipo/J"] is None  # NaN is JSON's null

    runs = load_runs(tmp_path).frame
    assert len(runs) == 1 and runs.state[0] == "done"
    first, last = scores(runs, "first"), scores(runs, "last")
    assert first["pass@1"].tolist() == pytest.approx([0.1] * 5)
    got = {b: (c, n) for b, c, n in zip(last.benchmark, last.correct, last.n, strict=True)}
    assert got == {"MATH500": (2, 4), "AIME25": (1, 2), "AMC23": (2, 5), "Minerva": (0, 2), "OlympiadBench": (2, 8)}
    final = record.evals()[-1]
    assert final["step"] == 3 and math.isclose(final["avg"]["pass@1"], (0.5 + 0.5 + 0.4 + 0 + 0.25) / 5)
    assert final["benchmarks"]["AIME25"]["per_problem"] == {"0": 1.0, "1": 0.0}
