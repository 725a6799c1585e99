"""Every figure the suite writes, drawn from synthetic records of its sweep's whole grid, is legible:
no two texts overlap, nothing is off the canvas and no legend covers data
(``tests/analysis/legibility.py``)."""

from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from analysis.build import build
from analysis.report import write_report
from analysis.runs import Runs, load_runs
from analysis.tables import pipo_minus_base
from tests.analysis.legibility import clipped, legend_over_data, overlapping_texts, problems, saved_figures
from tests.analysis.synthetic import config, evaluation, sweep_records, write_record


def built(name: str) -> Callable[[Runs, Path], object]:
    return lambda runs, out: build(name, runs, "tiny", out)


# (sweep whose grid the records cover, what draws the figures, the figures it saves): one line per figure
FIGURES = [
    ("fig2", built("fig2"), {"fig2", "pipo_diagnostics"}),
    ("fig4", built("fig4"), {"fig4"}),
    ("fig5", built("fig5"), {"fig5"}),
    ("noise", built("noise"), {"noise"}),
    ("table4", built("table4"), {"table4_lam"}),
    ("table7", built("table7"), {"table7_window"}),
    ("report", lambda runs, out: write_report(runs.frame, "tiny", out), {"report_effects"}),
]


def draw(tmp_path: Path, sweep: str, make: Callable[[Runs, Path], object]) -> dict[str, Figure]:
    sweep_records(tmp_path / "runs", sweep)
    with saved_figures() as figs:
        make(load_runs(tmp_path / "runs"), tmp_path / "results")
    return figs


@pytest.mark.parametrize(("sweep", "make", "names"), FIGURES, ids=[f[0] for f in FIGURES])
def test_every_figure_is_legible(tmp_path, sweep, make, names):
    figs = draw(tmp_path, sweep, make)
    assert set(figs) == names
    for name, fig in figs.items():
        found = problems(fig)
        assert not found, f"{name}: " + "; ".join(found)
        out = tmp_path / "results" / "tiny"
        assert (out / f"{name}.pdf").stat().st_size > 1000 and (out / f"{name}.png").stat().st_size > 1000


def test_the_checks_catch_overlapping_texts_clipping_and_a_legend_over_data():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.set_title("title")
    fig.tight_layout()
    assert problems(fig) == []
    ax.legend(loc="center")  # over the diagonal
    assert legend_over_data(fig) == ["legend ['a line'] covers data of axes 'title'"]
    ax.legend(loc="upper left")  # (0, 1) to (1, 1) is free above the diagonal's start
    ax.set_ylim(-1, 3)
    assert legend_over_data(fig) == []
    ax.text(0.5, 1.02, "over the title", transform=ax.transAxes, ha="center")
    (overlap,) = overlapping_texts(fig)
    assert "'over the title'" in overlap and "'title'" in overlap
    fig.text(0.98, 0.5, "off the edge")
    assert len(clipped(fig)) == 1 and "'off the edge'" in clipped(fig)[0]
    plt.close(fig)


def test_only_drawn_texts_count(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(np.arange(3))
    ax.text(1, 1, "hidden", visible=False)
    ax.text(1, 1, "   ")
    texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
    assert any(t.get_text() == "hidden" for t in texts)
    from tests.analysis.legibility import drawn_texts

    assert "hidden" not in {t for t, _ in drawn_texts(fig)}
    plt.close(fig)


def test_the_lambda_figure_plots_pipo_minus_base_on_one_axis_with_the_tables_intervals_and_the_papers(tmp_path):
    # GRPO and GRPO+PIPO at λ = 0.1 and 1, seeds 6 and 42, counts only (no per-problem outcomes): the table's
    # interval is then its bootstrap over seeds. PIPO solves `extra` more of MATH500's 500 problems than GRPO.
    base = {"toy_math500": 200, "toy_aime25": 9, "toy_amc23": 20, "toy_minerva": 100, "toy_olympiad": 300}
    extra = {(0.1, 6): 50, (0.1, 42): 30, (1.0, 6): -10, (1.0, 42): 0}
    for seed in (6, 42):
        write_record(tmp_path, f"g{seed}", config(pipo=False, seed=seed), [evaluation(100, "math", base)])
        for lam in (0.1, 1.0):
            counts = {**base, "toy_math500": base["toy_math500"] + extra[(lam, seed)]}
            write_record(tmp_path, f"p{lam}{seed}", config(lam=lam, seed=seed), [evaluation(100, "math", counts)])
    with saved_figures() as figs:
        table = build("table4", load_runs(tmp_path), "tiny", tmp_path / "results").table
    fig = figs["table4_lam"]
    assert len(fig.axes) == 1 and legend_over_data(fig) == [] and problems(fig) == []
    assert fig.get_figwidth() <= 3.5  # one column of a two-column paper
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.05", "0.1", "0.2", "0.5", "1"]
    zero, ours, paper = ax.get_lines()
    assert list(zero.get_ydata()) == [0, 0]
    # by hand: AVG moves by (100 · extra / 500) / 5 benchmarks, averaged over the two seeds
    assert list(ours.get_xdata()) == [2, 5]
    assert ours.get_ydata() == pytest.approx([(10 + 6) / 2 / 5, (-2 + 0) / 2 / 5])
    # the paper's Table 4: GRPO+PIPO AVG − GRPO's 43.9
    assert list(paper.get_xdata()) == [0, 1, 2, 3, 4, 5]
    assert paper.get_ydata() == pytest.approx([0.8, 1.8, 2.2, 1.7, 1.8, 0.6])
    # the band is the table's own 95% interval at each λ that has one
    (band,) = ax.collections
    vertices = band.get_paths()[0].vertices
    for x, lam in ((2, 0.1), (5, 1.0)):
        _, low, high = pipo_minus_base(table)[(("GRPO+PIPO", lam), "", "AVG")]
        at_x = vertices[np.isclose(vertices[:, 0], x), 1]
        assert at_x.min() == pytest.approx(low) and at_x.max() == pytest.approx(high) and low < high
    assert [t.get_text() for t in fig.legends[0].texts] == [
        "GRPO (base) = 0",
        "reproduced, 95% CI",
        "paper",
    ]


def test_without_an_interval_the_k_figure_shows_the_difference_alone(tmp_path):
    # one seed, counts only: the table has no interval, so the figure has no band
    base = {"toy_math500": 200, "toy_aime25": 9, "toy_amc23": 20, "toy_minerva": 100, "toy_olympiad": 300}
    write_record(tmp_path, "g", config(pipo=False), [evaluation(100, "math", base)])
    write_record(tmp_path, "p", config(window=32), [evaluation(100, "math", {**base, "toy_aime25": 0})])
    with saved_figures() as figs:
        build("table7", load_runs(tmp_path), "tiny", tmp_path / "results")
    ax = figs["table7_window"].axes[0]
    _, ours, _ = ax.get_lines()
    assert list(ours.get_xdata()) == [4] and ours.get_ydata() == pytest.approx([-100 * 9 / 27 / 5])
    assert len(ax.collections) == 0 and ax.get_xlabel() == "window K"
    assert [t.get_text() for t in figs["table7_window"].legends[0].texts][1] == "reproduced"
