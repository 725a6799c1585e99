"""The claims report: the verdict rule, the MDE, the statistics, and reports from synthetic records."""

import os
import random
import shutil

import numpy as np
import pytest

from analysis.__main__ import main as analysis_main
from analysis.claims import ZERO, Side, load_claims, side_cells
from analysis.report import (
    Result,
    drop_effect,
    evaluate_all,
    max_drop,
    overhead_effect,
    step_times,
    summary_rows,
    to_markdown,
    write_report,
)
from analysis.runs import load_runs
from analysis.verdict import INCONCLUSIVE, NOT_RUN, OPPOSED, RULED_OUT, SUPPORTED, Effect, mde, verdict
from pipo.cell import signature
from pipo.config import to_container
from pipo.sweeps import load_sweep, plan
from tests.analysis.synthetic import SPLITS, config, write_record


@pytest.mark.parametrize(
    ("effect", "paper", "direction", "expected"),
    [
        (Effect(2.0, 0.5, 3.5), 2.2, None, SUPPORTED),  # excludes 0 on the paper's side
        (Effect(-2.0, -3.5, -0.5), 2.2, None, OPPOSED),  # excludes 0 on the other side
        (Effect(0.1, -0.8, 1.0), 2.2, None, RULED_OUT),  # contains 0, excludes 2.2
        (Effect(0.5, -2.0, 3.0), 2.2, None, INCONCLUSIVE),  # contains both
        (Effect(-2.0, -3.5, -0.5), -1.0, None, SUPPORTED),  # a negative claim (Table 7's K = 32)
        (Effect(1.0, 0.2, 1.8), None, 1, SUPPORTED),  # a direction only
        (Effect(0.1, -0.8, 1.0), None, 1, INCONCLUSIVE),  # a direction only: never ruled out
        (Effect(1.0), 2.2, None, INCONCLUSIVE),  # no interval
        (None, 2.2, None, NOT_RUN),
        # boundaries: an interval that ends at 0 contains 0; one that ends at the paper's effect contains it
        (Effect(1.0, 0.0, 2.0), 1.5, None, INCONCLUSIVE),
        (Effect(-1.0, -2.0, 0.0), 2.2, None, RULED_OUT),
        (Effect(1.0, -1.0, 2.2), 2.2, None, INCONCLUSIVE),
        (Effect(1.0, -1.0, 2.19), 2.2, None, RULED_OUT),
        (Effect(1.0, 1e-9, 2.0), 2.2, None, SUPPORTED),
    ],
)
def test_the_verdict_rule(effect, paper, direction, expected):
    assert verdict(effect, paper, direction) == expected


def test_a_claim_without_paper_effect_or_direction_is_an_error():
    with pytest.raises(ValueError, match="direction"):
        verdict(Effect(1.0, 0.5, 1.5), None, None)


def test_the_minimum_detectable_effect_is_2_8_standard_errors():
    # [−1, 3]: SE = 4 / (2 × 1.959964) = 1.020427; (1.959964 + 0.841621) × SE = 2.858813
    assert mde(Effect(1.0, -1.0, 3.0)) == pytest.approx(2.858813, abs=1e-5)
    assert mde(Effect(1.0)) is None


def test_max_drop_from_the_running_best():
    curve = np.array([10.0, 30.0, 20.0, 25.0, 5.0])  # running best 10 30 30 30 30: drops 0 0 10 5 25
    assert max_drop(curve) == 25.0
    assert max_drop(np.array([1.0, 2.0, 3.0])) == 0.0


def test_drop_effect_is_base_drop_minus_pipo_drop():
    # one benchmark of 4 problems, 3 evaluations; base curve 50 75 25 (drop 50), PIPO 25 50 50 (drop 0)
    base = {42: {"B": np.array([[1, 1, 0, 0], [1, 1, 1, 0], [1, 0, 0, 0]], float)}}
    pipo = {42: {"B": np.array([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]], float)}}
    effect = drop_effect(pipo, base, ["B"])
    assert effect.value == pytest.approx(50.0)
    assert effect.lo <= effect.value <= effect.hi


def test_overhead_effect_in_per_cent():
    # GRPO+PIPO 2 s/step vs GRPO 1 s (+100%), PPO+PIPO 1.1 vs PPO 1.0 (+10%): 90 points more
    one = [np.ones(30)]
    effect = overhead_effect([2 * one[0]], one, [1.1 * one[0]], one)
    assert effect.value == pytest.approx(90.0)
    assert (effect.lo, effect.hi) == pytest.approx((90.0, 90.0))  # no variation to resample
    # a slow stretch of 10 steps in the PIPO run: the point is the ratio of the means, the interval covers it
    slow = np.ones(30)
    slow[10:20] = 3.0  # mean 1.667: +66.7% over GRPO, 56.7 points over PPO's +10%
    effect = overhead_effect([slow], one, [1.1 * one[0]], one)
    assert effect.value == pytest.approx(100 * (50 / 30 - 1.1))
    assert effect.lo < effect.value < effect.hi
    assert overhead_effect([], one, one, one) is None


def test_an_overhead_claims_design_is_steps_and_a_diff_claims_problems_by_seeds():
    claims = {c.id: c for c in load_claims()}
    no_control = (None, None)
    over = Result(claims["F5-GRPO"], Effect(-5, -9, -1), None, (None, None), OPPOSED, 2.8, *no_control, [], 99, "n")
    t1 = claims["T1-4B-GRPO"]
    diff = Result(t1, Effect(1, 0.5, 1.5), 2.2, (46.1, 43.9), SUPPORTED, 0.7, *no_control, [6, 42], 30, "")
    md = to_markdown([over, diff], {"scale": "tiny", "command": "c", "commit": "x", "machine": "m", "runs": "4"}, None)
    assert "MDE 2.8; 99 steps a side; n\n" in md and "(overhead)\n" in md
    assert "MDE 0.7; 30 problems × 2 seed(s) [6, 42]\n" in md


def test_step_times_leave_out_each_runs_first_step(tmp_path):
    metrics = [{"step": s, "timing/step": t} for s, t in [(1, 9.0), (2, 1.0), (3, 2.0)]]
    write_record(tmp_path, "r", config(), [], metrics=metrics)
    (times,) = step_times(load_runs(tmp_path).frame)
    assert times.tolist() == [1.0, 2.0]


def _record(root, sig, rate, n, seed, rng, control="none", **cfg):
    """A finished math run whose every benchmark has ``rate`` of its ``n`` problems solved (which: at random)."""
    benches, start = {}, {}
    for split, (bench, _) in SPLITS["math"].items():
        c = round(rate * n)
        solved = [1.0] * c + [0.0] * (n - c)
        rng.shuffle(solved)
        per = {str(i): x for i, x in enumerate(solved)}
        benches[split] = {"stands_for": bench, "n": n, "correct": c, "pass@1": c / n, "per_problem": per}
        start[split] = {
            "stands_for": bench,
            "n": n,
            "correct": 0,
            "pass@1": 0.0,
            "per_problem": dict.fromkeys(per, 0.0),
        }
    evals = [{"step": 0, "benchmarks": start}, {"step": 100, "benchmarks": benches}]
    cfg = config(seed=seed, **cfg)
    cfg["pipo"]["control"] = control
    write_record(root, sig, cfg, evals)


def _t1_grpo(tmp_path, pipo_rate, base_rate, zero_rate, n, seeds=(42,)):
    rng = random.Random(0)
    for s in seeds:
        _record(tmp_path, f"p{s}", pipo_rate, n, s, rng)
        _record(tmp_path, f"b{s}", base_rate, n, s, rng, pipo=False)
        _record(tmp_path, f"z{s}", zero_rate, n, s, rng, control="zero")  # the pipo.control=zero twin
    claim = next(c for c in load_claims() if c.id == "T1-4B-GRPO")
    return evaluate_all(load_runs(tmp_path).frame, "tiny", [claim])[0]


def test_a_planted_effect_is_supported_and_a_null_control_with_many_problems_ruled_out(tmp_path):
    r = _t1_grpo(tmp_path, pipo_rate=0.8, base_rate=0.5, zero_rate=0.8, n=3000)
    assert r.paper == pytest.approx(46.1 - 43.9)  # Table 1, Qwen3-4B-Base: GRPO+PIPO − GRPO
    assert r.effect.value == pytest.approx(30.0)
    assert r.verdict == SUPPORTED
    assert (r.seeds, r.problems) == ([42], 5 * 3000)
    # the zero twin scores like PIPO: the feedback adds nothing, and 3,000 problems a benchmark rule out +2.2
    assert r.control.value == pytest.approx(0.0, abs=1e-9) and r.control.hi < r.paper
    assert r.control_verdict == RULED_OUT and r.control_seeds == [42]


def test_the_zero_twins_seeds_are_its_own(tmp_path):
    """PIPO and its zero twin at 3 seeds, the base at one: a − b rests on one seed (¹), a − zero on three."""
    rng = random.Random(0)
    for s in (6, 21, 42):
        _record(tmp_path, f"p{s}", 0.6, 200, s, rng)
        _record(tmp_path, f"z{s}", 0.5, 200, s, rng, control="zero")
    _record(tmp_path, "b42", 0.5, 200, 42, rng, pipo=False)
    (r,) = evaluate_all(load_runs(tmp_path).frame, "tiny", [c for c in load_claims() if c.id == "T1-4B-GRPO"])
    assert (r.seeds, r.control_seeds) == ([42], [6, 21, 42])
    (row,) = summary_rows([r])
    assert row[4].endswith("¹") and not row[6].endswith("¹")


def test_a_null_with_too_few_problems_is_inconclusive(tmp_path):
    r = _t1_grpo(tmp_path, pipo_rate=0.5, base_rate=0.5, zero_rate=0.5, n=20)
    assert r.effect.value == pytest.approx(0.0, abs=1e-9)
    assert r.verdict == INCONCLUSIVE
    assert r.mde > r.paper  # 100 problems cannot detect +2.2


def test_an_empty_run_root_lists_every_claim_as_not_run_with_its_command(tmp_path, capsys):
    (tmp_path / "runs").mkdir()
    assert analysis_main(["report", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 0
    text = capsys.readouterr().out
    md = (tmp_path / "out" / "tiny" / "report.md").read_text()
    claims = load_claims()
    assert len(claims) >= 10
    rows = {line.split("|")[1].strip(): line.split("|") for line in md.splitlines() if line.startswith("| ")}
    for c in claims:
        assert rows[c.id][5].strip() == "not run" and f"## {c.id}:" in md
    # each claim's command runs just its cells: T1-4B-GRPO's rows at its three seeds, then their zero twins
    assert (
        "python reproduce/table1.py -m model=qwen3_4b_base algorithm=grpo pipo=on,off seed=6,21,42; "
        "python reproduce/table1.py -m pipo.control=zero model=qwen3_4b_base algorithm=grpo pipo=on seed=6,21,42"
    ) in text
    assert "python reproduce/feedback.py -m" in text


@pytest.mark.slow
def test_the_report_grid_holds_every_cell_the_claims_need():
    planned = {c.signature for c in plan(load_sweep("report"), [])}
    planned |= {c.signature for c in plan(load_sweep("table6"), [])}  # Table 6 re-evaluates Table 1's cells
    needed = 0
    for claim in load_claims():
        if claim.sweep == "feedback":  # the feedback study: its own grid and run root (reproduce/feedback.py)
            continue
        for side in claim.sides:
            for seed in claim.seeds:
                seeded = Side(side.sweep, side.row, side.block, (*side.overrides, f"seed={seed}"))
                for cell in side_cells(seeded):
                    assert signature(to_container(cell.cfg)) in planned, (claim.id, side.describe(), seed)
                    needed += 1
    assert needed > 100
    assert any(ZERO in s.overrides for c in load_claims() for s in c.sides)


def test_fig2_claims_read_the_evaluation_curves(tmp_path):
    """AUC: each problem's mean over the evaluations after step 0; drop: from the curve's running best."""
    n = 40
    for sig, pipo, control, solved in [("p", True, "none", [10, 30, 30]), ("b", False, "none", [20, 30, 10]),
                                       ("z", True, "zero", [10, 30, 30])]:  # fmt: skip
        evals = []
        for step, c in zip((0, 50, 100), [0, *solved[1:]], strict=True):
            per = {str(i): float(i < c) for i in range(n)}  # the first c problems solved
            benches = {s: {"stands_for": b, "n": n, "correct": c, "pass@1": c / n, "per_problem": per}
                       for s, (b, _) in SPLITS["math"].items()}  # fmt: skip
            evals.append({"step": step, "benchmarks": benches})
        evals[1]["benchmarks"] = {s: {**e, "per_problem": {str(i): float(i < solved[0]) for i in range(n)},
                                      "correct": solved[0]} for s, e in evals[1]["benchmarks"].items()}  # fmt: skip
        cfg = config(pipo=pipo)
        cfg["pipo"]["control"] = control
        write_record(tmp_path, sig, cfg, evals)
    claims = [c for c in load_claims() if c.id in ("F2-AUC-GRPO", "F2-DROP-GRPO")]
    auc, drop = evaluate_all(load_runs(tmp_path).frame, "tiny", claims)
    # evaluations after step 0 at steps 50, 100: PIPO 10/40 then 30/40 (mean 50%), GRPO 20 then 10 (37.5%)
    assert auc.effect.value == pytest.approx(50.0 - 37.5)
    # curves 0, 25, 75 (PIPO: no drop) and 0, 50, 25 (GRPO: 25 below its best): 25 − 0
    assert drop.effect.value == pytest.approx(25.0)
    assert drop.control.value == pytest.approx(0.0)
    # the whole report from these records: Markdown with the figure, LaTeX that compiles where pdflatex is
    paths, _ = write_report(load_runs(tmp_path).frame, "tiny", tmp_path / "out")
    names = {p.name for p in paths}
    assert {"report.md", "report.tex", "report_effects.png", "report_effects.pdf"} <= names
    assert "![" in (tmp_path / "out" / "tiny" / "report.md").read_text()
    if shutil.which("pdflatex") or os.environ.get("PIPO_REQUIRE_LATEX"):
        assert "report.pdf" in names


def test_the_feedback_claim_pools_each_runs_standardized_pairs(tmp_path):
    """δ_t against P_t − P_{t−1}: with z-scores inside each run and runs of equal length, the pooled r is
    the mean of the runs' own correlations (a second formula, np.corrcoef per run)."""
    probe = [0.0, 1.0, 3.0, 6.0, 10.0, 15.0]  # realized improvements 1, 2, 3, 4, 5 at steps 2..6
    runs = {"r1": [0.5, 2.0, 1.0, 4.0, 3.5], "r2": [2.0, -1.0, 0.0, 1.0, 3.0]}  # δ at steps 2..6
    for sig, deltas in runs.items():
        metrics = [{"step": 1, "probe/score": probe[0], "pipo/J": 0.5}]
        metrics += [
            {"step": t, "probe/score": probe[t - 1], "pipo/delta": d, "pipo/J": 0.5}
            for t, d in zip(range(2, 7), deltas, strict=True)
        ]
        write_record(tmp_path, sig, config(seed=6 if sig == "r1" else 21), [], metrics=metrics)
    write_record(tmp_path, "base", config(pipo=False), [], metrics=[{"step": 1, "probe/score": 0.1}])
    claim = next(c for c in load_claims() if c.id == "FB-ACCURACY")
    (r,) = evaluate_all(load_runs(tmp_path).frame, "tiny", [claim], feedback_runs=load_runs(tmp_path).frame)
    realized = [1.0, 2.0, 3.0, 4.0, 5.0]
    expected = np.mean([np.corrcoef(d, realized)[0, 1] for d in runs.values()])
    assert r.effect.value == pytest.approx(expected)
    assert r.effect.lo <= r.effect.value <= r.effect.hi
    assert "10 iterations of 2 run(s)" in r.note
    empty = load_runs(tmp_path / "nothing").frame
    assert evaluate_all(empty, "tiny", [claim], feedback_runs=empty)[0].verdict == NOT_RUN


def test_two_runs_of_one_seed_leave_that_claim_not_run_with_the_reason(tmp_path):
    rng = random.Random(0)
    _record(tmp_path, "p1", 0.6, 50, 42, rng)
    _record(tmp_path, "p2", 0.7, 50, 42, rng)  # e.g. a run of another pipo.lr: the tables cannot tell them apart
    _record(tmp_path, "b", 0.5, 50, 42, rng, pipo=False)
    claims = [c for c in load_claims() if c.id in ("T1-4B-GRPO", "T1-4B-PPO")]
    ppo, grpo = evaluate_all(load_runs(tmp_path).frame, "tiny", claims)  # in the file's order
    assert grpo.verdict == NOT_RUN and "several finished runs of one seed" in grpo.note and "p1" in grpo.note
    assert ppo.verdict == NOT_RUN and ppo.note == ""  # simply no runs


def test_the_feedback_studys_claims_read_its_own_run_root(tmp_path):
    """FB-PROBE-ZERO-GRPO compares GRPO+PIPO with probe J against its zero twin, in runs/feedback's records."""
    rng = random.Random(0)
    for s in (6, 21, 42):
        for sig, rate, control in ((f"p{s}", 0.6, "none"), (f"z{s}", 0.5, "zero")):
            _record(tmp_path, sig, rate, 400, s, rng, control=control, performance="probe")  # J_t: the probe's
    claims = load_claims()
    (claim,) = [c for c in claims if c.id == "FB-PROBE-ZERO-GRPO"]
    study, empty = load_runs(tmp_path).frame, load_runs(tmp_path / "nothing").frame
    r = evaluate_all(empty, "tiny", [claim, *claims], feedback_runs=study)[0]
    assert r.effect.value == pytest.approx(10.0) and r.seeds == [6, 21, 42] and r.verdict == SUPPORTED
    assert evaluate_all(study, "tiny", [claim, *claims], feedback_runs=empty)[0].verdict == NOT_RUN
    assert "python reproduce/feedback.py -m" in claim.command()
