"""Feedback — is PIPO's feedback right, and does PIPO help when it is? (not in the paper; docs/ALGORITHM.md,
"Is the feedback right?")

GRPO and DAPO, each base, +PIPO with J_t from the verifier (the paper's), +PIPO with J_t from the probe
(an accurate estimate of performance) and its zero and shuffle controls, seeds 6/21/42; the probe
(128 prompts × 8 samples) measures the realized improvement of every update in every cell. Records go to
runs/feedback/ (sweeps/feedback.yaml says why); the table and the feedback's statistics to runs/results/.

python reproduce/feedback.py --plan                               # every cell (30), its status and time
python reproduce/feedback.py -m                                   # tiny scale, this machine
python -m analysis feedback --root runs/feedback                  # the table and the feedback's statistics again
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("feedback")))
