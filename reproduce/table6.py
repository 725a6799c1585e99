"""Math Pass@8 — Table 1's 4B cells re-evaluated with 8 samples per problem (trains nothing)

python reproduce/table6.py --plan                           # which Table 1 cells it reads, their status
python reproduce/table6.py -m                               # evaluate them (after reproduce/table1.py -m)
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from analysis.build import after_sweep
from pipo.sweeps import main

if __name__ == "__main__":
    sys.exit(after_sweep(main("table6")))
