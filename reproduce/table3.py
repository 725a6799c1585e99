"""Self-distillation on SciKnowEval — Qwen3-8B × {GRPO, SDPO} × {base, +PIPO}; base row from step 0

python reproduce/table3.py -m                                   # tiny scale, this machine
python reproduce/table3.py --plan scale=paper                   # every cell, its status, GPU-hours
python reproduce/table3.py -m scale=paper cluster=slurm hydra.launcher.partition=gpu
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("table3")))
