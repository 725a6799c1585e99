"""`python -m pipo.tasks.score`: one score per row, a clear error for a malformed row, no crash."""

import json
import subprocess
import sys


def test_score_cli_scores_good_rows_and_reports_bad_ones(tmp_path):
    rows = [
        json.dumps({"response": "so \\boxed{1/2}", "ground_truth": "0.5"}),
        "not json",
        json.dumps({"response": 3, "ground_truth": "1"}),
        json.dumps({"ground_truth": "1"}),
        "",
        json.dumps([1, 2]),
        json.dumps({"response": "\\boxed{7}", "ground_truth": 8}),
        json.dumps({"response": "\\boxed{8}", "ground_truth": 8}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "pipo.tasks.score", "--task", "math", str(src), "-o", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["line"] for r in results] == [1, 2, 3, 4, 6, 7, 8]
    assert [r["score"] for r in results] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    errors = {r["line"]: r["error"] for r in results if "error" in r}
    assert set(errors) == {2, 3, 4, 6}
    assert "invalid JSON" in errors[2] and "must be a string" in errors[3]
    assert "missing key(s) ['response']" in errors[4] and "JSON object" in errors[6]
    assert "line 2: invalid JSON" in proc.stderr
    assert "scored 7 rows" in proc.stderr and "4 malformed" in proc.stderr


def test_score_cli_missing_file_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pipo.tasks.score", "--task", "math", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "cannot read" in proc.stderr
