"""The paper's tables from run records: reproduced values, the paper's side by side, PIPO − base.

A table is read from the cells of its sweep (``sweeps/<name>.yaml``: the grid says which runs
belong to it, its ``table:`` section how they are laid out). Values are recomputed from each run's
per-benchmark counts; AVG is the unweighted mean of the benchmark columns, per run, then averaged
over seeds. A cell with no finished run is shown as "—" and listed.

Each PIPO − base difference has a 95% interval: a paired bootstrap over the problems of each
benchmark (the runs' per-problem outcomes), over the seeds as well when the rows have several; runs
recorded before per-problem outcomes fall back to a bootstrap over seeds (two or more per row).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.runs import method_name
from pipo.cell import settings_key
from pipo.records import RunRecord
from pipo.sweeps import GridCell, Sweep, grid_cells

PAPER_DIR = Path(__file__).with_name("paper")
PAPER_NAMES = {"OlympiadBench": "Olympiad"}  # our benchmark name -> the paper table's column
ROW_LABELS = {
    "method": "Method",
    "lam": "λ",
    "window": "K",
    "optimizer": "Optimizer",
    "control": "Control",
    "performance": "J_t",
    "noise": "Reward noise p",
}
SHARED_ROW_KEYS = ("noise",)  # row keys that a base row has too (the others are PIPO's settings)
MISSING = "—"


@dataclass
class TableSpec:
    """How a sweep's runs become a table (the ``table:`` section of its sweep file)."""

    rows: list[str] = field(default_factory=lambda: ["method"])  # method lam window optimizer control noise performance
    blocks: str | None = None  # model | task: one column block per value
    metric: str = "pass@1"  # pass@1 (the last evaluation) or pass@k (pass_at_<k>.json)
    base_row: bool = False  # the untrained base model's row (step-0 evaluation)
    paper: str | None = None  # the paper's numbers: a CSV in analysis/paper/


@dataclass
class Cell:
    """One value of the table: mean and std over seeds, and the per-seed values."""

    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan


@dataclass
class Table:
    name: str
    scale: str
    row_keys: list[str]
    rows: list[tuple]  # row labels, in order
    blocks: list[tuple[str, list[str]]]  # (block label, columns: benchmarks then "AVG")
    cells: dict[tuple, Cell]  # (row, block label, column) -> Cell
    split_names: dict[str, str] = field(default_factory=dict)  # benchmark -> the split that stands for it
    missing: list[str] = field(default_factory=list)
    paper: dict[tuple, float] = field(default_factory=dict)  # (row, block label, column) -> paper value
    pipo_rows: dict[tuple, tuple] = field(default_factory=dict)  # +PIPO row -> its base algorithm's row
    # (row, block) -> seed -> benchmark -> problem id -> Pass@1 outcome, of the runs that recorded them
    outcomes: dict[tuple, dict[int, dict[str, dict[str, float]]]] = field(default_factory=dict)
    sizes: dict[tuple, int] = field(default_factory=dict)  # (block, benchmark) -> problems evaluated
    _diffs: dict | None = field(default=None, repr=False)

    def column_label(self, column: str) -> str:
        """At tiny scale a column shows the stand-in split's name; at paper scale the benchmark's."""
        return self.split_names.get(column, column) if self.scale == "tiny" else PAPER_NAMES.get(column, column)


def expected_cells(sweep: Sweep, overrides: Sequence[str] = ()) -> list[dict]:
    """The grid's cells (with the user's ``overrides``, as the sweep was launched) as run attributes
    (``model``, ``task``, ``algorithm``, ``pipo``, ``lam``, ...)."""
    return [run_attributes(cell) for cell in grid_cells(sweep, overrides)]


def run_attributes(cell: GridCell) -> dict:
    """The attributes a run of ``cell`` has (columns of :func:`analysis.runs.load_runs`), from its
    composed config; ``seed`` only where the grid chooses one (otherwise every seed's run is the cell's)."""
    cfg = cell.cfg
    out = {
        "model": cfg.model.name,
        "task": cfg.task.name,
        "algorithm": cfg.algorithm.name,
        "pipo": bool(cfg.pipo.enabled),
        "recipe": str(cfg.recipe),  # a paper-recipe table never mixes in runs of the authors' recipe
        "noise": float(cfg.task.reward_noise),  # nor runs trained on noisy rewards
    }
    if out["pipo"]:
        out.update(
            preset=str(cfg.pipo.preset),
            lam=float(cfg.pipo.lam),
            window=int(cfg.pipo.window),
            optimizer=str(cfg.pipo.optimizer),
            control=str(cfg.pipo.control),
            performance=str(cfg.pipo.performance),
        )
    if "seed" in cell.choices:
        out["seed"] = int(cfg.seed)
    return out


def cell_mask(runs: pd.DataFrame, cell: dict, settings: str | None = None) -> np.ndarray:
    """Which of ``runs`` have every attribute of ``cell``. With ``settings`` (the cell's
    :func:`~pipo.cell.settings_key`), only those of exactly its settings when there are any: a run of the
    same attributes but another testbed (a stand-in's architecture, a learning rate) is not the cell's."""
    mask = np.ones(len(runs), dtype=bool)
    for key, value in cell.items():
        mask &= (runs[key] == value).to_numpy()
    if settings is not None and "settings" in runs:
        exact = mask & (runs["settings"] == settings).to_numpy()
        if exact.any():
            return exact
    return mask


def grid_cell_mask(runs: pd.DataFrame, cell: GridCell) -> np.ndarray:
    """:func:`cell_mask` of a grid cell: its attributes, and its settings."""
    return cell_mask(runs, run_attributes(cell), settings_key(cell.cfg))


def _matches(runs: pd.DataFrame, cell: dict) -> pd.DataFrame:
    return runs[cell_mask(runs, cell)]


def run_values(run, benchmarks: list[str], metric: str) -> dict[str, float] | None:
    """``{benchmark: value, "AVG": mean}`` of a run (0–100), or None when it has no such evaluation."""
    if metric == "pass@1":
        if not run.evals:
            return None
        per = {e.get("stands_for", s): 100.0 * e["correct"] / e["n"] for s, e in run.evals[-1]["benchmarks"].items()}
    else:
        res = RunRecord(run.path).pass_at_k(int(metric.split("@")[1]))
        if res is None:
            return None
        per = {e.get("stands_for", s): 100.0 * e[metric] for s, e in res["benchmarks"].items()}
    if any(b not in per for b in benchmarks):
        return None
    out = {b: per[b] for b in benchmarks}
    out["AVG"] = float(np.mean([out[b] for b in benchmarks]))
    return out


def build_table(
    name: str, sweep: Sweep, spec: TableSpec, runs: pd.DataFrame, scale: str, overrides: Sequence[str] = ()
) -> Table:
    """The table of sweep ``name`` from ``runs`` (a :func:`analysis.runs.load_runs` frame), its cells
    composed with the user's ``overrides`` (e.g. ``pipo=off,authors recipe=authors``)."""
    runs = runs[(runs["scale"] == scale)] if not runs.empty else runs
    done = runs[runs["state"] == "done"] if not runs.empty else runs
    rows: list[tuple] = []
    blocks: dict[str, list[str]] = {}
    cells: dict[tuple, Cell] = {}
    split_names: dict[str, str] = {}
    missing: list[str] = []
    base_done: set[str] = set()
    pipo_rows: dict[tuple, tuple] = {}
    outcomes: dict[tuple, dict] = {}
    sizes: dict[tuple, int] = {}
    for grid_cell in grid_cells(sweep, overrides):
        cell = run_attributes(grid_cell)
        row = tuple(_row_value(cell, k) for k in spec.rows)
        block = _cell_block(grid_cell, spec)
        bench, splits = task_benchmarks(grid_cell)
        blocks.setdefault(block, [*bench, "AVG"])
        split_names.update(splits)
        if row not in rows:
            rows.append(row)
        if cell["pipo"] and "method" in spec.rows:
            base = tuple(
                method_name(cell["algorithm"], False) if k == "method" else _row_value({**cell, "pipo": False}, k)
                for k in spec.rows
            )
            pipo_rows[row] = base
        matched = done[cell_mask(done, cell, settings_key(grid_cell.cfg))] if not done.empty else done
        if matched.empty:
            missing.append(_describe(cell, runs))
            continue
        for run in matched.itertuples(index=False):
            values = run_values(run, bench, spec.metric)
            if values is None:
                missing.append(f"{_describe(cell, runs)}: no {spec.metric} evaluation in {run.path}")
                continue
            for col, v in values.items():
                cells.setdefault((row, block, col), Cell([])).values.append(v)
            if spec.metric == "pass@1":
                last = run.evals[-1]["benchmarks"]
                sizes.update({(block, e.get("stands_for", s)): int(e["n"]) for s, e in last.items()})
                per = {e.get("stands_for", s): e["per_problem"] for s, e in last.items() if "per_problem" in e}
                if all(b in per for b in bench):
                    outcomes.setdefault((row, block), {})[int(run.seed)] = per
            if spec.base_row and block not in base_done and run.evals and run.evals[0]["step"] == 0:
                first = run.evals[0]["benchmarks"]
                base = {e.get("stands_for", s): 100.0 * e["correct"] / e["n"] for s, e in first.items()}
                base["AVG"] = float(np.mean([base[b] for b in bench]))
                base_key = tuple("Base Model" if k == "method" else "" for k in spec.rows)
                for col, v in base.items():
                    cells[(base_key, block, col)] = Cell([v])
                base_done.add(block)
    if spec.base_row:
        rows.insert(0, tuple("Base Model" if k == "method" else "" for k in spec.rows))
    table = Table(
        name, scale, spec.rows, rows, list(blocks.items()), cells, split_names, missing, {}, pipo_rows, outcomes, sizes
    )
    if spec.paper:
        table.paper = read_paper(PAPER_DIR / spec.paper, table, spec)
    return table


def _row_value(cell: dict, key: str):
    if key == "method":
        return method_name(cell["algorithm"], cell["pipo"])
    return cell.get(key, "") if cell["pipo"] or key in SHARED_ROW_KEYS else ""


def _cell_block(cell: GridCell, spec: TableSpec) -> str:
    if spec.blocks is None:
        return ""
    if spec.blocks == "task":
        return cell.cfg.task.name.capitalize()
    return cell.cfg.model.hf_id.split("/")[-1]  # Qwen/Qwen3-4B-Base -> Qwen3-4B-Base


def task_benchmarks(cell: GridCell) -> tuple[list[str], dict[str, str]]:
    """The cell's task's benchmarks in order, and for each the tiny split that stands for it (from its
    composed config)."""
    task = cell.cfg.task
    return list(task.benchmarks), {sp.stands_for: name for name, sp in task.standin.splits.items()}


def _describe(cell: dict, runs: pd.DataFrame) -> str:
    text = f"{method_name(cell['algorithm'], cell['pipo'])} · {cell['model']} · {cell['task']}"
    if cell["pipo"]:
        text += f" · λ={cell['lam']:g} · K={cell['window']}"
        text += f" · {cell['performance']} J" if cell.get("performance", "verifier") != "verifier" else ""
        text += f" · {cell['control']}" if cell.get("control", "none") != "none" else ""
    if "seed" in cell:
        text += f" · seed {cell['seed']}"
    if not runs.empty:
        states = sorted(set(_matches(runs, cell)["state"]))
        if states:
            text += f" ({', '.join(states)})"
    return text


def read_paper(path: Path, table: Table, spec: TableSpec) -> dict[tuple, float]:
    """The paper's value for each (row, block, column) of ``table`` that the paper reports."""
    with open(path, encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    out = {}
    param = {"lam": "lambda", "window": "K"}
    for rec in records:
        row = tuple(rec["method"] if k == "method" else _number(rec.get(param[k], "")) for k in spec.rows)
        for block, columns in table.blocks:
            if "model" in rec and spec.blocks == "model" and rec["model"] != block:
                continue
            for col in columns:
                name = PAPER_NAMES.get(col, col)
                if col == "AVG" and spec.blocks == "task":
                    name = f"{block} AVG"
                if rec.get(name) not in (None, ""):
                    out[(row, block, col)] = float(rec[name])
    return out


def _number(text: str):
    if text == "":
        return ""
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


# -- PIPO − base, with a bootstrap interval ---------------------------------------------------------
def paired_bootstrap(
    pipo: dict[int, dict[str, dict[str, float]]],
    base: dict[int, dict[str, dict[str, float]]],
    benchmarks: list[str],
    resamples: int = 4000,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """benchmark (and ``AVG``) -> PIPO − base in points with its 95% percentile interval.

    Paired: each replicate draws the seeds both rows have (with replacement), and within each drawn
    seed the problems of each benchmark (with replacement, the same problems for both rows); a
    benchmark's replicate is the mean of its drawn differences, AVG the unweighted mean over benchmarks.
    Empty when the rows share no seed with outcomes for every benchmark.
    """
    seeds = sorted(s for s in set(pipo) & set(base) if all(b in pipo[s] and b in base[s] for b in benchmarks))
    if not seeds:
        return {}
    rng = np.random.default_rng(seed)
    drawn_seeds = rng.integers(0, len(seeds), (resamples, len(seeds)))
    point, reps = {}, {}
    for b in benchmarks:
        per_seed_means, per_seed_reps = [], []
        for s in seeds:
            ids = sorted(set(pipo[s][b]) & set(base[s][b]), key=lambda i: (len(i), i))
            d = 100.0 * np.array([pipo[s][b][i] - base[s][b][i] for i in ids])
            per_seed_means.append(d.mean())
            per_seed_reps.append(d[rng.integers(0, len(d), (resamples, len(d)))].mean(1))
        point[b] = float(np.mean(per_seed_means))
        reps[b] = np.stack(per_seed_reps, 1)[np.arange(resamples)[:, None], drawn_seeds].mean(1)
    point["AVG"] = float(np.mean([point[b] for b in benchmarks]))
    reps["AVG"] = np.mean([reps[b] for b in benchmarks], 0)
    out = {}
    for col, value in point.items():
        lo, hi = np.percentile(reps[col], [2.5, 97.5])
        out[col] = (value, float(lo), float(hi))
    return out


def significant(diff: tuple[float, float, float] | None) -> bool:
    """The interval of a (difference, low, high) excludes 0."""
    return diff is not None and (diff[1] > 0 or diff[2] < 0)


def bootstrap_diff(
    a: list[float], b: list[float], resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """mean(a) − mean(b) and its 95% percentile bootstrap interval (seeds resampled in each group)."""
    rng = np.random.default_rng(seed)
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    ia = rng.integers(0, len(xa), (resamples, len(xa)))
    ib = rng.integers(0, len(xb), (resamples, len(xb)))
    diffs = xa[ia].mean(1) - xb[ib].mean(1)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(xa.mean() - xb.mean()), float(lo), float(hi)


def pipo_minus_base(table: Table) -> dict[tuple, tuple[float, float, float]]:
    """(+PIPO row, block, column) -> (difference, low, high): the paired bootstrap over problems (and
    seeds) where both rows have per-problem outcomes, else over seeds where both rows have ≥ 2."""
    if table._diffs is not None:
        return table._diffs
    out = {}
    for prow, brow in table.pipo_rows.items():
        for block, columns in table.blocks:
            a_out, b_out = table.outcomes.get((prow, block)), table.outcomes.get((brow, block))
            a_avg, b_avg = table.cells.get((prow, block, "AVG")), table.cells.get((brow, block, "AVG"))
            complete = (  # every run of both rows has its outcomes (else: the bootstrap over seeds below)
                a_out
                and b_out
                and a_avg
                and b_avg
                and (len(a_out), len(b_out)) == (len(a_avg.values), len(b_avg.values))
            )
            paired = paired_bootstrap(a_out, b_out, [c for c in columns if c != "AVG"]) if complete else {}
            for col in columns:
                if col in paired:
                    out[(prow, block, col)] = paired[col]
                    continue
                a, b = table.cells.get((prow, block, col)), table.cells.get((brow, block, col))
                if a and b and len(a.values) > 1 and len(b.values) > 1:
                    out[(prow, block, col)] = bootstrap_diff(a.values, b.values)
    table._diffs = out
    return out
