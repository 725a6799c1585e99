"""The base models' supervised warm-up: seconds per step of this checkout's loop against another
commit's (default ``main``), side by side in one process.

    python tests/bench/warmup.py [--ref main] [--steps 60] [--repeats 3] [--threads 1]

For each tiny stand-in of Table 1 (math), both loops train the same freshly initialised model on the
same examples for ``--steps`` steps, taking turns ``--repeats`` times (a slow moment of a shared machine
hits both; seconds are the process's CPU time, which other processes on a shared machine disturb less than
wall time); prints the median seconds per step, their ratio, and the largest difference of the two
loops' per-step losses (a change of arithmetic only shows there at float rounding).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pipo.config import compose_cell
from pipo.models import tiny
from pipo.tasks import load_standin

ROOT = Path(__file__).resolve().parents[2]


def module_at(ref: str, path: str = "pipo/models/tiny.py"):
    """``path`` as it is at git ``ref``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], capture_output=True, text=True, check=True
    )
    file = Path(tempfile.mkdtemp()) / f"tiny_at_{ref.replace('/', '_')}.py"
    file.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location(file.stem, file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(module, arch: dict, task, steps: int, batch_size: int, lr: float) -> tuple[float, list[float]]:
    tok, examples = module.build_tokenizer(task.words), task.sft_examples
    model = module.build_model(arch, len(tok), tok.pad_token_id, tok.eos_token_id, seed=0)
    start = time.process_time()
    losses = module.supervised_train(model, tok, examples, steps, batch_size, lr, seed=0)
    return (time.process_time() - start) / steps, losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    old = module_at(args.ref)
    print(f"{'model':<16}{args.ref + ' s/step':>14}{'this s/step':>14}{'ratio':>8}{'max |Δloss|':>14}")
    for model in ("qwen3_4b_base", "qwen3_8b_base"):
        cfg = compose_cell([f"model={model}", "task=math"])
        task = load_standin(cfg.task)
        t = cfg.model.tiny
        timed(tiny, dict(t.arch), task, 3, t.sft_batch_size, t.sft_lr)  # warm the allocator and kernels
        times: dict[str, list[float]] = {"old": [], "new": []}
        for _ in range(args.repeats):
            for name, module in (("old", old), ("new", tiny)):
                seconds, losses = timed(module, dict(t.arch), task, args.steps, t.sft_batch_size, t.sft_lr)
                times[name].append(seconds)
                if name == "old":
                    old_losses = losses
        gap = max(abs(a - b) for a, b in zip(old_losses, losses, strict=True))
        o, n = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"{model:<16}{o:>14.4f}{n:>14.4f}{o / n:>8.2f}{gap:>14.2e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
