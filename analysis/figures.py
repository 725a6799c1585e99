"""The paper's figures from run records (PDF and PNG): training dynamics, seeds, wall-clock, the λ
and K ablations (PIPO − base with its interval, beside the paper's), PIPO's own diagnostics (J,
anchor μ ± σ, δ, φ), and the reward-noise study. ``tests/analysis/test_figures.py`` renders each
one and checks that no two texts overlap, nothing is off the canvas and no legend covers data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.runs import load_metrics
from analysis.tables import Table, grid_cell_mask, pipo_minus_base
from pipo.sweeps import Sweep, grid_cells

COLORS = {False: "#0072B2", True: "#D55E00"}  # base, +PIPO (colour-blind safe)
LEGEND_ROW_IN = 0.22  # the height a one-row figure legend takes above the axes (inches)
plt.rcParams.update(
    {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "lines.linewidth": 1.4}
)


def sweep_runs(sweep: Sweep, runs: pd.DataFrame, scale: str, overrides: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of ``sweep``'s cells at ``scale`` that have a record (any state: figures show progress)."""
    if runs.empty:
        return runs
    runs = runs[runs["scale"] == scale]
    keep = np.zeros(len(runs), dtype=bool)
    for cell in grid_cells(sweep, overrides):
        keep |= grid_cell_mask(runs, cell)
    return runs[keep]


def _eval_curve(run) -> tuple[np.ndarray, np.ndarray]:
    steps = np.array([e["step"] for e in run.evals])
    avg = np.array([100.0 * np.mean([b["correct"] / b["n"] for b in e["benchmarks"].values()]) for e in run.evals])
    return steps, avg


def _smooth(y: pd.Series, window: int = 5) -> pd.Series:
    return y.rolling(window, min_periods=1).mean()


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    for p in paths:
        fig.savefig(p, dpi=200, bbox_inches="tight")
    plt.close(fig)
    return paths


def _legend_above(fig, handles, labels=None, **kwargs) -> None:
    """One legend row above the axes, across the figure (it covers no data), and the axes below it."""
    labels = [h.get_label() for h in handles] if labels is None else labels
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0), frameon=False, **kwargs)
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - LEGEND_ROW_IN / fig.get_figheight()))


def _base_and_pipo() -> list:
    return [plt.Line2D([], [], color=COLORS[p], label=("+PIPO" if p else "base")) for p in (False, True)]


def _grouped(runs: pd.DataFrame) -> dict[str, dict[bool, list]]:
    out: dict[str, dict[bool, list]] = {}
    for run in runs.itertuples(index=False):
        out.setdefault(run.algorithm, {False: [], True: []})[run.pipo].append(run)
    order = ["ppo", "grpo", "gspo", "dapo", "sdpo"]  # the paper's order
    return dict(sorted(out.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def dynamics(runs: pd.DataFrame, out_dir: Path, name: str = "fig2") -> list[Path]:
    """Figure 2: average accuracy, critic reward and response length vs step; base vs +PIPO."""
    groups = _grouped(runs)
    if not groups:
        return []
    panels = [
        ("accuracy", "avg. accuracy (%)"),
        ("critic/score/mean", "critic reward"),
        ("response_length/mean", "response length"),
    ]
    fig, axes = plt.subplots(
        len(panels), len(groups), figsize=(1.9 * len(groups) + 0.6, 5.4), squeeze=False, sharex=True
    )
    for j, (algo, by_pipo) in enumerate(groups.items()):
        for pipo, members in by_pipo.items():
            for run in members[:1]:  # one seed per curve here; Figure 4 shows seeds
                steps, avg = _eval_curve(run)
                axes[0, j].plot(steps, avg, marker="o", ms=3, color=COLORS[pipo])
                m = load_metrics(run.path)
                for i, (key, _) in enumerate(panels[1:], start=1):
                    if key in m:
                        axes[i, j].plot(m["step"], _smooth(m[key]), color=COLORS[pipo])
        axes[0, j].set_title(algo.upper())
        axes[-1, j].set_xlabel("step")
    for i, (_, ylabel) in enumerate(panels):
        axes[i, 0].set_ylabel(ylabel)
    _legend_above(fig, _base_and_pipo(), ncol=2)
    return _save(fig, out_dir, name)


def seeds(runs: pd.DataFrame, out_dir: Path, name: str = "fig4") -> list[Path]:
    """Figure 4: average accuracy vs step, mean over seeds with a min–max band; base vs +PIPO."""
    groups = _grouped(runs)
    if not groups:
        return []
    fig, axes = plt.subplots(1, len(groups), figsize=(2.3 * len(groups) + 0.4, 2.6), squeeze=False, sharey=True)
    for j, (algo, by_pipo) in enumerate(groups.items()):
        ax = axes[0, j]
        seeds_of = []
        for pipo, members in by_pipo.items():
            curves = [pd.Series(avg, index=steps) for steps, avg in (_eval_curve(r) for r in members if r.evals)]
            seeds_of.append(str(len(curves)))
            if not curves:
                continue
            frame = pd.concat(curves, axis=1)
            ax.plot(frame.index, frame.mean(axis=1), color=COLORS[pipo])
            ax.fill_between(frame.index, frame.min(axis=1), frame.max(axis=1), color=COLORS[pipo], alpha=0.2, lw=0)
        ax.set_title(f"{algo.upper()} (seeds {'/'.join(seeds_of)})")
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("avg. accuracy (%)")
    _legend_above(fig, _base_and_pipo(), ncol=2)
    return _save(fig, out_dir, name)


def wallclock(runs: pd.DataFrame, out_dir: Path, name: str = "fig5") -> list[Path]:
    """Figure 5: accuracy vs wall-clock time per model, and PIPO's step-time overhead per algorithm."""
    if runs.empty:
        return []
    models = sorted(runs["model"].unique())
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(2.6 * (len(models) + 1) + 0.4, 2.5), squeeze=False)
    ratios: dict[tuple[str, str], float] = {}
    styles = ["-", "--", ":", "-."]
    algos = list(_grouped(runs))  # one line style per algorithm across the panels
    for j, model in enumerate(models):
        ax = axes[0, j]
        groups = _grouped(runs[runs["model"] == model])
        for algo, by_pipo in groups.items():
            medians = {}
            for pipo, members in by_pipo.items():
                if not members or not members[0].evals:
                    continue
                run = members[0]
                m = load_metrics(run.path)
                if "timing/step" not in m:
                    continue
                clock = m.set_index("step")["timing/step"].cumsum() / 60.0
                steps, avg = _eval_curve(run)
                minutes = [0.0 if s == 0 else float(clock.get(s, np.nan)) for s in steps]
                ax.plot(minutes, avg, styles[algos.index(algo) % 4], color=COLORS[pipo], marker="o", ms=2.5)
                medians[pipo] = float(m["timing/step"].median())
            if len(medians) == 2:
                ratios[(model, algo)] = medians[True] / medians[False]
        ax.set_title(model)
        ax.set_xlabel("wall-clock (min)")
        ax.set_ylabel("avg. accuracy (%)")
    ax = axes[0, -1]
    if ratios:  # horizontal bars: one label per line, however many (model, algorithm) pairs
        labels = [f"{a.upper()} {m.split('_')[1]}" for m, a in ratios]
        ax.barh(range(len(ratios)), list(ratios.values()), color="#999999")
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_yticks(range(len(ratios)), labels, fontsize=7)
        ax.invert_yaxis()
    ax.set_title("step time, PIPO / base")
    handles = _base_and_pipo() + [
        plt.Line2D([], [], color="gray", ls=styles[k % 4], label=a.upper()) for k, a in enumerate(algos)
    ]
    _legend_above(fig, handles, ncol=len(handles), fontsize=7)
    return _save(fig, out_dir, name)


def ablation(table: Table, param: str, out_dir: Path, name: str) -> list[Path]:
    """PIPO − base (AVG, points) against λ or K on one axis: the reproduced difference with its 95%
    interval as a band (the table's own, :func:`analysis.tables.pipo_minus_base`), the paper's
    PIPO − base as points, and the base algorithm as the zero line."""
    block = next((b for b, cols in table.blocks if "AVG" in cols), None)
    if block is None or not table.pipo_rows:
        return []
    idx = table.row_keys.index(param)
    rows = sorted(table.pipo_rows, key=lambda r: r[idx])
    base_name = table.pipo_rows[rows[0]][table.row_keys.index("method")]
    diffs = pipo_minus_base(table)
    ours, band, paper = [], [], []  # (x, PIPO − base), (x, low, high), (x, the paper's PIPO − base)
    for i, row in enumerate(rows):
        key, base = (row, block, "AVG"), (table.pipo_rows[row], block, "AVG")
        if key in diffs:
            ours.append((i, diffs[key][0]))
            band.append((i, diffs[key][1], diffs[key][2]))
        elif key in table.cells and base in table.cells:  # no interval (one seed, no per-problem outcomes)
            ours.append((i, table.cells[key].mean - table.cells[base].mean))
            band.append((i, np.nan, np.nan))  # a gap in the band
        if key in table.paper and base in table.paper:
            paper.append((i, table.paper[key] - table.paper[base]))
    if not ours and not paper:
        return []
    fig, ax = plt.subplots(figsize=(3.3, 2.5))
    zero = ax.axhline(0.0, color=COLORS[False], lw=1.0, ls="--")
    legend = [(zero, f"{base_name} (base) = 0")]
    if ours:
        line = ax.plot(*zip(*ours, strict=True), "o-", color=COLORS[True], ms=4)[0]
        legend.append((line, "reproduced"))
        x, low, high = (np.array(v, dtype=float) for v in zip(*band, strict=True))
        if np.isfinite(low).any():
            patch = ax.fill_between(x, low, high, color=COLORS[True], alpha=0.25, lw=0)
            legend[-1] = ((patch, line), "reproduced, 95% CI")
    if paper:
        points = ax.plot(*zip(*paper, strict=True), "s", color="black", ms=4, mfc="white", mew=1.2, zorder=3)[0]
        legend.append((points, "paper"))
    ax.set_xticks(range(len(rows)), [f"{r[idx]:g}" for r in rows])
    ax.set_xlim(-0.4, len(rows) - 0.6)
    ax.set_xlabel({"lam": "λ", "window": "window K"}[param])
    ax.set_ylabel(f"PIPO − {base_name}, avg. (pts)")
    handles, labels = zip(*legend, strict=True)
    spacing = {"handlelength": 1.3, "handletextpad": 0.4, "columnspacing": 0.8, "borderaxespad": 0.2}
    _legend_above(fig, handles, labels, ncol=len(legend), **spacing)
    return _save(fig, out_dir, name)


def diagnostics(runs: pd.DataFrame, out_dir: Path, name: str = "pipo_diagnostics") -> list[Path]:
    """PIPO over training, per algorithm: J with the anchor μ ± σ, the standardized δ, and φ(δ)."""
    pipo_runs = [r for r in runs.itertuples(index=False) if r.pipo]
    if not pipo_runs:
        return []
    by_algo = {}
    for r in pipo_runs:
        by_algo.setdefault(r.algorithm, r)
    fig, axes = plt.subplots(len(by_algo), 3, figsize=(7.0, 1.8 * len(by_algo) + 0.3), squeeze=False, sharex=True)
    for i, (algo, run) in enumerate(sorted(by_algo.items())):
        m = load_metrics(run.path)
        if "pipo/J" not in m:
            continue
        ax = axes[i, 0]
        ax.plot(m["step"], m["pipo/J"], color="black", lw=1)
        if "pipo/mu" in m:
            ax.plot(m["step"], m["pipo/mu"], color=COLORS[True], lw=1)
            ax.fill_between(
                m["step"],
                m["pipo/mu"] - m["pipo/sigma"],
                m["pipo/mu"] + m["pipo/sigma"],
                color=COLORS[True],
                alpha=0.2,
                lw=0,
            )
        ax.set_ylabel(algo.upper())
        for j, key, label in ((1, "pipo/delta", "δ"), (2, "pipo/phi", "φ(δ)")):
            if key in m:
                axes[i, j].plot(m["step"], m[key], color=COLORS[True], lw=0.8)
                axes[i, j].axhline(0, color="black", lw=0.5)
            if i == 0:
                axes[i, j].set_title(label)
        if i == 0:
            axes[i, 0].set_title("J and anchor μ ± σ")
    for j in range(3):
        axes[-1, j].set_xlabel("step")
    handles = [
        plt.Line2D([], [], color="black", lw=1, label="J"),
        plt.Line2D([], [], color=COLORS[True], label="μ ± σ"),
    ]
    _legend_above(fig, handles, ncol=2)
    return _save(fig, out_dir, name)


def noise(table: Table, out_dir: Path, name: str = "noise") -> list[Path]:
    """AVG against the reward-noise probability p, one panel per base algorithm: base and +PIPO, the
    seed mean with its min–max band; PIPO − base with its 95% interval in the table's diff view."""
    block = next((b for b, cols in table.blocks if "AVG" in cols), None)
    idx = table.row_keys.index("noise")
    curves: dict[str, dict[bool, list[tuple[float, list[float]]]]] = {}
    for row in table.rows:
        cell = table.cells.get((row, block, "AVG"))
        if cell is None or not cell.values:
            continue
        method = row[table.row_keys.index("method")]
        algo, pipo = method.removesuffix("+PIPO"), method.endswith("+PIPO")
        curves.setdefault(algo, {False: [], True: []})[pipo].append((float(row[idx]), cell.values))
    if not curves:
        return []
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.5), squeeze=False)
    for ax, (algo, by_pipo) in zip(axes[0], curves.items(), strict=True):
        for pipo, points in by_pipo.items():
            if not points:
                continue
            points.sort()
            p = [x for x, _ in points]
            ax.plot(p, [np.mean(v) for _, v in points], "o-", color=COLORS[pipo])
            ax.fill_between(
                p, [min(v) for _, v in points], [max(v) for _, v in points], color=COLORS[pipo], alpha=0.2, lw=0
            )
        ax.set_title(algo)
        ax.set_xlabel("reward noise p")
        ax.set_ylabel("avg. accuracy (%)")
    _legend_above(fig, _base_and_pipo(), ncol=2)
    return _save(fig, out_dir, name)
