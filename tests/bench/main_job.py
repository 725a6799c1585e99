"""Wall time of the README's main job, from nothing: ``python reproduce/table1.py -m`` (tiny Table 1).

    python tests/bench/main_job.py [--sequential] [overrides...]

Runs the sweep with a fresh run root and an empty model cache (the base-model builds are timed
too) in a temporary directory, and prints the wall time against the 10-minute bar. With
``--sequential`` it runs it a second time with ``hydra.launcher.n_jobs=1`` (one cell after the
other) and prints the speed-up of the default (parallel cells) over it.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BAR_S = 10 * 60


def run(overrides: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PIPO_CACHE": str(Path(tmp) / "cache"), "TQDM_DISABLE": "1"}
        cmd = [sys.executable, str(ROOT / "reproduce" / "table1.py"), "-m", f"run_root={tmp}/runs", *overrides]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if out.returncode:
            sys.exit(f"the main job failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", action="store_true")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    parallel = run(args.overrides)
    print(
        f"main job (tiny Table 1, 16 cells, base models built): {parallel / 60:.1f} min "
        f"({parallel / BAR_S:.2f} × the 10-minute bar)",
        flush=True,
    )
    if args.sequential:
        one = run([*args.overrides, "hydra.launcher.n_jobs=1"])
        print(f"one cell at a time: {one / 60:.1f} min; parallel cells are {one / parallel:.2f}× faster")


if __name__ == "__main__":
    main()
