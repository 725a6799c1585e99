"""PIPO's verification replay through verl's real engine on two data-parallel ranks (CPU, gloo, FSDP2).

Two spawned processes form a gloo process group; in each, verl's ``TrainingWorker`` builds its FSDP2
engine (``tests/backends/verl_cpu.py``) sharded over both, and PIPO's worker extension runs
``update_actor_pi`` on its rank's half of the replayed batch (as verl's dispatch hands it: rank r the
r-th contiguous chunk). The zero-row skip (``forward_rewarded_rows``) is exercised where it matters
with several ranks: rank 0 holds the rewarded rows and rank 1 none, the reverse, and both some; with
verl's dynamic micro-batches and with fixed ones (where nothing but the skip keeps the ranks' forward
passes in step). Checked: the job ends within a hard timeout (a hang fails the test), every rank runs
the same number of micro-batches, the skip leaves each rank's shards as the full replay does, and the
loss, gradient norm and weights equal a hand computation over the union of both ranks' rows with verl's
global denominators (``batch_num_tokens``; ``global_batch_size`` for ``seq-mean-token-mean``).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import socket
import time
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from omegaconf import DictConfig
from transformers import AutoModelForCausalLM

from tests.backends.verl_cpu import agent_loop_rows, response_log_probs

pytestmark = pytest.mark.slow

RANKS = 2
TIMEOUT_S = 300  # the whole two-process job; a collective one rank never joins ends it here
COLLECTIVE_TIMEOUT_S = 120  # gloo's own limit on one collective, inside each rank
# (prompt, response) lengths: 4 prompts × 2 rollouts; rank r gets rows 4r..4r+3 and, per mini-batch of
# 2 prompts (2 rows a rank), rows 4r+2m, 4r+2m+1 in mini-batch m.
SHAPES = [(5, 3), (4, 6), (6, 2), (3, 5), (2, 4), (5, 5), (4, 2), (3, 6)]
ROWS_PER_RANK = len(SHAPES) // RANKS
MINI_ROWS = 2  # rows of one mini-batch on one rank
ETA_PI = 0.05
MAX_TOKENS = 12  # verl's max_token_len_per_gpu: two rows rarely fit one dynamic micro-batch
CASES = {  # PI reward per row
    # mini-batch 0: rank 0 two rewarded rows, rank 1 none; mini-batch 1: no reward anywhere
    "rank-0-only": [0.8, -0.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    # mini-batch 0: rank 1 one; mini-batch 1: rank 1 two
    "rank-1-only": [0.0, 0.0, 0.0, 0.0, 0.7, 0.0, 1.2, -0.4],
    # mini-batch 0: rank 0 two, rank 1 one; mini-batch 1: rank 0 none, rank 1 one
    "both-some": [0.8, -0.6, 0.0, 0.0, 0.0, -0.9, 1.2, 0.0],
}
MICRO = ("fixed", "dynamic")  # one row per micro-batch, or verl's use_dynamic_bsz (a token budget)
HAND = [("token-mean", "sgd"), ("seq-mean-token-mean", "sgd")]  # (loss_agg_mode, pipo.optimizer) checked by hand
RUNS = [
    (case, micro, agg, optimizer, skip)
    for case in CASES
    for micro in MICRO
    for agg, optimizer in [*HAND, ("token-mean", "shared")]  # shared: the actor's AdamW (the default)
    for skip in (False, True)
]


def two_rank_config(hf_dir: str) -> DictConfig:
    """The verl config of a GRPO cell (4 prompts × 2 rollouts, mini-batches of 2 prompts) on the CPU."""
    from tests.backends.verl_cpu import grpo_cpu_config

    return grpo_cpu_config(hf_dir, prompts=4, mini_batch=2, eta_pi=ETA_PI, max_tokens=MAX_TOKENS)


def rank_job(rank: int, port: int, config: DictConfig, hf_dir: str, out: str) -> None:
    """One rank: verl's FSDP2 engine over both ranks, then every run of ``RUNS`` from the same weights
    and optimizer state; writes this rank's results (metrics, micro-batch sizes, parameter shards)."""
    import copy

    from torch.distributed.tensor import DTensor
    from verl.utils import tensordict_utils as tu
    from verl.utils.metric.utils import reduce_metrics
    from verl.workers.utils.losses import ppo_loss
    from verl.workers.utils.padding import response_to_nested

    from pipo.backends.verl.trainer import NOT_REPLAYED, PIPOTrainer, pipo_settings
    from pipo.backends.verl.worker import PI_OPTIMIZER_KEY, PI_SKIP_KEY
    from tests.backends.verl_cpu import cpu_verl, pipo_extension, training_worker

    torch.set_num_threads(1)
    with cpu_verl(port, rank=rank, world_size=RANKS, timeout_s=COLLECTIVE_TIMEOUT_S):
        worker, actor_config = training_worker(config)
        extension = pipo_extension(worker, actor_config)
        engine = worker.engine
        params = dict(engine.module.named_parameters())
        sharded = {
            n: isinstance(p, DTensor) and p.device_mesh.size() == RANKS and p.to_local().numel() < p.numel()
            for n, p in params.items()
        }
        initial = {n: p.to_local().detach().clone() for n, p in params.items()}
        optimizer_state = copy.deepcopy(engine.optimizer.state_dict())

        rows, old = agent_loop_rows(hf_dir, SHAPES)
        fields = tu.list_of_dict_to_tensordict(rows)
        fields["old_log_probs"] = torch.nested.as_nested_tensor(old, layout=torch.jagged)
        fields = fields.exclude(*[k for k in NOT_REPLAYED if k in fields.keys()])
        trainer = SimpleNamespace(config=config, pipo=pipo_settings(config), use_critic=False)
        info = PIPOTrainer._verification_info(trainer, ETA_PI)  # what the trainer sends with the batch

        sizes: list[int] = []
        forward_step = engine.forward_step

        def counted(micro_batch, **kwargs):
            sizes.append(len(micro_batch))
            return forward_step(micro_batch, **kwargs)

        engine.forward_step = counted
        results = {"sharded": sharded, "runs": {}}
        mine = list(range(rank * ROWS_PER_RANK, (rank + 1) * ROWS_PER_RANK))
        for case, micro, agg, optimizer, skip in RUNS:
            with torch.no_grad():
                for n, p in params.items():
                    p.to_local().copy_(initial[n])
            engine.optimizer.load_state_dict(copy.deepcopy(optimizer_state))
            extension.loss_fn = partial(ppo_loss, config=dataclasses.replace(actor_config, loss_agg_mode=agg))
            replay = fields.clone(recurse=False)
            replay["advantages"] = response_to_nested(rewards_of(CASES[case]), replay["response_mask"])
            data = tu.index_select_tensor_dict(replay, mine)  # verl's dispatch: this rank's chunk
            tu.assign_non_tensor(data, **{**info, PI_OPTIMIZER_KEY: optimizer, PI_SKIP_KEY: skip})
            if micro == "fixed":  # train_batch's engine settings, given with the batch
                tu.assign_non_tensor(data, use_dynamic_bsz=False, micro_batch_size_per_gpu=1)
            sizes.clear()
            output = extension.update_actor_pi(data)
            metrics = reduce_metrics(dict(output["metrics"]))
            results["runs"][case, micro, agg, optimizer, skip] = {
                "pi_loss": float(metrics["actor/pg_loss"]),
                "grad_norm": float(metrics["grad_norm"]),
                "replayed_fraction": float(metrics.get("pipo/replayed_fraction", 1.0)),
                "micro_batches": list(sizes),
                "shards": {n: p.to_local().detach().clone() for n, p in params.items()},
            }
        torch.save(results, Path(out) / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(target, args: tuple, timeout_s: float) -> None:
    """``target(rank, *args)`` in ``RANKS`` spawned processes; fails the test if they have not all ended
    within ``timeout_s`` (killing them) or one ended with an error."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=(rank, *args), daemon=True) for rank in range(RANKS)]
    for p in processes:
        p.start()
    deadline = time.monotonic() + timeout_s
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    hung = [rank for rank, p in enumerate(processes) if p.is_alive()]
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join()
    if hung:
        pytest.fail(f"ranks {hung} had not ended after {timeout_s} s (killed): the ranks' collectives hang")
    failed = {rank: p.exitcode for rank, p in enumerate(processes) if p.exitcode != 0}
    if failed:
        pytest.fail(f"ranks ended with errors (exit codes {failed}); their tracebacks are in the captured output")


@pytest.fixture(scope="module")
def config(hf_dir) -> DictConfig:
    return two_rank_config(hf_dir)


@pytest.fixture(scope="module")
def responses(hf_dir) -> tuple[list[dict], list[torch.Tensor]]:
    return agent_loop_rows(hf_dir, SHAPES)


@pytest.fixture(scope="module")
def two_ranks(hf_dir, config, tmp_path_factory) -> list[dict]:
    out = tmp_path_factory.mktemp("two_ranks")
    run_ranks(rank_job, (free_port(), config, hf_dir, str(out)), TIMEOUT_S)
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(RANKS)]


def rewards_of(values: list[float]) -> torch.Tensor:
    """PI rewards per token (the attribution spreads a sequence's reward over its tokens)."""
    width = max(r for _, r in SHAPES)
    return torch.tensor([[v if j < r else 0.0 for j in range(width)] for v, (_, r) in zip(values, SHAPES, strict=True)])


def mini_batches() -> list[list[int]]:
    """The global mini-batches: the union of each rank's m-th chunk of ``MINI_ROWS`` rows."""
    return [
        [rank * ROWS_PER_RANK + m * MINI_ROWS + i for rank in range(RANKS) for i in range(MINI_ROWS)]
        for m in range(ROWS_PER_RANK // MINI_ROWS)
    ]


def hand_replay(
    hf_dir: str, config: DictConfig, responses: tuple[list[dict], list[torch.Tensor]], values: list[float], agg: str
) -> tuple[dict, list[float], list[float]]:
    """The verification update by hand over both ranks' rows: per global mini-batch, GRPO's clipped loss
    summed over the tokens of all its rows (both ranks') and divided by verl's global denominator, the
    mini-batch's token count (``token-mean``) or its row count (``seq-mean-token-mean``, each row's
    token mean); the gradient norm clipped at ``grad_clip``; one SGD step at η_PI."""
    config = config.actor_rollout_ref.actor
    rows, old = responses
    rewards = rewards_of(values)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    params = list(model.parameters())
    losses, norms = [], []
    for mini in mini_batches():
        terms, tokens = [], 0
        for i in mini:
            r = SHAPES[i][1]
            ratio = torch.exp(response_log_probs(model, rows[i]["input_ids"], r) - old[i])
            a = rewards[i, :r]
            clipped = torch.maximum(-a * ratio, -a * ratio.clamp(1 - config.clip_ratio_low, 1 + config.clip_ratio_high))
            per_token = torch.where(a < 0, torch.minimum(clipped, -a * config.clip_ratio_c), clipped)
            terms.append(per_token.sum() if agg == "token-mean" else per_token.mean())
            tokens += r
        loss = sum(terms) / (tokens if agg == "token-mean" else len(mini))
        model.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(params, config.grad_clip)))
        with torch.no_grad():
            for p in params:
                p -= ETA_PI * p.grad
        losses.append(loss.item())
    return {n: p.detach() for n, p in model.named_parameters()}, losses, norms


def rewarded_per_rank(values: list[float], mini: list[int]) -> list[int]:
    """How many rows of global mini-batch ``mini`` carry a PI reward, on each rank."""
    return [sum(values[i] != 0 for i in mini if i // ROWS_PER_RANK == rank) for rank in range(RANKS)]


def test_the_parameters_are_sharded_over_both_ranks(two_ranks):
    for results in two_ranks:
        assert results["sharded"] and all(results["sharded"].values())


@pytest.mark.parametrize("micro", MICRO)
@pytest.mark.parametrize("case", CASES)
def test_every_rank_forwards_the_same_number_of_micro_batches(two_ranks, case, micro):
    for agg, optimizer in [*HAND, ("token-mean", "shared")]:
        for skip in (False, True):
            run = [results["runs"][case, micro, agg, optimizer, skip] for results in two_ranks]
            counts = [len(r["micro_batches"]) for r in run]
            assert counts[0] == counts[1], (skip, [r["micro_batches"] for r in run])
            # the rows each rank forwards per mini-batch, by hand: the most rewarded rows on a rank, at least one
            kept = [max(1, *rewarded_per_rank(CASES[case], m)) if skip else MINI_ROWS for m in mini_batches()]
            for r in run:
                assert sum(r["micro_batches"]) == sum(kept)
                assert r["replayed_fraction"] == pytest.approx(sum(kept) / len(kept) / MINI_ROWS)
            if micro == "fixed":  # one row per micro-batch
                assert run[0]["micro_batches"] == run[1]["micro_batches"] == [1] * sum(kept)
    skipped = [results["runs"][case, micro, "token-mean", "sgd", True] for results in two_ranks]
    assert all(sum(r["micro_batches"]) < ROWS_PER_RANK for r in skipped)  # the skip did leave rows out


@pytest.mark.parametrize("optimizer", ["sgd", "shared"])
@pytest.mark.parametrize("micro", MICRO)
@pytest.mark.parametrize("case", CASES)
def test_leaving_out_unrewarded_rows_equals_the_full_replay_on_both_ranks(two_ranks, case, micro, optimizer):
    for results in two_ranks:
        full = results["runs"][case, micro, "token-mean", optimizer, False]
        skipped = results["runs"][case, micro, "token-mean", optimizer, True]
        assert full["replayed_fraction"] == 1.0 and skipped["replayed_fraction"] < 1.0
        assert skipped["pi_loss"] == pytest.approx(full["pi_loss"], rel=1e-5, abs=1e-9)
        assert skipped["grad_norm"] == pytest.approx(full["grad_norm"], rel=1e-5)
        for name, value in full["shards"].items():
            torch.testing.assert_close(skipped["shards"][name], value, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("agg", [agg for agg, _ in HAND])
@pytest.mark.parametrize("case", CASES)
def test_loss_and_gradient_norm_equal_a_hand_computation_over_both_ranks_rows(
    two_ranks, hf_dir, config, responses, case, agg
):
    expected, losses, norms = hand_replay(hf_dir, config, responses, CASES[case], agg)
    assert max(norms) > 0  # the replay moves the weights
    for micro in MICRO:
        for skip in (False, True):
            run = [results["runs"][case, micro, agg, "sgd", skip] for results in two_ranks]
            for rank_run in run:  # verl: each mini-batch's loss, averaged; likewise the norm
                assert rank_run["pi_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-4)
                assert rank_run["grad_norm"] == pytest.approx(sum(norms) / len(norms), rel=1e-4)
            for name, value in expected.items():  # FSDP2 shards dim 0: rank 0's rows, then rank 1's
                full = torch.cat([r["shards"][name] for r in run])
                torch.testing.assert_close(full, value, rtol=1e-4, atol=1e-6, msg=(micro, skip, name))
