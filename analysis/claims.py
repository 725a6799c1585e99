"""The paper's claims as data (``analysis/claims.yaml``): what each compares, and which cells it needs.

A claim compares two *sides*, ``a`` and ``b`` (a − b, in the paper's direction): each a row of a
sweep's table (``sweeps/<name>.yaml``) in one column block. Where ``a`` is a +PIPO row, ``control``
names its ``pipo.control=zero`` twin, so that the report gives each claim twice: as the paper
states it (a − b) and for the feedback itself (a − zero).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from analysis.tables import TableSpec, run_attributes
from analysis.tables import _cell_block as cell_block
from analysis.tables import _row_value as row_value
from pipo.config import ConfigError
from pipo.sweeps import SWEEPS_DIR, GridCell, grid_cells, load_sweep

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
KINDS = ("diff", "auc", "drop", "overhead", "feedback")
ZERO = "pipo.control=zero"


@dataclass(frozen=True)
class Side:
    """A row of sweep ``sweep``'s table in column block ``block``, its cells composed with ``overrides``."""

    sweep: str
    row: tuple
    block: str = ""
    overrides: tuple[str, ...] = ()

    def describe(self) -> str:
        row = " · ".join(str(v) for v in self.row if v != "")
        extra = f" [{' '.join(self.overrides)}]" if self.overrides else ""
        return f"{row}{f' ({self.block})' if self.block else ''}{extra}"


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    where: str
    kind: str
    sweep: str
    a: Side | None
    b: Side | None
    control: Side | None = None  # a's pipo.control=zero twin
    reference: tuple[Side, Side] | None = None  # overhead: the pair a − b is compared with (PPO)
    column: str = "AVG"
    direction: int | None = None  # where the paper gives a direction and no number
    paper_from: str | None = None  # the paper's effect is that claim's (the same runs, another figure)
    seeds: tuple[int, ...] = (42,)
    sides: tuple[Side, ...] = field(default=(), repr=False)

    def command(self) -> str:
        """The commands that run just the cells this claim needs: per sweep (and control override),
        the grid axes its sides' cells choose, and the claim's seeds where the grid has no seed axis."""
        groups: dict[tuple[str, tuple[str, ...]], dict[str, list[str]]] = {}
        for side in self.sides:
            axes = {k for g in load_sweep(side.sweep).grids for k in g}
            chosen = groups.setdefault((side.sweep, side.overrides), {})
            for cell in side_cells(side):
                for key, value in cell.choices.items():
                    if key in axes and value not in chosen.setdefault(key, []):
                        chosen[key].append(value)
        cmds = []
        for (sweep, overrides), chosen in groups.items():
            if self.seeds != (42,) and "seed" not in chosen:
                chosen["seed"] = [str(s) for s in self.seeds]
            args = [*overrides, *(f"{k}={','.join(v)}" for k, v in chosen.items())]
            cmds.append(f"python reproduce/{sweep}.py -m{''.join(' ' + a for a in args)}")
        return "; ".join(cmds) or f"python reproduce/{self.sweep}.py -m"


def table_spec(sweep_name: str) -> TableSpec:
    """The sweep's table layout (a figure's sweep: methods, one block per model)."""
    sweep = load_sweep(sweep_name)
    return TableSpec(**sweep.table) if sweep.table else TableSpec(rows=["method"], blocks="model")


@cache
def side_cells(side: Side) -> tuple[GridCell, ...]:
    """The grid cells of ``side``'s sweep (with its overrides) that make its row in its block."""
    sweep, spec = load_sweep(side.sweep), table_spec(side.sweep)
    out = []
    for cell in grid_cells(sweep, list(side.overrides)):
        attrs = run_attributes(cell)
        if tuple(row_value(attrs, k) for k in spec.rows) == side.row and cell_block(cell, spec) == side.block:
            out.append(cell)
    return tuple(out)


def _side(spec, claim: dict, default_overrides: tuple[str, ...] = ()) -> Side:
    if isinstance(spec, list):
        spec = {"row": spec}
    if not isinstance(spec, dict) or "row" not in spec:
        raise ConfigError(f"claim {claim.get('id')}: a side is [row labels] or {{sweep, row, block, overrides}}")
    return Side(
        sweep=str(spec.get("sweep", claim["sweep"])),
        row=tuple(spec["row"]),
        block=str(spec.get("block", claim.get("block", ""))),
        overrides=tuple(spec.get("overrides", default_overrides)),
    )


def load_claims(path: Path = CLAIMS_FILE) -> list[Claim]:
    """Every claim of ``path``; ConfigError names a malformed one."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Claim] = []
    for c in doc["claims"]:
        kind = c.get("kind", "diff")
        if not (SWEEPS_DIR / f"{c['sweep']}.yaml").exists():
            raise ConfigError(f"claim {c.get('id')}: no sweep {c['sweep']!r} in {SWEEPS_DIR}")
        if kind not in KINDS:
            raise ConfigError(f"claim {c.get('id')}: kind {kind!r} is not one of {KINDS}")
        a = _side(c["a"], c) if "a" in c else None
        b = _side(c["b"], c) if "b" in c else None
        control = None
        if (spec := c.get("control")) is not None:
            control = _side({"row": list(a.row)} if spec == "zero" else spec, c, (ZERO,))
        reference = None
        if (ref := c.get("reference")) is not None:
            reference = (_side(ref["a"], c), _side(ref["b"], c))
        sides = tuple(s for s in (a, b, control, *(reference or ())) if s is not None)
        out.append(
            Claim(
                id=str(c["id"]),
                claim=str(c["claim"]),
                where=str(c["where"]),
                kind=kind,
                sweep=str(c["sweep"]),
                a=a,
                b=b,
                control=control,
                reference=reference,
                column=str(c.get("column", "AVG")),
                direction=c.get("direction"),
                paper_from=c.get("paper_from"),
                seeds=tuple(int(s) for s in c.get("seeds", [42])),
                sides=sides,
            )
        )
    ids = [c.id for c in out]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate claim ids in {path}")
    return out
