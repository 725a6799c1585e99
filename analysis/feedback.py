"""Is PIPO's feedback right? δ_t against the realized improvement of the update it judges.

A run's record gives, per iteration t (the row ``step = t`` of ``metrics.jsonl``):

- ``probe/score`` P_t: the probe's score of θ_t, the policy that samples B_t (taken before the step);
- ``pipo/delta`` δ_t = (J_t − μ_t)/σ_t and J_t (``pipo/J``; ``critic/score/mean`` without PIPO);
- ``pipo/J_se``: J_t's standard error, responses clustered by prompt.

**Alignment.** δ_t is computed at the start of iteration t from J_t, a measurement of θ_t; it
rewards or suppresses B_{t−1}, the batch of the update of iteration t−1, which (with that
iteration's verification step) took θ_{t−1} to θ_t. So δ_t judges θ_{t−1} → θ_t, and its realized
improvement is r_t = P_t − P_{t−1}, both read from consecutive rows (a gap in the steps leaves r_t
undefined). J_t − J_{t−1} is aligned the same way. Runs without PIPO get the δ_t PIPO would have
computed from their J (the paper's window rule, the run's K and λ): what its feedback would have said.

Per run: Pearson's r of δ_t and of J_t − J_{t−1} with r_t (95 % percentile bootstrap over
iterations), Spearman's ρ, the sign agreement of δ_t and r_t and the balanced accuracy of sign(δ_t)
as a classifier of sign(r_t) (iterations with δ_t = 0 or r_t = 0 left out), the median r_t, the
median J_se and their ratio, the feedback's signal-to-noise ratio ``snr``, and the mean r_t (the
median moves in steps of one probe response, 1/(N·k)). Every run with J_se
also gets ``snr_trend``: the OLS slope of J_t per iteration over the run (its trend) over the
median J_se, the same ratio without a probe (verl runs included); and ``snr_window``: the SNR of
δ's numerator J_t − μ_t under that linear trend, slope·(K+1)/2 over J_se·√(1 + 1/K) (μ_t lags J_t
by (K+1)/2 iterations on average and averages K independent errors).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from analysis.runs import load_metrics, method_name
from pipo.algorithm.feedback import ImprovementFeedback

PROBE, DELTA, J_SE = "probe/score", "pipo/delta", "pipo/J_se"
# the statistics of δ against the realized improvement: not defined for pipo.performance=probe (see feedback_summary)
SHARED_P = ("corr_delta", "corr_delta_lo", "corr_delta_hi", "spearman_delta", "corr_dJ", "corr_dJ_lo", "corr_dJ_hi",
            "sign_agreement", "balanced_accuracy")  # fmt: skip
N_BOOT = 2000


def aligned(metrics: pd.DataFrame, window: int = 8, lam: float = 0.1, min_history: int = 2) -> pd.DataFrame:
    """One row per iteration t: ``delta`` δ_t (logged, or PIPO's from J without PIPO), ``dJ`` J_t − J_{t−1},
    ``realized`` P_t − P_{t−1} (NaN without a probe), ``J``, ``J_se``; indexed by t."""
    if metrics.empty or "step" not in metrics:
        return pd.DataFrame(columns=["delta", "dJ", "realized", "J", "J_se"])
    m = metrics.drop_duplicates("step", keep="last").set_index("step").sort_index()
    m = m.reindex(range(int(m.index.min()), int(m.index.max()) + 1))  # a missing step is a gap, not a neighbour
    J = m["pipo/J"] if "pipo/J" in m and m["pipo/J"].notna().any() else m.get("critic/score/mean")
    J = pd.Series(np.nan, index=m.index) if J is None else J.astype(float)
    if DELTA in m and m[DELTA].notna().any():
        delta = m[DELTA].astype(float)
    else:  # the δ PIPO's window (paper rule) would have given this run's J
        fb = ImprovementFeedback(window, lam, min_history)
        values = []
        for j in J:
            values.append(np.nan if math.isnan(j) else fb.compute(j).delta)
            if not math.isnan(j):
                fb.push(j)
        delta = pd.Series([np.nan if v is None else v for v in values], index=m.index, dtype=float)
    probe = m[PROBE].astype(float) if PROBE in m else pd.Series(np.nan, index=m.index)
    se = m[J_SE].astype(float) if J_SE in m else pd.Series(np.nan, index=m.index)
    # differences rounded to 12 decimals: equal changes of a mean of N·k scores tie (ranks, signs) despite float error
    out = pd.DataFrame(
        {"delta": delta, "dJ": J.diff().round(12), "realized": probe.diff().round(12), "J": J, "J_se": se}
    )
    return out.dropna(how="all")


def bootstrap_corr(x: np.ndarray, y: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """Pearson's r of (x, y) and its 95 % percentile bootstrap interval (pairs resampled); NaN if < 3 pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.std(x) == 0 or np.std(y) == 0:
        return math.nan, math.nan, math.nan
    r = float(np.corrcoef(x, y)[0, 1])
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    xc, yc = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = (xc * yc).sum(1) / np.sqrt((xc**2).sum(1) * (yc**2).sum(1))
    rs = rs[np.isfinite(rs)]
    lo, hi = np.percentile(rs, [2.5, 97.5]) if len(rs) else (math.nan, math.nan)  # n_boot = 0: r alone
    return r, float(lo), float(hi)


def sign_scores(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(sign agreement, balanced accuracy) of sign(pred) against sign(truth), zeros of either left out;
    balanced accuracy is the mean of the hit rates on truth > 0 and on truth < 0 (NaN if one is empty)."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    keep = (pred != 0) & (truth != 0) & np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[keep] > 0, truth[keep] > 0
    if not len(p):
        return math.nan, math.nan
    agree = float(np.mean(p == t))
    if t.all() or not t.any():
        return agree, math.nan
    return agree, float((np.mean(p[t]) + np.mean(~p[~t])) / 2)


def trend(J: pd.Series) -> float:
    """The OLS slope of J_t on t (per iteration); NaN with fewer than 3 values."""
    J = J.dropna()
    if len(J) < 3:
        return math.nan
    return float(np.polyfit(J.index.to_numpy(float), J.to_numpy(float), 1)[0])


def run_feedback(
    metrics: pd.DataFrame, window: int = 8, lam: float = 0.1, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, float]:
    """The feedback's statistics of one run's metrics (module docstring); NaN where undefined."""
    a = aligned(metrics, window, lam)
    pairs = a.dropna(subset=["delta", "realized"]) if not a.empty else a
    dj = a.dropna(subset=["dJ", "realized"]) if not a.empty else a
    r, lo, hi = bootstrap_corr(pairs["delta"], pairs["realized"], n_boot, seed)
    rj, rj_lo, rj_hi = bootstrap_corr(dj["dJ"], dj["realized"], n_boot, seed)
    agree, bal = sign_scores(pairs["delta"], pairs["realized"])
    spearman = bootstrap_corr(pairs["delta"].rank(), pairs["realized"].rank(), 0)[0]  # Pearson's r of the ranks
    has_r = not a.empty and a["realized"].notna().any()
    improvement = float(a["realized"].median()) if has_r else math.nan
    mean_improvement = float(a["realized"].mean()) if has_r else math.nan  # the median moves in probe quanta
    se = float(a["J_se"].median()) if not a.empty and a["J_se"].notna().any() else math.nan
    slope = trend(a["J"]) if not a.empty else math.nan
    return {
        "n": len(pairs),
        "corr_delta": r,
        "corr_delta_lo": lo,
        "corr_delta_hi": hi,
        "spearman_delta": spearman,
        "corr_dJ": rj,
        "corr_dJ_lo": rj_lo,
        "corr_dJ_hi": rj_hi,
        "sign_agreement": agree,
        "balanced_accuracy": bal,
        "improvement": improvement,
        "mean_improvement": mean_improvement,
        "J_se": se,
        "snr": improvement / se if se > 0 else math.nan,
        "trend": slope,
        "snr_trend": slope / se if se > 0 else math.nan,
        "snr_window": slope * (window + 1) / 2 / (se * math.sqrt(1 + 1 / window)) if se > 0 else math.nan,
    }


def run_name(run) -> str:
    """``GRPO+PIPO (probe J, zero) · seed 42``: the method, J's source and control, the seed."""
    name = method_name(run.algorithm, run.pipo)
    if run.pipo:
        extra = [f"{getattr(run, 'performance', 'verifier')} J"] + ([run.control] if run.control != "none" else [])
        name += f" ({', '.join(extra)})"
    return f"{name} · seed {run.seed}"


def feedback_summary(runs: pd.DataFrame, n_boot: int = N_BOOT, seed: int = 0) -> pd.DataFrame:
    """One row per run of ``runs`` (a :func:`analysis.runs.load_runs` frame) that logged J_se or a probe:
    its identity and :func:`run_feedback`'s statistics. ``probe``: whether it has the realized improvement."""
    rows = []
    for run in runs.itertuples(index=False):
        metrics = load_metrics(run.path)
        if metrics.empty or not ({J_SE, PROBE} & set(metrics.columns)):
            continue
        stats = run_feedback(metrics, int(run.window), float(run.lam), n_boot, seed)
        probe_j = bool(run.pipo) and getattr(run, "performance", "verifier") == "probe"
        if probe_j:  # J_t is P_t: δ_t and P_t − P_{t−1} share P_t, so they correlate (≈ 0.7) with no signal at all
            stats.update(dict.fromkeys(SHARED_P, math.nan))
        rows.append(
            {
                "signature": run.signature,
                "run": run_name(run),
                "scale": run.scale,
                "model": run.model,
                "algorithm": run.algorithm,
                "pipo": run.pipo,
                "performance": getattr(run, "performance", "verifier") if run.pipo else "",
                "control": run.control if run.pipo else "",
                "seed": run.seed,
                "window": int(run.window),
                "lam": float(run.lam),
                "probe": PROBE in metrics.columns,
                "delta_source": "logged" if DELTA in metrics.columns else "offline",
                "path": run.path,
                **stats,
            }
        )
    order = ["algorithm", "pipo", "performance", "control", "seed"]
    return pd.DataFrame(rows).sort_values(order, ignore_index=True) if rows else pd.DataFrame(rows)


def figure(summary: pd.DataFrame, out_dir: Path, name: str = "feedback") -> list[Path]:
    """δ_t against the realized improvement r_t, one panel per run with a probe (PDF and PNG)."""
    runs = summary[summary["probe"]] if not summary.empty else summary
    if runs.empty:
        return []
    cols = min(5, len(runs))
    rows = math.ceil(len(runs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 2.7 * rows), squeeze=False, constrained_layout=True)
    for ax, run in zip(axes.flat, runs.itertuples(index=False), strict=False):
        metrics = load_metrics(run.path)
        a = aligned(metrics, run.window, run.lam).dropna(subset=["delta", "realized"])  # the summary's δ
        ax.axhline(0, color="0.7", lw=0.6)
        ax.axvline(0, color="0.7", lw=0.6)
        ax.scatter(a["delta"], 100 * a["realized"], s=7, alpha=0.7, color="#D55E00" if run.pipo else "#0072B2")
        r = (
            f"r = {run.corr_delta:+.2f} [{run.corr_delta_lo:+.2f}, {run.corr_delta_hi:+.2f}]"
            if not math.isnan(run.corr_delta)
            else "r: n/a (probe J)"
        )
        ax.set_title(f"{run.run}\n{r}", fontsize=7.5)
        ax.set_xlabel(r"$\delta_t$" + (" (PIPO's, offline)" if run.delta_source == "offline" else ""))
        ax.set_ylabel(r"$P_t - P_{t-1}$ (points)")
    for ax in list(axes.flat)[len(runs) :]:
        ax.set_visible(False)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    for p in paths:
        fig.savefig(p, dpi=200)
    plt.close(fig)
    return paths


COLUMNS = {
    "run": "run",
    "n": "n",
    "corr_delta": "r(δ, realized)",
    "corr_dJ": "r(ΔJ, realized)",
    "sign_agreement": "sign agr.",
    "balanced_accuracy": "bal. acc.",
    "improvement": "median realized",
    "mean_improvement": "mean realized",
    "J_se": "median J_se",
    "snr": "SNR",
    "snr_trend": "SNR (trend)",
}


def report(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table: correlations with their intervals, the SNRs."""
    if summary.empty:
        return "no run logged pipo/J_se or probe/score"

    def interval(r, lo, hi) -> str:
        return "—" if math.isnan(r) else f"{r:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    def num(x, fmt) -> str:
        return "—" if isinstance(x, float) and math.isnan(x) else format(x, fmt)

    lines = ["| " + " | ".join(COLUMNS.values()) + " |", "|" + "---|" * len(COLUMNS)]
    for s in summary.itertuples(index=False):
        cells = [
            s.run,
            str(s.n),
            interval(s.corr_delta, s.corr_delta_lo, s.corr_delta_hi),
            interval(s.corr_dJ, s.corr_dJ_lo, s.corr_dJ_hi),
            num(s.sign_agreement, ".2f"),
            num(s.balanced_accuracy, ".2f"),
            num(s.improvement, "+.4f"),
            num(s.mean_improvement, "+.4f"),
            num(s.J_se, ".4f"),
            num(s.snr, "+.3f"),
            num(s.snr_trend, "+.3f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_feedback(runs: pd.DataFrame, scale: str, out_dir: Path, name: str = "feedback") -> tuple[str, list[Path]]:
    """The summary of every run at ``scale`` (CSV and Markdown) and its figure in ``out_dir``; returns the
    Markdown report and the paths written."""
    runs = runs[runs["scale"] == scale] if not runs.empty else runs
    summary = feedback_summary(runs)
    text = report(summary)
    if summary.empty:
        return text, []
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{name}_summary.csv", out_dir / f"{name}_summary.md"
    summary.drop(columns=["path"]).to_csv(csv, index=False)
    md.write_text(text + "\n", encoding="utf-8")
    return text, [csv, md, *figure(summary, out_dir, name)]
