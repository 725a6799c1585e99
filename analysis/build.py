"""Build a table or figure (or all of them) from run records into ``results/``.

pandas, matplotlib and the table code load on first use: the ``reproduce/`` scripts import this
module, and their ``--plan`` builds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipo.sweeps import SweepResult, load_sweep

if TYPE_CHECKING:
    from analysis.runs import Runs
    from analysis.tables import Table

ARTEFACTS = (
    "table1",
    "table2",
    "table3",
    "table4",
    "table6",
    "table7",
    "fig2",
    "fig4",
    "fig5",
    "controls",
    "noise",
    "feedback",
)


@dataclass
class Built:
    name: str
    paths: list[Path] = field(default_factory=list)
    table: Table | None = None
    missing: list[str] = field(default_factory=list)
    text: str = ""  # a report beside the table (the feedback study's per-run statistics)

    def report(self) -> str:
        from analysis.render import to_markdown

        lines = [f"{self.name}:"]
        if self.table is not None:
            lines.append(to_markdown(self.table).rstrip())
        if self.text:
            lines.append(self.text)
        lines += [f"  wrote {p}" for p in self.paths] or ["  nothing to draw yet (no runs of its cells)"]
        if self.missing:
            lines.append(f"  {len(self.missing)} cell(s) missing (shown as —):")
            lines += [f"    {m}" for m in self.missing]
        return "\n".join(lines)


def build(
    name: str, runs: Runs, scale: str = "tiny", out_dir: str | Path = "results", overrides: Sequence[str] = ()
) -> Built:
    """The artefact ``name`` (a sweep with a ``table:`` and/or ``figure:`` section) from ``runs``, its
    cells composed with the user's ``overrides`` (as the sweep was launched)."""
    from analysis import figures
    from analysis.render import write_table
    from analysis.tables import TableSpec, build_table

    sweep = load_sweep(name)
    out = Path(out_dir) / scale
    built = Built(name)
    frame = runs.frame
    if sweep.table is not None:
        table = build_table(name, sweep, TableSpec(**sweep.table), frame, scale, overrides)
        built.table, built.missing = table, table.missing
        built.paths += write_table(table, out, caption=sweep.description)
    fig = sweep.figure or {}
    members = figures.sweep_runs(sweep, frame, scale, overrides)
    if fig.get("kind") == "ablation" and built.table is not None:
        built.paths += figures.ablation(built.table, fig["param"], out, f"{name}_{fig['param']}")
    elif fig.get("kind") == "dynamics":
        built.paths += figures.dynamics(members, out, name)
        built.paths += figures.diagnostics(members, out, "pipo_diagnostics")
    elif fig.get("kind") == "seeds":
        built.paths += figures.seeds(members, out, name)
    elif fig.get("kind") == "noise" and built.table is not None:
        built.paths += figures.noise(built.table, out, name)
    elif fig.get("kind") == "wallclock":
        built.paths += figures.wallclock(members, out, name)
    elif fig.get("kind") == "feedback":  # every run at this scale that logged J's noise or a probe
        from analysis.feedback import build_feedback

        built.text, paths = build_feedback(frame, scale, out, name)
        built.paths += paths
    return built


def after_sweep(result: SweepResult) -> int:
    """``reproduce/<name>.py``'s last step: once the sweep ran, its table or figure from its runs (into
    ``results/<scale>/`` beside the run records), printed as a report. Returns the sweep's exit code."""
    if result.ran and result.sweep is not None:
        from analysis.runs import load_runs

        results = result.run_root.parent / "results"
        built = build(result.sweep.name, load_runs(result.run_root), result.scale, results, result.overrides)
        print(f"\n{result.sweep.name}: {result.sweep.description}\n{built.report()}")
    return result.code
