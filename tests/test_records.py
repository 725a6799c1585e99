"""Run records: atomic whole-file writes, torn metric lines dropped, rewind to a checkpoint."""

import json

from pipo.records import RunRecord, atomic_write_text, read_jsonl


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
