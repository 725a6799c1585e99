"""GPU-hours of a cell: a token-count model of its step (the plan's estimate; BENCHMARKS.md §5).

A step is made of passes over the batch's sequences, counted in units of one forward over one
sequence token: sampling (prefill 1 per prompt token, decoding g per response token), no-grad
forwards 1 each (old log-probs; the KL reference; PPO's values; SDPO's teacher) and forward+backward
updates 3 each (the actor; PPO's critic). PIPO adds one actor update over the replayed share f of
the previous batch. GPU-hours = steps × units × sequence tokens × forward FLOPs per token
(``pipo.flops``, the model's shipped config) / (peak × fraction of peak). The fraction is
``scale.resources.cost.mfu`` when set, else the one ``bash reproduce/gpu_check.sh`` measured
(``conf/gpu_measured.json``), else ``assumed_mfu``. The work is taken to spread over the cell's GPUs
at that fraction; optimizer steps and verifiers are left out (small next to 4k-token passes).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from pipo.algorithm.algorithms import needs_critic, needs_self_teacher
from pipo.config import CONF_DIR
from pipo.flops import forward_flops, read_model_config

MEASURED = CONF_DIR / "gpu_measured.json"  # written by reproduce/gpu_check.sh on a GPU


def step_units(
    algorithm: Any, prompt_tokens: float, response_tokens: float, g: float, dapo_rounds: float
) -> tuple[float, float]:
    """(base step, one actor update) in forward-token units per sequence token, for ``algorithm``'s config."""
    r = response_tokens / (prompt_tokens + response_tokens)  # the response share of a sequence's tokens
    rounds = dapo_rounds if algorithm.filter_groups else 1.0
    step = rounds * (g * r + (1 - r))  # sampling: prefill + decoding
    step += 1  # old log-probs
    step += 1 if (algorithm.use_kl_loss or algorithm.use_kl_in_reward) else 0  # the reference's forward
    step += 3  # actor update
    if needs_critic(algorithm):
        step += 1 + 3  # critic values + critic update
    if needs_self_teacher(algorithm):
        step += 1  # the self-teacher's forward on the re-prompted sequences
    return step, 3.0


def measured(path: Path | None = None) -> dict[str, Any] | None:
    """The GPU check's measurement (``mfu``, ``date``, ``device``, …; default file ``MEASURED``), None
    before there is one."""
    path = path or MEASURED
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    mfu = data.get("mfu")
    if not isinstance(mfu, int | float) or not 0 < mfu <= 1:
        raise ValueError(f"{path}: 'mfu' must be a fraction of peak in (0, 1], got {mfu!r} (rerun gpu_check.sh)")
    return data


def fraction_of_peak(cost: Any, path: Path | None = None) -> tuple[float, str]:
    """(the fraction of peak the estimate uses, where it comes from)."""
    if cost.mfu is not None:
        return float(cost.mfu), "scale.resources.cost.mfu"
    if (m := measured(path)) is not None:
        return float(m["mfu"]), f"measured {m.get('date', '?')} on {m.get('device', '?')}"
    return float(cost.assumed_mfu), "assumed, not measured yet"


def model_config_path(hf_id: str) -> Path | None:
    """The model's ``config.json``: its shipped one (a hub id), the local directory's, or None."""
    from pipo.backends.verl.config import planning_model_dir

    shipped = planning_model_dir(hf_id)
    if shipped is not None:
        return shipped / "config.json"
    local = Path(hf_id).expanduser() / "config.json"
    return local if local.exists() else None


@functools.lru_cache(maxsize=64)
def _sequence_flops(config_json: Path, seq_len: int) -> int:
    return forward_flops(read_model_config(config_json), seq_len)


def cell_gpu_hours(cfg: Any, path: Path | None = None) -> float | None:
    """GPU-hours of a composed cell; 0 without GPUs; None when its model's shape is not known here."""
    resources = cfg.scale.resources
    if resources.gpus == 0:
        return 0.0
    config_json = model_config_path(cfg.model.hf_id)
    if config_json is None:
        return None
    c, a = resources.cost, cfg.algorithm
    step, actor = step_units(a, c.prompt_tokens, c.response_tokens, c.decode_cost, c.dapo_rounds)
    if cfg.pipo.enabled:
        step += (c.replayed if cfg.pipo.skip_zero else 1.0) * actor  # the verification step
    seq = round(c.prompt_tokens + c.response_tokens)
    sequences = a.batch_size // cfg.scale.batch_divisor * a.rollout_n
    flops_per_step = step * sequences * _sequence_flops(config_json, seq)
    steps = cfg.scale.steps / (c.dapo_rounds if a.filter_groups else 1.0)  # DAPO's steps count generation rounds
    mfu, _ = fraction_of_peak(c, path)
    return steps * flops_per_step / (c.peak_tflops * 1e12 * mfu) / 3600
