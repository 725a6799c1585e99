"""PyTorch's SDPA kernels on CPU at tiny scale: the flash kernel (its default choice) against the math
kernel, side by side in one process, for the passes a tiny cell and its warm-up make.

    python tests/bench/attention_kernel.py [--model qwen3_4b_base] [--repeats 7] [--threads 1]

On the tiny stand-in (random weights: the timing does not depend on them): a warm-up step (64
right-padded examples, forward + backward), an update pass (128 rollout rows, left-padded prompts,
forward + backward of the response log-probs) and sampling (32 prompts × 8, 16 new tokens). Each
repeat times both kernels in turn; prints the medians, their ratio and how far the two kernels'
results are apart.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from pipo.backends.local.rollout import generate, log_probs
from pipo.config import compose_cell
from pipo.models import tiny
from pipo.tasks import load_standin

KERNELS = {"flash": [SDPBackend.FLASH_ATTENTION, SDPBackend.MATH], "math": [SDPBackend.MATH]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen3_4b_base")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = compose_cell([f"model={args.model}", "task=math"])
    task = load_standin(cfg.task)
    tok = tiny.build_tokenizer(task.words)
    model = tiny.build_model(dict(cfg.model.tiny.arch), len(tok), tok.pad_token_id, tok.eos_token_id, seed=0)
    pairs = tiny._sft_tokens(tok, task.sft_examples[:64])
    sft_ids, sft_labels = tiny._sft_batch(tok.pad_token_id, pairs)
    prompts = [p["prompt"] for p in task.train[:32]]
    torch.manual_seed(0)
    roll = generate(model, tok, prompts, 8, 16, 16, 1.0)
    rows = slice(0, 128)

    def warm_up_step() -> torch.Tensor:
        model.zero_grad()
        model(input_ids=sft_ids, labels=sft_labels).loss.backward()
        return model.model.embed_tokens.weight.grad.clone()

    def update_pass() -> torch.Tensor:
        model.zero_grad()
        lp = log_probs(model, roll.input_ids[rows], roll.attention_mask[rows], roll.position_ids[rows], 16)
        (lp * roll.response_mask[rows]).sum().backward()
        return lp

    def sampling() -> torch.Tensor:
        torch.manual_seed(1)
        return generate(model, tok, prompts, 8, 16, 16, 1.0, with_log_probs=True).input_ids

    model.train()
    print(f"{'pass':<14}{'flash s':>10}{'math s':>10}{'flash/math':>12}{'max |Δ|':>12}")
    for name, fn in (("warm-up step", warm_up_step), ("update pass", update_pass), ("sampling", sampling)):
        times: dict[str, list[float]] = {k: [] for k in KERNELS}
        out = {}
        for _ in range(args.repeats + 1):  # the first round warms up
            for kernel, backends in KERNELS.items():
                with sdpa_kernel(backends):
                    start = time.process_time()
                    out[kernel] = fn()
                    times[kernel].append(time.process_time() - start)
        f, m = (statistics.median(times[k][1:]) for k in KERNELS)
        diff = (out["flash"].float() - out["math"].float()).abs().max().item()
        print(f"{name:<14}{f:>10.4f}{m:>10.4f}{f / m:>12.2f}{diff:>12.2e}", flush=True)


if __name__ == "__main__":
    main()
