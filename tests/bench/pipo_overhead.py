"""PIPO's overhead per algorithm, measured side by side in one process.

    python tests/bench/pipo_overhead.py [--steps 16] [--algorithms ppo grpo gspo dapo sdpo] [overrides...]

For each algorithm, two trainers (pipo=on, pipo=off) on the same cached tiny base model take turns,
step by step, so machine noise hits both alike; steps before PIPO's first verification are not
timed. Printed per algorithm (medians over the verifying steps):

- the step time without and with PIPO and their ratio;
- ``PIPO s``: all the time PIPO adds to a step (feedback, the verification update, storing the
  batch: the trainer's ``timing/pipo``);
- ``fwd+bwd s``: one forward (with the algorithm's policy loss) and backward over exactly the rows
  the verification replayed, in the same mini-batches, timed right after the step on the same
  weights — PIPO's floor (no clipping, no optimizer step, no bookkeeping);
- ``PIPO/floor``: the median over the verifying steps of PIPO's time over the floor's time in the same
  step (paired, so a slow moment of the machine hits both; the bar: ≤ 1.1); ``total/total``: all
  PIPO time over all floor time, which one slow step can move;
- ``replayed``: the fraction of rows replayed (the others have PI reward zero everywhere and are
  skipped; ``tests/backends/test_trainer.py`` checks the update equals replaying every row).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipo.backends.local.rollout import log_probs
from pipo.backends.local.trainer import LocalTrainer
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.records import RunRecord
from pipo.tasks import load_standin
from pipo.wandb_mirror import WandbMirror


def trainer(overrides: list[str], tmp: Path) -> LocalTrainer:
    cfg = compose_cell([*overrides, "wandb.mode=disabled"])
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    off = WandbMirror("disabled", "", None, None, "", "", tmp, {}, [])
    return LocalTrainer(cfg, task, path, RunRecord(tmp), off)


def forward_backward(tr: LocalTrainer, prev, active: torch.Tensor) -> float:
    """Seconds for one forward (with the algorithm's policy loss) and backward over the active rows of
    ``prev``, mini-batch by mini-batch: no gradient clipping, no optimizer step, no bookkeeping."""
    b = prev.batch
    loss_fn = tr._policy_gradient_loss(b["old_log_probs"], prev.attributions, prev.response_mask, None)
    tr.policy.train()
    t = time.perf_counter()
    for i in range(0, len(b["input_ids"]), tr.mini_batch):
        rows = torch.arange(i, min(i + tr.mini_batch, len(b["input_ids"])))[active[i : i + tr.mini_batch]]
        if len(rows):
            ids, attn, pos = b["input_ids"][rows], b["attention_mask"][rows], b["position_ids"][rows]
            lp = log_probs(tr.policy, ids, attn, pos, prev.response_mask.shape[1])
            loss_fn(lp, rows, slice(i, i + tr.mini_batch))[0].backward()
    elapsed = time.perf_counter() - t
    tr.policy.zero_grad(set_to_none=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--algorithms", nargs="+", default=["ppo", "grpo", "gspo", "dapo", "sdpo"])
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(
        f"{'algorithm':<10}{'base s':>9}{'PIPO on s':>11}{'ratio':>7}{'PIPO s':>9}{'fwd+bwd s':>11}"
        f"{'PIPO/floor':>12}{'total/total':>13}{'replayed':>10}{'verified':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algorithms:
            on = trainer([f"algorithm={algo}", "pipo=on", *args.overrides], Path(tmp) / f"{algo}-on")
            off = trainer([f"algorithm={algo}", "pipo=off", *args.overrides], Path(tmp) / f"{algo}-off")
            t_on, t_off, t_pipo, t_floor, replayed = [], [], [], [], []
            for step in range(1, args.steps + 1):
                prev = on.pipo.previous
                m_on, m_off = on.train_step(step), off.train_step(step)
                if step <= on.cfg.pipo.min_history:
                    continue  # PIPO cannot verify yet
                t_on.append(m_on["timing/step"])
                t_off.append(m_off["timing/step"])
                if m_on["pipo/verified"]:
                    active = ((prev.attributions != 0) & (prev.response_mask > 0)).any(-1)
                    t_floor.append(forward_backward(on, prev, active))
                    t_pipo.append(m_on["timing/pipo"])
                    replayed.append(m_on["pipo/replayed_fraction"])
            a, b = statistics.median(t_off), statistics.median(t_on)
            if t_pipo:
                pipo, floor = statistics.median(t_pipo), statistics.median(t_floor)
                paired = statistics.median(p / f for p, f in zip(t_pipo, t_floor, strict=True))
                total = sum(t_pipo) / sum(t_floor)
                rest = f"{pipo:>9.3f}{floor:>11.3f}{paired:>12.3f}{total:>13.3f}{statistics.mean(replayed):>10.2f}"
            else:
                rest = f"{'-':>9}{'-':>11}{'-':>12}{'-':>13}{'-':>10}"
            print(f"{algo:<10}{a:>9.3f}{b:>9.3f}{b / a:>7.2f}{rest}{len(t_pipo):>6}/{len(t_on)}", flush=True)


if __name__ == "__main__":
    main()
