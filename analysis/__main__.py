"""python -m analysis summary [--root runs]: one line per run with its latest average Pass@1."""

from __future__ import annotations

import argparse
import sys

from analysis.runs import load_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    parser.add_argument("command", choices=["summary"])
    parser.add_argument("--root", default="runs", help="where the run records are (default: runs)")
    args = parser.parse_args(argv)
    df = load_runs(args.root)
    if df.empty:
        print(f"no run records under {args.root}/")
        return 0
    cols = [c for c in ("label", "state", "step", "base_AVG", "AVG") if c in df]
    print(df[cols].to_string(index=False, float_format=lambda x: f"{100 * x:.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
