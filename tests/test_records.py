"""Run records: atomic whole-file writes, torn metric lines dropped, rewind to a checkpoint."""

import json

import pytest
import yaml

from pipo.records import RECORD_VERSION, RunRecord, atomic_write_text, read_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write_text(tmp_path / "a.json", "1")
    atomic_write_text(tmp_path / "a.json", "2")
    assert (tmp_path / "a.json").read_text() == "2"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_torn_last_line_is_dropped(tmp_path):
    f = tmp_path / "m.jsonl"
    f.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "x"')
    assert read_jsonl(f) == [{"step": 1}]


def test_rewind_drops_metrics_and_evals_after_the_checkpoint(tmp_path):
    rec = RunRecord(tmp_path / "run")
    for s in range(1, 6):
        rec.append_metrics({"step": s})
    for s in (0, 2, 4):
        rec.add_eval({"step": s, "avg": {"pass@1": s / 10}})
    rec.rewind(3)
    assert [r["step"] for r in rec.metrics()] == [1, 2, 3]
    assert [e["step"] for e in rec.evals()] == [0, 2]


def test_status_keeps_earlier_fields(tmp_path):
    rec = RunRecord(tmp_path)
    rec.set_status("running", step=3, total_steps=10)
    rec.set_status("done", step=10)
    st = rec.status()
    assert (st["state"], st["step"], st["total_steps"]) == ("done", 10, 10)


def test_the_readers_return_what_was_written(tmp_path):
    rec = RunRecord(tmp_path / "run")
    rec.write_cell({"seed": 1}, "abc", "a cell", 3)
    assert rec.cell() == {
        "record_version": RECORD_VERSION, "config_version": 3, "signature": "abc", "label": "a cell",
        "config": {"seed": 1},
    }  # fmt: skip
    assert (rec.status(), rec.evals(), rec.metrics(), rec.pass_at_k(8)) == (None, [], [], None)
    rec.write_evals([{"step": 0}, {"step": 2}])
    rec.write_metrics([{"step": 1, "x": 0.5}])
    rec.write_pass_at_k(8, {"avg": {"pass@8": 0.25}})
    rec.set_status("done", step=2)
    assert [e["step"] for e in rec.evals()] == [0, 2] and rec.metrics() == [{"step": 1, "x": 0.5}]
    assert rec.pass_at_k(8) == {"avg": {"pass@8": 0.25}} and rec.status()["state"] == "done"
    assert json.loads((rec.path / "eval.json").read_text())["record_version"] == RECORD_VERSION


def test_a_cell_of_another_layout_is_refused(tmp_path):
    rec = RunRecord(tmp_path / "run")
    with pytest.raises(OSError):
        rec.cell()
    rec.path.mkdir()
    (rec.path / "cell.yaml").write_text(yaml.safe_dump({"record_version": RECORD_VERSION + 1}))
    with pytest.raises(ValueError, match=f"record version {RECORD_VERSION + 1}"):
        rec.cell()
    (rec.path / "cell.yaml").write_text("- a list")
    with pytest.raises(ValueError, match="not a mapping"):
        rec.cell()
