"""Throughput of the paper's model shapes on one device, and the fraction of its peak it reaches.

torch, transformers and pyyaml only (no verl, Ray or vLLM; no network): a Qwen3 model built from a
shipped config (``pipo/backends/verl/model_configs/``) with random weights, timed on the passes a
paper-scale step is made of, at the paper's sequence length (``conf/scale/paper.yaml``: max prompt +
max response) and verl's micro-batches (``conf/backend/verl.yaml``: tokens per GPU per training
forward and per log-prob forward; gradient checkpointing as configured there):

- ``forward``: a no-grad log-prob forward (old log-probs, the reference; 1 unit in ``pipo.cost``);
- ``forward_backward``: a forward+backward of a policy-gradient loss (an actor update's micro-batch; 3 units);
- ``verification``: the same with PIPO's per-token rewards, then gradient clipping and an AdamW step
  (one verification micro-batch as the local backend's replay runs it).

Log-probs are taken as verl takes them: logits over the whole sequence, the response's slice in
float32. The policy loss is a reward-weighted ratio (its elementwise arithmetic, verl's clipped
objective in a run, costs nothing next to the model). The fraction of peak counts model FLOPs
(``pipo.flops``: 1 forward per no-grad pass, 3 per forward+backward; the recomputation that gradient
checkpointing adds is not counted), the convention ``pipo.cost`` divides by.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from pipo.flops import forward_flops, read_model_config

ROOT = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = ROOT / "pipo" / "backends" / "verl" / "model_configs"
# dense bf16 tensor-core peak per GPU (vendor datasheets, without sparsity); the first name the device's
# name contains wins, so the more specific names come first. GPU_PEAK_TFLOPS overrides it.
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("H800", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)


def peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (``torch.cuda.get_device_name``), None if not in the table."""
    for name, tflops in PEAK_BF16_TFLOPS:
        if name in device_name:
            return tflops
    return None


@dataclass(frozen=True)
class Shapes:
    """A pass's sequences: prompt and response lengths, and rows per micro-batch."""

    prompt: int
    response: int
    train_rows: int  # rows per training forward+backward
    log_prob_rows: int  # rows per no-grad log-prob forward
    checkpointing: bool

    @property
    def seq(self) -> int:
        return self.prompt + self.response


def paper_shapes(root: Path = ROOT) -> Shapes:
    """The paper's lengths (``conf/scale/paper.yaml``) in verl's micro-batches (``conf/backend/verl.yaml``):
    as many full-length sequences as its token budgets per GPU hold."""
    scale = yaml.safe_load((root / "conf" / "scale" / "paper.yaml").read_text())
    setup = yaml.safe_load((root / "conf" / "backend" / "verl.yaml").read_text())["setup"]
    seq = scale["max_prompt_length"] + scale["max_response_length"]
    train, log_prob = setup["max_token_len_per_gpu"] // seq, setup["log_prob_max_token_len_per_gpu"] // seq
    if min(train, log_prob) < 1:
        raise ValueError(f"conf/backend/verl.yaml's token budgets per GPU hold no {seq}-token sequence")
    prompt, response = scale["max_prompt_length"], scale["max_response_length"]
    return Shapes(prompt, response, train, log_prob, setup["gradient_checkpointing"])


def build_model(model_dir: Path, device: str, dtype: torch.dtype, checkpointing: bool, attention: str = "sdpa"):
    """A Qwen3 model of ``model_dir``'s config with random weights, on ``device``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    config.use_cache = False
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model


def response_log_probs(model, input_ids: torch.Tensor, prompt: int) -> torch.Tensor:
    """(rows, response) log-probs of the response tokens: logits over the whole sequence, the slice in float32
    (the picked logit less the log-sum-exp: one float32 copy of the slice kept for backward, not two)."""
    logits = model(input_ids=input_ids).logits
    sliced = logits[:, prompt - 1 : -1].float()
    return sliced.gather(-1, input_ids[:, prompt:, None])[..., 0] - sliced.logsumexp(-1)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def seconds_per_call(fn: Callable[[], Any], device: str, warmup: int, iters: int) -> float:
    """Mean wall time of ``fn`` over ``iters`` calls after ``warmup`` untimed ones, the device synchronised."""
    for _ in range(warmup):
        fn()
    _sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / iters


def matmul_tflops(device: str, size: int = 8192, warmup: int = 3, iters: int = 10) -> float:
    """TFLOP/s of a size³ bf16 matrix product: what the device reaches on the plainest dense work."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    return 2 * size**3 / seconds_per_call(lambda: a @ b, device, warmup, iters) / 1e12


def measure(
    model_dir: Path,
    shapes: Shapes,
    device: str,
    dtype: torch.dtype = torch.bfloat16,
    peak: float | None = None,
    warmup: int = 2,
    iters: int = 5,
    seed: int = 0,
) -> dict[str, dict[str, float | int | None]]:
    """Time the three passes; per pass: rows, tokens, seconds, tokens/s, model TFLOP/s, fraction of ``peak``
    (TFLOP/s; None: not known) and the device memory it peaked at (GB, CUDA only)."""
    torch.manual_seed(seed)
    model = build_model(model_dir, device, dtype, shapes.checkpointing)
    vocab = model.config.vocab_size
    per_sequence = forward_flops(read_model_config(model_dir), shapes.seq)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device.startswith("cuda"))

    def batch(rows: int) -> torch.Tensor:
        return torch.randint(0, vocab, (rows, shapes.seq), device=device)

    fwd_ids, train_ids = batch(shapes.log_prob_rows), batch(shapes.train_rows)
    rewards = torch.randn(shapes.train_rows, shapes.response, device=device)  # PI rewards: φ·attribution per token
    rewards[torch.rand_like(rewards) < 0.5] = 0.0

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            response_log_probs(model, fwd_ids, shapes.prompt)

    def forward_backward() -> None:
        model.train()
        lp = response_log_probs(model, train_ids, shapes.prompt)
        (-(lp * rewards).mean()).backward()
        model.zero_grad(set_to_none=True)

    old = torch.zeros_like(rewards)

    def verification() -> None:
        model.train()
        lp = response_log_probs(model, train_ids, shapes.prompt)
        ratio = torch.exp(lp - old)
        (-(rewards * ratio).sum() / rewards.numel()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with torch.no_grad():
        old.copy_(response_log_probs(model.eval(), train_ids, shapes.prompt))
    out = {}
    for name, fn, rows, units in (
        ("forward", forward, shapes.log_prob_rows, 1),
        ("forward_backward", forward_backward, shapes.train_rows, 3),
        ("verification", verification, shapes.train_rows, 3),
    ):
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        seconds = seconds_per_call(fn, device, warmup, iters)
        tflops = units * rows * per_sequence / seconds / 1e12
        out[name] = {
            "rows": rows,
            "tokens": rows * shapes.seq,
            "seconds": seconds,
            "tokens_per_s": rows * shapes.seq / seconds,
            "model_tflops": tflops,
            "fraction_of_peak": None if peak is None else tflops / peak,
            "memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None,
        }
    return out
