"""A :class:`~analysis.tables.Table` as LaTeX (booktabs), Markdown and CSV, in three views.

- ``main``: the reproduced values (mean ± std over seeds where there are several), the best of each
  column and block in bold (the untrained base model's row aside), † on a +PIPO value whose
  difference to its base algorithm has a 95% interval that excludes 0;
- ``paper``: each reproduced value beside the paper's, with the difference; a first row gives each
  benchmark's size and the points one problem is worth, ‡ marks a paper +PIPO value whose difference
  to the paper's base row is smaller than that;
- ``diff``: PIPO − base per column with its 95% interval (``analysis.tables.pipo_minus_base``).
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from pathlib import Path

from analysis.tables import MISSING, ROW_LABELS, Table, pipo_minus_base, significant

SIGNIFICANT = "†"  # main view: the PIPO − base interval excludes 0
BELOW_ONE_PROBLEM = "‡"  # paper view: the paper's own PIPO − base is smaller than one problem
NOTES = {
    SIGNIFICANT: "† PIPO − base: its 95% interval (paired bootstrap over problems and seeds; over seeds for runs "
    "without per-problem outcomes) excludes 0",
    BELOW_ONE_PROBLEM: "‡ the paper's PIPO − base on this benchmark is smaller than one problem",
}

_LATEX_ESCAPES = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\~{}"}
_UNICODE = {
    "λ": r"$\lambda$", "δ": r"$\delta$", "φ": r"$\varphi$", "μ": r"$\mu$", "σ": r"$\sigma$", "∈": r"$\in$",
    "×": r"$\times$", "±": r"$\pm$", "−": "$-$", "≥": r"$\geq$", "≤": r"$\leq$", "—": "---", "–": "--", "→": r"$\to$",
    "†": r"$^\dagger$", "¹": r"$^1$", "‡": r"$^\ddagger$",
}  # fmt: skip


def tex_escape(text: str) -> str:
    """``text`` safe inside LaTeX: special characters escaped, the usual Unicode symbols as math."""
    out = []
    for c in str(text):
        if c in _LATEX_ESCAPES:
            out.append(_LATEX_ESCAPES[c])
        elif c in _UNICODE:
            out.append(_UNICODE[c])
        elif ord(c) < 128:
            out.append(c)
        else:  # anything else: its closest ASCII form (é -> e), or nothing
            out.append(unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode())
    return "".join(out)


def _fmt(x: float) -> str:
    return MISSING if x is None or math.isnan(x) else f"{x:.1f}"


def _signed(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def _best(table: Table) -> set[tuple]:
    """(row, block, column) of the best mean of each column and block (base-model row excluded)."""
    best = set()
    for block, columns in table.blocks:
        for col in columns:
            vals = [
                (table.cells[(r, block, col)].mean, r)
                for r in table.rows
                if (r, block, col) in table.cells and "Base Model" not in r
            ]
            if vals:
                top = max(v for v, _ in vals)
                best |= {(r, block, col) for v, r in vals if abs(v - top) < 1e-9}
    return best


def cell_text(table: Table, key: tuple, view: str, diffs: dict, best: set[tuple]) -> tuple[str, bool]:
    """(text, bold) of one cell in ``view``."""
    cell = table.cells.get(key)
    if view == "diff":
        d = diffs.get(key)
        return (MISSING if d is None else f"{_signed(d[0])} [{_signed(d[1])}, {_signed(d[2])}]"), False
    if cell is None:
        return MISSING, False
    text = _fmt(cell.mean) + (f" ± {cell.std:.1f}" if len(cell.values) > 1 else "")
    if view == "main" and significant(diffs.get(key)):
        text += SIGNIFICANT
    if view == "paper":
        ref = table.paper.get(key)
        flag = BELOW_ONE_PROBLEM if paper_diff_below_one_problem(table, key) else ""
        text += f" ({MISSING})" if ref is None else f" ({ref:.1f}{flag}, {_signed(cell.mean - ref)})"
    return text, view == "main" and key in best


def paper_diff_below_one_problem(table: Table, key: tuple) -> bool:
    """A +PIPO row's paper value differs from the paper's base row by less than one problem's points."""
    row, block, col = key
    base, n = table.pipo_rows.get(row), table.sizes.get((block, col))
    if base is None or not n or col == "AVG":
        return False
    ours, theirs = table.paper.get(key), table.paper.get((base, block, col))
    return ours is not None and theirs is not None and abs(ours - theirs) < 100.0 / n


def _grid(table: Table, view: str) -> tuple[list[str], list[tuple[str, list[str]]], list[list[tuple[str, bool]]]]:
    """Row-label headers, column blocks and the body cells of ``view``."""
    best = _best(table) if view == "main" else set()
    diffs = pipo_minus_base(table) if view in ("main", "diff") else {}
    rows = list(table.pipo_rows) if view == "diff" else table.rows
    body = []
    if view == "paper" and table.sizes:  # each benchmark's size and one problem's worth in points
        line = [("Problems (pts each)", False)] + [("", False)] * (len(table.row_keys) - 1)
        for block, columns in table.blocks:
            sizes = [table.sizes.get((block, c)) for c in columns]
            line += [(f"{n} ({100 / n:.1f})" if n else "", False) for n in sizes]
        body.append(line)
    for r in rows:
        line = [(f"{v:g}" if isinstance(v, float) else str(v), False) for v in r]
        for block, columns in table.blocks:
            line += [cell_text(table, (r, block, c), view, diffs, best) for c in columns]
        body.append(line)
    return [ROW_LABELS[k] for k in table.row_keys], table.blocks, body


def _headers(table: Table, blocks) -> list[str]:
    return [f"{b} {table.column_label(c)}".strip() for b, cols in blocks for c in cols]


def to_csv(table: Table, view: str = "main") -> str:
    labels, blocks, body = _grid(table, view)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*labels, *_headers(table, blocks)])
    for line in body:
        w.writerow([t for t, _ in line])
    return buf.getvalue()


SINGLE_SEED = "; with one seed per row that is the evaluation's noise only, not the spread between seeds"


def notes(table: Table, body: list[list[tuple[str, bool]]]) -> list[str]:
    """The legend of the markers that occur in ``body``."""
    out = [note for mark, note in NOTES.items() if any(mark in text for line in body for text, _ in line)]
    if out and out[0] == NOTES[SIGNIFICANT] and all(len(c.values) <= 1 for c in table.cells.values()):
        out[0] += SINGLE_SEED
    return out


def to_markdown(table: Table, view: str = "main") -> str:
    labels, blocks, body = _grid(table, view)
    head = [*labels, *_headers(table, blocks)]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join([":--"] * len(labels) + ["--:"] * (len(head) - len(labels))) + "|",
    ]
    for line in body:
        lines.append("| " + " | ".join(f"**{t}**" if bold else t for t, bold in line) + " |")
    legend = notes(table, body)
    return "\n".join([*lines, "", *legend] if legend else lines) + "\n"


def to_latex(table: Table, view: str = "main", caption: str = "") -> str:
    """A booktabs ``table`` environment; a two-level header when the columns come in blocks."""
    labels, blocks, body = _grid(table, view)
    n_cols = sum(len(c) for _, c in blocks)
    out = [r"\begin{table}[t]", r"\centering", r"\small"]
    caption = ". ".join(filter(None, [caption, *notes(table, body)]))
    if caption:
        out.append(r"\caption{" + tex_escape(caption) + "}")
    out += [r"\begin{tabular}{" + "l" * len(labels) + "r" * n_cols + "}", r"\toprule"]
    if any(b for b, _ in blocks):
        tops, rules, start = [""] * len(labels), [], len(labels) + 1
        for block, cols in blocks:
            tops.append(r"\multicolumn{" + str(len(cols)) + "}{c}{" + tex_escape(block) + "}")
            rules.append(r"\cmidrule(lr){" + f"{start}-{start + len(cols) - 1}" + "}")
            start += len(cols)
        out += [" & ".join(tops) + r" \\", "".join(rules)]
    cols = [tex_escape(table.column_label(c)) for _, cs in blocks for c in cs]
    out += [" & ".join([*(tex_escape(x) for x in labels), *cols]) + r" \\", r"\midrule"]
    for i, line in enumerate(body):
        cells = [r"\textbf{" + tex_escape(t) + "}" if bold else tex_escape(t) for t, bold in line]
        out.append(" & ".join(cells) + r" \\")
        if i == 0 and line[0][0] in ("Base Model", "Problems (pts each)"):
            out.append(r"\midrule")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def write_table(table: Table, out_dir: Path, caption: str = "") -> list[Path]:
    """``<name>.{tex,md,csv}``, ``<name>_vs_paper.*`` and, with seeds, ``<name>_pipo_minus_base.*``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    views = [("main", ""), ("paper", "_vs_paper")]
    if pipo_minus_base(table):
        views.append(("diff", "_pipo_minus_base"))
    written = []
    note = " (tiny scale: stand-in benchmarks; the paper's numbers for reference only)" if table.scale == "tiny" else ""
    for view, suffix in views:
        if view == "paper" and not table.paper:
            continue
        cap = (
            caption + {"main": "", "paper": ": reproduced (paper, difference)", "diff": ": PIPO − base [95% CI]"}[view]
        )
        for ext, text in (
            ("tex", to_latex(table, view, cap + note)),
            ("md", to_markdown(table, view)),
            ("csv", to_csv(table, view)),
        ):
            path = out_dir / f"{table.name}{suffix}.{ext}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
