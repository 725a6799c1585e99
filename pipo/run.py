"""Run one cell: validate, skip if done, build the base model, train, keep the record."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import traceback

import torch
from omegaconf import DictConfig, open_dict

from pipo.cell import SIGNATURE_VERSION, label, run_dir, signature
from pipo.config import ConfigError, backend_problem, budget, to_container, validate
from pipo.models import resolve_model
from pipo.records import RunRecord
from pipo.tasks import load_standin
from pipo.wandb_mirror import WandbMirror

log = logging.getLogger(__name__)


def run_cell(cfg: DictConfig) -> dict | None:
    """Train the cell ``cfg``; return its final evaluation (None if another process is running it)."""
    validate(cfg)
    sig, name, path = signature(cfg), label(cfg), run_dir(cfg)
    record = RunRecord(path)
    status = record.status()
    if status and status.get("state") == "done" and not cfg.force:
        log.info("%s: done already (%s); force=true reruns it", name, path)
        probed = (record.cell().get("config", {}).get("probe") or {}).get("prompts", 0)
        if cfg.probe.prompts and probed != cfg.probe.prompts:  # the probe is not part of a cell's identity
            log.warning("%s was trained with probe.prompts=%s: force=true reruns it with the probe", name, probed)
        return record.evals()[-1]
    if problem := backend_problem(cfg.scale.name, cfg.backend.name, running=True):
        raise ConfigError(f"{problem}; run it on a GPU node, or with cluster=slurm")
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another process is running this cell (%s); skipped", name, path)
            return None
        if cfg.backend.name == "verl":
            return _run_verl(cfg, sig, name, path, record)
        return _run_locked(cfg, sig, name, path, record)


def _start(cfg: DictConfig, sig: str, name: str, path, record: RunRecord) -> None:
    if cfg.force:
        for child in path.iterdir():
            if child.name != ".lock":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    log.info("%s → %s", name, path)
    record.write_cell(to_container(cfg), sig, name, SIGNATURE_VERSION)


def _run_verl(cfg: DictConfig, sig: str, name: str, path, record: RunRecord) -> dict:
    """The cell on verl (pipo/backends/verl): verl's trainer, PIPO as its plugin; verl's checkpoints
    under ``ckpt/`` resume it; its file log becomes the record's metrics and evaluations."""
    from pipo.backends.verl.config import verl_config
    from pipo.backends.verl.main import run_verl
    from pipo.backends.verl.records import import_logs, next_log_path
    from pipo.hub import require_model

    require_model(cfg.model.hf_id)  # in seconds, not after the hub client's retries
    config = verl_config(cfg)  # validated, and the data checked, before anything is written
    sizes = _benchmark_sizes([config.data.train_files, *config.data.val_files], ["train", *cfg.task.benchmarks])
    _start(cfg, sig, name, path, record)
    env = {  # for verl's processes: its file logger into the record; the cell's W&B run, resumed
        "VERL_FILE_LOGGER_PATH": str(next_log_path(path).resolve()),
        "WANDB_RUN_ID": sig,
        "WANDB_RESUME": "allow",
        "WANDB_MODE": cfg.wandb.mode,
        "WANDB_RUN_GROUP": cfg.wandb.group or cfg.sweep,
        "WANDB_ENTITY": cfg.wandb.entity,
    }
    with open_dict(config):
        config.ray_kwargs.ray_init.runtime_env["env_vars"] = {k: str(v) for k, v in env.items() if v is not None}
    record.set_status("running", backend="verl")
    start = time.perf_counter()
    try:
        run_verl(config)
    except BaseException as err:
        import_logs(record, sizes)  # what the attempt logged is kept
        record.set_status("failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        raise
    evals = import_logs(record, sizes)
    if not evals:
        raise RuntimeError(f"verl finished but its log ({path}/verl_log.*.jsonl) has no validation of the benchmarks")
    final = evals[-1]
    trained = max([m["step"] for m in record.metrics()] + [final["step"]])
    if budget(cfg).bound == "steps" and trained < cfg.scale.steps:  # verl's data ran out first
        reason = (
            f"verl stopped at step {trained} of {cfg.scale.steps}: its data loader ran out (verl drops the "
            "prompts over data.max_prompt_length; too few were left for the step budget)"
        )
        record.set_status("incomplete", step=trained, final=final["avg"], error=reason)
        log.warning("%s: %s (record: %s)", name, reason, path)
        return final
    record.set_status("done", step=final["step"], final=final["avg"], train_seconds=time.perf_counter() - start)
    log.info("%s: final average Pass@1 %.3f (record: %s)", name, final["avg"]["pass@1"], path)
    return final


def _benchmark_sizes(files: list[str], names: list[str]) -> dict[str, int]:
    """Problems per benchmark (rows of its prepared parquet); a missing file is a clear error."""
    import pyarrow.parquet as pq

    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise ConfigError(
            f"prepared data missing: {missing}; run `python -m pipo.tasks.prepare task=<task> out_dir=<data_dir>` "
            "(backend.setup.data_dir, or PIPO_DATA)"
        )
    return {name: pq.ParquetFile(f).metadata.num_rows for name, f in zip(names, files, strict=True)}


def _run_locked(cfg: DictConfig, sig: str, name: str, path, record: RunRecord) -> dict:
    _start(cfg, sig, name, path, record)
    if cfg.backend.threads > 0:
        torch.set_num_threads(cfg.backend.threads)

    from pipo.backends.local.trainer import LocalTrainer  # heavy imports only once a cell runs

    task = load_standin(cfg.task)
    start = time.perf_counter()
    model_path = resolve_model(cfg.model, task, cfg.cache_dir)
    log.info("base model %s ready in %.1fs: %s", cfg.model.name, time.perf_counter() - start, model_path)
    wandb = WandbMirror(
        cfg.wandb.mode,
        cfg.wandb.project,
        cfg.wandb.entity,
        cfg.wandb.group or cfg.sweep,  # a sweep's cells share a W&B group
        run_id=sig,
        name=name,
        directory=path,
        config=to_container(cfg),
        tags=[
            cfg.algorithm.name,
            "pipo" if cfg.pipo.enabled else "base",
            cfg.model.name,
            cfg.task.name,
            cfg.scale.name,
        ],
    )
    start = time.perf_counter()
    try:
        final = LocalTrainer(cfg, task, model_path, record, wandb).fit()
    except BaseException as err:
        record.set_status("failed", error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        wandb.finish(exit_code=1)
        raise
    record.set_status("done", step=final["step"], final=final["avg"], train_seconds=time.perf_counter() - start)
    wandb.finish()
    log.info("%s: final average Pass@1 %.3f (record: %s)", name, final["avg"]["pass@1"], path)
    return final
