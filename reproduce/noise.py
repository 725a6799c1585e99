"""Reward noise — does PIPO's closed loop help more when the verifier's feedback is noisy? (not in the paper)

Each training verifier outcome is flipped with probability p (``task.reward_noise``; evaluation is never
noisy), for GRPO and DAPO with and without PIPO, three seeds each.

python reproduce/noise.py -m                                      # tiny scale, this machine (48 cells)
python reproduce/noise.py --plan                                  # every cell, its status
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("noise")))
