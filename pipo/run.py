"""Run one cell: validate, skip if done, build the base model, train, keep the record."""

from __future__ import annotations

import fcntl
import logging
import shutil
import time
import traceback

import torch
from omegaconf import DictConfig

from pipo.cell import SIGNATURE_VERSION, label, run_dir, signature
from pipo.config import ConfigError, to_container, validate
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
        return record.evals()[-1]
    if cfg.scale.name != "tiny":
        raise ConfigError(
            f"scale={cfg.scale.name}: this version runs tiny-scale cells only (the paper's datasets "
            "and the verl backend are not part of it yet); `reproduce/<table>.py --plan` plans it"
        )
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("%s: another process is running this cell (%s); skipped", name, path)
            return None
        return _run_locked(cfg, sig, name, path, record)


def _run_locked(cfg: DictConfig, sig: str, name: str, path, record: RunRecord) -> dict:
    if cfg.force:
        for child in path.iterdir():
            if child.name != ".lock":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    log.info("%s → %s", name, path)
    record.write_cell(to_container(cfg), sig, name, SIGNATURE_VERSION)
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
    record.set_status("done", step=cfg.scale.steps, final=final["avg"], train_seconds=time.perf_counter() - start)
    wandb.finish()
    log.info("%s: final average Pass@1 %.3f (record: %s)", name, final["avg"]["pass@1"], path)
    return final
