"""Does PIPO reproduce? Every claim of ``analysis/claims.yaml`` with its effect, interval, control
and verdict, from whatever runs exist: ``results/<scale>/report.md`` and ``report.tex`` (+ PDF).

Effects are in points (Pass@1 × 100; the overhead in per cent). Intervals are 95% paired bootstraps
over problems and seeds (``analysis.tables.paired_bootstrap``); the drop from the running best and
the overhead resample problems and steps the same way. The verdict rule and the minimum detectable
effect: ``analysis/verdict.py``. A claim whose runs are missing is "not run", with its command.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.claims import Claim, Side, load_claims, side_cells, table_spec
from analysis.render import tex_escape
from analysis.runs import load_metrics
from analysis.tables import (
    PAPER_DIR,
    bootstrap_diff,
    build_table,
    grid_cell_mask,
    paired_bootstrap,
    read_paper,
    task_benchmarks,
)
from analysis.verdict import NOT_RUN, VERDICTS, Effect, mde, verdict
from pipo.config import ConfigError
from pipo.pass_at_k import pass_at_k
from pipo.records import RunRecord
from pipo.sweeps import load_sweep

RESAMPLES, BOOT_SEED = 4000, 0  # fixed: the same records give the same intervals and verdicts
MIN_SEEDS = 5  # runs without per-problem outcomes: an interval over seeds needs this many a side
FEEDBACK_SWEEP = "feedback"  # its claims read the feedback study's run root (reproduce/feedback.py)
Outcomes = dict[int, dict[str, dict[str, float]]]  # seed -> benchmark -> problem id -> outcome


@dataclass
class Result:
    claim: Claim
    effect: Effect | None
    paper: float | None  # the paper's effect (None: a direction only)
    paper_values: tuple[float | None, float | None]  # the paper's a and b
    verdict: str
    mde: float | None
    control: Effect | None  # a − its pipo.control=zero twin
    control_verdict: str | None
    seeds: list[int]
    problems: int
    note: str = ""
    control_seeds: list[int] = field(default_factory=list)  # the seeds a − its zero twin rests on


# -- the runs of a side -----------------------------------------------------------------------------
def side_runs(side: Side, runs: pd.DataFrame, scale: str) -> tuple[pd.DataFrame, list[str]]:
    """The finished runs of ``side`` at ``scale`` (every seed), and its benchmarks."""
    cells = side_cells(side)
    if not cells:
        raise ConfigError(f"no cell of sweep {side.sweep} makes the row {side.describe()}")
    benchmarks, _ = task_benchmarks(cells[0])
    if runs.empty:
        return runs, benchmarks
    done = runs[(runs["scale"] == scale) & (runs["state"] == "done")]
    keep = np.zeros(len(done), dtype=bool)
    for cell in cells:
        keep |= grid_cell_mask(done, cell)
    found = done[keep]
    twice = found[found["seed"].duplicated(keep=False)]
    if not twice.empty:  # runs that differ only in settings the tables do not tell apart
        raise ConfigError(
            f"{side.describe()}: several finished runs of one seed ({', '.join(sorted(twice['path']))}): "
            "move the ones that are not this claim's out of the run root"
        )
    return found, benchmarks


def _per_problem(run, metric: str) -> dict[str, dict[str, float]] | None:
    """benchmark -> problem id -> outcome of ``run``'s last evaluation (``metric``: pass@1 or pass@k)."""
    if metric == "pass@1":
        last = run.evals[-1]["benchmarks"] if run.evals else {}
        per = {e.get("stands_for", s): e.get("per_problem") for s, e in last.items()}
    else:
        k = int(metric.split("@")[1])
        res = RunRecord(run.path).pass_at_k(k)
        if res is None:
            return None
        per = {
            e.get("stands_for", s): {str(i): pass_at_k(res["samples"], round(c), k) for i, c in enumerate(cpp)}
            for s, e in res["benchmarks"].items()
            if (cpp := e.get("correct_per_problem")) is not None
        }
    return per if per and all(v is not None for v in per.values()) else None


def outcomes(runs: pd.DataFrame, metric: str = "pass@1") -> Outcomes:
    """seed -> the runs' per-problem outcomes (runs without them are left out)."""
    out: Outcomes = {}
    for run in runs.itertuples(index=False):
        if (per := _per_problem(run, metric)) is not None:
            out[int(run.seed)] = per
    return out


def auc_outcomes(runs: pd.DataFrame) -> Outcomes:
    """seed -> each problem's mean outcome over the evaluations after step 0 (the area under the curve)."""
    out: Outcomes = {}
    for run in runs.itertuples(index=False):
        evals = [e for e in run.evals if e["step"] > 0]
        if not evals or any("per_problem" not in b for e in evals for b in e["benchmarks"].values()):
            continue
        per: dict[str, dict[str, float]] = {}
        for split, first in evals[-1]["benchmarks"].items():
            ids = first["per_problem"]
            per[first.get("stands_for", split)] = {
                i: float(np.mean([e["benchmarks"][split]["per_problem"][i] for e in evals])) for i in ids
            }
        out[int(run.seed)] = per
    return out


def curves(runs: pd.DataFrame) -> dict[int, dict[str, np.ndarray]]:
    """seed -> benchmark -> outcomes (evaluations × problems, problems in id order)."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for run in runs.itertuples(index=False):
        if len(run.evals) < 2 or any("per_problem" not in b for e in run.evals for b in e["benchmarks"].values()):
            continue
        per = {}
        for split, b in run.evals[-1]["benchmarks"].items():
            ids = sorted(b["per_problem"], key=lambda i: (len(i), i))
            per[b.get("stands_for", split)] = np.array(
                [[e["benchmarks"][split]["per_problem"][i] for i in ids] for e in run.evals], float
            )
        out[int(run.seed)] = per
    return out


# -- effects ----------------------------------------------------------------------------------------
def diff_effect(a: Outcomes, b: Outcomes, benchmarks: list[str], column: str) -> Effect | None:
    """a − b in points with its paired bootstrap interval (None: no seed with outcomes on both sides)."""
    paired = paired_bootstrap(a, b, benchmarks, RESAMPLES, BOOT_SEED)
    if column not in paired:
        return None
    return Effect(*paired[column])


def max_drop(curve: np.ndarray) -> np.ndarray:
    """The largest fall of ``curve`` (evaluations along axis 0) below its running best."""
    return (np.maximum.accumulate(curve, axis=0) - curve).max(axis=0)


def drop_seeds(a: dict, b: dict, benchmarks: list[str]) -> list[int]:
    """The seeds both sides have curves of, over the same evaluations and problems of every benchmark."""
    return sorted(
        s
        for s in set(a) & set(b)
        if all(k in a[s] and k in b[s] and a[s][k].shape == b[s][k].shape for k in benchmarks)
    )


def drop_effect(a: dict, b: dict, benchmarks: list[str]) -> Effect | None:
    """drop(b) − drop(a) of the average Pass@1 curve (points; > 0: a falls less), with a paired
    bootstrap: seeds, and within each the problems of each benchmark (multinomial weights, the same
    draws on both sides)."""
    seeds = drop_seeds(a, b, benchmarks)
    if not seeds:
        return None
    rng = np.random.default_rng(BOOT_SEED)
    points, reps = [], []
    for s in seeds:
        curve_a = 100 * np.mean([a[s][k].mean(1) for k in benchmarks], 0)
        curve_b = 100 * np.mean([b[s][k].mean(1) for k in benchmarks], 0)
        points.append(float(max_drop(curve_b) - max_drop(curve_a)))
        rep_a, rep_b = 0.0, 0.0
        for k in benchmarks:
            n = a[s][k].shape[1]
            w = rng.multinomial(n, np.full(n, 1 / n), RESAMPLES) / n  # (resamples, problems)
            rep_a = rep_a + w @ a[s][k].T / len(benchmarks)  # (resamples, evaluations)
            rep_b = rep_b + w @ b[s][k].T / len(benchmarks)
        reps.append(100 * (max_drop(rep_b.T) - max_drop(rep_a.T)))
    drawn = rng.integers(0, len(seeds), (RESAMPLES, len(seeds)))
    rep = np.stack(reps, 1)[np.arange(RESAMPLES)[:, None], drawn].mean(1)
    lo, hi = np.percentile(rep, [2.5, 97.5])
    return Effect(float(np.mean(points)), float(lo), float(hi))


BLOCK = 10  # steps per block of the overhead's bootstrap: neighbouring steps' times are correlated


def step_times(runs: pd.DataFrame) -> list[np.ndarray]:
    """Each run's ``timing/step`` after its first step (which includes warming up)."""
    out = []
    for run in runs.itertuples():
        t = load_metrics(run.path).get("timing/step", pd.Series(dtype=float)).dropna().to_numpy(float)[1:]
        if len(t):
            out.append(t)
    return out


def _block_means(runs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of the mean step time: each run's steps resampled in blocks of BLOCK
    consecutive steps (a moving-block bootstrap), the runs pooled."""
    total = np.zeros(RESAMPLES)
    count = 0
    for t in runs:
        blocks = max(1, len(t) // BLOCK)
        size = min(BLOCK, len(t))
        starts = rng.integers(0, len(t) - size + 1, (RESAMPLES, blocks))
        idx = starts[:, :, None] + np.arange(size)
        total += t[idx].reshape(RESAMPLES, -1).sum(1)
        count += blocks * size
    return total / count


def overhead_effect(
    a: list[np.ndarray], b: list[np.ndarray], ref_a: list[np.ndarray], ref_b: list[np.ndarray]
) -> Effect | None:
    """(mean a / mean b − 1) − (mean ref_a / mean ref_b − 1), in per cent: the extra relative cost of
    PIPO on a's algorithm over the reference's, with a moving-block bootstrap over each run's steps."""
    if any(not x for x in (a, b, ref_a, ref_b)):
        return None
    rng = np.random.default_rng(BOOT_SEED)

    def mean(runs: list[np.ndarray]) -> float:
        return float(np.concatenate(runs).mean())

    point = 100 * (mean(a) / mean(b) - mean(ref_a) / mean(ref_b))
    rep = 100 * (_block_means(a, rng) / _block_means(b, rng) - _block_means(ref_a, rng) / _block_means(ref_b, rng))
    lo, hi = np.percentile(rep, [2.5, 97.5])
    return Effect(point, float(lo), float(hi))


def feedback_effect(runs: pd.DataFrame, scale: str) -> tuple[Effect | None, str]:
    """The correlation of δ_t with the realized improvement of the update it judges, over the runs of
    the paper's PIPO (verifier J, no control) that have the probe (``probe/score``; the feedback study,
    ``reproduce/feedback.py``): δ and the improvement standardized within each run, the runs' pairs
    pooled, a bootstrap over the pairs (``analysis.feedback``)."""
    from analysis.feedback import PROBE, aligned, bootstrap_corr

    if runs.empty:
        return None, "no runs of the feedback study (python reproduce/feedback.py -m)"
    paper_pipo = runs[
        (runs["scale"] == scale)
        & (runs["state"] == "done")
        & runs["pipo"]
        & (runs["control"] == "none")
        & (runs.get("performance", pd.Series("verifier", index=runs.index)) == "verifier")
    ]
    xs, ys, used = [], [], 0
    for run in paper_pipo.itertuples(index=False):
        metrics = load_metrics(run.path)
        if PROBE not in metrics:
            continue
        pairs = aligned(metrics, int(run.window), float(run.lam)).dropna(subset=["delta", "realized"])
        if len(pairs) < 3 or pairs["delta"].std() == 0 or pairs["realized"].std() == 0:
            continue
        xs.append(((pairs["delta"] - pairs["delta"].mean()) / pairs["delta"].std()).to_numpy())
        ys.append(((pairs["realized"] - pairs["realized"].mean()) / pairs["realized"].std()).to_numpy())
        used += 1
    if not used:
        return None, "no finished PIPO run with the probe (python reproduce/feedback.py -m)"
    r, lo, hi = bootstrap_corr(np.concatenate(xs), np.concatenate(ys), RESAMPLES, BOOT_SEED)
    n = sum(len(x) for x in xs)
    return Effect(r, lo, hi), f"Pearson r over {n} iterations of {used} run(s), standardized within each run"


# -- a claim ----------------------------------------------------------------------------------------
@cache
def _paper_table(sweep_name: str, scale: str) -> dict:
    spec = table_spec(sweep_name)
    if not spec.paper:
        return {}
    table = build_table(sweep_name, load_sweep(sweep_name), spec, pd.DataFrame(), scale)
    return read_paper(PAPER_DIR / spec.paper, table, spec)


def paper_values(claim: Claim, claims: dict[str, Claim], scale: str) -> tuple[float | None, float | None]:
    """The paper's values of the claim's sides (or of the claim its number comes from)."""
    if claim.paper_from:
        return paper_values(claims[claim.paper_from], claims, scale)
    if claim.a is None or claim.b is None or claim.kind not in ("diff",):
        return None, None
    paper_a = _paper_table(claim.a.sweep, scale).get((claim.a.row, claim.a.block, claim.column))
    paper_b = _paper_table(claim.b.sweep, scale).get((claim.b.row, claim.b.block, claim.column))
    return paper_a, paper_b


def _metric(side: Side) -> str:
    return table_spec(side.sweep).metric


def side_effect(claim: Claim, a: Side, b: Side, runs: pd.DataFrame, scale: str) -> tuple[Effect | None, list, int]:
    """a − b by the claim's kind; the seeds and problems it rests on."""
    runs_a, bench = side_runs(a, runs, scale)
    runs_b, _ = side_runs(b, runs, scale)
    if claim.kind == "drop":
        ca, cb = curves(runs_a), curves(runs_b)
        seeds = drop_seeds(ca, cb, bench)
        n = sum(ca[seeds[0]][k].shape[1] for k in bench) if seeds else 0
        return drop_effect(ca, cb, bench), seeds, n
    if claim.kind == "auc":
        oa, ob = auc_outcomes(runs_a), auc_outcomes(runs_b)
    else:
        oa, ob = outcomes(runs_a, _metric(a)), outcomes(runs_b, _metric(b))
    columns = bench if claim.column == "AVG" else [claim.column]
    seeds = sorted(s for s in set(oa) & set(ob) if all(k in oa[s] and k in ob[s] for k in columns))
    n = sum(len(oa[seeds[0]][k]) for k in columns) if seeds else 0
    effect = diff_effect(oa, ob, columns, "AVG" if claim.column == "AVG" else claim.column)
    if effect is None and claim.kind == "diff" and _metric(a) == "pass@1":  # no per-problem outcomes: seeds
        va, vb = _seed_values(runs_a, bench, claim.column), _seed_values(runs_b, bench, claim.column)
        if min(len(va), len(vb)) >= MIN_SEEDS:  # a percentile bootstrap over fewer seeds under-covers
            effect = Effect(*bootstrap_diff(va, vb, 10_000, BOOT_SEED))
        elif va and vb:
            effect = Effect(float(np.mean(va) - np.mean(vb)))
    return effect, seeds, n


def _seed_values(runs: pd.DataFrame, benchmarks: list[str], column: str) -> list[float]:
    out = []
    for run in runs.itertuples(index=False):
        per = (
            {
                e.get("stands_for", s): 100 * e["correct"] / e["n"]
                for s, e in run.evals[-1]["benchmarks"].items()
                if e["n"]
            }
            if run.evals
            else {}
        )
        if all(b in per for b in benchmarks):
            out.append(float(np.mean([per[b] for b in benchmarks])) if column == "AVG" else per[column])
    return out


def evaluate(
    claim: Claim, runs: pd.DataFrame, scale: str, claims: dict[str, Claim], feedback_runs: pd.DataFrame | None = None
) -> Result:
    """The claim's effect, interval, paper effect, verdict, MDE and control-adjusted effect."""
    pa, pb = paper_values(claim, claims, scale)
    paper = None if pa is None or pb is None else pa - pb
    seeds, n, note = [], 0, ""
    effect = control = None
    control_seeds: list[int] = []
    if claim.sweep == FEEDBACK_SWEEP and feedback_runs is not None:  # the study keeps a run root of its own
        runs = feedback_runs
    if claim.kind == "feedback":
        effect, note = feedback_effect(runs, scale)
    elif claim.kind == "overhead":
        ra, rb = claim.reference
        times = [step_times(side_runs(s, runs, scale)[0]) for s in (claim.a, claim.b, ra, rb)]
        effect = overhead_effect(*times)
        n = min(sum(len(r) for r in t) for t in times)
        note = f"timing/step as logged (with whatever shared the machine), blocks of {BLOCK} resampled"
    else:
        effect, seeds, n = side_effect(claim, claim.a, claim.b, runs, scale)
        if claim.control is not None:
            control, control_seeds, _ = side_effect(claim, claim.a, claim.control, runs, scale)
    return Result(
        claim,
        effect,
        paper,
        (pa, pb),
        verdict(effect, paper, claim.direction),
        mde(effect),
        control,
        None if claim.control is None else verdict(control, paper, claim.direction),
        seeds,
        n,
        note,
        control_seeds,
    )


def evaluate_or_explain(
    claim: Claim, runs: pd.DataFrame, scale: str, claims: dict[str, Claim], feedback_runs: pd.DataFrame | None
) -> Result:
    """:func:`evaluate`, or, where its runs cannot be read as one comparison (e.g. two runs of one seed),
    "not run" with the reason: one claim's records never stop the report."""
    try:
        return evaluate(claim, runs, scale, claims, feedback_runs)
    except ConfigError as err:
        pa, pb = paper_values(claim, claims, scale)
        paper = None if pa is None or pb is None else pa - pb
        return Result(claim, None, paper, (pa, pb), NOT_RUN, None, None, None, [], 0, str(err).splitlines()[0])


def evaluate_all(
    runs: pd.DataFrame,
    scale: str = "tiny",
    claims: Sequence[Claim] | None = None,
    feedback_runs: pd.DataFrame | None = None,
) -> list[Result]:
    """Every claim on ``runs``; the feedback study's claims on ``feedback_runs`` (the study's own run
    root, ``runs/feedback``) where given."""
    claims = list(claims if claims is not None else load_claims())
    by_id = {c.id: c for c in claims}
    return [evaluate_or_explain(c, runs, scale, by_id, feedback_runs) for c in claims]


# -- the report -------------------------------------------------------------------------------------
ONE_SEED = "¹"
RULE = (
    "Verdict rule (analysis/verdict.py), from the reproduced effect's 95% interval and the paper's effect: "
    "**supported** — the interval excludes 0 in the paper's direction; **opposed** — it excludes 0 the other "
    "way; **ruled out** — it contains 0 and excludes the paper's effect; **inconclusive** — it contains both "
    "(or the paper gives a direction only, or there is no interval); **not run** — the runs are missing. "
    "MDE: the effect a two-sided 5% test detects with 80% power at the run's design (2.80 × SE). "
    f"{ONE_SEED} one training seed: the interval is the evaluation's noise only (problems resampled), not "
    "training's; such a verdict is about this one run. "
    "*PIPO − zero*: the same comparison against +PIPO's `pipo.control=zero` twin (the extra optimizer pass "
    "without the feedback), judged by the same rule with the paper's effect."
)


def _num(x: float | None, signed: bool = True, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return (f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}").replace("-", "−")


def _interval(e: Effect | None, digits: int = 1) -> str:
    if e is None:
        return "—"
    if not e.has_interval:
        return f"{_num(e.value, digits=digits)} (no interval)"
    return f"{_num(e.value, digits=digits)} [{_num(e.lo, digits=digits)}, {_num(e.hi, digits=digits)}]"


def _digits(r: Result) -> int:
    return 2 if r.claim.kind == "feedback" else 1  # a correlation; the rest are points


def _one_seed(seeds: list[int], verdict_text: str) -> str:
    return ONE_SEED if len(seeds) == 1 and verdict_text != NOT_RUN else ""


def summary_rows(results: list[Result]) -> list[list[str]]:
    rows = []
    for r in results:
        paper = (
            _num(r.paper)
            if r.paper is not None
            else ("+ (direction)" if (r.claim.direction or 0) > 0 else "− (direction)")
        )
        rows.append(
            [
                r.claim.id,
                r.claim.where.split(",")[0],
                paper,
                _interval(r.effect, _digits(r)),
                r.verdict + _one_seed(r.seeds, r.verdict),
                _interval(r.control) if r.claim.control else "n/a",
                r.control_verdict + _one_seed(r.control_seeds, r.control_verdict) if r.control_verdict else "n/a",
                _num(r.mde, signed=False, digits=_digits(r)),
                f"{r.problems}×{len(r.seeds)}" if r.seeds else ("—" if not r.problems else str(r.problems)),
            ]
        )
    return rows


HEADER = [
    "claim",
    "where",
    "paper",
    "this suite [95% CI]",
    "verdict",
    "PIPO − zero [95% CI]",
    "verdict",
    "MDE",
    "design",
]


def _design(r: Result) -> str:
    """What the effect rests on, in words: problems × seeds, steps (overhead) or nothing (the note says)."""
    if r.claim.kind == "overhead":
        return f"{r.problems} steps a side" if r.problems else ""
    if r.claim.kind == "feedback":
        return ""
    return f"{r.problems} problems × {len(r.seeds)} seed(s) {r.seeds}"


def to_markdown(results: list[Result], meta: dict[str, str], figure: str | None) -> str:
    counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
    lines = [
        f"# Does PIPO reproduce? ({meta['scale']} scale)",
        "",
        f"Generated by `{meta['command']}` at commit `{meta['commit']}` on {meta['machine']}, from "
        f"{meta['runs']} run records. Do not edit: regenerate it.",
        "",
        "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".",
        "",
        RULE,
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(results)]
    lines += ["", "Effects in points (the overhead claims in per cent); design: problems × seeds compared.", ""]
    if figure:
        lines += [f"![Every effect with its interval; the paper's effect as a cross]({figure})", ""]
    for r in results:
        c = r.claim
        lines += [f"## {c.id}: {c.claim}", "", f"*{c.where}* — verdict: **{r.verdict}**", ""]
        if c.a is not None and c.b is not None:
            what = c.kind if c.kind == "overhead" else f"{c.kind}, {c.column}"
            lines.append(f"- compares: {c.a.describe()} − {c.b.describe()} ({what})")
        if r.paper_values != (None, None):
            src = f" (the paper's numbers of {c.paper_from})" if c.paper_from else ""
            pa, pb = r.paper_values
            lines.append(f"- paper{src}: {_num(pa, False)} vs {_num(pb, False)}, effect {_num(r.paper)}")
        lines.append(
            f"- this suite: {_interval(r.effect, _digits(r))}; MDE {_num(r.mde, False, _digits(r))}; "
            + "; ".join(x for x in (_design(r), r.note) if x)
        )
        if c.control is not None:
            lines.append(
                f"- PIPO − zero control ({c.control.describe()}): {_interval(r.control)}: **{r.control_verdict}**"
                f" (seeds {r.control_seeds})"
            )
        lines += [f"- runs: `{c.command()}`", ""]
    return "\n".join(lines)


def to_latex(results: list[Result], meta: dict[str, str], figure: str | None) -> str:
    cols = ["claim", "paper", "this suite [95\\% CI]", "verdict", "PIPO $-$ zero", "verdict", "MDE"]
    body = []
    for row in summary_rows(results):
        keep = [row[0], row[2], row[3], row[4], row[5], row[6], row[7]]
        body.append(" & ".join(tex_escape(x) for x in keep) + r" \\")
    fig = (
        "\\begin{figure}[h]\\centering\\includegraphics[width=\\linewidth]{" + figure + "}"
        "\\caption{Every effect with its 95\\% interval; the paper's effect as a cross.}\\end{figure}"
        if figure
        else ""
    )
    sections = []
    for r in results:
        c = r.claim
        sections.append(
            f"\\paragraph{{{tex_escape(c.id)}}} {tex_escape(c.claim)} ({tex_escape(c.where)}). "
            f"This suite: {tex_escape(_interval(r.effect, _digits(r)))}; paper: {tex_escape(_num(r.paper))}; "
            f"verdict: \\textbf{{{r.verdict}}}."
            + (f" PIPO $-$ zero: {tex_escape(_interval(r.control))} ({r.control_verdict})." if c.control else "")
            + f" Runs: \\texttt{{{tex_escape(c.command())}}}."
        )
    return "\n".join(
        [
            r"\documentclass[10pt]{article}",
            r"\usepackage[margin=2cm,landscape]{geometry}\usepackage{booktabs,longtable,graphicx}",
            r"\begin{document}",
            f"\\section*{{Does PIPO reproduce? ({tex_escape(meta['scale'])} scale)}}",
            tex_escape(f"Generated by {meta['command']} at commit {meta['commit']} on {meta['machine']}.")
            + "\n\n"
            + tex_escape(RULE.replace("**", "").replace("*", "").replace("`", "")),
            r"{\small\begin{longtable}{lllllll}\toprule",
            " & ".join(cols) + r" \\ \midrule\endhead",
            *body,
            r"\bottomrule\end{longtable}}",
            fig,
            *sections,
            r"\end{document}",
            "",
        ]
    )


def forest(results: list[Result], out_dir: Path, name: str = "report_effects") -> list[Path]:
    """Every effect (points) with its interval, the paper's effect as a cross; PIPO − zero beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.figures import _save

    shown = [r for r in results if r.effect is not None and r.claim.kind in ("diff", "auc", "drop")]  # points
    if not shown:
        return []
    fig, ax = plt.subplots(figsize=(3.4, 0.17 * len(shown) + 0.9))
    for y, r in enumerate(reversed(shown)):
        e = r.effect
        if e.has_interval:
            ax.plot([e.lo, e.hi], [y, y], color="#0072B2", lw=1.2)
        ax.plot(e.value, y, "o", color="#0072B2", ms=3)
        if r.control is not None and r.control.has_interval:
            ax.plot([r.control.lo, r.control.hi], [y - 0.3, y - 0.3], color="#999999", lw=0.8)
        if r.paper is not None:
            ax.plot(r.paper, y, "x", color="#D55E00", ms=4)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_yticks(range(len(shown)), [r.claim.id for r in reversed(shown)], fontsize=5.5)
    ax.set_ylim(-1, len(shown))
    ax.set_xlabel("effect (points)\n● this suite, 95% CI; grey: vs zero control; × paper", fontsize=6.5)
    ax.tick_params(axis="x", labelsize=6.5)
    fig.tight_layout()
    return _save(fig, out_dir, name)


def _commit() -> str:
    try:
        repo = Path(__file__).resolve().parent
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True, cwd=repo
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=repo
        )
        return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    """The CPU model and core count (a tiny-scale table is one machine's draw)."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write_report(
    runs: pd.DataFrame,
    scale: str,
    out_dir: str | Path,
    command: str = "python -m analysis report",
    feedback_runs: pd.DataFrame | None = None,
) -> tuple[list[Path], list[Result]]:
    """report.md, report.tex (+ report.pdf where pdflatex is) and the effects figure in ``out_dir/scale``."""
    out = Path(out_dir) / scale
    out.mkdir(parents=True, exist_ok=True)
    results = evaluate_all(runs, scale, feedback_runs=feedback_runs)
    paths = forest(results, out)
    figure = paths[1].name if paths else None
    meta = {
        "scale": scale,
        "command": command,
        "commit": _commit(),
        "machine": machine(),
        "runs": str(int((runs["scale"] == scale).sum()) if not runs.empty else 0),
    }
    (out / "report.md").write_text(to_markdown(results, meta, figure), encoding="utf-8")
    (out / "report.tex").write_text(to_latex(results, meta, paths[0].name if paths else None), encoding="utf-8")
    paths += [out / "report.md", out / "report.tex"]
    if shutil.which("pdflatex"):
        for _ in range(2):  # longtable settles its column widths on the second pass
            done = subprocess.run(
                ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
                cwd=out, capture_output=True, text=True,
            )  # fmt: skip
        if done.returncode == 0:
            paths.append(out / "report.pdf")
        else:
            print(f"pdflatex failed on {out / 'report.tex'} (see {out / 'report.log'})")
    return paths, results


def summary_text(results: list[Result]) -> str:
    """The one-page summary for the terminal."""
    rows = [HEADER, *summary_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)) for r in rows]
    missing = [r for r in results if r.verdict == NOT_RUN]
    if missing:
        lines += [
            "",
            "not run (the commands that run them; all at once: python reproduce/report.py -m, and the "
            "feedback study: python reproduce/feedback.py -m):",
        ]
        lines += [f"  {cmd}" for cmd in dict.fromkeys(r.claim.command() for r in missing)]
    return "\n".join(lines)
