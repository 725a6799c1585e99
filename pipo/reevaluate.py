"""Re-evaluate a finished cell's final policy with several samples per problem (Table 6: Pass@8).

Trains nothing: the cell's last checkpoint is loaded into its base model, sampled ``samples``
times per problem at the training temperature, and scored; the unbiased pass@k per benchmark
goes into ``pass_at_<k>.json`` in the cell's record, with the per-problem counts it came from.
"""

from __future__ import annotations

import logging

import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipo.backends.local.evaluate import evaluate
from pipo.backends.local.trainer import CKPT_NAME, step_seed
from pipo.cell import label, run_dir
from pipo.config import ConfigError
from pipo.models import resolve_model
from pipo.pass_at_k import mean_pass_at_k
from pipo.records import RunRecord
from pipo.tasks import get_verifier, load_standin

log = logging.getLogger(__name__)


def reevaluate(cfg: DictConfig, samples: int, k: int) -> dict:
    """Pass@k of the finished cell ``cfg`` (computed once, then read from its record)."""
    record = RunRecord(run_dir(cfg))
    status = record.status() or {}
    if status.get("state") != "done":
        raise ConfigError(f"{label(cfg)}: not trained yet (status: {status.get('state', 'new')})")
    if (done := record.pass_at_k(k)) is not None and not cfg.force:
        return done
    s = cfg.scale
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    model = AutoModelForCausalLM.from_pretrained(path)
    state = torch.load(record.ckpt_dir / CKPT_NAME, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    torch.manual_seed(step_seed(cfg.seed, state["step"], 2))
    result = evaluate(
        model.eval(),
        AutoTokenizer.from_pretrained(path),
        task.benchmarks,
        task.stands_for,
        get_verifier(cfg.task.eval_verifier or cfg.task.verifier),
        s.max_prompt_length,
        s.max_response_length,
        s.temperature,
        samples,
        s.eval.batch_size,
        top_p=s.top_p,
    )
    for entry in result["benchmarks"].values():
        entry[f"pass@{k}"] = mean_pass_at_k(entry["correct_per_problem"], samples, k)
    rows = result["benchmarks"].values()
    result["avg"][f"pass@{k}"] = sum(e[f"pass@{k}"] for e in rows) / len(rows)
    result.update(step=state["step"], samples=samples, k=k, temperature=s.temperature, top_p=s.top_p)
    record.write_pass_at_k(k, result)
    log.info("%s: average pass@%d %.3f", label(cfg), k, result["avg"][f"pass@{k}"])
    return result
