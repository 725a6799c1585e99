"""The W&B path end to end: micro cells logged with ``wandb.mode=offline`` are read back from W&B's own run files
(``wandb leet inspect --json``) and exported; the tables equal those built from the local records."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.__main__ import main
from analysis.build import build
from analysis.runs import load_runs
from analysis.wandb_export import METRIC_KEYS
from analysis.wandb_offline import OfflineApi, export_offline
from pipo.cell import run_dir
from pipo.config import compose_cell
from pipo.records import RunRecord
from tests.conftest import MICRO

ROOT = Path(__file__).resolve().parents[2]
CELLS = (["algorithm=grpo", "pipo=off"], ["algorithm=grpo", "pipo=on"])


@pytest.fixture(scope="module")
def offline_runs(model_cache, tmp_path_factory) -> Path:
    """Two micro cells of Table 1 (GRPO, base and +PIPO) trained with W&B offline, as a user runs them."""
    runs = tmp_path_factory.mktemp("offline") / "runs"
    for cell in CELLS:
        ov = [*MICRO, f"cache_dir={model_cache}", f"run_root={runs}", *cell, "wandb.mode=offline"]
        proc = subprocess.run(
            [sys.executable, str(ROOT / "reproduce" / "train.py"), *ov],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "TQDM_DISABLE": "1", "WANDB_SILENT": "true"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert list((run_dir(compose_cell(ov)) / "wandb").glob("offline-run-*/run-*.wandb"))
    return runs


def table_values(runs_root: Path, out: Path) -> dict:
    table = build("table1", load_runs(runs_root), "tiny", out).table
    return {k: c.values for k, c in table.cells.items()}


@pytest.mark.slow
def test_offline_run_files_give_the_records_tables(offline_runs, tmp_path):
    exported = export_offline(offline_runs, "pipo", tmp_path / "cache")
    local = table_values(offline_runs, tmp_path / "a")
    assert len(local) == 3 * 6  # Base Model, GRPO, GRPO+PIPO × five benchmarks and AVG, in the 4B block
    assert table_values(exported, tmp_path / "b") == local
    for rec in (RunRecord(p) for p in sorted((offline_runs / "tiny").iterdir())):
        back = RunRecord(exported / "tiny" / rec.path.name)
        assert back.status()["state"] == "done" and back.status()["source"] == "wandb"
        ours, theirs = rec.evals(), back.evals()
        assert [e["step"] for e in theirs] == [e["step"] for e in ours] == [0, 2, 4]
        for a, b in zip(ours, theirs, strict=True):
            for split, bench in a["benchmarks"].items():
                got = b["benchmarks"][split]
                assert (got["correct"], got["n"], got["per_problem"]) == (
                    bench["correct"],
                    bench["n"],
                    bench["per_problem"],
                )
        logged = {r["step"]: r for r in back.metrics()}
        assert sorted(logged) == [r["step"] for r in rec.metrics()] == [1, 2, 3, 4]
        for row in rec.metrics():
            for key in METRIC_KEYS:
                if row.get(key) is not None:  # the mirror leaves out what the step did not compute
                    assert logged[row["step"]][key] == row[key], (row["step"], key)


@pytest.mark.slow
def test_the_cli_reads_offline_runs(offline_runs, tmp_path, capsys):
    args = ["table1", "--scale", "tiny", "--cache", str(tmp_path / "cache")]
    assert main([*args, "--root", str(offline_runs), "--out", str(tmp_path / "records")]) == 0
    assert main([*args, "--source", "wandb-offline", "--root", str(offline_runs), "--out", str(tmp_path / "w")]) == 0
    assert "2 runs exported" in capsys.readouterr().out
    ours, theirs = (tmp_path / "records" / "tiny" / "table1.csv"), (tmp_path / "w" / "tiny" / "table1.csv")
    assert theirs.read_text() == ours.read_text()
    assert "GRPO+PIPO" in ours.read_text()


def test_the_cli_names_a_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        main(["table1", "--source", "wandb-offline", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path)])


ATTEMPTS = """
import json, math, pathlib, time, wandb

settings = wandb.Settings(silent=True, console="off")
rec = pathlib.Path("rec")
rec.mkdir()
(rec / "eval.json").write_text(json.dumps({"evals": [{"step": 0}]}))
run = wandb.init(project="pipo", id="sig1", name="grpo cell", dir=str(rec), mode="offline",
                 config={"scale": {"name": "tiny"}, "seed": 1}, resume="allow", settings=settings)
run.save(str(rec / "eval.json"), base_path=str(rec), policy="live")
for step, x in [(1, 0.5), (2, math.nan), (3, 0.25)]:
    run.log({"x": x, "y": 10 * step}, step=step)
run.finish(exit_code=1)  # killed after step 3; resumed from the checkpoint at step 2
time.sleep(1.1)  # an attempt's folder is named to the second: two within one second would share one
run = wandb.init(project="pipo", id="sig1", dir=str(rec), mode="offline", resume="allow", settings=settings)
run.config.update({"late": True})
for step, x in [(3, 0.75), (4, 1.0)]:
    run.log({"x": x}, step=step)
run.finish()
other = wandb.init(project="elsewhere", id="sig2", dir="other", mode="offline", settings=settings)
other.log({"x": 1.0}, step=1)
other.finish()
"""


def test_a_resumed_run_reads_as_one(tmp_path):
    """Two attempts of one run (the second a resume) read as one: the resume's rows from its first step on, the
    last attempt's exit for the state, the saved file from the attempt that has it; other projects left out."""
    (tmp_path / "other").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(ATTEMPTS)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((tmp_path / "rec" / "wandb").glob("offline-run-*-sig1"))) == 2
    (run,) = OfflineApi(tmp_path).runs("me/pipo")
    assert (run.id, run.name, run.state) == ("sig1", "grpo cell", "finished")
    assert run.config == {"scale": {"name": "tiny"}, "seed": 1, "late": True}
    rows = run.scan_history(keys=["_step", "x"])
    assert [r["_step"] for r in rows] == [1, 2, 3, 4]
    assert [r["x"] for r in rows][::2] == [0.5, 0.75] and math.isnan(rows[1]["x"]) and rows[3]["x"] == 1.0
    assert [r["y"] for r in run.scan_history(keys=["y"])] == [10, 20]  # the resume replaced step 3 entirely
    (tmp_path / "dl").mkdir()
    with run.file("eval.json").download(root=tmp_path / "dl", replace=True) as f:
        assert json.load(f) == {"evals": [{"step": 0}]}
    with pytest.raises(FileNotFoundError):
        run.file("missing.json")
    assert [r.id for r in OfflineApi(tmp_path).runs("me/elsewhere")] == ["sig2"]
