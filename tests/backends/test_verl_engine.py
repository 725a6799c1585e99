"""PIPO's verification replay through verl's real training path, on CPU (``tests/backends/verl_cpu.py``).

Real: the replayed batch is built from verl's ``AgentLoopOutput`` fields as its agent loop stores them
(prompts, responses, response and loss masks, input and position ids, jagged); ``PIPOTrainer.replay``
puts it into TransferQueue; the worker extension's ``update_actor_pi`` receives it through verl's
``tqbridge``; verl's ``TrainingWorker`` splits it into mini-batches and (dynamic) micro-batches,
removes the padding, runs the tiny Qwen3 model through FSDP2 and the registered ``ppo_loss``, clips
the gradient and steps the optimizer. Checked against a hand computation with a plain float32 copy of
the model, and the replay without the rows that carry no PI reward against the full replay.
"""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM
from verl.utils import tensordict_utils as tu

from pipo.backends.verl import trainer as verl_trainer
from pipo.backends.verl.trainer import NOT_REPLAYED, PIPOTrainer
from tests.backends.verl_cpu import (
    agent_loop_rows,
    cpu_verl,
    grpo_cpu_config,
    pipo_extension,
    response_log_probs,
    training_worker,
)

SHAPES = [(5, 3), (4, 6), (6, 2), (3, 5)]  # (prompt, response) lengths: 2 groups of 2 rollouts
ETA_PI = 0.05


@pytest.fixture(scope="module")
def setup(transfer_queue, hf_dir):
    """A ``PIPOTrainer`` (GRPO: 2 prompts × 2 rollouts, 2 mini-batches of one group) whose worker group
    is the real worker extension over verl's CPU ``TrainingWorker``."""
    config = grpo_cpu_config(hf_dir, prompts=2, mini_batch=1, eta_pi=ETA_PI, max_tokens=12)  # several micro-batches
    with cpu_verl():
        worker, actor_config = training_worker(config)
        extension = pipo_extension(worker, actor_config)
        trainer = PIPOTrainer(config)
        trainer.actor_rollout_wg = extension  # update_actor_pi(meta): verl's tqbridge fetches the batch
        yield trainer, worker, actor_config


def agent_loop_fields(hf_dir: str) -> tuple[list[dict], torch.Tensor]:
    """Four responses as verl's TransferQueue agent loop stores them, plus their old log-probs under the
    initial model."""
    return agent_loop_rows(hf_dir, SHAPES)


def previous_batch(hf_dir: str):
    """B_{t-1} as ``PIPOTrainer`` keeps it after verl's update: the agent-loop fields and old log-probs."""
    rows, old = agent_loop_fields(hf_dir)
    fields = tu.list_of_dict_to_tensordict(rows)
    fields["old_log_probs"] = torch.nested.as_nested_tensor(old, layout=torch.jagged)
    kept = fields.exclude(*[k for k in NOT_REPLAYED if k in fields.keys()])
    return (kept, [{"global_steps": 1} for _ in rows]), rows, old


def rewards_of(values: list[float]) -> torch.Tensor:
    """PI rewards per token (the attribution spreads a sequence's reward over its tokens)."""
    width = max(r for _, r in SHAPES)
    return torch.tensor([[v if j < r else 0.0 for j in range(width)] for v, (_, r) in zip(values, SHAPES, strict=True)])


def engine_parameters(worker) -> dict[str, torch.Tensor]:
    return {n: p.detach().full_tensor().clone() for n, p in worker.engine.module.named_parameters()}


def set_engine_parameters(worker, values: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, p in worker.engine.module.named_parameters():
            p.to_local().copy_(values[n])


def hand_replay(hf_dir, rows, old, rewards, actor_config) -> tuple[dict, list[float], list[float]]:
    """The verification update by hand: per mini-batch of one group, GRPO's clipped token-mean loss
    over the mini-batch's tokens, gradient norm clipped at ``grad_clip``, one SGD step at η_PI."""
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    params = list(model.parameters())
    low, high = actor_config.clip_ratio_low, actor_config.clip_ratio_high
    losses, norms = [], []
    for mini in ([0, 1], [2, 3]):
        terms, tokens = [], 0
        for i in mini:
            r = SHAPES[i][1]
            ratio = torch.exp(response_log_probs(model, rows[i]["input_ids"], r) - old[i])
            a = rewards[i, :r]
            clipped = torch.maximum(-a * ratio, -a * ratio.clamp(1 - low, 1 + high))
            dual = torch.minimum(clipped, -a * actor_config.clip_ratio_c)
            terms.append(torch.where(a < 0, dual, clipped).sum())
            tokens += r
        loss = sum(terms) / tokens
        model.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, actor_config.grad_clip)))
        with torch.no_grad():
            for p in params:
                p -= ETA_PI * p.grad
        losses.append(loss.item())
    return {n: p.detach() for n, p in model.named_parameters()}, losses, norms


def test_the_replay_through_verls_training_path_equals_a_hand_computation(setup, hf_dir):
    trainer, worker, actor_config = setup
    previous, rows, old = previous_batch(hf_dir)
    initial = engine_parameters(worker)
    rewards = rewards_of([0.8, -0.6, 1.5, -1.1])
    expected, losses, norms = hand_replay(hf_dir, rows, old, rewards, actor_config)
    assert any(not torch.equal(initial[n], expected[n]) for n in expected)  # the update moved the model

    out = trainer.replay(previous, rewards, ETA_PI)

    after = engine_parameters(worker)
    for name, value in expected.items():
        torch.testing.assert_close(after[name], value, rtol=1e-4, atol=1e-6, msg=name)
    assert out["pi_loss"] == pytest.approx(sum(losses) / 2, rel=1e-4)  # verl: each mini-batch's loss, averaged
    assert out["grad_norm"] == pytest.approx(sum(norms) / 2, rel=1e-4)
    assert out["update_cos"] == pytest.approx(1.0, abs=1e-5)  # a plain SGD step along −g
    assert out["replayed_fraction"] == 1.0  # every row carries a PI reward
    set_engine_parameters(worker, initial)


@pytest.mark.parametrize("optimizer", ["shared", "sgd"])
@pytest.mark.parametrize(
    "values, forwarded",
    [([0.0, 0.0, 1.5, -1.1], 0.75), ([0.0, -0.6, 0.0, 1.2], 0.5)],
    ids=["a-mini-batch-without-reward", "one-row-of-each"],
)
def test_leaving_out_the_rows_without_a_pi_reward_equals_the_full_replay(
    setup, hf_dir, monkeypatch, values, forwarded, optimizer
):
    """The same weights after the replay, so the same clipped gradients (``sgd``: θ − η_PI·g) and the
    same AdamW steps (``shared``: a mini-batch without any PI reward still takes its step, weight decay
    and moments); the loss keeps the whole mini-batch's token count."""
    trainer, worker, _ = setup
    previous, _, _ = previous_batch(hf_dir)
    rewards = rewards_of(values)
    initial, optimizer = engine_parameters(worker), copy.deepcopy(worker.engine.optimizer.state_dict())
    trainer.pipo.optimizer = optimizer
    runs = {}
    try:
        for skip in (False, True):
            set_engine_parameters(worker, initial)
            worker.engine.optimizer.load_state_dict(copy.deepcopy(optimizer))
            monkeypatch.setattr(verl_trainer, "skips_unrewarded_rows", lambda *args, skip=skip: skip)
            out = trainer.replay(previous, rewards, ETA_PI)
            runs[skip] = out, engine_parameters(worker)
    finally:
        trainer.pipo.optimizer = "sgd"
        set_engine_parameters(worker, initial)
        worker.engine.optimizer.load_state_dict(optimizer)
    (full, full_params), (skipped, skipped_params) = runs[False], runs[True]
    assert full["replayed_fraction"] == 1.0 and skipped["replayed_fraction"] == pytest.approx(forwarded)
    assert skipped["pi_loss"] == pytest.approx(full["pi_loss"], rel=1e-5, abs=1e-9)
    assert skipped["grad_norm"] == pytest.approx(full["grad_norm"], rel=1e-5)
    for name, value in full_params.items():
        torch.testing.assert_close(skipped_params[name], value, rtol=1e-5, atol=1e-7, msg=name)
    assert any(not torch.equal(initial[n], full_params[n]) for n in initial)
