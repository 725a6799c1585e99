"""Loading run records: good ones become rows; torn, foreign or older ones are reported and skipped."""

import yaml

from analysis.runs import load_metrics, load_runs, scores
from tests.analysis.synthetic import config, evaluation, write_record


def test_load_runs_rows_and_skips(tmp_path):
    e0 = evaluation(
        0, "math", {"toy_math500": 100, "toy_aime25": 0, "toy_amc23": 4, "toy_minerva": 0, "toy_olympiad": 0}
    )
    e4 = evaluation(
        4, "math", {"toy_math500": 250, "toy_aime25": 9, "toy_amc23": 8, "toy_minerva": 0, "toy_olympiad": 0}
    )
    write_record(tmp_path, "aaa", config(), [e0, e4])
    old = write_record(tmp_path, "old", config(), [e0])
    doc = yaml.safe_load((old.path / "cell.yaml").read_text())
    doc["config_version"] = 1
    (old.path / "cell.yaml").write_text(yaml.safe_dump(doc))
    foreign = write_record(tmp_path, "foreign", config(), [e0])
    (foreign.path / "cell.yaml").write_text(yaml.safe_dump({"record_version": 0}))
    torn = write_record(tmp_path, "torn", config(), [e0])
    (torn.path / "eval.json").write_text('{"evals": [')
    runs = load_runs(tmp_path)
    assert list(runs.frame["signature"]) == ["aaa"]
    reasons = dict((p.rsplit("/", 1)[1], r) for p, r in runs.skipped)
    assert "config version 1" in reasons["old"] and "record version 0" in reasons["foreign"]
    assert "JSONDecodeError" in reasons["torn"]
    long = scores(runs.frame)
    row = long[long["split"] == "toy_math500"].iloc[0]
    assert (row["benchmark"], row["correct"], row["n"], row["pass@1"]) == ("MATH500", 250, 500, 0.5)
    first = scores(runs.frame, "first")
    assert first[first["split"] == "toy_amc23"].iloc[0]["pass@1"] == 0.1


def test_metrics_with_a_torn_last_line(tmp_path):
    rec = write_record(tmp_path, "m", config(), [], metrics=[{"step": 1, "x": 0.5}, {"step": 2, "x": 0.7}])
    with open(rec.path / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "x"')
    assert list(load_metrics(rec.path)["x"]) == [0.5, 0.7]
    assert load_metrics(tmp_path / "nowhere").empty
