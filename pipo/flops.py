"""FLOPs of a Qwen3 forward pass, from the model's ``config.json`` (standard library only).

The count is the matrix products' (2 per multiply-add): per token and layer the attention projections
(q, k, v, o) and the gated MLP (gate, up, down), the LM head, and per layer the attention itself
(QKᵀ and AV) over the (query, key) pairs a causal mask keeps. Norms, activations, rotary embedding
and the embedding lookup are elementwise or lookups and left out (under 1 % at these sizes). The
GPU check (``reproduce/gpu_check.sh``) divides it by measured times to get a fraction of peak; the
cost model (``pipo.cost``) multiplies it by token passes to get GPU-hours: one count for both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SHAPE_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
)


def read_model_config(path: Path | str) -> dict[str, Any]:
    """A model's ``config.json`` (a file or the directory holding it), checked for the shape keys."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    config = json.loads(path.read_text())
    if missing := [k for k in SHAPE_KEYS if k not in config]:
        raise ValueError(f"{path} lacks {missing}: not a Qwen3-architecture config")
    return config


def linear_flops_per_token(config: Mapping[str, Any]) -> int:
    """FLOPs per token of the forward's weight matrices: every layer's projections and MLP, and the LM head."""
    h, inter, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    layer = 2 * h * q + 2 * 2 * h * kv + 2 * q * h + 3 * 2 * h * inter  # q; k, v; o; gate, up, down
    return config["num_hidden_layers"] * layer + 2 * h * v


def attention_pairs(seq_len: int, causal: bool = True) -> int:
    """(query, key) pairs one head scores in a sequence: L(L+1)/2 under a causal mask, L² without."""
    return seq_len * (seq_len + 1) // 2 if causal else seq_len * seq_len


def forward_flops(config: Mapping[str, Any], seq_len: int, causal: bool = True) -> int:
    """FLOPs of one forward over one sequence of ``seq_len`` tokens (matrix products only)."""
    if seq_len < 1:
        raise ValueError(f"seq_len must be ≥ 1, got {seq_len}")
    heads_dim = config["num_attention_heads"] * config["head_dim"]
    attention = config["num_hidden_layers"] * 2 * 2 * heads_dim * attention_pairs(seq_len, causal)  # QKᵀ, AV
    return seq_len * linear_flops_per_token(config) + attention


def forward_flops_per_token(config: Mapping[str, Any], seq_len: int, causal: bool = True) -> float:
    """``forward_flops`` per token of a sequence of ``seq_len`` tokens."""
    return forward_flops(config, seq_len, causal) / seq_len
