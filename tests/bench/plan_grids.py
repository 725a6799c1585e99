"""Time to plan every grid of the paper's experiments (sweeps/) at both scales: compose, validate, sign, read status.

    python tests/bench/plan_grids.py [--repeats 5]

Prints the cell count and the median wall time over repeats (each repeat in a fresh process, so
Hydra's composition cache starts empty; interpreter start-up and imports are timed separately).
"""

import argparse
import statistics
import subprocess
import sys

ONE_RUN = """
import time
t0 = time.perf_counter()
from pipo.config import register_schemas
from pipo.sweeps import SWEEPS_DIR, load_sweep, plan
register_schemas()
t1 = time.perf_counter()
n = sum(len(plan(load_sweep(p.stem), [f"scale={s}"])) for p in sorted(SWEEPS_DIR.glob("*.yaml"))
        for s in ("tiny", "paper"))
print(n, t1 - t0, time.perf_counter() - t1)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", ONE_RUN], capture_output=True, text=True, check=True).stdout
        n, imports, planning = out.split()
        runs.append((int(n), float(imports), float(planning)))
    n = runs[0][0]
    print(
        f"{n} cells (every grid, tiny and paper): planning {statistics.median(r[2] for r in runs):.2f} s "
        f"median of {args.repeats} (imports {statistics.median(r[1] for r in runs):.2f} s, not counted)"
    )


if __name__ == "__main__":
    main()
