"""PIPO's overhead per algorithm: step time with PIPO / without, side by side in one process.

    python tests/bench/pipo_overhead.py [--steps 12] [--algorithms ppo grpo gspo dapo sdpo] [overrides...]

For each algorithm, two trainers (pipo=on, pipo=off) on the same cached tiny base model take turns,
step by step, so machine noise hits both alike. Steps before PIPO's first verification are not
timed. Prints the median step time of each and their ratio, and the median verification time.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--algorithms", nargs="+", default=["ppo", "grpo", "gspo", "dapo", "sdpo"])
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"{'algorithm':<10}{'base s/step':>12}{'PIPO s/step':>12}{'ratio':>8}{'verify s':>10}{'verified':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algorithms:
            on = trainer([f"algorithm={algo}", "pipo=on", *args.overrides], Path(tmp) / f"{algo}-on")
            off = trainer([f"algorithm={algo}", "pipo=off", *args.overrides], Path(tmp) / f"{algo}-off")
            t_on, t_off, t_verify, verified = [], [], [], 0
            for step in range(1, args.steps + 1):
                m_on, m_off = on.train_step(step), off.train_step(step)
                if step > on.cfg.pipo.min_history:  # PIPO can verify from here on
                    t_on.append(m_on["timing/step"])
                    t_off.append(m_off["timing/step"])
                    t_verify.append(m_on["timing/verify"])
                    verified += int(m_on["pipo/verified"])
            a, b = statistics.median(t_off), statistics.median(t_on)
            print(
                f"{algo:<10}{a:>12.3f}{b:>12.3f}{b / a:>8.2f}{statistics.median(t_verify):>10.3f}"
                f"{verified:>6}/{len(t_on)}"
            )


if __name__ == "__main__":
    main()
