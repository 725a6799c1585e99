"""Code and tool use — {PPO, GRPO, GSPO, DAPO} × {base, +PIPO} × {code (TACO), tool (RLLA)}

python reproduce/table2.py -m                                   # tiny scale, this machine
python reproduce/table2.py --plan scale=paper                   # every cell, its status, GPU-hours
python reproduce/table2.py -m scale=paper cluster=slurm hydra.launcher.partition=gpu
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("table2")))
