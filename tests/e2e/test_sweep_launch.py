"""`reproduce/<table>.py -m` at tiny scale: cells run once, a relaunch redoes nothing, a bad grid runs nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipo.records import RunRecord
from pipo.sweeps import load_sweep, plan

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def table4(args, **kw):
    return subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "table4.py"), *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
        **kw,
    )


def test_sweep_runs_skips_and_resumes(micro_overrides):
    ov = [*micro_overrides, "pipo.lam=0,1", "scale.steps=4", "scale.eval.every=4"]
    cells = plan(load_sweep("table4"), ov)
    assert len(cells) == 3
    records = [RunRecord(Path(c.cfg.run_root) / "tiny" / c.signature) for c in cells]

    # start the sweep, kill it once the first cell is done, relaunch: finished cells are not redone
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "reproduce" / "table4.py"), "-m", *ov],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TQDM_DISABLE": "1"},
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not any((r.status() or {}).get("state") == "done" for r in records):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {
        r.path: (r.path / "metrics.jsonl").stat().st_mtime_ns
        for r in records
        if (r.status() or {}).get("state") == "done"
    }
    assert finished and len(finished) < 3

    again = table4(["-m", *ov])
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(r.status()["state"] == "done" for r in records)
    for path, stamp in finished.items():
        assert (path / "metrics.jsonl").stat().st_mtime_ns == stamp  # not redone
    # the sweep's table at the end is the sweep as launched: λ = 0 and 1, and nothing missing
    assert "| GRPO+PIPO | 0 |" in again.stdout and "| GRPO+PIPO | 1 |" in again.stdout
    assert "| GRPO+PIPO | 0.1 |" not in again.stdout and "cell(s) missing" not in again.stdout
    assert (Path(cells[0].cfg.run_root).parent / "results" / "tiny" / "table4.tex").exists()

    planned = table4(["--plan", *ov])
    assert planned.returncode == 0 and "3 cells: 3 done" in planned.stdout


def test_bad_grid_launches_nothing(micro_overrides, tmp_path):
    proc = table4(["-m", *micro_overrides, "pipo.window=1"])
    assert proc.returncode == 1
    assert "cells are invalid; no job was launched" in proc.stderr and "pipo.window=1" in proc.stderr
    assert not (tmp_path / "runs").exists()


def test_table6_reevaluates_trained_cells_and_trains_nothing(micro_overrides):
    from pipo.config import compose_cell
    from pipo.pass_at_k import pass_at_k
    from pipo.reevaluate import reevaluate

    ov = [*micro_overrides, "algorithm=grpo,ppo", "pipo=off", "scale.steps=2", "scale.eval.every=2"]
    run = [sys.executable, str(ROOT / "reproduce" / "table6.py"), "-m", *ov]
    refused = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 1 and "2 cells are not trained yet" in refused.stderr
    for algo in ("grpo", "ppo"):
        cell = [o for o in ov if not o.startswith("algorithm=")] + [f"algorithm={algo}"]
        trained = subprocess.run(
            [sys.executable, str(ROOT / "reproduce" / "train.py"), *cell],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "TQDM_DISABLE": "1"},
        )
        assert trained.returncode == 0, trained.stderr[-2000:]
    done = subprocess.run(run, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "GRPO" in done.stdout and "PPO" in done.stdout
    cfg = compose_cell([o for o in ov if not o.startswith("algorithm=")] + ["algorithm=grpo"])
    res = reevaluate(cfg, 8, 8)  # read back from the record
    for e in res["benchmarks"].values():
        assert len(e["correct_per_problem"]) == e["n"]
        assert e["pass@8"] == pytest.approx(sum(pass_at_k(8, int(c), 8) for c in e["correct_per_problem"]) / e["n"])
        assert e["pass@8"] >= e["mean@8"]
