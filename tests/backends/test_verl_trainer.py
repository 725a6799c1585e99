"""The PIPO step of the verl trainer subclass, driven on CPU through verl's own data path.

Real: verl's config and ``PIPOTrainer`` built from it, TransferQueue on a local Ray instance (where
verl keeps a step's batch), verl's policy-loss registry and ``ActorConfig``, the worker extension's
``update_actor_pi`` (learning rate, loss swap, schedule restore) and verl's LR scheduler.
Substituted (no GPU): the FSDP engine behind the actor worker — ``CPUActor`` holds a per-token
log-prob offset θ as its "model" and runs one mini-batch with verl's registered policy loss — and the
Ray dispatch of ``update_actor_pi`` (``CPUWorkerGroup`` fetches the batch from TransferQueue as
verl's ``tqbridge`` does). verl's own actor update of B_t (step 8) is replaced by a recorder.
"""

from __future__ import annotations

import math
import subprocess
import sys
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import transfer_queue as tq
from omegaconf import OmegaConf
from tensordict import NonTensorData, NonTensorStack, TensorDict
from verl.trainer.ppo.core_algos import get_policy_loss_fn
from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
from verl.utils import tensordict_utils as tu
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.torch_functional import get_constant_schedule_with_warmup
from verl.workers.utils.losses import ppo_loss

from pipo.backends.verl.config import verl_config
from pipo.backends.verl.trainer import (
    PIPOTrainer,
    performance,
    performance_se,
    pipo_settings,
    response_groups,
    verifier_scores,
)
from pipo.backends.verl.worker import PIPOActorRolloutRefWorker, pi_learning_rate
from pipo.config import CONF_DIR, compose_cell

G = 2  # rollout n
LENGTHS = [3, 2, 4, 1]  # response lengths of the 4 responses (2 groups of 2)
ETA_PI, LR = 0.5, 1e-3  # distinct, so the test sees which one a step used


def jagged(rows: list[list[float]], dtype=torch.float32) -> torch.Tensor:
    return torch.nested.as_nested_tensor([torch.tensor(r, dtype=dtype) for r in rows], layout=torch.jagged)


def make_batch(step: int, accs: list[float], advantages: list[float]) -> TensorDict:
    """B_t as verl's TransferQueue holds it before the actor update (jagged per response)."""
    gen = torch.Generator().manual_seed(step)
    return TensorDict(
        {
            "input_ids": jagged([[7] * (5 + n) for n in LENGTHS], torch.long),
            "response_mask": jagged([[1] * n for n in LENGTHS], torch.long),
            "advantages": jagged([[a] * n for a, n in zip(advantages, LENGTHS, strict=True)]),
            "old_log_probs": jagged([(-torch.rand(n, generator=gen) - 0.1).tolist() for n in LENGTHS]),
            "ref_log_prob": jagged([[-1.0] * n for n in LENGTHS]),
            "rm_scores": jagged([[0.0] * (n - 1) + [a] for a, n in zip(accs, LENGTHS, strict=True)]),
            "extra_fields": NonTensorStack(*[NonTensorData({"reward_extra_info": {"acc": a}}) for a in accs]),
            "uid": NonTensorStack(*[NonTensorData(f"{step}-{i // G}") for i in range(len(LENGTHS))]),
        },
        batch_size=[len(LENGTHS)],
    )


class CPUActor:
    """Stands in for verl's FSDP TrainingWorker: its optimizer and scheduler are real torch/verl ones;
    its model is θ, an offset added to the stored old log-probs (so θ = 0 means ratio 1)."""

    def __init__(self) -> None:
        self.theta = torch.nn.Parameter(torch.zeros(len(LENGTHS), max(LENGTHS)))
        optimizer = torch.optim.SGD([self.theta], lr=LR)
        self.engine = SimpleNamespace(
            optimizer=optimizer,
            lr_scheduler=get_constant_schedule_with_warmup(optimizer, 4),
            forward_backward_batch=None,  # not called: train_mini_batch below is the whole engine
        )
        self.engine.lr_scheduler.step()  # one scheduled update done: lr = LR / 4
        self.loss_fn = None
        self.calls: list[dict] = []

    def set_loss_fn(self, loss_fn) -> None:
        self.loss_fn = loss_fn

    def train_mini_batch(self, data: TensorDict) -> TensorDict:
        """One mini-batch (the whole batch) of verl's loop: loss, optimizer step, scheduler step."""
        config = self.loss_fn.keywords["config"]
        config.global_batch_info.update(
            dp_size=1, batch_num_tokens=None, global_batch_size=None, loss_scale_factor=None
        )
        padded = data.select("response_mask", "old_log_probs", "advantages").to_padded_tensor()
        width = padded["response_mask"].shape[1]
        log_prob = padded["old_log_probs"] + self.theta[:, :width]
        loss, metrics = get_policy_loss_fn(config.policy_loss.loss_mode)(
            old_log_prob=padded["old_log_probs"],
            log_prob=log_prob,
            advantages=padded["advantages"],
            response_mask=padded["response_mask"].bool(),
            loss_agg_mode=config.loss_agg_mode,
            config=config,
        )
        optimizer = self.engine.optimizer
        optimizer.zero_grad()
        loss.backward()
        self.calls.append(
            {
                "lr": optimizer.param_groups[0]["lr"],
                "kl": config.use_kl_loss,
                "loss_mode": config.policy_loss.loss_mode,
                "fields": sorted(data.keys()),
                "advantages": padded["advantages"].clone(),
                "old": padded["old_log_probs"].clone(),
                "mini_batch_size": tu.get(data, "mini_batch_size"),
            }
        )
        optimizer.step()
        self.engine.lr_scheduler.step()  # verl steps the schedule after the last mini-batch
        return tu.get_tensordict(
            {}, {"metrics": {"actor/pg_loss": [loss.item()], "actor/pg_clipfrac": [metrics["actor/pg_clipfrac"]]}}
        )


class CPUWorkerGroup:
    """The Ray dispatch of ``update_actor_pi``: the batch's fields from TransferQueue, its extra info as
    non-tensor data (what verl's ``tqbridge`` hands a worker), then the real worker method."""

    def __init__(self, actor_config) -> None:
        self.actor = CPUActor()
        self.worker = PIPOActorRolloutRefWorker.__new__(PIPOActorRolloutRefWorker)  # verl's __init__ needs GPUs
        self.worker.actor, self.worker.loss_fn = self.actor, partial(ppo_loss, config=actor_config)
        self.actor.set_loss_fn(self.worker.loss_fn)

    def update_actor_pi(self, meta):
        data = tq.kv_batch_get(keys=meta.keys, partition_id=meta.partition_id)
        tu.assign_non_tensor(data, **meta.extra_info)
        return PIPOActorRolloutRefWorker.update_actor_pi(self.worker, data)


@pytest.fixture
def trainer(transfer_queue, monkeypatch):
    return build_trainer(monkeypatch)


def build_trainer(monkeypatch, *overrides: str) -> PIPOTrainer:
    cfg = compose_cell(
        [
            "scale=paper",
            "backend=verl",
            "algorithm=grpo",
            "algorithm.rollout_n=2",
            "algorithm.batch_size=2",
            "algorithm.mini_batch_size=2",
            f"pipo.lr={ETA_PI}",
            f"scale.lr={LR}",
            "pipo.window=4",
            *overrides,
        ]
    )
    config = verl_config(cfg)
    config.trainer.v1.trainer_mode = "pipo"
    t = PIPOTrainer(config)
    t.actor_rollout_wg = CPUWorkerGroup(omega_conf_to_dataclass(config.actor_rollout_ref.actor))
    t.timing_raw = {}
    t.exploration = []  # step 8, recorded: what B_t verl's own update would train on

    def exploration(self, batch, metrics):
        self.exploration.append(
            {
                "replays_before": len(self.actor_rollout_wg.actor.calls),
                "advantages": tq.kv_batch_get(
                    keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"]
                )["advantages"],
            }
        )
        return batch

    monkeypatch.setattr(PPOTrainerSync, "_update_actor", exploration)
    return t


@pytest.mark.parametrize("optimizer", ["sgd", "separate"])
def test_the_verification_optimizer_on_the_workers(transfer_queue, monkeypatch, tmp_path, optimizer):
    trainer = build_trainer(monkeypatch, f"pipo.optimizer={optimizer}")
    actor = trainer.actor_rollout_wg.actor
    actor.engine.optimizer = torch.optim.AdamW([actor.theta], lr=LR)  # the actor's own, as verl's engine has
    for step, acc in enumerate([[0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], start=1):
        m = run_step(trainer, step, acc, [0.4, -0.4, 0.8, -0.8])
    assert m["pipo/verified"] == 1.0 and len(actor.calls) == 1
    assert actor.engine.optimizer.state == {}  # the actor's AdamW took no step (its moments stay clean)
    theta = actor.theta.detach()
    if optimizer == "sgd":  # Eq. 11 at ratio 1: θ = −η_PI ∇(−Σ R·θ / tokens) = η_PI · R / tokens
        torch.testing.assert_close(theta, ETA_PI * actor.calls[0]["advantages"] / sum(LENGTHS))
        assert m["pipo/update_cos"] == pytest.approx(1.0, abs=1e-6)
    else:  # a fresh AdamW's first step: η_PI · sign(R) on every token that carries a reward
        torch.testing.assert_close(theta, ETA_PI * torch.sign(actor.calls[0]["advantages"]), atol=1e-6, rtol=0)
        worker = trainer.actor_rollout_wg.worker
        worker._rank = 0
        PIPOActorRolloutRefWorker.save_pi_optimizer(worker, str(tmp_path))
        fresh = PIPOActorRolloutRefWorker.__new__(PIPOActorRolloutRefWorker)
        fresh._rank, fresh.actor = 0, SimpleNamespace(engine=SimpleNamespace(optimizer=actor.engine.optimizer))
        assert PIPOActorRolloutRefWorker.load_pi_optimizer(fresh, str(tmp_path), "separate")
        assert torch.equal(
            fresh._pi_optimizer.state_dict()["state"][0]["exp_avg"],
            worker._pi_optimizer.state_dict()["state"][0]["exp_avg"],
        )


def run_step(trainer, step: int, accs: list[float], advantages: list[float], filtered=None) -> dict:
    keys = [f"s{step}_{i}" for i in range(len(LENGTHS))]
    meta = tq.kv_batch_put(
        keys=keys,
        partition_id="train",
        fields=make_batch(step, accs, advantages),
        tags=[{"global_steps": step} for _ in keys],
    )
    metrics = {} if filtered is None else {"_dapo_filtered_reward_counts": filtered}
    trainer._update_actor(meta, metrics)
    tq.kv_clear(keys=keys, partition_id="train")  # as verl's fit() does at the end of a step
    return metrics


def test_trainer_mode_pipo_is_verl_sync_mode_and_registered(trainer):
    assert get_trainer_cls("pipo") is PIPOTrainer
    assert trainer.trainer_mode == "sync" and type(trainer.replay_buffer).__name__ == "ReplayBuffer"
    trainer._init_resource_pool_mgr()  # the actor role runs the worker extension; the others are verl's
    classes = {str(role): cls.__ray_actor_class__ for role, cls in trainer.role_worker_mapping.items()}
    assert classes == {"actor_rollout_ref": PIPOActorRolloutRefWorker}
    # update_actor_pi is dispatched like verl's update_actor (data split over the actor's DP ranks)
    from verl.single_controller.base.decorator import MAGIC_ATTR
    from verl.workers.engine_workers import ActorRolloutRefWorker

    ours, stock = (
        getattr(f, MAGIC_ATTR) for f in (PIPOActorRolloutRefWorker.update_actor_pi, ActorRolloutRefWorker.update_actor)
    )
    assert ours["blocking"] == stock["blocking"] and ours["execute_mode"] == stock["execute_mode"]
    assert {k: (v.func, v.args) for k, v in ours["dispatch_mode"].items()} == {
        k: (v.func, v.args) for k, v in stock["dispatch_mode"].items()
    }


def test_pipo_settings_for_verls_own_cli_come_from_conf():
    verl = {"actor_rollout_ref": {"actor": {"optim": {"lr": 3e-6}}}}
    on_yaml = OmegaConf.load(CONF_DIR / "pipo" / "on.yaml")
    settings = pipo_settings(OmegaConf.create({**verl, "pipo": {"window": 4, "algorithm": "gspo"}}))
    assert settings.window == 4 and settings.lam == on_yaml.lam and settings.lr == 3e-6  # η_PI = the actor's lr
    with pytest.raises(ValueError, match="unknown pipo settings \\['lamda'\\]"):
        pipo_settings(OmegaConf.create({**verl, "pipo": {"lamda": 0.5, "algorithm": "grpo"}}))
    with pytest.raises(ValueError, match=r"pipo\.algorithm is missing"):
        pipo_settings(OmegaConf.create({**verl, "pipo": {"window": 4}}))
    with pytest.raises(ValueError, match="no base algorithm registered as 'grpo2'"):
        pipo_settings(OmegaConf.create({**verl, "pipo": {"algorithm": "grpo2"}}))


def test_performance_counts_the_groups_dapo_dropped():
    # kept: 4 responses, 2 correct; dropped: 3 all-correct groups and 1 all-wrong group of 8
    assert performance([1, 0, 1, 0], {1.0: 3, 0.0: 1}, 8) == pytest.approx((2 + 24) / (4 + 32))
    assert performance([0.5, 1.0], None, 8) == 0.75
    with pytest.raises(ValueError, match="undefined"):
        performance([], {}, 8)


def test_j_se_clusters_by_prompt_and_counts_the_groups_dapo_dropped():
    # kept: prompt a (1, 0), prompt b (1, 1); dropped: one all-wrong group of 2. N = 6, J = 3/6, G = 3
    # cluster sums of y − J: a 0, b +1, dropped −1 → Var = 3/2 · 2 / 36, SE = √(1/12)
    se = performance_se([1, 0, 1, 1], ["a", "a", "b", "b"], {0.0: 1}, 2)
    assert se == pytest.approx(math.sqrt(1 / 12), rel=1e-12)
    keys, tags = ["u1_0_0", "u1_0_1", "u2_0_0", "u2_0_1"], [{}, {}, {}, {"is_padding": True}]
    assert response_groups(keys, tags) == ["u1", "u1", "u2"]


def test_j_reads_the_verifier_score_of_each_response_but_not_of_padding_rows():
    fields = make_batch(1, [1.0, 0.0, 1.0, 1.0], [0.0] * 4)
    tags = [{}, {}, {}, {"is_padding": True}]
    assert verifier_scores(fields, tags) == [1.0, 0.0, 1.0]
    fields["extra_fields"] = NonTensorStack(*[NonTensorData({"reward_extra_info": {}}) for _ in range(4)])
    with pytest.raises(KeyError, match="'acc'"):
        verifier_scores(fields, [{}] * 4)


def test_verification_update_on_a_hand_made_previous_batch(trainer):
    adv = [[1.0, -1.0, 0.5, -0.5], [0.3, -0.3, 1.2, -1.2], [0.7, -0.7, 0.1, -0.1]]
    accs = [[0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]  # J = 0.25, 0.5, 0.25 (+ filtered)
    run_step(trainer, 1, accs[0], adv[0])
    m2 = run_step(trainer, 2, accs[1], adv[1])
    assert m2["pipo/verified"] == 0.0 and trainer.actor_rollout_wg.actor.calls == []  # |H| = 1 < min_history
    # step 3: 2 groups of 2 dropped by DAPO's filter, one all-correct and one all-wrong → J unchanged here
    m3 = run_step(trainer, 3, accs[2], adv[2], filtered={1.0: 1, 0.0: 1})
    J = (1 + 2 * 1) / (4 + 4)  # the dropped responses count: 0.375
    mu, sigma = 0.375, 0.125  # window [0.25, 0.5], population std
    delta = (J - mu) / (sigma + 1e-6)
    phi = delta if delta >= 0 else 0.1 * delta
    assert m3["pipo/J"] == pytest.approx(J) and m3["pipo/delta"] == pytest.approx(delta)
    # J's standard error, clustered by prompt: the keys s3_0 … s3_3 share the uid s3 (one cluster, scores
    # 0 0 0 1) and the two dropped groups are two more; N = 8, J = 3/8, cluster sums of y − J: −.5, 1.25, −.75
    assert m3["pipo/J_se"] == pytest.approx(math.sqrt(1.5 * (0.25 + 1.5625 + 0.5625) / 64), rel=1e-12)
    assert delta == 0.0 and m3["pipo/verified"] == 0.0  # φ = 0: every PI reward is zero, no update
    accs4 = [1, 1, 1, 0]  # J = 0.75 against the window [0.25, 0.5, 0.375]
    old3 = make_batch(3, accs[2], adv[2])["old_log_probs"].to_padded_tensor(0.0)
    m4 = run_step(trainer, 4, accs4, [0.2, -0.2, 0.9, -0.9])
    window = [0.25, 0.5, 0.375]
    mu = sum(window) / 3
    sigma = math.sqrt(sum((x - mu) ** 2 for x in window) / 3)
    phi = (0.75 - mu) / (sigma + 1e-6)
    assert m4["pipo/verified"] == 1.0 and m4["pipo/phi"] == pytest.approx(phi)
    call = trainer.actor_rollout_wg.actor.calls[-1]
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(max(LENGTHS))] for n in LENGTHS])
    expected = torch.tensor([[phi * a / G] * max(LENGTHS) for a in adv[2]]) * mask  # R = φ · A / G, on B_3
    torch.testing.assert_close(call["advantages"], expected)
    torch.testing.assert_close(call["old"], old3)  # the ratio's denominator: B_3's stored old log-probs
    assert call["lr"] == ETA_PI and call["kl"] is False  # η_PI, policy loss alone
    assert call["mini_batch_size"] == 4  # the base algorithm's mini-batch (2 prompts × 2 rollouts)
    # one SGD step at ratio 1 of verl's token-mean clipped loss: θ_u = η_PI · R_u / (number of tokens)
    theta = trainer.actor_rollout_wg.actor.theta.detach()
    torch.testing.assert_close(theta, ETA_PI * expected / sum(LENGTHS))
    # afterwards: the actor's learning rate and schedule are as before; the stock loss is back
    engine = trainer.actor_rollout_wg.actor.engine
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(LR / 4) and engine.lr_scheduler.last_epoch == 1
    assert trainer.actor_rollout_wg.actor.loss_fn is trainer.actor_rollout_wg.worker.loss_fn
    # the verification (the one replay) ran before step 8, which trains on B_4 with its own advantages
    assert [e["replays_before"] for e in trainer.exploration] == [0, 0, 0, 1]
    torch.testing.assert_close(
        trainer.exploration[-1]["advantages"].to_padded_tensor(0.0)[:, 0], torch.tensor([0.2, -0.2, 0.9, -0.9])
    )
    assert m4["pipo/units"] == sum(LENGTHS)


def test_the_authors_semantics_on_the_workers(transfer_queue, monkeypatch):
    # pipo=authors: J_t from the trained batch's sequence rewards, their window, their loss with the KL
    # term (B_{t-1}'s reference log-probs kept for it), and one more scheduler step per verification
    trainer = build_trainer(monkeypatch, "pipo=authors", "pipo.min_history=2")
    actor = trainer.actor_rollout_wg.actor
    run_step(trainer, 1, [0, 1, 0, 0], [0.4, -0.4, 0.8, -0.8])
    m = run_step(trainer, 2, [1, 1, 0, 1], [0.4, -0.4, 0.8, -0.8])
    window = [0.25, 0.25, 0.75]  # J_1 twice, J_2 already in: the authors' anchor
    mu, sigma = sum(window) / 3, float(np.std(window))
    assert m["pipo/J"] == 0.75 and m["pipo/mu"] == pytest.approx(mu) and m["pipo/sigma"] == pytest.approx(sigma)
    assert m["pipo/delta"] == pytest.approx((0.75 - mu) / sigma)  # no ε
    call = actor.calls[-1]
    assert call["loss_mode"] == "pipo_layback" and call["kl"] is True and "ref_log_prob" in call["fields"]
    assert call["lr"] == ETA_PI  # as given (the preset's default: scale.lr, the authors' constant rate)
    # L1 within each group of 2: ±1 per response, times ξ, clamped to ±10 (ξ > 0 here: no λ)
    xi = m["pipo/delta"]
    expected = torch.tensor([[min(xi, 10.0) * s] * max(LENGTHS) for s in (1, -1, 1, -1)])
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(max(LENGTHS))] for n in LENGTHS])
    torch.testing.assert_close(call["advantages"], expected * mask, rtol=1e-5, atol=1e-5)
    engine = actor.engine  # the verification's scheduler step is kept: warm-up 2 of 4
    assert engine.lr_scheduler.last_epoch == 2 and engine.optimizer.param_groups[0]["lr"] == pytest.approx(LR / 2)


def test_the_authors_ppo_gates_the_current_batchs_advantages(transfer_queue, monkeypatch, hf_dir):
    trainer = build_trainer(monkeypatch, "algorithm=ppo", f"model.hf_id={hf_dir}", "pipo=authors")
    run_step(trainer, 1, [0, 1, 0, 0], [0.4, -0.4, 0.8, -0.8])
    m = run_step(trainer, 2, [1, 1, 0, 1], [0.4, -0.4, 0.8, -0.8])
    # step 1: an empty window gates by 0; step 2: (0.75 − 0.25) / 1 (σ of [J_1, J_1] is 0: counts as 1)
    gated = [e["advantages"].to_padded_tensor(0.0)[:, 0] for e in trainer.exploration]
    torch.testing.assert_close(gated[0], torch.zeros(4))
    assert m["pipo/gate"] == pytest.approx(0.5)
    torch.testing.assert_close(gated[1], 0.5 * torch.tensor([0.4, -0.4, 0.8, -0.8]))
    assert trainer.config.actor_rollout_ref.actor.policy_loss.loss_mode == "pipo_layback_ppo"


def test_pi_learning_rate_does_not_advance_the_schedule():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = get_constant_schedule_with_warmup(optimizer, 10)  # lr = step/10 during warm-up
    for _ in range(3):
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.3)
    with pi_learning_rate(optimizer, scheduler, 0.05):
        assert optimizer.param_groups[0]["lr"] == 0.05
        scheduler.step()  # what verl does after the verification's last mini-batch
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.3) and scheduler.last_epoch == 3
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4)  # the schedule continues where it was


def test_pipo_state_survives_a_checkpoint(trainer, tmp_path, monkeypatch):
    for step, acc in enumerate([[0, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0]], start=1):
        run_step(trainer, step, acc, [0.4, -0.4, 0.8, -0.8])
    trainer.config.trainer.default_local_dir = str(tmp_path)
    trainer.global_steps = 3
    monkeypatch.setattr(PPOTrainerSync, "_save_checkpoint", lambda self: (tmp_path / "saved").touch())
    trainer._save_checkpoint()
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("3")

    resumed = PIPOTrainer(trainer.config)
    monkeypatch.setattr(PPOTrainerSync, "_load_checkpoint", lambda self: setattr(self, "global_steps", 3))
    resumed._load_checkpoint()
    ours, theirs = resumed.pipo_controller, trainer.pipo_controller
    assert list(ours.feedback.history) == list(theirs.feedback.history) == [0.25, 0.5, 0.75]
    (fields, tags), (fields0, tags0) = ours.previous.batch, theirs.previous.batch
    assert tags == tags0
    for key in ("old_log_probs", "input_ids"):
        torch.testing.assert_close(fields[key].to_padded_tensor(0), fields0[key].to_padded_tensor(0))
    torch.testing.assert_close(ours.previous.attributions, theirs.previous.attributions)
    torch.testing.assert_close(ours.previous.attributions[:, 0], torch.tensor([0.4, -0.4, 0.8, -0.8]) / G)
    assert "ref_log_prob" not in fields.keys()  # no KL in the verification update
    assert list(fields["uid"]) == ["3-0", "3-0", "3-1", "3-1"]


def test_the_plugin_registers_the_trainer_in_a_fresh_ray_process():
    # a task and an actor defined in __main__: Ray pickles them by value, as verl's TaskRunner is
    code = (
        "import ray; ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)\n"
        "@ray.remote\n"
        "def probe():\n"
        "    from verl.trainer.ppo.v1 import get_trainer_cls\n"
        "    return [get_trainer_cls(m).__name__ for m in ('pipo', 'sdpo', 'pipo_sdpo')]\n"
        "@ray.remote(num_cpus=0)\n"
        "class Runner:\n"
        "    def trainer(self, mode):\n"
        "        from verl.trainer.ppo.v1 import get_trainer_cls\n"
        "        return get_trainer_cls(mode).__name__\n"
        "print('trainers:', ray.get(probe.remote()))\n"
        "print('actor:', ray.get(Runner.remote().trainer.remote('pipo')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert "trainers: ['PIPOTrainer', 'SDPOTrainer', 'PIPOSDPOTrainer']" in out.stdout, out.stderr[-2000:]
    assert "actor: PIPOTrainer" in out.stdout, out.stderr[-2000:]
    # without Ray (the local backend) the plugin loads but leaves verl's trainer stack unimported
    code = "import sys, verl; print(sorted(m for m in sys.modules if m.startswith(('pipo', 'verl.trainer.ppo.v1'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == "['pipo', 'pipo.backends', 'pipo.backends.verl', 'pipo.backends.verl.plugin']"


# -- one controller, two backends ---------------------------------------------------------------------
SCRIPT = [  # verifier scores of the 4 responses (2 groups of G = 2) at steps 1..7
    [1, 0, 0, 0],  # J 0.25: window empty
    [1, 0, 1, 0],  # J 0.5: |H| = 1 < min_history
    [1, 1, 1, 0],  # J 0.75: δ > 0, B_2 reinforced
    [0, 0, 1, 0],  # J 0.25: δ < 0, B_3 suppressed (λδ)
    [1, 1, 0, 0],  # J 0.5: δ > 0, B_4 reinforced
    [1, 0, 1, 0],  # J 0.5: δ = 0 (and B_5's groups are uniform): skipped
    [0, 1, 0, 0],  # J 0.25: δ < 0, B_6 suppressed
]
DECISIONS = (
    "pipo/J",
    "pipo/mu",
    "pipo/sigma",
    "pipo/delta",
    "pipo/phi",
    "pipo/history",
    "pipo/verified",
    "pipo/suppressed",
    "pipo/units",
)  # not pipo/replayed_fraction: the rows each backend forwards (the local one skips rows without a PI reward)


def grpo_advantages(scores: list[float]) -> list[float]:
    """GRPO's advantage of each response, by hand: (s − mean of its group) / (sample std + 1e-6)."""
    out = []
    for i, s in enumerate(scores):
        group = scores[i - i % G : i - i % G + G]
        mean = sum(group) / G
        std = math.sqrt(sum((x - mean) ** 2 for x in group) / (G - 1))
        out.append((s - mean) / (std + 1e-6))
    return out


def hand_made_rollout(tokenizer):
    """B_t for the local trainer with the verl batch's response lengths (LENGTHS), 2 prompts × G."""
    from pipo.backends.local.rollout import Rollout

    P, R = 4, max(LENGTHS)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, len(tokenizer), (len(LENGTHS), P + R), generator=gen)
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(R)] for n in LENGTHS])
    attention = torch.cat([torch.ones(len(LENGTHS), P, dtype=torch.long), mask.long()], 1)
    return Rollout(
        ids, attention, (attention.cumsum(-1) - 1).clamp(min=0), mask, [""] * len(LENGTHS), np.arange(len(LENGTHS)) // G
    )


def test_both_backends_drive_the_same_controller_to_the_same_decisions(trainer, micro_overrides, tmp_path):
    from tests.backends.test_trainer import make_trainer

    local = make_trainer(
        [
            *micro_overrides,
            "algorithm=grpo",
            "algorithm.rollout_n=2",
            "algorithm.batch_size=2",
            "algorithm.mini_batch_size=2",
            "scale.batch_divisor=1",
            "pipo.window=4",
            f"pipo.lr={ETA_PI}",
        ],
        tmp_path,
    )
    roll = hand_made_rollout(local.tokenizer)
    local_metrics, verl_metrics = [], []
    for step, scores in enumerate(SCRIPT, start=1):
        s = torch.tensor(scores, dtype=torch.float32)
        local.sample = lambda _step, s=s: ([{"prompt": ""}] * 2, roll, s, s, {})
        local_metrics.append(local.train_step(step))
        verl_metrics.append(run_step(trainer, step, scores, grpo_advantages(scores)))
    for step, (ours, theirs) in enumerate(zip(local_metrics, verl_metrics, strict=True), start=1):
        for key in DECISIONS:
            if ours.get(key) is None:  # undefined (δ before min_history) or not measured (a skipped replay)
                assert theirs.get(key) is None, (step, key)
            else:
                assert theirs[key] == pytest.approx(ours[key], rel=1e-5, abs=1e-7), (step, key)
    assert [m["pipo/verified"] for m in local_metrics] == [0, 0, 1, 1, 1, 0, 1]
    assert [m["pipo/suppressed"] for m in local_metrics] == [0, 0, 0, 1, 0, 0, 1]
    # the verl trainer replayed exactly the verified iterations, each with its own φ·A/G
    calls = trainer.actor_rollout_wg.actor.calls
    assert len(calls) == 4
    for call, step in zip(calls, (3, 4, 5, 7), strict=True):
        adv = torch.tensor(grpo_advantages(SCRIPT[step - 2]))
        mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(max(LENGTHS))] for n in LENGTHS])
        expected = verl_metrics[step - 1]["pipo/phi"] * adv[:, None] / G * mask
        torch.testing.assert_close(call["advantages"], expected)


def test_a_plugin_that_cannot_register_says_so_at_warning_level(monkeypatch, caplog):
    from pipo.backends.verl import plugin

    monkeypatch.setitem(sys.modules, "pipo.backends.verl.trainer", None)  # its import now fails
    with caplog.at_level("WARNING"), pytest.raises(ImportError):
        plugin.register_or_warn()
    [record] = [r for r in caplog.records if r.name == plugin.__name__]
    assert record.levelname == "WARNING" and "could not register" in record.getMessage() and record.exc_info
