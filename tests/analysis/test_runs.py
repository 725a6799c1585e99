"""Loading run records: good ones become rows; broken or foreign ones are skipped with a warning."""

import json

import pytest
import yaml

from analysis.runs import load_runs
from pipo.records import RunRecord


def write_run(root, sig, version=1, evals=True):
    rec = RunRecord(root / "tiny" / sig)
    cfg = {
        "scale": {"name": "tiny"},
        "algorithm": {"name": "grpo"},
        "pipo": {"enabled": True},
        "model": {"name": "m"},
        "task": {"name": "math"},
        "seed": 1,
    }
    (rec.path).mkdir(parents=True)
    (rec.path / "cell.yaml").write_text(
        yaml.safe_dump({"record_version": version, "signature": sig, "label": f"cell {sig}", "config": cfg})
    )
    rec.set_status("done", step=4)
    if evals:
        for step, (a, b) in ((0, (0.2, 0.4)), (4, (0.5, 0.7))):
            rec.add_eval(
                {"step": step, "benchmarks": {"x": {"pass@1": a}, "y": {"pass@1": b}}, "avg": {"pass@1": (a + b) / 2}}
            )
    return rec


def test_load_runs_rows_and_skips(tmp_path, caplog):
    write_run(tmp_path, "aaa")
    write_run(tmp_path, "old", version=0)
    torn = write_run(tmp_path, "torn", evals=False)
    (torn.path / "eval.json").write_text('{"evals": [')
    df = load_runs(tmp_path)
    assert list(df["signature"]) == ["aaa"]
    row = df.iloc[0]
    assert (row["x"], row["y"], row["state"]) == (0.5, 0.7, "done")
    assert (row["AVG"], row["base_AVG"]) == pytest.approx((0.6, 0.3))
    assert "record version 0" in caplog.text and "torn" in caplog.text
    assert json.loads((torn.path / "status.json").read_text())["state"] == "done"
