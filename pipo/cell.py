"""Cell identity: a signature from the cell's semantic config, its run directory and a readable label."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from pipo.config import to_container

# bump when the meaning of a config changes: old runs stop matching (2: tasks; 3: resources are not identity;
# 4: the verification optimizer and controls, SDPO's loss over demonstrated tokens, PPO's critic without dropout)
SIGNATURE_VERSION = 5  # 5: recipe, pipo presets and their settings, top-p, shuffle, eval temperature, reward noise
NON_SEMANTIC = ("run_root", "cache_dir", "wandb", "cluster", "force", "sweep")  # paths, launcher, logging


def semantic_config(cfg: DictConfig | dict) -> dict[str, Any]:
    """The part of a composed config (or of its ``to_container``) that determines a cell's numbers."""
    plain = to_container(cfg) if isinstance(cfg, DictConfig) else cfg
    sem = {k: v for k, v in plain.items() if k not in NON_SEMANTIC and k != "hydra"}
    sem["scale"] = {k: v for k, v in sem["scale"].items() if k != "resources"}  # where it runs, not what
    sem["backend"] = {k: v for k, v in sem["backend"].items() if k != "setup"}  # how the node runs it
    if not sem.get("verl"):
        sem.pop("verl", None)  # no verl overrides: nothing to tell cells apart by
    if not sem["pipo"]["enabled"]:
        sem["pipo"] = {"enabled": False}  # PIPO's knobs mean nothing when it is off
    if sem["pipo"].get("performance") != "probe":
        sem.pop("probe", None)  # the probe observes and never steers, unless J_t is its score
    return sem


def _digest(sem: dict[str, Any]) -> str:
    blob = json.dumps({"v": SIGNATURE_VERSION, **sem}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def signature(cfg: DictConfig | dict) -> str:
    """12 hex digits of the hash of the semantic config."""
    return _digest(semantic_config(cfg))


def settings_key(cfg: DictConfig | dict) -> str:
    """The signature without the seed: the same for every seed of a cell, and different for a cell of
    other settings that the tables' attributes do not name (a stand-in's architecture, a learning rate)."""
    sem = semantic_config(cfg)
    sem.pop("seed", None)
    return _digest(sem)


def label(cfg: DictConfig) -> str:
    """A readable name, e.g. ``grpo+pipo(λ=0.1,K=8) · qwen3_4b_base · math · seed 42`` (``…,authors)`` for
    ``pipo=authors``, ``· recipe=authors``)."""
    algo = cfg.algorithm.name
    if cfg.pipo.enabled:
        p = cfg.pipo
        given = ((p.preset, "paper"), (p.optimizer, "shared"), (p.control, "none"))
        extra = [v for v, default in given if v != default]
        extra += ["probe J"] if p.performance == "probe" else []
        algo += f"+pipo(λ={p.lam:g},K={p.window}{''.join(',' + v for v in extra)})"
    recipe = "" if cfg.recipe == "paper" else f" · recipe={cfg.recipe}"
    noise = f" · reward noise {cfg.task.reward_noise:g}" if cfg.task.reward_noise else ""
    return f"{algo} · {cfg.model.name} · {cfg.task.name}{noise} · seed {cfg.seed}{recipe}"


def run_dir(cfg: DictConfig, sig: str | None = None) -> Path:
    """``<run_root>/<scale>/<signature>/`` (``sig``: the signature, if already computed)."""
    return Path(cfg.run_root) / cfg.scale.name / (sig or signature(cfg))
