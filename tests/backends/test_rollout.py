"""Batched sampling: response masks, and log-probs that agree with the sampler's own scores."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from pipo.backends.local.rollout import concat_rollouts, generate, log_probs
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.tasks import load_standin


def test_log_probs_match_the_kv_cached_sampler(micro_overrides):
    cfg = compose_cell(micro_overrides)
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    model, tok = AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    prompts = ["Q:1+2\nA:", "Q:12*3+40\nA:", "Q:7-9\nA:"]  # different lengths: left padding
    torch.manual_seed(0)
    roll = generate(model, tok, prompts, 2, 16, 12, temperature=1.0)
    assert roll.input_ids.shape[0] == 6 and list(roll.group) == [0, 0, 1, 1, 2, 2]
    # the response mask covers the tokens up to and including the first EOS, nothing after
    for row, mask in zip(roll.input_ids[:, -roll.response_length :], roll.response_mask, strict=True):
        n = int(mask.sum())
        eos = (row == tok.eos_token_id).nonzero()
        assert n == (int(eos[0]) + 1 if len(eos) else roll.response_length)
        assert (row[n:] == tok.pad_token_id).all()
    # an independent path: the scores the KV-cached sampler itself drew from, step by step
    torch.manual_seed(0)
    enc = tok(prompts, padding=True, add_special_tokens=False, return_tensors="pt")
    out = model.generate(
        **enc,
        generation_config=GenerationConfig(
            max_new_tokens=12,
            do_sample=True,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            num_return_sequences=2,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        output_scores=True,
        return_dict_in_generate=True,
    )
    sampled = out.sequences[:, enc["input_ids"].shape[1] :]
    R = roll.response_length
    assert torch.equal(sampled[roll.response_mask.bool()], roll.input_ids[:, -R:][roll.response_mask.bool()])
    ref = torch.stack([torch.log_softmax(s.float(), -1) for s in out.scores], 1)[:, :R]
    ref = ref.gather(-1, sampled[:, :R, None]).squeeze(-1)
    with torch.no_grad():
        ours = log_probs(model, roll.input_ids, roll.attention_mask, roll.position_ids, R)
    m = roll.response_mask.bool()
    assert torch.allclose(ours[m], ref[m], atol=1e-4)
    # the sampler's own log-probs, kept at sampling time, are the same numbers (the trainer's old log-probs)
    torch.manual_seed(0)
    kept = generate(model, tok, prompts, 2, 16, 12, temperature=1.0, with_log_probs=True)
    assert torch.equal(kept.input_ids, roll.input_ids)
    assert torch.allclose(kept.log_probs[m], ours[m], atol=1e-4) and (kept.log_probs[~m] == 0).all()
    sub = concat_rollouts([kept.select([0, 1]), kept.select([4, 5])], tok.pad_token_id)
    assert torch.equal(sub.log_probs[:, : kept.response_length], kept.log_probs[[0, 1, 4, 5]])
