"""GPU-hours of a cell: a token-count model of its step (the plan's estimate; BENCHMARKS.md §5).

A step is made of passes over the batch's sequences, counted in units of one forward over one
sequence token: sampling (prefill 1 per prompt token, decoding g per response token), no-grad
forwards 1 each (old log-probs; the KL reference; PPO's values; SDPO's teacher) and forward+backward
updates 3 each (the actor; PPO's critic). PIPO adds one actor update over the replayed share f of
the previous batch (``scale.resources.cost.replayed``; every row when the backends forward every row:
``verification_share``). GPU-hours = steps × units × sequence tokens × forward FLOPs per token
(``pipo.flops``, the model's shipped config) / (peak × fraction of peak). The fraction is
``scale.resources.cost.mfu`` when set, else the one ``bash reproduce/gpu_check.sh`` measured
(``conf/gpu_measured.json``) if it was measured against the plan's peak (a fraction of another GPU's
peak says nothing of this one), else ``assumed_mfu``. The work is taken to spread over the cell's GPUs
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


def _number(data: dict[str, Any], key: str) -> bool:
    return isinstance(data.get(key), int | float) and not isinstance(data.get(key), bool)


def measured(path: Path | None = None) -> dict[str, Any] | None:
    """The GPU check's measurement (``mfu``, ``peak_tflops``, ``achieved_tflops``, ``device``, ``date``, …;
    default file ``MEASURED``), None before there is one. ValueError when the file is not such a measurement."""
    path = path or MEASURED
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): rerun bash reproduce/gpu_check.sh or delete it") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object (rerun bash reproduce/gpu_check.sh)")
    mfu = data.get("mfu")
    if not _number(data, "mfu") or not 0 < mfu <= 1:
        raise ValueError(f"{path}: 'mfu' must be a fraction of peak in (0, 1], got {mfu!r} (rerun gpu_check.sh)")
    for key in ("peak_tflops", "achieved_tflops"):
        if not _number(data, key) or data[key] <= 0:
            raise ValueError(f"{path}: {key!r} must be TFLOP/s > 0, got {data.get(key)!r} (rerun gpu_check.sh)")
    return data


def fraction_of_peak(cost: Any, path: Path | None = None) -> tuple[float, str]:
    """(the fraction of peak the estimate uses, where it comes from). A measured fraction is used only
    when it was measured against ``cost.peak_tflops``; otherwise the assumed one, and the source says why."""
    if cost.mfu is not None:
        return float(cost.mfu), "scale.resources.cost.mfu"
    if (m := measured(path)) is not None:
        where = f"{m.get('date', '?')} on {m.get('device', '?')}"
        if float(m["peak_tflops"]) == float(cost.peak_tflops):
            return float(m["mfu"]), f"measured {where}"
        return float(cost.assumed_mfu), (
            f"assumed: the {m['mfu']:.0%} measured {where} is of a {m['peak_tflops']:g} TFLOP/s peak "
            f"({m['achieved_tflops']:.0f} TFLOP/s achieved), not this plan's {cost.peak_tflops:g}"
        )
    return float(cost.assumed_mfu), "assumed, not measured yet"


def verification_share(cfg: Any) -> float:
    """The share of the previous batch's rows the verification step forwards: every row when a KL term
    is in the verification loss (both backends: ``pipo.kl_in_verification`` with the algorithm's KL
    loss) or, on verl, when the loss is normalised by the micro-batch's padded width
    (``pipo.backends.verl.trainer.skips_unrewarded_rows``); else ``scale.resources.cost.replayed``.
    ``pipo.skip_zero`` skips whole steps, not rows: it does not enter."""
    kl = bool(cfg.pipo.kl_in_verification and cfg.algorithm.use_kl_loss)
    width_normalised = cfg.backend.name == "verl" and cfg.algorithm.loss_agg_mode == "seq-mean-token-sum-norm"
    return 1.0 if kl or width_normalised else float(cfg.scale.resources.cost.replayed)


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
        step += verification_share(cfg) * actor  # the verification step
    seq = round(c.prompt_tokens + c.response_tokens)
    sequences = a.batch_size // cfg.scale.batch_divisor * a.rollout_n
    flops_per_step = step * sequences * _sequence_flops(config_json, seq)
    steps = cfg.scale.steps / (c.dapo_rounds if a.filter_groups else 1.0)  # DAPO's steps count generation rounds
    mfu, _ = fraction_of_peak(c, path)
    return steps * flops_per_step / (c.peak_tflops * 1e12 * mfu) / 3600
