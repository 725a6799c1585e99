"""Build the paper's tables and figures from run records (or W&B) into results/<scale>/.

    python -m analysis table1                 # or table2 … table7, fig2, fig4, fig5, controls, all
    python -m analysis all --scale paper --root runs --out results
    python -m analysis table1 --source wandb --entity ENTITY --project pipo
    python -m analysis table1 --source wandb-offline --root runs   # W&B's own offline run files, never synced
    python -m analysis summary                # one line per run: state and average Pass@1
    python -m analysis report                 # every claim of the paper: effect, interval, verdict
    python -m analysis feedback --root runs/feedback   # δ_t against the realized improvement, SNR, per run

Each table comes as LaTeX (booktabs), Markdown and CSV, plus a "vs paper" view and, where cells
have several seeds, PIPO − base with 95% bootstrap intervals. Missing cells show as "—" and are
listed; unreadable records are reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis.build import ARTEFACTS, build
from analysis.runs import load_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=[*ARTEFACTS, "all", "summary", "report"], help="which artefact")
    parser.add_argument(
        "overrides", nargs="*", help="the overrides the sweep was launched with (e.g. pipo=off,authors recipe=authors)"
    )
    parser.add_argument(
        "--root", default="runs", help="run records (default: runs); --source wandb-offline: where W&B's run files are"
    )
    parser.add_argument("--scale", default="tiny", choices=["tiny", "paper"], help="which scale's runs (default: tiny)")
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    parser.add_argument(
        "--source",
        default="records",
        choices=["records", "wandb", "wandb-offline"],
        help="where runs come from: the run records; a W&B project (--entity, --project); or the W&B run files "
        "logged offline under --root (<record>/wandb/offline-run-*/run-<id>.wandb), read with W&B's own reader",
    )
    parser.add_argument("--entity", help="W&B entity (--source wandb)")
    parser.add_argument("--project", default="pipo", help="W&B project (--source wandb, wandb-offline; default: pipo)")
    parser.add_argument("--cache", default=".cache/wandb_export", help="where the W&B export is kept")
    args = parser.parse_args(argv)
    root = args.root
    if args.source == "wandb":
        from analysis.wandb_export import export

        if not args.entity:
            parser.error("--source wandb needs --entity")
        root = str(export(args.entity, args.project, args.cache))
    elif args.source == "wandb-offline":
        from analysis.wandb_offline import export_offline

        root = str(export_offline(args.root, args.project, args.cache))
    runs = load_runs(root)
    for path, reason in runs.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.what == "summary":
        return _summary(runs, root)
    if args.what == "report":
        return _report(runs, args)
    for name in ARTEFACTS if args.what == "all" else [args.what]:
        print(build(name, runs, args.scale, args.out, args.overrides).report() + "\n")
    return 0


def _report(runs, args) -> int:
    from analysis.report import summary_text, write_report

    command = "python -m analysis report" + (f" --root {args.root}" if args.root != "runs" else "")
    feedback = Path(args.root) / "feedback"  # the feedback study's own run root (sweeps/feedback.yaml)
    feedback_runs = load_runs(feedback).frame if feedback.is_dir() else None
    paths, results = write_report(runs.frame, args.scale, args.out, command, feedback_runs)
    print(summary_text(results))
    print("\n".join(f"wrote {p}" for p in paths))
    return 0


def _summary(runs, root: str) -> int:
    df = runs.frame
    if df.empty:
        print(f"no run records under {root}/")
        return 0
    df = df.assign(AVG=[100 * e[-1]["avg"]["pass@1"] if e else float("nan") for e in df["evals"]])
    print(df[["label", "state", "step", "AVG"]].to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
