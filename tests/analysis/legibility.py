"""Is a rendered figure legible? No two texts overlap, nothing drawn off the canvas, legends off the data.

Checked on matplotlib's own renderer: the figure is drawn (``fig.canvas.draw()``) and every text that
was actually drawn (titles, axis and tick labels, legend entries, annotations, offset texts) is taken
with its window extent. A figure added to the suite is checked by adding one line to ``FIGURES`` in
``tests/analysis/test_figures.py``; :func:`saved_figures` catches the figures any code saves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.figure import Figure
from matplotlib.legend import Legend
from matplotlib.text import Text
from matplotlib.transforms import Bbox

TOLERANCE_PX = 1.0  # extents may touch or share a pixel of antialiasing; more than that is an overlap


def _renderer(fig: Figure):
    """The figure's Agg renderer (a closed figure's canvas draws nothing: it gets an Agg one again)."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas.get_renderer()


def drawn_texts(fig: Figure) -> list[tuple[str, Bbox]]:
    """(text, window extent in pixels) of every non-empty text drawn when ``fig`` is rendered."""
    _renderer(fig)
    drawn: list[tuple[str, Bbox]] = []
    draw = Text.draw

    def spy(self: Text, renderer) -> None:
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self.get_text(), self.get_window_extent(renderer)))

    with mock.patch.object(Text, "draw", spy):
        fig.canvas.draw()
    if not drawn:
        raise ValueError("no text was drawn: is this figure rendered at all?")
    return drawn


def _intersection(a: Bbox, b: Bbox) -> tuple[float, float]:
    return min(a.x1, b.x1) - max(a.x0, b.x0), min(a.y1, b.y1) - max(a.y0, b.y0)


def overlapping_texts(fig: Figure) -> list[str]:
    """Each pair of drawn texts whose extents overlap by more than :data:`TOLERANCE_PX` both ways."""
    texts = drawn_texts(fig)
    out = []
    for i, (ta, a) in enumerate(texts):
        for tb, b in texts[i + 1 :]:
            w, h = _intersection(a, b)
            if w > TOLERANCE_PX and h > TOLERANCE_PX:
                out.append(f"{ta!r} overlaps {tb!r} ({w:.0f}×{h:.0f} px)")
    return out


def clipped(fig: Figure) -> list[str]:
    """Each drawn text, legend or axes that reaches outside the canvas by more than :data:`TOLERANCE_PX`."""
    boxes = [(repr(t), b) for t, b in drawn_texts(fig)]
    canvas, renderer = fig.bbox, _renderer(fig)
    boxes += [(f"legend of {len(lg.texts)} entries", lg.get_window_extent(renderer)) for lg in _legends(fig)]
    boxes += [(f"axes {ax.get_title()!r}", ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible()]
    out = []
    for name, b in boxes:
        past = max(canvas.x0 - b.x0, canvas.y0 - b.y0, b.x1 - canvas.x1, b.y1 - canvas.y1)
        if past > TOLERANCE_PX:
            out.append(f"{name} reaches {past:.0f} px past the canvas")
    return out


def _legends(fig: Figure) -> list[Legend]:
    return [lg for lg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if lg is not None and lg.get_visible()]


def legend_over_data(fig: Figure) -> list[str]:
    """Each legend that covers drawn data: a point along a line, a vertex of a band or a marker."""
    renderer = _renderer(fig)
    fig.canvas.draw()
    out = []
    for lg in _legends(fig):
        box = lg.get_window_extent(renderer)
        for ax in fig.axes:
            points = [
                _densify(line.get_transform().transform(np.column_stack([line.get_xdata(), line.get_ydata()])))
                for line in ax.get_lines()
                if line.get_visible() and len(line.get_xdata())
            ]
            for coll in ax.collections:
                if isinstance(coll, Collection) and coll.get_visible():
                    points += [coll.get_transform().transform(p.vertices) for p in coll.get_paths()]
                    offsets = coll.get_offsets()
                    if len(offsets):
                        points.append(coll.get_offset_transform().transform(offsets))
            for xy in points:
                xy = xy[np.isfinite(xy).all(1)]
                inside = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
                if inside.any():
                    out.append(f"legend {[t.get_text() for t in lg.texts]} covers data of axes {ax.get_title()!r}")
                    break
    return out


def _densify(xy: np.ndarray, per_segment: int = 50) -> np.ndarray:
    """Points along a polyline's segments (a line covers the pixels between its vertices too)."""
    if len(xy) < 2:
        return xy
    t = np.linspace(0.0, 1.0, per_segment)[None, :, None]
    return (xy[:-1, None] + t * (xy[1:, None] - xy[:-1, None])).reshape(-1, 2)


def problems(fig: Figure) -> list[str]:
    """Overlapping texts, anything off the canvas and legends over data (empty for a legible figure)."""
    return overlapping_texts(fig) + clipped(fig) + legend_over_data(fig)


@contextmanager
def saved_figures() -> Iterator[dict[str, Figure]]:
    """Within it, each figure that is saved (``Figure.savefig``, by any module) lands in the yielded
    ``{file stem: figure}`` as it is at its first save, before it is closed."""
    caught: dict[str, Figure] = {}
    savefig = Figure.savefig

    def spy(self: Figure, fname, *args, **kwargs):
        if all(f is not self for f in caught.values()):
            caught[Path(fname).stem] = self
        return savefig(self, fname, *args, **kwargs)

    with mock.patch.object(Figure, "savefig", spy):
        yield caught
