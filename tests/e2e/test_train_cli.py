"""`python reproduce/train.py` end to end: record, δ/φ from the record alone, skip, force, resume, W&B."""

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from pipo.cell import run_dir
from pipo.config import compose_cell
from pipo.records import RunRecord

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def train(overrides, env=None, **kw):
    return subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "train.py"), *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1", **(env or {})},
        **kw,
    )


def start_until(overrides, rec: RunRecord, step: int) -> subprocess.Popen:
    """Start a cell in the background and return once its record has reached ``step``."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "reproduce" / "train.py"), *overrides],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    deadline = time.time() + 240
    while time.time() < deadline and not any(r["step"] >= step for r in rec.metrics()):
        time.sleep(0.05)
    return proc


def record_of(overrides):
    return RunRecord(run_dir(compose_cell(overrides)))


def test_cell_record_and_pipo_metrics_from_the_record_alone(micro_overrides):
    ov = [*micro_overrides, "scale.steps=12", "scale.eval.every=6", "pipo.window=4", "pipo.lam=0.2"]
    proc = train(ov)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = record_of(ov)
    assert rec.status()["state"] == "done"
    assert (rec.path / "cell.yaml").exists() and (rec.ckpt_dir / "state.pt").exists()
    assert [e["step"] for e in rec.evals()] == [0, 6, 12]
    final = rec.evals()[-1]
    assert set(final["benchmarks"]) == {"toy_math500", "toy_aime25", "toy_amc23", "toy_minerva", "toy_olympiad"}
    assert final["avg"]["pass@1"] == pytest.approx(
        np.mean([b["correct"] / b["n"] for b in final["benchmarks"].values()])
    )
    rows = rec.metrics()
    assert [r["step"] for r in rows] == list(range(1, 13))
    # recompute docs/ALGORITHM.md steps 2-4 from the logged J history with numpy
    J = [r["pipo/J"] for r in rows]
    for t, r in enumerate(rows):
        window = J[max(0, t - 4) : t]
        if len(window) < 2:
            assert r["pipo/delta"] is None and r["pipo/phi"] is None and r["pipo/verified"] == 0.0
            continue
        delta = (J[t] - np.mean(window)) / (np.std(window) + 1e-6)
        assert r["pipo/delta"] == pytest.approx(delta, rel=1e-9)
        assert r["pipo/phi"] == pytest.approx(delta if delta >= 0 else 0.2 * delta, rel=1e-9)
        assert r["pipo/suppressed"] == float(delta < 0)
    assert sum(r["pipo/verified"] for r in rows) > 0

    again = train(ov)  # done: skipped
    assert again.returncode == 0 and "done already" in again.stdout + again.stderr
    assert len(rec.metrics()) == 12
    forced = train([*ov, "force=true"])
    assert forced.returncode == 0 and "done already" not in forced.stdout + forced.stderr
    assert [r["pipo/J"] for r in rec.metrics()] == J  # same seed, same numbers


def test_an_authors_cell_record_reproduces_their_anchor_sigma_and_xi(micro_overrides):
    # pipo=authors: recompute what JacckMa/pipo_verl 7f48e23 does from the logged J values alone — a deque of
    # maxlen K that J_t joins before μ, σ are read and again after the update (ray_trainer.py:1622, 1689),
    # σ = population std, counted as 1 below 1e-6 or with one entry, ξ = clip(J − μ, ±5) / σ once 8 are held
    ov = [*micro_overrides, "pipo=authors", "scale.steps=9", "scale.eval.every=9"]
    proc = train(ov)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = record_of(ov).metrics()
    window: deque[float] = deque(maxlen=8)
    for r in rows:
        J = r["pipo/J"]
        window.append(J)
        sigma = float(np.std(window)) if len(window) >= 2 else 1.0
        sigma = 1.0 if sigma < 1e-6 else sigma
        assert r["pipo/mu"] == pytest.approx(np.mean(window), rel=1e-9)
        assert r["pipo/sigma"] == pytest.approx(sigma, rel=1e-9)
        xi = float(np.clip(J - np.mean(window), -5, 5)) / sigma if len(window) >= 8 else None
        assert r["pipo/delta"] == (None if xi is None else pytest.approx(xi, rel=1e-9))
        window.append(J)
    assert [r["pipo/delta"] is not None for r in rows] == [False] * 4 + [True] * 5  # from iteration 5 on
    assert sum(r["pipo/verified"] for r in rows) > 0


def test_kill_9_then_rerun_resumes_and_matches_an_uninterrupted_run(micro_overrides, tmp_path):
    ov = [*micro_overrides, "scale.steps=10", "scale.save_every=2", "scale.eval.every=5"]
    victim = [*ov, f"run_root={tmp_path / 'killed'}"]
    rec = record_of(victim)
    proc = start_until(victim, rec, 7)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert rec.status()["state"] == "running" and len(rec.metrics()) < 10
    resumed = train(victim)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from the checkpoint at step" in resumed.stdout + resumed.stderr

    clean = [*ov, f"run_root={tmp_path / 'clean'}"]
    assert train(clean).returncode == 0
    ref = record_of(clean)

    def numbers(r):
        return [{k: v for k, v in row.items() if not k.startswith("timing/")} for row in r.metrics()]

    assert numbers(rec) == numbers(ref)
    assert [e["benchmarks"] for e in rec.evals()] == [e["benchmarks"] for e in ref.evals()]
    assert rec.status()["state"] == "done"


def test_sigterm_checkpoints_at_the_step_it_arrives_in(micro_overrides, tmp_path):
    ov = [*micro_overrides, "scale.steps=12", "scale.save_every=100", "scale.eval.every=12", f"run_root={tmp_path}"]
    rec = record_of(ov)
    proc = start_until(ov, rec, 4)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    stopped_at = rec.metrics()[-1]["step"]
    assert 4 <= stopped_at < 12  # no periodic checkpoint before step 100: this one is the signal's
    resumed = train(ov)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert rec.status()["resumed_from"] == [stopped_at] and rec.status()["state"] == "done"
    assert [r["step"] for r in rec.metrics()] == list(range(1, 13))


def test_wandb_online_without_network_still_completes(micro_overrides):
    ov = [*micro_overrides, "scale.steps=2", "wandb.mode=online"]
    proc = train(ov, env={"WANDB_BASE_URL": "http://127.0.0.1:9", "WANDB_API_KEY": "x" * 40})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "W&B: the server cannot be reached; logging offline instead" in proc.stdout + proc.stderr
    rec = record_of(ov)
    assert rec.status()["state"] == "done" and len(rec.metrics()) == 2
    assert (rec.path / "wandb").is_dir()


def test_bad_override_fails_before_anything_runs(micro_overrides):
    proc = train([*micro_overrides, "pipo.lam=2"])
    assert proc.returncode != 0
    assert "pipo.lam=2.0: λ must lie in [0, 1]" in proc.stderr
    assert not record_of([*micro_overrides, "pipo.lam=2"]).path.exists()
