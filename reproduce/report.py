"""Does PIPO reproduce? Run every cell the paper's claims need, then the claims report.

python reproduce/report.py --plan                 # the cells, what is done, the estimated time
python reproduce/report.py -m                     # run them (resumable), re-evaluate Table 6, write the report
python -m analysis report                         # the report alone, from whatever runs exist
python reproduce/feedback.py -m                   # the feedback study (its own run root): the accuracy claim

The grid is sweeps/report.yaml (the union of the claims' grids, with every +PIPO cell's
pipo.control=zero twin); cells that other sweeps ran already are reused (same signatures).
The report: results/<scale>/report.md, report.tex (+ PDF), report_effects.{pdf,png}.
"""

import sys

import _checkout  # noqa: F401  (this checkout's pipo before any installed one)

from pipo.sweeps import SweepResult, load_sweep, main, plan, reevaluate_sweep


def table6(result: SweepResult) -> int:
    """Table 6's Pass@8 of the trained 4B Table 1 cells and of their zero twins (re-evaluation, trains
    nothing; cells already re-evaluated are read back); untrained ones are named and left."""
    sweep = load_sweep("table6")
    cells = {c.signature: c for ov in ([], ["pipo.control=zero"]) for c in plan(sweep, [*ov, *result.overrides])}
    trained = [c for c in cells.values() if c.status == "done"]
    for c in cells.values():
        if c.status != "done":
            print(f"table6: {c.label} is not trained ({c.status}): no Pass@8", file=sys.stderr)
    return reevaluate_sweep(sweep, trained).code if trained else 0


if __name__ == "__main__":
    result = main("report")
    if result.ran:
        from analysis.report import summary_text, write_report
        from analysis.runs import load_runs

        code = table6(result) or result.code
        runs = load_runs(result.run_root)
        feedback = result.run_root / "feedback"  # the feedback study's runs (python reproduce/feedback.py -m)
        paths, results = write_report(
            runs.frame,
            result.scale,
            result.run_root.parent / "results",
            "python reproduce/report.py -m " + " ".join(result.overrides),
            load_runs(feedback).frame if feedback.is_dir() else None,
        )
        print(summary_text(results))
        print("\n".join(f"wrote {p}" for p in paths))
        sys.exit(code)
    sys.exit(result.code)
