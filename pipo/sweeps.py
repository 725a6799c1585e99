"""Sweeps: a table's grid as data (``sweeps/<name>.yaml``), planned, validated and launched through Hydra.

A sweep file lists the grid (config key → values) and the overrides every cell shares. Planning
composes every cell, signs it and reads its record's status; launching refuses the whole sweep if
any cell is invalid, then hands the grid to Hydra's multirun (basic, submitit_local or
submitit_slurm launcher, chosen by ``cluster=``). This module is the one place a grid is expanded:
the analysis reads a sweep's cells through :func:`grid_cells`. It never imports the analysis; the
entry points (``reproduce/<name>.py``) build a sweep's table or figure from what :func:`main` returns.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig

from pipo.algorithm.algorithms import registry_problems
from pipo.cell import label, run_dir, signature
from pipo.config import CONF_DIR, ConfigError, backend_problem, budget, compose_cells, problems, to_container
from pipo.cost import cell_gpu_hours, fraction_of_peak
from pipo.records import RunRecord
from pipo.submitit_log import FLAG_ENV

SWEEPS_DIR = CONF_DIR.parent / "sweeps"
TRAIN_SCRIPT = CONF_DIR.parent / "reproduce" / "train.py"


@dataclass
class Sweep:
    name: str
    description: str
    grids: list[dict[str, list[str]]]  # each: config key or group -> values (cartesian product); cells = union
    fixed: list[str] = field(default_factory=list)  # overrides every cell shares
    evaluate: dict[str, int] | None = None  # re-evaluate trained cells ({samples, k}) instead of training
    table: dict | None = None  # how the analysis lays out its table (analysis.tables.TableSpec)
    figure: dict | None = None  # which figure the analysis draws from it (analysis.figures)
    # per key, the values whose cells launch first (the longest cells: the last to start are then short,
    # so parallel workers finish together); only the launch order, never the table's
    launch_first: dict[str, list[str]] = field(default_factory=dict)


def load_sweep(name: str) -> Sweep:
    path = SWEEPS_DIR / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
        raise ConfigError(f"no sweep {name!r} (known: {known})")
    doc = yaml.safe_load(path.read_text())
    grids = [
        {k: [str(v) for v in (vals if isinstance(vals, list) else [vals])] for k, vals in g.items()}
        for g in doc["grids"]
    ]
    return Sweep(
        name=name,
        description=doc.get("description", ""),
        grids=grids,
        fixed=list(doc.get("fixed", [])),
        evaluate=doc.get("evaluate"),
        table=doc.get("table"),
        figure=doc.get("figure"),
        launch_first={k: [str(v) for v in vals] for k, vals in (doc.get("launch_first") or {}).items()},
    )


def split_overrides(overrides: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """User overrides → (config keys with their values, which may sweep ``a,b``; ``hydra.*`` overrides)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    keys: dict[str, list[str]] = {}
    hydra: list[str] = []
    for raw, o in zip(overrides, parsed, strict=True):
        if o.key_or_group.startswith("hydra.") or o.key_or_group.startswith("hydra/"):
            hydra.append(raw)
        elif o.is_sweep_override():
            keys[o.get_key_element()] = list(o.sweep_string_iterator())
        else:
            keys[o.get_key_element()] = [raw.split("=", 1)[1]]
    return keys, hydra


def sub_grids(sweep: Sweep, overrides: list[str]) -> tuple[list[dict[str, list[str]]], list[str]]:
    """Each sub-grid with the sweep's fixed overrides and the user's applied (a user value replaces the
    sweep's for that key, and a user ``a,b`` adds an axis), and the user's hydra.* overrides."""
    user, hydra = split_overrides(overrides)
    fixed, _ = split_overrides(sweep.fixed)
    return [{**fixed, **g, **user} for g in (sweep.grids or [{}])], hydra


def cell_overrides(sweep: Sweep, overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """Every cell's overrides (the union of the sub-grids, without repeats), and the hydra.* overrides."""
    grids, hydra = sub_grids(sweep, overrides)
    cells: list[list[str]] = []
    for grid in grids:
        for combo in itertools.product(*grid.values()):
            cell = [f"{k}={v}" for k, v in zip(grid, combo, strict=True)]
            if cell not in cells:
                cells.append(cell)
    return cells, hydra


@dataclass
class GridCell:
    """One cell of a sweep's grid: what the grid (with its fixed and the user's overrides) chose, and
    the cell composed from ``conf/``, whose every other setting is the configuration's default."""

    choices: dict[str, str]  # config key or group -> value, as the cell's overrides give it
    cfg: DictConfig


def grid_cells(sweep: Sweep, overrides: Sequence[str] = ()) -> list[GridCell]:
    """Every cell of ``sweep``'s grid (each once, in the grid's order), composed; ConfigError names a
    cell that does not compose. ``overrides`` are the user's, as for :func:`cell_overrides`."""
    cells, _ = cell_overrides(sweep, list(overrides))
    out = []
    for ov, cfg in zip(cells, compose_cells(cells), strict=True):
        if isinstance(cfg, Exception):
            cause = cfg.__cause__ or cfg
            raise ConfigError(f"sweep {sweep.name}: cell [{' '.join(ov)}]: {str(cause).splitlines()[0]}")
        out.append(GridCell(dict(o.split("=", 1) for o in ov), cfg))
    return out


def _gpu_visible() -> bool:
    import torch

    return torch.cuda.is_available()


@dataclass
class PlannedCell:
    overrides: list[str]
    cfg: DictConfig | None
    signature: str
    label: str
    status: str  # new | running | done | incomplete | failed | invalid
    problems: list[str]
    gpu_hours: float | None  # None: not estimated (an invalid cell, or why in ``cost_note``)
    budget: str = ""  # steps and prompts (pipo.config.budget)
    hours: float = 0.0  # without GPUs: the cell's estimated wall time on its cores (cell_hours)
    disk_gb: float | None = None  # backend=verl: the disk its checkpoints take at most
    cost_note: str = ""  # why a valid cell's GPU-hours are not estimated


UNKNOWN_SHAPE = "unknown model shape (model.hf_id: no shipped config, no local config.json)"


def _cell_cost(cfg: DictConfig) -> tuple[float | None, str]:
    """(GPU-hours, why not) of a valid cell: a model config without Qwen3's shape keys or a torn
    ``conf/gpu_measured.json`` leaves it unestimated with the reason, not the plan unprinted."""
    try:
        hours = cell_gpu_hours(cfg)  # pipo/cost.py's token-count model
    except (ValueError, OSError) as err:
        return None, str(err).splitlines()[0]
    return hours, ("" if hours is not None else UNKNOWN_SHAPE)


def plan(sweep: Sweep, overrides: list[str], launching: bool = False) -> list[PlannedCell]:
    """Compose, validate and sign every cell; read each one's status from its record."""
    cells, _ = cell_overrides(sweep, overrides)
    out = []
    for ov, cfg in zip(cells, compose_cells(cells), strict=True):
        if isinstance(cfg, Exception):
            cause = cfg.__cause__ or cfg
            out.append(PlannedCell(ov, None, "-", " ".join(ov), "invalid", [str(cause).splitlines()[0]], 0.0))
            continue
        plain = to_container(cfg)  # resolved once: validation and signature read plain data
        found = problems(plain)
        if launching and cfg.scale.resources.gpus > 0 and cfg.cluster.name != "slurm" and not _gpu_visible():
            found.append(
                f"scale={cfg.scale.name} asks for {cfg.scale.resources.gpus} GPUs and none is visible "
                "here (plan it anywhere; launch it with cluster=slurm or on a GPU node)"
            )
        if launching and (problem := backend_problem(cfg.scale.name, cfg.backend.name, running=True)):
            if problem not in found:  # a tiny cell on verl is already a problem of the config
                found.append(problem)
        if launching and not found:  # what it names in verl's and PIPO's registries (imports verl: once)
            found.extend(registry_problems(plain["algorithm"]))
        if not found and cfg.backend.name == "verl":
            found.extend(_verl_problems(cfg))
        sig = signature(plain)
        state = "invalid" if found else ((RunRecord(run_dir(cfg, sig)).status() or {}).get("state", "new"))
        hours, note = _cell_cost(cfg) if not found else (None, "")  # an invalid cell's cost may not compute
        if any(c.signature == sig for c in out):
            continue  # the same cell reached twice (e.g. pipo=off under a λ axis): run once
        disk = _verl_disk_gb(cfg) if cfg.backend.name == "verl" else None
        wall = cell_hours(cfg) if cfg.scale.resources.gpus == 0 else 0.0
        out.append(PlannedCell(ov, cfg, sig, label(cfg), state, found, hours, budget(cfg).describe(), wall, disk, note))
    return out


def cell_hours(cfg: DictConfig) -> float:
    """A cell's estimated wall time in hours: ``scale.steps`` × ``cpu_step_seconds`` (× 1.25 with PIPO), plus
    the probe's (``probe.*``): its responses per step over the step's trained responses, × the step's time ×
    ``est_probe_factor`` (the probe's time per response over a step's, measured at tiny scale)."""
    r, s, a = cfg.scale.resources, cfg.scale, cfg.algorithm
    step = r.cpu_step_seconds * (1.25 if cfg.pipo.enabled else 1.0)
    if cfg.probe.prompts:
        trained = a.batch_size // s.batch_divisor * a.rollout_n
        step += r.cpu_step_seconds * r.est_probe_factor * cfg.probe.prompts * cfg.probe.samples / trained
    return s.steps * step / 3600


def _verl_disk_gb(cfg: DictConfig) -> float | None:
    from pipo.backends.verl.config import checkpoint_disk_gb

    return checkpoint_disk_gb(cfg)


def _verl_problems(cfg: DictConfig) -> list[str]:
    """Why verl would refuse the cell's verl config (verl's own validation), if it would."""
    from pipo.backends.verl.config import verl_config

    try:
        verl_config(cfg, planning=True)  # the paper's models' shipped configs: no network
    except ConfigError as err:
        return [str(err).splitlines()[0]]
    return []


def _disk_total(cells: list[PlannedCell]) -> str:
    disks = [c.disk_gb for c in cells if c.disk_gb is not None and c.status != "done"]
    if not disks:
        return ""
    return f"; checkpoints up to {sum(disks):,.0f} GB of disk (backend.setup.max_ckpt_to_keep per cell)"


BUILD_MINUTES = 3.0  # a tiny base model's build and warm-up on one core: 1.5–2.2 min quiet, 3.3 loaded (BENCHMARKS.md)


def cpu_minutes(cells: list[PlannedCell]) -> tuple[float, float, int]:
    """CPU-only cells still to run: (wall minutes of training, of base-model builds, parallel slots).

    Each cell takes its :func:`cell_hours` on its cores, the cells share the machine's cores as the
    local launcher does, and each base model of a (model, task) is built once (counted whether or
    not it is cached already).
    """
    todo = [c for c in cells if c.cfg is not None and c.status != "done" and c.cfg.scale.resources.gpus == 0]
    if not todo:
        return 0.0, 0.0, 1
    slots = max(1, (os.cpu_count() or 1) // max(todo[0].cfg.scale.resources.cpus, 1))
    builds = len({(c.cfg.model.name, c.cfg.task.name) for c in todo})
    return sum(c.hours for c in todo) * 60 / slots, builds * BUILD_MINUTES / min(slots, builds), slots


def _cost_basis(cells: list[PlannedCell]) -> str:
    """What the GPU-hours rest on: the fraction of peak, and where it comes from (pipo/cost.py)."""
    notes = Counter(c.cost_note for c in cells if c.cost_note)
    costly = [c.cfg for c in cells if c.cfg is not None and c.gpu_hours]
    basis = ""
    if costly:
        cost = costly[0].scale.resources.cost
        mfu, source = fraction_of_peak(cost)
        basis = f" (pipo/cost.py at {mfu:.0%} of {cost.peak_tflops:g} TFLOP/s per GPU, {source})"
    return basis + "".join(f"; {n} cells not counted: {note}" for note, n in notes.items())


def format_plan(sweep: Sweep, cells: list[PlannedCell]) -> str:
    lines = [f"sweep {sweep.name}: {sweep.description}".rstrip(": "), ""]
    width = max((len(c.label) for c in cells), default=10)
    budget_width = max((len(c.budget) for c in cells), default=0)
    for c in cells:
        disk = f"  {c.disk_gb:6.0f} GB disk" if c.disk_gb is not None else ""
        hours = f"{c.gpu_hours:8.1f}" if c.gpu_hours is not None else f"{'?':>8}"
        columns = f"{c.signature:<12}  {c.status:<8}  {c.budget:<{budget_width}}  {hours} GPU-h{disk}"
        lines.append(f"  {c.label:<{width}}  {columns}")
        lines.extend(f"      ✗ {p}" for p in c.problems)
    states = ("new", "running", "done", "incomplete", "failed", "invalid")
    counts = {s: sum(c.status == s for c in cells) for s in states}
    todo = sum(c.gpu_hours or 0.0 for c in cells if c.status != "done")
    lines += [
        "",
        f"{len(cells)} cells: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + f"; estimated {todo:.1f} GPU-hours to go{_cost_basis(cells)}"
        + _disk_total(cells),
    ]
    train, build, slots = cpu_minutes(cells)
    if train:
        lines.append(
            f"on this machine: about {train + build:.0f} min ({train:.0f} min of training on {slots} parallel "
            f"slot(s), {build:.0f} min of base-model builds if not cached; scale.resources.cpu_step_seconds)"
        )
    return "\n".join(lines)


def refuse_if_invalid(cells: list[PlannedCell]) -> None:
    bad = [c for c in cells if c.problems]
    if bad:
        msg = "\n".join(
            f"  cell [{' '.join(c.overrides)}]:\n" + "\n".join(f"    - {p}" for p in c.problems) for c in bad
        )
        raise ConfigError(f"{len(bad)} of {len(cells)} cells are invalid; no job was launched:\n{msg}")


def multirun_argvs(sweep: Sweep, overrides: list[str]) -> list[list[str]]:
    """One Hydra multirun per sub-grid: ``key=a,b`` per key, then the user's hydra.* overrides.

    The model axis comes last, so it varies fastest: cells run side by side (``cluster=local``)
    start on different base models, and each builds its own at once instead of waiting on one. The
    sweep's ``launch_first`` values lead their axes (longest cells first).
    """
    grids, hydra = sub_grids(sweep, overrides)
    grids = [{k: _launch_order(v, sweep.launch_first.get(k, [])) for k, v in g.items()} for g in grids]
    ordered = [sorted(g.items(), key=lambda kv: kv[0] == "model") for g in grids]
    return [["-m", *(f"{k}={','.join(v)}" for k, v in g), f"sweep={sweep.name}", *hydra] for g in ordered]


def _launch_order(values: list[str], first: list[str]) -> list[str]:
    """``values`` with those listed in ``first`` ahead, in ``first``'s order; the others keep theirs."""
    rank = {v: i for i, v in enumerate(first)}
    return sorted(values, key=lambda v: rank.get(v, len(first)))


@dataclass
class SweepResult:
    """What :func:`main` did: its exit code, and the sweep with its cells. ``ran``: the sweep trained or
    re-evaluated its cells, so its entry point builds the table or figure from their records
    (``analysis.build.after_sweep``)."""

    code: int
    sweep: Sweep | None = None
    cells: list[PlannedCell] = field(default_factory=list)
    ran: bool = False
    overrides: list[str] = field(default_factory=list)  # the user's, as the sweep was launched

    @property
    def run_root(self) -> Path:
        """Where the cells' records are (``<run_root>/<scale>/<signature>/``)."""
        return Path(self.cells[0].cfg.run_root)

    @property
    def scale(self) -> str:
        return self.cells[0].cfg.scale.name


def main(name: str, argv: list[str] | None = None) -> SweepResult:
    """``reproduce/<name>.py [-m] [--plan] [overrides]``: plan, validate and launch a table's sweep.

    Returns the exit code and, once the sweep ran, what its table or figure is built from.
    """
    from pipo.config import register_schemas

    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(
            f"usage: python reproduce/{name}.py [-m | --plan] [key=value ...]\n\n"
            f"  --plan   print every cell (label, signature, status, budget, GPU-hours, checkpoint disk); run nothing\n"
            f"  -m       launch the sweep (cells already done are skipped, unfinished ones resume)\n\n"
            f"The grid is sweeps/{name}.yaml; any override of reproduce/train.py applies to every cell,\n"
            f"e.g. scale=paper cluster=slurm hydra.launcher.partition=gpu, or seed=6,21,42 to add a grid axis."
        )
        return SweepResult(0)
    register_schemas()
    sweep = load_sweep(name)
    launch = "-m" in argv or "--multirun" in argv
    overrides = [a for a in argv if a not in ("-m", "--multirun", "--plan")]
    cells = plan(sweep, overrides, launching=launch)
    print(format_plan(sweep, cells))
    if not launch:
        return SweepResult(0 if not any(c.problems for c in cells) else 1, sweep, cells)
    try:
        refuse_if_invalid(cells)
    except ConfigError as err:
        print(f"\n{err}", file=sys.stderr)
        return SweepResult(1, sweep, cells)
    if sweep.evaluate:
        return dataclasses.replace(reevaluate_sweep(sweep, cells), overrides=overrides)
    code = 0
    with tempfile.TemporaryDirectory(prefix="pipo-sweep-") as tmp:
        # every cell was just checked; the sub-grids' launchers show submitit's sacct warning once between them
        env = {**os.environ, "PIPO_VALIDATED": "1", FLAG_ENV: str(Path(tmp) / "sacct_warned")}
        for argv_m in multirun_argvs(sweep, overrides):
            print(f"\nlaunching: python reproduce/train.py {' '.join(argv_m)}", flush=True)
            code = code or subprocess.run([sys.executable, str(TRAIN_SCRIPT), *argv_m], env=env).returncode
    return SweepResult(code, sweep, cells, ran=True, overrides=overrides)


def reevaluate_sweep(sweep: Sweep, cells: list[PlannedCell]) -> SweepResult:
    """Table 6: pass@k of already-trained cells; refuses (naming them) if any is not trained yet."""
    from pipo.reevaluate import reevaluate

    untrained = [c for c in cells if c.status != "done"]
    if untrained:
        print(
            f"\n{len(untrained)} cells are not trained yet ({sweep.name} trains nothing; run the table they "
            "come from first, e.g. python reproduce/table1.py -m):\n"
            + "\n".join(f"  {c.label} ({c.status})" for c in untrained),
            file=sys.stderr,
        )
        return SweepResult(1, sweep, cells)
    samples, k = sweep.evaluate["samples"], sweep.evaluate["k"]
    for c in cells:
        print(f"{c.label}: pass@{k} from {samples} samples per problem", flush=True)
        reevaluate(c.cfg, samples, k)
    return SweepResult(0, sweep, cells, ran=True)


def validate_multirun(argv: list[str]) -> int:
    """``reproduce/train.py -m …``: check every cell of an ad-hoc grid before Hydra launches any."""
    overrides = [a for a in argv if a not in ("-m", "--multirun") and not a.startswith("-")]
    cells = plan(Sweep("adhoc", "", [{}]), overrides, launching=True)
    try:
        refuse_if_invalid(cells)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    return 0
