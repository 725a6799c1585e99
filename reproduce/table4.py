"""λ ablation — GRPO+PIPO with λ ∈ {0, 0.05, 0.1, 0.2, 0.5, 1}, and GRPO

python reproduce/table4.py -m                                   # tiny scale, this machine
python reproduce/table4.py --plan scale=paper                   # every cell, its status, GPU-hours
python reproduce/table4.py -m scale=paper cluster=slurm hydra.launcher.partition=gpu
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("table4")))
