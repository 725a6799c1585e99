"""Batched sampling with a KV cache (Hugging Face ``generate``) and per-token log-probs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class Rollout:
    """Sampled responses; sequence tensors are (bs, prompt_length + response_length)."""

    input_ids: torch.Tensor  # prompts left-padded, responses right-padded
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    response_mask: torch.Tensor  # (bs, response_length), 1.0 on response tokens up to and incl. EOS
    responses: list[str]
    group: np.ndarray  # (bs,), index of the prompt each response answers
    log_probs: torch.Tensor | None = None  # (bs, response_length): the sampler's own log π(y_t), 0 off the mask

    @property
    def response_length(self) -> int:
        return self.response_mask.shape[1]

    @property
    def prompt_length(self) -> int:
        return self.input_ids.shape[1] - self.response_length

    def select(self, rows: list[int]) -> Rollout:
        """The given rows, with group ids renumbered from 0."""
        idx = torch.as_tensor(rows, dtype=torch.long)
        _, group = np.unique(self.group[rows], return_inverse=True) if rows else (None, np.zeros(0, dtype=int))
        return Rollout(
            self.input_ids[idx],
            self.attention_mask[idx],
            self.position_ids[idx],
            self.response_mask[idx],
            [self.responses[i] for i in rows],
            group.astype(int),
            None if self.log_probs is None else self.log_probs[idx],
        )


def concat_rollouts(rolls: list[Rollout], pad_id: int) -> Rollout:
    """One rollout from several (prompts re-left-padded, responses re-right-padded; groups kept apart)."""
    if len(rolls) == 1:
        return rolls[0]
    P = max(r.prompt_length for r in rolls)
    R = max(r.response_length for r in rolls)
    ids, attn, mask, lps, group, offset = [], [], [], [], [], 0
    for r in rolls:
        left, right = P - r.prompt_length, R - r.response_length
        ids.append(torch.nn.functional.pad(r.input_ids, (left, right), value=pad_id))
        attn.append(torch.nn.functional.pad(r.attention_mask, (left, right), value=0))
        mask.append(torch.nn.functional.pad(r.response_mask, (0, right), value=0.0))
        if r.log_probs is not None:
            lps.append(torch.nn.functional.pad(r.log_probs, (0, right), value=0.0))
        group.append(r.group + offset)
        offset += int(r.group.max()) + 1 if len(r.group) else 0
    attention_mask = torch.cat(attn)
    return Rollout(
        torch.cat(ids),
        attention_mask,
        (attention_mask.cumsum(-1) - 1).clamp(min=0),
        torch.cat(mask),
        [y for r in rolls for y in r.responses],
        np.concatenate(group),
        torch.cat(lps) if len(lps) == len(rolls) else None,
    )


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    n: int,
    max_prompt_length: int,
    max_new_tokens: int,
    temperature: float,
    greedy: bool = False,
    with_log_probs: bool = False,
    top_p: float = 1.0,
) -> Rollout:
    """``n`` responses per prompt (greedy: one, decoded without sampling), in one batched call, sampled
    at ``temperature`` with nucleus ``top_p``.

    ``with_log_probs``: also keep log π(y_t | x, y_<t) of each sampled token from the logits the
    sampler drew it from (the behaviour policy's own; a recomputation agrees to float rounding).
    """
    device = model.device
    enc = tokenizer(
        prompts,
        padding=True,
        truncation=True,
        max_length=max_prompt_length,
        add_special_tokens=False,
        return_tensors="pt",
    )
    gen_cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=not greedy,
        num_return_sequences=n,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        output_logits=with_log_probs,
        return_dict_in_generate=True,
        **({} if greedy else {"temperature": temperature, "top_k": 0, "top_p": top_p}),
    )
    was_training = model.training
    model.eval()
    out = model.generate(
        input_ids=enc["input_ids"].to(device),
        attention_mask=enc["attention_mask"].to(device),
        generation_config=gen_cfg,
    )
    model.train(was_training)
    prompt_len = enc["input_ids"].shape[1]
    responses = out.sequences[:, prompt_len:]
    is_eos = (responses == tokenizer.eos_token_id).long()
    response_mask = ((is_eos.cumsum(-1) - is_eos) == 0).float()  # up to and including the first EOS
    responses = torch.where(response_mask.bool(), responses, tokenizer.pad_token_id)
    sampled_lp = None
    if with_log_probs:
        logits = torch.stack(out.logits, 1).float()  # (bs, response_length, vocab), before any processing
        sampled_lp = torch.log_softmax(logits, -1).gather(-1, responses[..., None]).squeeze(-1) * response_mask
    attention_mask = torch.cat([enc["attention_mask"].to(device).repeat_interleave(n, 0), response_mask.long()], 1)
    return Rollout(
        input_ids=torch.cat([out.sequences[:, :prompt_len], responses], 1),
        attention_mask=attention_mask,
        position_ids=(attention_mask.cumsum(-1) - 1).clamp(min=0),
        response_mask=response_mask,
        responses=tokenizer.batch_decode(responses, skip_special_tokens=True),
        group=np.repeat(np.arange(len(prompts)), n),
        log_probs=sampled_lp,
    )


def log_probs(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    response_length: int,
) -> torch.Tensor:
    """log π(y_t | x, y_<t) of the last ``response_length`` tokens, (bs, response_length)."""
    logits = (
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=response_length + 1,
        )
        .logits[:, :-1]
        .float()
    )
    targets = input_ids[:, -response_length:]
    return torch.log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
