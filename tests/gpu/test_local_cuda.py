"""The local backend on CUDA: a micro GRPO+PIPO cell end to end, and its verification update equal to the CPU's.

Needs the project installed (``pip install -e .``): the local backend calls verl's ``core_algos``, and
importing verl imports Ray. Without them these tests are skipped and say so (the throughput check beside
needs torch and transformers only).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
pytest.importorskip("verl", reason="the local backend calls verl's core_algos (verl imports Ray): pip install -e .")

from pipo.algorithm import PreviousBatch  # noqa: E402
from pipo.cell import run_dir  # noqa: E402
from pipo.config import compose_cell  # noqa: E402
from pipo.records import RunRecord  # noqa: E402
from tests.backends.test_trainer import ONE_ADAMW_STEP, feedback, make_trainer, previous_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CUDA = ["backend.device=cuda"]


def test_a_micro_grpo_pipo_cell_on_cuda_leaves_a_complete_record(micro_overrides):
    ov = [*micro_overrides, *CUDA, "scale.steps=12", "scale.eval.every=6", "pipo.window=4", "pipo.lam=0.2"]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "reproduce" / "train.py"), *ov],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TQDM_DISABLE": "1"},
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = RunRecord(run_dir(compose_cell(ov)))
    assert rec.status()["state"] == "done"
    assert (rec.path / "cell.yaml").exists()
    assert [e["step"] for e in rec.evals()] == [0, 6, 12]
    rows = rec.metrics()
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert sum(r["pipo/verified"] for r in rows) > 0
    state = torch.load(rec.ckpt_dir / "state.pt", weights_only=True)  # tensors come back where they were saved
    assert state["step"] == 12 and all(t.is_cuda for t in state["model"].values())


@pytest.mark.parametrize(
    ("optimizer", "atol"),
    [
        ("sgd", 1e-6),  # a plain gradient step: the update is linear in the gradient
        ("shared", 1e-5),  # AdamW's first step ≈ lr·sign(g): tolerance on the few entries with g ≈ 0, below
    ],
)
def test_the_verification_update_on_cuda_equals_the_cpus(micro_overrides, tmp_path, optimizer, atol):
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products in float32 (torch's default; said here)
    base = [*micro_overrides, *ONE_ADAMW_STEP, f"pipo.optimizer={optimizer}"]
    if optimizer == "sgd":
        base.append("pipo.lr=0.5")
    cpu = make_trainer(base, tmp_path / "cpu")
    cuda = make_trainer([*base, *CUDA], tmp_path / "cuda")
    cuda.policy.load_state_dict(cpu.policy.state_dict())  # same weights in (they are: same base model)
    attribution = [0.3, -0.1, 0.2, 0.0, 0.25, -0.3, 0.1, 0.05] * 2
    prev = previous_batch(cpu, attribution)  # sampled on the CPU; the same rewards for both
    cpu.pipo.previous = prev
    cuda.pipo.previous = PreviousBatch(
        {k: v.cuda() for k, v in prev.batch.items()}, prev.attributions.cuda(), prev.response_mask.cuda()
    )
    before = {k: v.clone() for k, v in cpu.policy.state_dict().items()}
    m_cpu = cpu.pipo.verify(feedback(1.5, 0.7), cpu.replay)
    m_cuda = cuda.pipo.verify(feedback(1.5, 0.7), cuda.replay)
    assert m_cpu["pipo/verified"] == m_cuda["pipo/verified"] == 1.0
    assert m_cuda["pipo/pi_loss"] == pytest.approx(m_cpu["pipo/pi_loss"], rel=1e-5)
    assert m_cuda["pipo/grad_norm"] == pytest.approx(m_cpu["pipo/grad_norm"], rel=1e-4)
    moved, off = 0.0, []
    for name, theirs in cpu.policy.state_dict().items():
        ours = cuda.policy.state_dict()[name].cpu()
        moved = max(moved, (theirs - before[name]).abs().max().item())
        off.append(((ours - theirs).abs() > atol + 1e-5 * theirs.abs()).float().mean().item())
    assert moved > 10 * atol  # the update is there to compare
    # every entry within tolerance, but under AdamW those whose gradient is within rounding of 0 (its
    # normalised step g/(|g| + ε) swings there): at most 1 in 1,000
    assert max(off) == 0.0 if optimizer == "sgd" else max(off) < 1e-3
