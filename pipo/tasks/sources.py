"""What a task's paper-scale preparation is made of: its :class:`Source` splits and their converters.

A task definition (``pipo.tasks.registry.TaskDefinition.sources``) lists one :class:`Source` per
dataset split; ``python -m pipo.tasks.prepare task=<name>`` reads each and writes verl parquet. A
converter turns one raw row into :data:`Converted` (prompt text or chat messages, ground truth,
extra info) and raises :class:`RowError` for a row that does not fit its dataset's schema (the row is
reported and skipped, never altered). :func:`need` and :func:`answer_text` are the checks converters
share. Kept apart from ``prepare`` (the CLI) so that the task definitions never import the module
``python -m`` runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class RowError(ValueError):
    """A row that does not fit its dataset's schema."""


def need(row: dict, *keys: str, types: tuple[type, ...] = (str,)) -> list[Any]:
    """The values of ``keys`` in ``row``; a RowError names the first missing or mistyped one."""
    out = []
    for key in keys:
        if key not in row or row[key] is None:
            raise RowError(f"missing field {key!r}")
        if not isinstance(row[key], types):
            raise RowError(
                f"field {key!r} is {type(row[key]).__name__}, expected {'/'.join(t.__name__ for t in types)}"
            )
        out.append(row[key])
    return out


def answer_text(value: Any) -> str:
    """A ground-truth answer as text (``27.0`` → ``27``)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text:
        raise RowError("empty answer")
    return text


# one raw row -> (prompt text or chat messages, ground truth, extra info)
Converted = tuple[str | list[dict], str, dict]


@dataclass
class Source:
    """One dataset split and how it becomes one output split."""

    name: str  # output split: "train" or a benchmark name
    hf_id: str
    split: str
    convert: Callable[[dict], Converted]
    expected: int | None = None
    config: str | None = None
    keep: Callable[[dict], bool] | None = None  # rows of the dataset that belong to this split
    loader: str = "datasets"  # datasets | bfcl | lcb | local (not on the hub: source=DIR required)
    extra: dict = field(default_factory=dict)


# the BFCL (v3, AST) categories the ``bfcl`` loader reads, and their sizes
BFCL_CATEGORIES = {"simple": 400, "multiple": 200, "parallel": 200, "parallel_multiple": 200}
