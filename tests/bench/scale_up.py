"""How the local trainer's costs grow with batch size and response length (a small table).

    python tests/bench/scale_up.py [--repeats 3] [overrides...]

On the cached tiny base model of ``model=``, with responses forced to their full length (EOS
suppressed until the last token), for each shape (responses × response tokens) it times the three
passes a step is made of: sampling (batched, KV cache), a no-grad forward for log-probs, and a
forward+backward (the update). Printed: seconds per pass and microseconds per response token —
flat along a column where the cost is linear in the work.
"""

import argparse
import statistics
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from pipo.backends.local.rollout import log_probs
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.tasks import load_standin


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def measure(model, tok, prompts: list[str], n: int, length: int, repeats: int) -> tuple[int, list[float]]:
    """(response tokens, [sampling, log-prob, forward+backward seconds]) for n responses of ``length``."""
    enc = tok(prompts[: n // 8], padding=True, add_special_tokens=False, return_tensors="pt")
    length = min(length, model.config.max_position_embeddings - enc["input_ids"].shape[1])
    gen = GenerationConfig(
        max_new_tokens=length,
        min_new_tokens=length,
        do_sample=True,
        top_k=0,
        num_return_sequences=8,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    out = model.generate(**enc, generation_config=gen)
    prompt_mask = enc["attention_mask"].repeat_interleave(8, 0)
    attn = torch.cat([prompt_mask, torch.ones(len(out), length, dtype=torch.long)], 1)
    pos = (attn.cumsum(-1) - 1).clamp(min=0)

    def sample():
        with torch.no_grad():
            model.generate(**enc, generation_config=gen)

    def logp():
        with torch.no_grad():
            log_probs(model, out, attn, pos, length)

    def update():
        model.train()
        log_probs(model, out, attn, pos, length).sum().backward()
        model.zero_grad(set_to_none=True)
        model.eval()

    return length, [timed(f, repeats) for f in (sample, logp, update)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = compose_cell(["wandb.mode=disabled", *args.overrides])
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    prompts = [p["prompt"] for p in task.train]
    head = ["responses", "tokens", "sample s", "µs/tok", "logp s", "µs/tok", "fwd+bwd s", "µs/tok"]
    print("".join(f"{h:>11}" for h in head))
    for n, length in [(n, 16) for n in (64, 128, 256, 512)] + [(256, r) for r in (8, 32, 40)]:
        length, times = measure(model, tok, prompts, n, length, args.repeats)
        cells = "".join(f"{t:>11.3f}{t / (n * length) * 1e6:>11.1f}" for t in times)
        print(f"{n:>11}{length:>11}{cells}", flush=True)


if __name__ == "__main__":
    main()
