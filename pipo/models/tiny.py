"""Tiny Qwen3-architecture base models with a character tokenizer, built on first use.

A tiny model stands in for a paper model at tiny scale: it is built from a local config,
trained briefly (supervised) on its task's training split so that it starts with partial
competence, saved in Hugging Face format and cached under a key of everything that built it.
Afterwards it loads through the same ``from_pretrained`` path as a real model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import string
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
CHARSET = string.digits + string.ascii_letters + string.punctuation + " \n"
BUILDER_VERSION = 3  # bump when the build procedure changes: it is part of the cache key


def build_tokenizer(words: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """A character-level tokenizer (one token per printable ASCII character) in HF format.

    ``words`` are extra multi-character tokens, matched first (longest first) — like the special
    tokens (``<tool_call>``) and merges of a real tokenizer, they keep structured answers short.
    """
    vocab = {tok: i for i, tok in enumerate([PAD, EOS, UNK, *CHARSET, *dict.fromkeys(words)])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    pattern = "|".join([*(re.escape(w) for w in sorted(set(words), key=len, reverse=True)), "."])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK, padding_side="left"
    )


def build_model(arch: dict, vocab_size: int, pad_id: int, eos_id: int, seed: int) -> Qwen3ForCausalLM:
    """A randomly initialised Qwen3 causal LM with the given architecture fields."""
    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=vocab_size,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
        bos_token_id=None,
        tie_word_embeddings=True,
        **arch,
    )
    return Qwen3ForCausalLM(config)


def _sft_tokens(tokenizer: PreTrainedTokenizerFast, examples: Sequence[tuple[str, str]]) -> list[tuple[list, list]]:
    """Each example's (prompt ids, response ids + EOS), tokenized once for the whole warm-up."""
    prompts = tokenizer([p for p, _ in examples], add_special_tokens=False)["input_ids"]
    responses = tokenizer([r for _, r in examples], add_special_tokens=False)["input_ids"]
    return [(p, [*r, tokenizer.eos_token_id]) for p, r in zip(prompts, responses, strict=True)]


def _sft_batch(pad: int, pairs: Sequence[tuple[list, list]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask, and labels on the response tokens (and EOS) only."""
    width = max(len(p) + len(r) for p, r in pairs)
    input_ids = torch.full((len(pairs), width), pad)
    labels = torch.full((len(pairs), width), -100)
    for i, (p, r) in enumerate(pairs):
        input_ids[i, : len(p) + len(r)] = torch.tensor(p + r)
        labels[i, len(p) : len(p) + len(r)] = torch.tensor(r)
    return input_ids, (input_ids != pad).long(), labels


def supervised_train(
    model: Qwen3ForCausalLM,
    tokenizer: PreTrainedTokenizerFast,
    examples: Sequence[tuple[str, str]],
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> list[float]:
    """Brief supervised training on (prompt, response) pairs; returns the loss per step.

    Batches are length-grouped: a batch draws an example at random, then the rest from examples of
    similar length (so a long re-prompted example does not pad a batch of short ones), which keeps
    each example's chance of being seen the same.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20) * (1 - s / steps))
    buckets: dict[int, list[int]] = {}
    for i, (p, r) in enumerate(examples):
        buckets.setdefault((len(p) + len(r)) // 32, []).append(i)
    bucket_of = [(len(p) + len(r)) // 32 for p, r in examples]
    tokens = _sft_tokens(tokenizer, examples)
    all_ids, all_attn, all_labels = _sft_batch(tokenizer.pad_token_id, tokens)  # every example once
    lengths = torch.tensor([len(p) + len(r) for p, r in tokens])
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="base model (supervised)", leave=False):
        pool = buckets[bucket_of[int(torch.randint(len(examples), (1,), generator=gen))]]
        idx = torch.tensor([pool[j] for j in torch.randint(len(pool), (batch_size,), generator=gen).tolist()])
        width = int(lengths[idx].max())  # a batch is rows of that table, as wide as its longest example
        input_ids, attn, labels = all_ids[idx, :width], all_attn[idx, :width], all_labels[idx, :width]
        loss = model(input_ids=input_ids, attention_mask=attn, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    return losses


def cache_key(spec: dict) -> str:
    """Hash of everything that determines a built model."""
    blob = json.dumps({"builder": BUILDER_VERSION, **spec}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_tiny_model(
    name: str,
    arch: dict,
    sft: dict,
    examples: Sequence[tuple[str, str]],
    data_key: str,
    cache_dir: str | os.PathLike,
    words: Sequence[str] = (),
) -> Path:
    """Path of the cached tiny base model, building it first if needed (safe across processes).

    Args:
        name: readable name (the paper model it stands in for).
        arch: Qwen3Config fields (hidden_size, num_hidden_layers, ...).
        sft: ``{"steps", "batch_size", "lr", "seed"}`` of the supervised warm-up.
        examples: (prompt, response) pairs of the task's training split.
        data_key: identifies the examples (task name, generator settings) in the cache key.
        cache_dir: where built models are kept.
        words: the task's extra multi-character tokens (see :func:`build_tokenizer`).
    """
    spec = {"name": name, "arch": arch, "sft": sft, "data": data_key}
    key = cache_key({**spec, "words": list(words)} if words else spec)
    root = Path(cache_dir)
    path = root / f"{name}-{key}"
    if (path / "config.json").exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same model
        if (path / "config.json").exists():
            return path
        start = time.perf_counter()
        tokenizer = build_tokenizer(words)
        model = build_model(arch, len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id, sft["seed"])
        losses = supervised_train(model, tokenizer, examples, sft["steps"], sft["batch_size"], sft["lr"], sft["seed"])
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-"))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {
            "name": name,
            "key": key,
            "arch": arch,
            "sft": sft,
            "data": data_key,
            "final_sft_loss": sum(losses[-20:]) / len(losses[-20:]),
            "build_seconds": round(time.perf_counter() - start, 2),
        }
        (tmp / "pipo_build.json").write_text(json.dumps(info, indent=2))
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    return path
