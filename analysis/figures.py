"""The paper's figures from run records (PDF and PNG): training dynamics, seeds, wall-clock, the λ
and K ablations, PIPO's own diagnostics (J, anchor μ ± σ, δ, φ), and the reward-noise study."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.runs import load_metrics, method_name
from analysis.tables import Table, cell_mask, expected_cells
from pipo.sweeps import Sweep

COLORS = {False: "#0072B2", True: "#D55E00"}  # base, +PIPO (colour-blind safe)
plt.rcParams.update(
    {"font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "legend.fontsize": 8, "lines.linewidth": 1.4}
)


def sweep_runs(sweep: Sweep, runs: pd.DataFrame, scale: str, overrides: Sequence[str] = ()) -> pd.DataFrame:
    """The runs of ``sweep``'s cells at ``scale`` that have a record (any state: figures show progress)."""
    if runs.empty:
        return runs
    runs = runs[runs["scale"] == scale]
    keep = np.zeros(len(runs), dtype=bool)
    for cell in expected_cells(sweep, overrides):
        keep |= cell_mask(runs, cell)
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
                label = method_name(algo, pipo)
                steps, avg = _eval_curve(run)
                axes[0, j].plot(steps, avg, marker="o", ms=3, color=COLORS[pipo], label=label)
                m = load_metrics(run.path)
                for i, (key, _) in enumerate(panels[1:], start=1):
                    if key in m:
                        axes[i, j].plot(m["step"], _smooth(m[key]), color=COLORS[pipo], label=label)
        axes[0, j].set_title(algo.upper())
        axes[-1, j].set_xlabel("step")
    for i, (_, ylabel) in enumerate(panels):
        axes[i, 0].set_ylabel(ylabel)
    handles = [plt.Line2D([], [], color=COLORS[p], label=("+PIPO" if p else "base")) for p in (False, True)]
    fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.03))
    fig.tight_layout()
    return _save(fig, out_dir, name)


def seeds(runs: pd.DataFrame, out_dir: Path, name: str = "fig4") -> list[Path]:
    """Figure 4: average accuracy vs step, mean over seeds with a min–max band; base vs +PIPO."""
    groups = _grouped(runs)
    if not groups:
        return []
    fig, axes = plt.subplots(1, len(groups), figsize=(2.3 * len(groups) + 0.4, 2.4), squeeze=False, sharey=True)
    for j, (algo, by_pipo) in enumerate(groups.items()):
        ax = axes[0, j]
        for pipo, members in by_pipo.items():
            curves = [pd.Series(avg, index=steps) for steps, avg in (_eval_curve(r) for r in members if r.evals)]
            if not curves:
                continue
            frame = pd.concat(curves, axis=1)
            ax.plot(
                frame.index,
                frame.mean(axis=1),
                color=COLORS[pipo],
                label=f"{method_name(algo, pipo)} (n={len(curves)})",
            )
            ax.fill_between(frame.index, frame.min(axis=1), frame.max(axis=1), color=COLORS[pipo], alpha=0.2, lw=0)
        ax.set_title(algo.upper())
        ax.set_xlabel("step")
        ax.legend(loc="lower right", frameon=False)
    axes[0, 0].set_ylabel("avg. accuracy (%)")
    fig.tight_layout()
    return _save(fig, out_dir, name)


def wallclock(runs: pd.DataFrame, out_dir: Path, name: str = "fig5") -> list[Path]:
    """Figure 5: accuracy vs wall-clock time per model, and PIPO's step-time overhead per algorithm."""
    if runs.empty:
        return []
    models = sorted(runs["model"].unique())
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(2.6 * (len(models) + 1) + 0.4, 2.5), squeeze=False)
    ratios: dict[tuple[str, str], float] = {}
    styles = ["-", "--", ":", "-."]
    for j, model in enumerate(models):
        ax = axes[0, j]
        groups = _grouped(runs[runs["model"] == model])
        for k, (algo, by_pipo) in enumerate(groups.items()):
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
                ax.plot(
                    minutes, avg, styles[k % 4], color=COLORS[pipo], marker="o", ms=2.5, label=method_name(algo, pipo)
                )
                medians[pipo] = float(m["timing/step"].median())
            if len(medians) == 2:
                ratios[(model, algo)] = medians[True] / medians[False]
        ax.set_title(model)
        ax.set_xlabel("wall-clock (min)")
        ax.set_ylabel("avg. accuracy (%)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False, fontsize=6, ncol=2)
    ax = axes[0, -1]
    if ratios:
        labels = [f"{a.upper()}\n{m.split('_')[1]}" for m, a in ratios]
        ax.bar(range(len(ratios)), list(ratios.values()), color="#999999")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(range(len(ratios)), labels, fontsize=7)
    ax.set_title("step time, PIPO / base")
    fig.tight_layout()
    return _save(fig, out_dir, name)


def ablation(table: Table, param: str, out_dir: Path, name: str) -> list[Path]:
    """AVG against λ or K for GRPO+PIPO, GRPO as a horizontal line; the paper's values for reference."""
    col = next(((b, "AVG") for b, cols in table.blocks if "AVG" in cols), None)
    if col is None:
        return []
    block = col[0]
    idx = table.row_keys.index(param)
    pts = sorted(
        (r[idx], table.cells[(r, block, "AVG")].mean)
        for r in table.rows
        if r[idx] != "" and (r, block, "AVG") in table.cells
    )
    base = [
        table.cells[(r, block, "AVG")].mean for r in table.rows if r[idx] == "" and (r, block, "AVG") in table.cells
    ]
    if not pts and not base:
        return []
    paper = sorted((r[idx], v) for (r, b, c), v in table.paper.items() if c == "AVG" and r[idx] != "")
    fig, ax = plt.subplots(figsize=(3.2, 2.4))
    if pts:
        ax.plot(range(len(pts)), [v for _, v in pts], "o-", color=COLORS[True], label="GRPO+PIPO (reproduced)")
        ax.set_xticks(range(len(pts)), [f"{x:g}" for x, _ in pts])
    if base:
        ax.axhline(base[0], ls="--", color=COLORS[False], label="GRPO (reproduced)")
    if paper and pts and [x for x, _ in paper] == [x for x, _ in pts]:
        ax2 = ax.twinx()
        ax2.plot(range(len(paper)), [v for _, v in paper], "s:", color="#555555", ms=3, label="paper (right axis)")
        ax2.set_ylabel("paper avg. (%)", color="#555555")
        ax2.legend(loc="lower right", frameon=False)
    ax.set_xlabel({"lam": "λ", "window": "K"}[param])
    ax.set_ylabel("avg. accuracy (%)")
    ax.legend(loc="lower left", frameon=False)
    fig.tight_layout()
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
        ax.plot(m["step"], m["pipo/J"], color="black", lw=1, label="J")
        if "pipo/mu" in m:
            ax.plot(m["step"], m["pipo/mu"], color=COLORS[True], lw=1, label="μ")
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
            ax.legend(frameon=False, fontsize=7)
    for j in range(3):
        axes[-1, j].set_xlabel("step")
    fig.tight_layout()
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
            ax.plot(p, [np.mean(v) for _, v in points], "o-", color=COLORS[pipo], label=method_name(algo, pipo))
            ax.fill_between(
                p, [min(v) for _, v in points], [max(v) for _, v in points], color=COLORS[pipo], alpha=0.2, lw=0
            )
        ax.set_title(algo)
        ax.set_xlabel("reward noise p")
        ax.set_ylabel("avg. accuracy (%)")
        ax.legend(frameon=False)
    fig.tight_layout()
    return _save(fig, out_dir, name)
