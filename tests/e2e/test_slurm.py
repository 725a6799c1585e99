"""Through a real SLURM cluster (scripts/slurm_local.sh): a two-cell grid, and a requeued job that resumes exactly."""

import os
import shutil
import subprocess
import sys
import time

import pytest

from pipo.cell import run_dir
from pipo.config import compose_cell
from pipo.records import RunRecord
from pipo.submitit_log import SACCT_WARNING
from tests.e2e.test_train_cli import ROOT, train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("sinfo") is None and not os.environ.get("PIPO_REQUIRE_SLURM"),
        reason="no SLURM here (scripts/slurm_local.sh starts one)",
    ),
]
ENV = {**os.environ, "TQDM_DISABLE": "1"}
STEPS = 100  # a micro step takes ~0.1 s: the rest of the run outlasts KillWait (5 s) after the signal


def test_two_cell_grid_through_slurm(micro_overrides, tmp_path):
    ov = [*micro_overrides, "pipo.lam=0.1", "scale.steps=2", "scale.eval.every=2"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "table4.py"), "-m", "cluster=slurm", *ov],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # no accounting here: submitit's watcher fails to call sacct at every poll of both sub-grids' launchers;
    # the sweep's log shows it once (submitit's stderr handler writes one line per record)
    assert proc.stderr.count(SACCT_WARNING) <= 1
    runs = list((tmp_path / "runs" / "tiny").iterdir())
    assert len(runs) == 2 and all(RunRecord(r).status()["state"] == "done" for r in runs)
    scripts = list((tmp_path / "runs" / ".multirun" / "table4" / ".submitit").glob("*/*_submission.sh"))
    assert len(scripts) == 2
    text = scripts[0].read_text()
    assert "#SBATCH --cpus-per-task=1" in text and "gpus" not in text  # tiny scale: one core, no GPU


def wait_and_release(job: str) -> None:
    """A requeued job waits for a begin time SLURM sets once it is pending again: make it eligible now
    (an update sent while the job is still being stopped leaves that wait in place)."""
    seen_pending = False
    for _ in range(600):
        time.sleep(0.2)
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T %r"], capture_output=True, text=True).stdout
        if state.startswith("PENDING"):
            seen_pending = True
            if "BeginTime" not in state:
                return
            subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], capture_output=True)
        elif seen_pending:
            return  # running again


@pytest.mark.parametrize("stop", ["requeue", "usr2"])
def test_requeued_job_resumes_and_matches_an_uninterrupted_run(micro_overrides, tmp_path, stop):
    """``requeue``: SLURM's SIGTERM (preemption); ``usr2``: the signal sent ``signal_delay_s`` before
    the time limit, on which submitit checkpoints and requeues the job itself."""
    ov = [*micro_overrides, f"scale.steps={STEPS}", "scale.save_every=1000", f"scale.eval.every={STEPS // 2}"]
    slurm = [*ov, f"run_root={tmp_path / 'slurm'}"]
    rec = RunRecord(run_dir(compose_cell(slurm)))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "reproduce" / "train.py"), "-m", "cluster=slurm", *slurm],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    deadline = time.time() + 600
    while time.time() < deadline and len(rec.metrics()) < 4:
        time.sleep(0.2)
    job = next(p.name for p in (tmp_path / "slurm" / ".multirun" / "adhoc" / ".submitit").iterdir() if p.name.isdigit())
    cut = len(rec.metrics())
    if stop == "requeue":
        subprocess.run(["scontrol", "requeue", job], check=True)
    else:
        subprocess.run(["scancel", "--signal=USR2", job], check=True)
    wait_and_release(job)
    assert proc.wait(timeout=900) == 0
    assert cut < STEPS and rec.status()["state"] == "done"
    # no periodic checkpoint (save_every=1000): the job resumed from the one written at the signal
    resumed = rec.status()["resumed_from"]
    assert resumed and cut <= resumed[0] < STEPS

    assert numbers(rec) == reference(ov, tmp_path)


_REFERENCE: dict[str, tuple] = {}


def numbers(r: RunRecord) -> tuple:
    metrics = [{k: v for k, v in row.items() if not k.startswith("timing/")} for row in r.metrics()]
    return metrics, [e["benchmarks"] for e in r.evals()]


def reference(ov: list[str], tmp_path) -> tuple:
    """The same cell run uninterrupted, outside SLURM (once for both stop signals)."""
    key = " ".join(o for o in ov if not o.startswith(("cache_dir=", "run_root=")))
    if key not in _REFERENCE:
        clean = [*ov, f"run_root={tmp_path / 'clean'}"]
        assert train(clean).returncode == 0
        _REFERENCE[key] = numbers(RunRecord(run_dir(compose_cell(clean))))
    return _REFERENCE[key]
