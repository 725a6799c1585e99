"""Base models: the paper's from the hub at paper scale, tiny stand-ins built locally at tiny scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipo.models.tiny import ensure_tiny_model
from pipo.tasks import TaskData


def resolve_model(model: Any, task_data: TaskData, cache_dir: str) -> Path:
    """Local path of the tiny stand-in of ``model`` (a ModelConfig) for this task, built on first use."""
    t = model.tiny
    sft = {"steps": t.sft_steps, "batch_size": t.sft_batch_size, "lr": t.sft_lr, "seed": t.sft_seed}
    return ensure_tiny_model(
        model.name, dict(t.arch), sft, task_data.sft_examples, task_data.key, cache_dir, task_data.words
    )
