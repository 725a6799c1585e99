"""The paper's tables from records: values, averages, seeds, missing cells, paper view, LaTeX."""

import csv
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from analysis.build import ARTEFACTS, after_sweep, build
from analysis.render import to_latex, to_markdown
from analysis.runs import load_runs
from analysis.tables import (
    PAPER_DIR,
    bootstrap_diff,
    expected_cells,
    paired_bootstrap,
    pipo_minus_base,
    significant,
)
from pipo.config import compose_cell
from pipo.sweeps import PlannedCell, Sweep, SweepResult, load_sweep
from tests.analysis.synthetic import SPLITS, config, evaluation, random_counts, random_metrics, write_record

MATH = SPLITS["math"]


def counts(**by_split):
    return {s: by_split.get(s, 0) for s in MATH}


@pytest.mark.parametrize("name", sorted(p.name for p in PAPER_DIR.glob("*.csv")))
def test_the_papers_own_avg_columns_are_the_unweighted_mean_of_its_benchmarks(name):
    with open(PAPER_DIR / name) as f:
        rows = list(csv.DictReader(f))
    skip = {"model", "method", "lambda", "K"}
    for row in rows:
        cols = [c for c in row if c not in skip]
        blocks = [[c for c in cols if not c.endswith("AVG")]]
        avgs = [c for c in cols if c.endswith("AVG")]
        if len(avgs) == 2:  # Table 2: Code | Tool
            split = cols.index(avgs[0]) + 1
            blocks = [cols[: split - 1], [c for c in cols[split:] if c != avgs[1]]]
        for block, avg in zip(blocks, avgs, strict=True):
            assert float(row[avg]) == pytest.approx(np.mean([float(row[c]) for c in block]), abs=0.051), (name, row)


def test_table1_values_averages_base_row_and_missing_cells(tmp_path):
    # GRPO+PIPO on 4B, two seeds; GRPO on 4B, one seed; everything else missing
    e0 = evaluation(0, "math", counts(toy_math500=100, toy_aime25=0, toy_amc23=4, toy_minerva=27, toy_olympiad=135))
    a = evaluation(100, "math", counts(toy_math500=400, toy_aime25=9, toy_amc23=20, toy_minerva=136, toy_olympiad=270))
    b = evaluation(100, "math", counts(toy_math500=450, toy_aime25=18, toy_amc23=30, toy_minerva=68, toy_olympiad=405))
    write_record(tmp_path, "s1", config(seed=42), [e0, a])
    write_record(tmp_path, "s2", config(seed=6), [e0, b])
    write_record(tmp_path, "g1", config(pipo=False), [e0, a])
    write_record(tmp_path, "crashed", config(algorithm="ppo"), [e0], state="failed")
    (write_record(tmp_path, "torn", config(algorithm="dapo"), [e0]).path / "cell.yaml").write_text("config: [")
    runs = load_runs(tmp_path)
    assert [p.endswith("torn") for p, _ in runs.skipped] == [True]
    t = build("table1", runs, "tiny", tmp_path / "results").table
    row = ("GRPO+PIPO",)
    # by hand: seed 42 MATH500 80.0, seed 6 90.0 -> 85.0 ± 7.07
    assert t.cells[(row, "Qwen3-4B-Base", "MATH500")].mean == pytest.approx(85.0)
    assert t.cells[(row, "Qwen3-4B-Base", "MATH500")].std == pytest.approx(np.std([80, 90], ddof=1))
    avg_a = np.mean([80.0, 100 * 9 / 27, 50.0, 50.0, 40.0])
    avg_b = np.mean([90.0, 100 * 18 / 27, 75.0, 25.0, 60.0])
    assert t.cells[(row, "Qwen3-4B-Base", "AVG")].mean == pytest.approx((avg_a + avg_b) / 2)
    base = t.cells[(("Base Model",), "Qwen3-4B-Base", "AVG")].mean
    assert base == pytest.approx(np.mean([20.0, 0.0, 10.0, 100 * 27 / 272, 20.0]))
    assert t.rows[0] == ("Base Model",) and len(t.rows) == 9
    assert len(t.missing) == 16 - 2  # 4B GRPO and GRPO+PIPO exist; PPO crashed: listed as missing
    assert any(m.startswith("PPO+PIPO · qwen3_4b_base · math") and "(failed)" in m for m in t.missing)
    md = to_markdown(t)
    assert "| PPO |" in md and "—" in md and "toy_math500" in md  # tiny scale: the stand-ins' names
    assert "**85.0 ± 7.1**" in md  # the best of its column and block
    # the paper view: reproduced (paper, difference); the paper's GRPO MATH500 is 79.3
    assert t.paper[(("GRPO",), "Qwen3-4B-Base", "MATH500")] == 79.3
    assert "80.0 (79.3, +0.7)" in to_markdown(t, "paper")


def test_pipo_minus_base_with_a_bootstrap_interval_when_there_are_seeds(tmp_path):
    rng = random.Random(0)
    e0 = evaluation(0, "math", counts())
    for seed in (6, 21, 42):
        for pipo, extra in ((False, 0), (True, 25)):
            c = {s: min(n, n // 2 + extra + rng.randint(0, 5)) for s, (_, n) in MATH.items()}
            write_record(tmp_path, f"{pipo}{seed}", config(pipo=pipo, seed=seed), [e0, evaluation(100, "math", c)])
    built = build("table1", load_runs(tmp_path), "tiny", tmp_path / "results")
    names = {p.name for p in built.paths}
    assert {"table1.tex", "table1.md", "table1.csv", "table1_vs_paper.tex", "table1_pipo_minus_base.md"} <= names
    text = (tmp_path / "results" / "tiny" / "table1_pipo_minus_base.md").read_text()
    t = built.table
    a = t.cells[(("GRPO+PIPO",), "Qwen3-4B-Base", "MATH500")].values
    b = t.cells[(("GRPO",), "Qwen3-4B-Base", "MATH500")].values
    assert f"{np.mean(a) - np.mean(b):+.1f}" in text


def test_bootstrap_interval_by_hand():
    assert bootstrap_diff([2.0, 2.0], [1.0, 1.0]) == (1.0, 1.0, 1.0)
    d, lo, hi = bootstrap_diff([1.0, 3.0], [0.0, 0.0], resamples=20_000)
    # resampling two seeds: the mean of (1, 3) takes 1, 2, 3 with probability 1/4, 1/2, 1/4
    assert d == 2.0 and (lo, hi) == (1.0, 3.0)


def outcomes(scores):
    return {str(i): float(x) for i, x in enumerate(scores)}


def test_paired_bootstrap_by_hand():
    # one seed, 2 problems, differences (1, 0): a replicate's mean over 2 drawn problems is 0, 50 or 100
    # points with probability 1/4, 1/2, 1/4, so the 2.5th and 97.5th percentiles are 0 and 100
    one = paired_bootstrap({6: {"B": outcomes([1, 1])}}, {6: {"B": outcomes([0, 1])}}, ["B"], resamples=20_000)
    assert one["B"] == (50.0, 0.0, 100.0) and one["AVG"] == one["B"]
    # two seeds of one problem each, differences 1 and 0: the seed draw alone gives the same three values
    two = paired_bootstrap(
        {6: {"B": outcomes([1])}, 21: {"B": outcomes([0])}}, {6: {"B": outcomes([0])}, 21: {"B": outcomes([0])}}, ["B"]
    )
    assert two["B"] == (50.0, 0.0, 100.0)
    # the same difference everywhere has no spread; AVG is the unweighted mean over benchmarks
    same = paired_bootstrap(
        {6: {"B": outcomes([1] * 4), "C": outcomes([1, 0])}},
        {6: {"B": outcomes([0] * 4), "C": outcomes([1, 0])}},
        ["B", "C"],
    )
    assert same["B"] == (100.0, 100.0, 100.0) and same["C"] == (0.0, 0.0, 0.0) and same["AVG"][0] == 50.0
    assert significant(same["B"]) and not significant(same["C"]) and not significant(one["B"])
    assert paired_bootstrap({6: {"B": outcomes([1])}}, {21: {"B": outcomes([0])}}, ["B"]) == {}  # no common seed


def test_one_problem_on_a_27_problem_set_is_never_marked():
    rng = random.Random(0)
    for _ in range(20):
        base = [rng.randint(0, 1) for _ in range(27)]
        pipo = list(base)
        flip = rng.randrange(27)
        pipo[flip] = 1 - pipo[flip]
        d = paired_bootstrap({42: {"AIME25": outcomes(pipo)}}, {42: {"AIME25": outcomes(base)}}, ["AIME25"])
        assert abs(d["AIME25"][0]) == pytest.approx(100 / 27) and not significant(d["AIME25"])


def test_tables_mark_significant_differences_and_give_one_problems_worth(tmp_path):
    # GRPO+PIPO solves every problem GRPO solves and 40% more of each benchmark: every interval excludes 0
    rng = random.Random(1)
    e0 = evaluation(0, "math", counts(), rng)
    for pipo in (False, True):
        evals = [e0, evaluation(100, "math", {s: round(n * (0.8 if pipo else 0.4)) for s, (_, n) in MATH.items()}, rng)]
        for b in evals[1]["benchmarks"].values():
            n, c = b["n"], int(b["correct"])
            b["per_problem"] = outcomes([1] * c + [0] * (n - c))  # the same order in both runs: nested
        write_record(tmp_path, f"p{pipo}", config(pipo=pipo), evals)
    built = build("table1", load_runs(tmp_path), "tiny", tmp_path / "results")
    main = to_markdown(built.table)
    assert "†" in main and "† PIPO − base" in main  # the printed table carries the markers and their legend
    row = next(line for line in main.splitlines() if line.startswith("| GRPO+PIPO"))
    assert row.count("†") == 6  # five benchmarks and AVG of the 4B block
    diff = (tmp_path / "results" / "tiny" / "table1_pipo_minus_base.md").read_text()
    assert row_cell(diff, "GRPO+PIPO", "Qwen3-4B-Base toy_math500").startswith("+40.0 [")  # 400 − 200 of 500 problems
    paper = (tmp_path / "results" / "tiny" / "table1_vs_paper.md").read_text()
    assert "| Problems (pts each) | 500 (0.2) | 27 (3.7) | 40 (2.5) | 272 (0.4) | 675 (0.1) |" in paper
    # the paper's GRPO+PIPO − GRPO on Qwen3-4B-Base: flagged where it is below one problem's points
    t = built.table
    for col in ("MATH500", "AIME25", "AMC23", "Minerva", "OlympiadBench"):
        ours, theirs = t.paper[(("GRPO+PIPO",), "Qwen3-4B-Base", col)], t.paper[(("GRPO",), "Qwen3-4B-Base", col)]
        cell = row_cell(paper, "GRPO+PIPO", f"Qwen3-4B-Base {t.column_label(col)}")
        assert ("‡" in cell) == (abs(ours - theirs) < 100 / t.sizes[("Qwen3-4B-Base", col)]), (col, cell)


def row_cell(markdown: str, row: str, column: str) -> str:
    lines = markdown.splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    line = next(x for x in lines if x.startswith(f"| {row} "))
    return [c.strip() for c in line.strip("|").split("|")][
        head.index(next(h for h in head if h.endswith(column) or column in h))
    ]


def test_every_artefact_builds_from_nothing_and_says_what_is_missing(tmp_path):
    runs = load_runs(tmp_path / "none")
    for name in ARTEFACTS:
        built = build(name, runs, "tiny", tmp_path / "results")
        if built.table is not None:
            assert built.missing and all(
                "—" in line or "Base" in line for line in to_markdown(built.table).splitlines()[2:]
            )


def test_figures_are_drawn_from_records(tmp_path):
    rng = random.Random(1)
    for i, (algo, pipo, seed) in enumerate(
        [(a, p, s) for a in ("grpo", "dapo") for p in (False, True) for s in (6, 42)]
    ):
        evals = [evaluation(step, "math", random_counts("math", rng)) for step in (0, 25, 50)]
        write_record(
            tmp_path, f"r{i}", config(algorithm=algo, pipo=pipo, seed=seed), evals, metrics=random_metrics(50, rng)
        )
    runs = load_runs(tmp_path)
    for name in ("fig2", "fig4", "fig5"):
        paths = build(name, runs, "tiny", tmp_path / "results").paths
        assert paths and all(p.stat().st_size > 1000 for p in paths)
    assert (tmp_path / "results" / "tiny" / "pipo_diagnostics.pdf").exists()


@pytest.mark.skipif(
    shutil.which("pdflatex") is None and not os.environ.get("PIPO_REQUIRE_LATEX"),
    reason="no pdflatex here (.ci/run installs texlive)",
)
def test_every_generated_tex_compiles_with_pdflatex(tmp_path):
    rng = random.Random(2)
    e0 = evaluation(0, "math", random_counts("math", rng))
    write_record(tmp_path, "a", config(seed=6), [e0, evaluation(100, "math", random_counts("math", rng))])
    write_record(tmp_path, "b", config(seed=42), [e0, evaluation(100, "math", random_counts("math", rng))])
    write_record(tmp_path, "c", config(pipo=False, seed=6), [e0, evaluation(100, "math", random_counts("math", rng))])
    write_record(tmp_path, "d", config(pipo=False, seed=42), [e0, evaluation(100, "math", random_counts("math", rng))])
    write_record(tmp_path, "e", config(task="code", pipo=False), [evaluation(100, "code", random_counts("code", rng))])
    runs = load_runs(tmp_path)
    tex = [p for name in ARTEFACTS for p in build(name, runs, "tiny", tmp_path / "results").paths if p.suffix == ".tex"]
    assert len(tex) >= 12
    body = "\n".join(p.read_text() for p in tex)
    doc = tmp_path / "all.tex"
    preamble = "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[T1]{fontenc}\n\\begin{document}\n"
    doc.write_text(preamble + body.replace("\\begin{table}[t]", "\\begin{table}[h]") + "\\end{document}\n")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "all.pdf").stat().st_size > 1000


def test_latex_escapes_and_two_level_header():
    from analysis.render import tex_escape

    assert tex_escape("toy_math500 & 5%") == r"toy\_math500 \& 5\%"
    assert tex_escape("λ") == r"$\lambda$"


def test_latex_table_structure(tmp_path):
    rng = random.Random(3)
    write_record(
        tmp_path, "x", config(), [evaluation(0, "math", counts()), evaluation(9, "math", random_counts("math", rng))]
    )
    t = build("table1", load_runs(tmp_path), "tiny", Path(tmp_path) / "r").table
    tex = to_latex(t)
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\multicolumn{6}{c}{Qwen3-4B-Base}" in tex
    assert r"\cmidrule(lr){2-7}" in tex and "toy\\_math500" in tex


def test_cli_writes_every_artefact_and_reports_skipped_records(tmp_path, capsys):
    from analysis.__main__ import main

    rng = random.Random(4)
    write_record(tmp_path / "runs", "a", config(), [evaluation(0, "math", random_counts("math", rng))])
    (tmp_path / "runs" / "tiny" / "bad").mkdir(parents=True)
    (tmp_path / "runs" / "tiny" / "bad" / "cell.yaml").write_text("- not a cell")
    assert main(["all", "--root", str(tmp_path / "runs"), "--out", str(tmp_path / "results")]) == 0
    out, err = capsys.readouterr()
    assert "skipped" in err and "bad" in err
    assert "table1:" in out and "cell(s) missing" in out
    assert (tmp_path / "results" / "tiny" / "table7.tex").exists()
    assert main(["summary", "--root", str(tmp_path / "runs")]) == 0


def test_expected_cells_are_the_grid_cells_as_run_attributes():
    sweep = Sweep("small", "", [{"algorithm": ["ppo"], "pipo": ["off", "on"]}, {"pipo.window": ["4"]}], ["task=tool"])
    base = {"model": "qwen3_4b_base", "task": "tool", "recipe": "paper", "noise": 0.0}
    paper = {"preset": "paper", "optimizer": "shared", "control": "none", "performance": "verifier"}  # the paper's PIPO
    assert expected_cells(sweep) == [
        {**base, "algorithm": "ppo", "pipo": False},
        {**base, "algorithm": "ppo", "pipo": True, "lam": 0.1, "window": 8, **paper},
        {**base, "algorithm": "grpo", "pipo": True, "lam": 0.1, "window": 4, **paper},
    ]
    assert expected_cells(Sweep("seeds", "", [{"seed": ["6", "21"]}]))[1] == {
        "model": "qwen3_4b_base", "task": "math", "recipe": "paper", "noise": 0.0, "algorithm": "grpo", "pipo": True,
        "lam": 0.1, "window": 8,
        **paper, "seed": 21,
    }  # fmt: skip
    controls = expected_cells(Sweep("c", "", [{"pipo.optimizer": ["sgd"], "pipo.control": ["flip", "zero"]}]))
    assert [(c["optimizer"], c["control"]) for c in controls] == [("sgd", "flip"), ("sgd", "zero")]
    authors = expected_cells(Sweep("a", "", [{"pipo": ["authors"], "recipe": ["authors"]}]))
    assert (authors[0]["preset"], authors[0]["recipe"]) == ("authors", "authors")  # never matched by paper cells


def test_after_a_sweep_ran_its_table_is_built_beside_the_records(tmp_path, capsys):
    rng = random.Random(5)
    write_record(tmp_path / "runs", "x", config(pipo=False), [evaluation(9, "math", random_counts("math", rng))])
    cfg = compose_cell([f"run_root={tmp_path / 'runs'}"])
    cells = [PlannedCell([], cfg, "-", "x", "done", [], 0.0)]
    sweep = load_sweep("table4")
    assert after_sweep(SweepResult(1, sweep, cells)) == 1  # not run (planned, refused): nothing built
    assert capsys.readouterr().out == "" and not (tmp_path / "results").exists()
    assert after_sweep(SweepResult(3, sweep, cells, ran=True)) == 3  # the sweep's exit code, after the report
    out = capsys.readouterr().out
    assert out.startswith(f"\n{sweep.name}: {sweep.description}\ntable4:") and "| GRPO |" in out
    assert (tmp_path / "results" / "tiny" / "table4.tex").exists()


def test_the_noise_study_pairs_each_pipo_row_with_its_base_at_the_same_noise(tmp_path):
    rng = random.Random(2)
    for algorithm in ("grpo", "dapo"):
        for p in (0.0, 0.1, 0.2, 0.3):
            for pipo in (False, True):
                for seed in (6, 21, 42):
                    c = {s: round(n * (0.6 - p + (0.05 if pipo else 0.0))) for s, (_, n) in MATH.items()}
                    evals = [evaluation(0, "math", counts(), rng), evaluation(100, "math", c, rng)]
                    cfg = config(algorithm=algorithm, pipo=pipo, seed=seed, noise=p)
                    write_record(tmp_path, f"{algorithm}{p}{pipo}{seed}", cfg, evals)
    built = build("noise", load_runs(tmp_path), "tiny", tmp_path / "results")
    t = built.table
    assert t.pipo_rows[("DAPO+PIPO", 0.2)] == ("DAPO", 0.2) and len(t.rows) == 16
    assert t.cells[(("GRPO", 0.3), "", "MATH500")].mean == pytest.approx(100 * round(500 * 0.3) / 500)
    assert {p.name for p in built.paths} >= {"noise.pdf", "noise.png", "noise_pipo_minus_base.md"}
    diff = (tmp_path / "results" / "tiny" / "noise_pipo_minus_base.md").read_text()
    assert "| GRPO+PIPO | 0.1 | +5.0 [" in diff  # the same 5-point gain at every p, over problems and seeds


def test_a_sweep_launched_with_overrides_builds_its_table_from_those_cells(tmp_path):
    # Table 1 as in the authors' scripts (pipo=off,authors recipe=authors) beside a paper-recipe GRPO run
    e0 = evaluation(0, "math", counts())
    paper = evaluation(100, "math", counts(toy_math500=100))
    theirs = evaluation(100, "math", counts(toy_math500=300))
    write_record(tmp_path, "paper", config(pipo=False), [e0, paper])
    write_record(tmp_path, "a_off", config(pipo=False, recipe="authors"), [e0, theirs])
    write_record(tmp_path, "a_on", config(preset="authors", recipe="authors"), [e0, theirs])
    runs = load_runs(tmp_path)
    key = (("GRPO",), "Qwen3-4B-Base", "MATH500")
    authors = build("table1", runs, "tiny", tmp_path / "a", ["pipo=off,authors", "recipe=authors"]).table
    assert authors.cells[key].values == [60.0] and authors.cells[
        (("GRPO+PIPO",), "Qwen3-4B-Base", "MATH500")
    ].values == [60.0]
    assert build("table1", runs, "tiny", tmp_path / "p").table.cells[key].values == [20.0]  # the paper's cells only


def test_rows_with_a_run_without_outcomes_fall_back_to_the_bootstrap_over_seeds(tmp_path):
    rng = random.Random(3)
    e0 = evaluation(0, "math", counts())
    for seed, with_outcomes in ((6, True), (21, False)):
        for pipo, extra in ((False, 0), (True, 20)):
            c = {s: n // 2 + extra + rng.randint(0, 5) for s, (_, n) in MATH.items()}
            final = evaluation(100, "math", c, rng if with_outcomes else None)
            write_record(tmp_path, f"{pipo}{seed}", config(pipo=pipo, seed=seed), [e0, final])
    t = build("table1", load_runs(tmp_path), "tiny", tmp_path / "results").table
    key = (("GRPO+PIPO",), "Qwen3-4B-Base", "AVG")
    a, b = t.cells[key].values, t.cells[(("GRPO",), "Qwen3-4B-Base", "AVG")].values
    assert pipo_minus_base(t)[key] == bootstrap_diff(a, b)  # not a paired interval over seed 6 alone


def test_a_run_of_another_testbed_is_not_the_cells_when_the_cells_own_run_is_there(tmp_path):
    """Two done runs of Table 1's 8B GRPO cell at one seed: one of the current settings, one of an earlier
    8B stand-in (3 layers). The table and the report take the current one, and the earlier one only while
    it is the cell's only run (records of a version without the settings hash match by attributes)."""
    from analysis.claims import Side
    from analysis.report import side_runs
    from pipo.config import to_container

    cell = to_container(compose_cell(["model=qwen3_8b_base", "algorithm=grpo", "pipo=off", "task=math"]))
    earlier = {**cell, "model": {**cell["model"], "tiny": {**cell["model"]["tiny"]}}}
    earlier["model"]["tiny"]["arch"] = {**cell["model"]["tiny"]["arch"], "num_hidden_layers": 3}
    e0 = evaluation(0, "math", counts())
    write_record(tmp_path, "earlier", earlier, [e0, evaluation(100, "math", counts(toy_math500=400))])
    key = (("GRPO",), "Qwen3-8B-Base", "MATH500")
    assert build("table1", load_runs(tmp_path), "tiny", tmp_path / "a").table.cells[key].values == [80.0]
    write_record(tmp_path, "current", cell, [e0, evaluation(100, "math", counts(toy_math500=100))])
    runs = load_runs(tmp_path)
    assert build("table1", runs, "tiny", tmp_path / "b").table.cells[key].values == [20.0]  # 100 of 500
    found, _ = side_runs(Side("table1", ("GRPO",), "Qwen3-8B-Base", ("seed=42",)), runs.frame, "tiny")
    assert [Path(p).name for p in found["path"]] == ["current"]
