"""mean@k samples at the rollout's settings: nucleus top-p, checked on a model whose next-token
distribution is set by hand."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from pipo.backends.local.evaluate import evaluate
from pipo.models.tiny import build_tokenizer
from pipo.tasks import Verifier

PROBS = {"A": 0.5, "B": 0.3, "C": 0.15, "D": 0.05}  # every other token: probability 0


@pytest.fixture(scope="module")
def fixed():
    """A Qwen3 whose next token is drawn from ``PROBS`` whatever the input: every embedding is the
    same constant vector (its RMS norm is all ones), the layer adds nothing (zero output projections)
    and the head maps the ones vector to log PROBS."""
    tok = build_tokenizer()
    h = 8
    config = Qwen3Config(
        vocab_size=len(tok),
        hidden_size=h,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=h,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        tie_word_embeddings=False,
    )
    model = Qwen3ForCausalLM(config)
    logits = torch.full((len(tok),), -1e4)
    for t, p in PROBS.items():
        logits[tok.convert_tokens_to_ids(t)] = math.log(p)
    with torch.no_grad():
        model.model.embed_tokens.weight.fill_(3.0)
        model.model.layers[0].self_attn.o_proj.weight.zero_()
        model.model.layers[0].mlp.down_proj.weight.zero_()
        model.model.norm.weight.fill_(1.0)
        model.lm_head.weight.copy_(logits[:, None].expand(-1, h) / h)
    return model.eval(), tok


def frequencies(fixed, top_p: float, k: int = 50, n: int = 10) -> dict[str, float]:
    """Per letter, the fraction of mean@k samples equal to it: n problems whose answer is that letter."""
    model, tok = fixed
    problems = [{"prompt": "Q", "ground_truth": t} for t in PROBS for _ in range(n)]
    exact = Verifier("exact", lambda r, t: float(r == t))
    torch.manual_seed(0)
    out = evaluate(model, tok, {"b": problems}, {"b": "B"}, exact, 4, 1, 1.0, k, len(problems), top_p=top_p)
    entry = out["benchmarks"]["b"]
    assert entry["per_problem"] == {str(i): float(p["ground_truth"] == "A") for i, p in enumerate(problems)}  # greedy
    counts = entry["correct_per_problem"]
    return {t: sum(counts[i * n : (i + 1) * n]) / (n * k) for i, t in enumerate(PROBS)}


def test_mean_at_k_samples_with_the_nucleus_top_p(fixed):
    # top-p 0.7 keeps the fewest most likely tokens reaching 0.7: A and B (0.8), renormalised to 5/8, 3/8
    # (500 samples per letter: a frequency's standard error is at most 0.022)
    nucleus = frequencies(fixed, 0.7)
    assert nucleus["C"] == nucleus["D"] == 0.0
    assert nucleus["A"] == pytest.approx(0.5 / 0.8, abs=0.07) and nucleus["B"] == pytest.approx(0.3 / 0.8, abs=0.07)
    full = frequencies(fixed, 1.0)  # top-p 1: the distribution as built
    assert full == pytest.approx(PROBS, abs=0.07) and full["C"] > 0.05
