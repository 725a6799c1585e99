"""Every task's tiny cell runs end to end through the trainer: sandboxed code, tool calls, MCQ."""

import pytest

from pipo.config import compose_cell
from pipo.tasks import get_verifier
from tests.e2e.test_train_cli import record_of, train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["code", "tool", "sciknoweval"])
def test_task_cell_runs_and_records_every_benchmark(task, micro_overrides):
    ov = [*micro_overrides, f"task={task}", "scale.steps=3", "scale.eval.every=3"]
    proc = train(ov)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = record_of(ov)
    cfg = compose_cell(ov)
    assert rec.status()["state"] == "done"
    first, last = rec.evals()[0], rec.evals()[-1]
    assert (first["step"], last["step"]) == (0, 3)
    for name, split in cfg.task.standin.splits.items():
        entry = last["benchmarks"][name]
        assert entry["n"] == split.size and entry["stands_for"] == split.stands_for
        assert 0 <= entry["correct"] <= entry["n"] and entry["pass@1"] == entry["correct"] / entry["n"]
    verifier = get_verifier(cfg.task.verifier)
    for row in rec.metrics():
        assert verifier.low <= row["critic/score/mean"] <= verifier.high
