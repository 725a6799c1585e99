"""The feedback analysis against hand-computed values on a small made-up record."""

import math

import pandas as pd
import pytest

from analysis.__main__ import main
from analysis.feedback import aligned, feedback_summary, run_feedback
from analysis.runs import load_runs
from tests.analysis.synthetic import config, evaluation, random_counts, write_record

# six iterations: P_t the probe's score of θ_t, δ_t (undefined at 1, 2), J_t and its standard error
PROBE = [0.50, 0.52, 0.51, 0.55, 0.54, 0.58]
DELTA = [None, None, 1.0, -0.5, 2.0, 0.5]
J = [0.3, 0.4, 0.2, 0.5, 0.4, 0.6]
J_SE = [0.05, 0.04, 0.06, 0.05, 0.04, 0.05]


def record(probe=PROBE, delta=DELTA, skip=()) -> list[dict]:
    rows = []
    for t in range(6):
        if t + 1 in skip:
            continue
        row = {"step": t + 1, "pipo/J": J[t], "pipo/J_se": J_SE[t], "pipo/delta": delta[t] if delta else None}
        if probe:
            row["probe/score"] = probe[t]
        rows.append(row)
    return rows


def test_statistics_by_hand():
    s = run_feedback(pd.DataFrame(record()), window=8)
    # δ_t judges θ_{t−1} → θ_t: pairs (δ_t, P_t − P_{t−1}) for t = 3..6: δ = 1, −.5, 2, .5; r = −.01, .04, −.01, .04
    # deviations from the means (.75, .015): (.25, −1.25, 1.25, −.25) and ±.025: Σxy = −.075, Σx² = 3.25, Σy² = .0025
    assert s["n"] == 4
    assert s["corr_delta"] == pytest.approx(-0.075 / math.sqrt(3.25 * 0.0025), rel=1e-9)  # −0.832
    assert s["corr_delta_lo"] <= s["corr_delta"] <= s["corr_delta_hi"]
    # Spearman: ranks 3 1 4 2 against 1.5 3.5 1.5 3.5, deviations (.5 −1.5 1.5 −.5) and ∓1: −4 / √(5 · 4)
    assert s["spearman_delta"] == pytest.approx(-4 / math.sqrt(20), rel=1e-9)
    # signs: δ + − + +, r − + − +: one agreement in four; on r > 0 one hit of two, on r < 0 none of two
    assert s["sign_agreement"] == 0.25 and s["balanced_accuracy"] == 0.25
    # J_t − J_{t−1} = .1, −.2, .3, −.1, .2 against r = .02, −.01, .04, −.01, .04 (t = 2..6)
    assert s["corr_dJ"] == pytest.approx(0.0202 / math.sqrt(0.172 * 0.00252), rel=1e-9)  # 0.970
    # median r over t = 2..6 (.02 −.01 .04 −.01 .04) = .02; median J_se .05; SNR .4
    assert (s["improvement"], s["J_se"]) == (pytest.approx(0.02), pytest.approx(0.05))
    assert s["snr"] == pytest.approx(0.4)
    assert s["mean_improvement"] == pytest.approx(0.08 / 5)  # (P_6 − P_1) / 5: the mean of the five
    # J's OLS slope: Σ(t − 3.5)(J − .4) / Σ(t − 3.5)² = .9 / 17.5; over J_se; over the window's lag and noise
    assert s["trend"] == pytest.approx(0.9 / 17.5)
    assert s["snr_trend"] == pytest.approx(0.9 / 17.5 / 0.05)
    assert s["snr_window"] == pytest.approx(0.9 / 17.5 * 4.5 / (0.05 * math.sqrt(1.125)))


def test_a_missing_step_leaves_both_of_its_differences_undefined():
    a = aligned(pd.DataFrame(record(skip=(4,))))
    assert math.isnan(a.loc[5, "realized"]) and math.isnan(a.loc[5, "dJ"]) and 4 not in a.index
    assert a.loc[6, "realized"] == pytest.approx(0.04)


def test_without_pipo_delta_is_the_one_pipo_would_have_computed_and_without_a_probe_only_the_trend():
    rows = [{k: v for k, v in r.items() if k not in ("pipo/delta", "pipo/J")} for r in record(probe=None)]
    for r, j in zip(rows, J, strict=True):
        r["critic/score/mean"] = j
    a = aligned(pd.DataFrame(rows), window=8)
    # t = 3: (.2 − .35) / σ(.3, .4) = −.15 / .05; t = 4: (.5 − .3) / σ(.3, .4, .2) = .2 / √(.02/3)
    assert a.loc[3, "delta"] == pytest.approx(-3.0, rel=1e-4)
    assert a.loc[4, "delta"] == pytest.approx(0.2 / math.sqrt(0.02 / 3), rel=1e-4)
    s = run_feedback(pd.DataFrame(rows))
    assert s["n"] == 0 and math.isnan(s["corr_delta"]) and math.isnan(s["snr"])
    assert s["snr_trend"] == pytest.approx(0.9 / 17.5 / 0.05)


def test_the_cli_prints_each_runs_correlation_and_draws_one_panel_per_probed_run(tmp_path, capsys):
    import random

    ev = [evaluation(0, "math", random_counts("math", random.Random(1)))]
    write_record(tmp_path / "runs", "probed", config(seed=6), ev, metrics=record())
    write_record(tmp_path / "runs", "plain", config(pipo=False, seed=21), ev, metrics=record(probe=None, delta=None))
    write_record(tmp_path / "runs", "old", config(seed=42), ev, metrics=[{"step": 1, "critic/score/mean": 0.1}])
    summary = feedback_summary(load_runs(tmp_path / "runs").frame)
    assert sorted(summary["signature"]) == ["plain", "probed"]  # the old record logged neither J_se nor a probe
    assert main(["feedback", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert "| GRPO+PIPO (verifier J) · seed 6 | 4 | -0.83 [" in out
    assert "| GRPO · seed 21 | 0 | — |" in out
    for name in ("feedback.pdf", "feedback.png", "feedback_summary.csv", "feedback_summary.md"):
        assert (tmp_path / "results" / "tiny" / name).exists()


def test_probe_j_runs_have_no_accuracy_statistics(tmp_path):
    """With pipo.performance=probe, δ_t and the realized improvement share P_t: r is left blank."""
    metrics = [{"step": t, "probe/score": 0.1 * t, "pipo/delta": float(t % 3), "pipo/J": 0.1 * t, "pipo/J_se": 0.05}
               for t in range(1, 9)]  # fmt: skip
    cfg = config()
    cfg["pipo"]["performance"] = "probe"
    write_record(tmp_path, "probe_j", cfg, [], metrics=metrics)
    row = feedback_summary(load_runs(tmp_path).frame).iloc[0]
    assert math.isnan(row["corr_delta"]) and math.isnan(row["sign_agreement"]) and math.isnan(row["corr_dJ"])
    assert row["J_se"] == 0.05  # the rest stays
