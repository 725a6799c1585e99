"""SDPO on verl (``pipo.backends.verl.sdpo``), driven on CPU through verl's own data path.

Real: verl's config and the SDPO trainers built from it, TransferQueue on a local Ray instance, the
tokenizer's chat template, the worker methods (loss swap, EMA, teacher checkpoint) on plain modules.
Substituted (no GPU): the reference model behind ``compute_ref_log_prob`` (``CPUTeacher``: a
log-prob that encodes the prompt's length and the predicted token, written back to TransferQueue as
verl's ``tqbridge`` does), the FSDP modules (plain ``nn.Linear``), and verl's own actor update (a recorder).
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import transfer_queue as tq
from tensordict import NonTensorData, NonTensorStack, TensorDict
from transformers import AutoTokenizer
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.metric import AggregationType
from verl.workers.utils.losses import ppo_loss

from pipo.backends.verl.config import verl_config
from pipo.backends.verl.main import trainer_mode
from pipo.backends.verl.sdpo import (
    REPROMPT_TEMPLATE,
    PIPOSDPOTrainer,
    SDPOTrainer,
    reprompt,
    sdpo_settings,
    teacher_inputs,
)
from pipo.backends.verl.worker import PIPOActorRolloutRefWorker, sdpo_loss
from pipo.config import compose_cell
from tests.backends.test_verl_trainer import CPUWorkerGroup, jagged

CHAT = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}[a]{% endif %}"
QUESTIONS = ["1+1", "2+3"]
ANSWERS = [["2", "3"], ["4", "5"]]  # group 0: the 1st is right; group 1: the 2nd is right
ACC = [1.0, 0.0, 0.0, 1.0]


@pytest.fixture(scope="module")
def tokenizer(hf_dir):
    tok = AutoTokenizer.from_pretrained(hf_dir)
    tok.chat_template = CHAT
    return tok


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def make_batch(tokenizer) -> TensorDict:
    """B_t as TransferQueue holds it after the rollout and the reward: 2 groups of 2, jagged rows."""
    chats = [[{"role": "user", "content": q}] for q in QUESTIONS for _ in range(2)]
    prompts = [encode(tokenizer, f"[user]{q}[a]") for q in QUESTIONS for _ in range(2)]
    responses = [[*encode(tokenizer, a), tokenizer.eos_token_id] for pair in ANSWERS for a in pair]
    return TensorDict(
        {
            "prompts": jagged(prompts, torch.long),
            "responses": jagged(responses, torch.long),
            "input_ids": jagged([p + r for p, r in zip(prompts, responses, strict=True)], torch.long),
            "response_mask": jagged([[1] * len(r) for r in responses], torch.long),
            "loss_mask": jagged([[1] * len(r) for r in responses], torch.long),  # verl's agent loop: = response_mask
            "old_log_probs": jagged([[-0.5] * len(r) for r in responses]),
            "raw_prompt": NonTensorStack(*[NonTensorData(c) for c in chats]),
            "uid": NonTensorStack(*[NonTensorData(f"g{i // 2}") for i in range(4)]),
            "extra_fields": NonTensorStack(*[NonTensorData({"reward_extra_info": {"acc": a}}) for a in ACC]),
        },
        batch_size=[4],
    )


def reprompted_ids(tokenizer, question: str, demonstration: str) -> list[int]:
    """SDPO's teacher prompt, written out by hand from the reference wording."""
    text = f"{question}\nCorrect solution:\n\n{demonstration}\n\n\n\nCorrectly solve the original question.\n"
    return encode(tokenizer, f"[user]{text}[a]")


def test_reprompt_keeps_the_chat_and_rewrites_its_last_user_turn():
    s = sdpo_settings({})
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Q?"}]
    out = reprompt(chat, "A.", s)
    assert out[0] == chat[0] and out[1]["role"] == "user"
    assert out[1]["content"] == "Q?\nCorrect solution:\n\nA.\n\n\n\nCorrectly solve the original question.\n"
    assert s.reprompt_template == REPROMPT_TEMPLATE and s.is_clip == 2.0 and s.teacher_ema == 0.05
    with pytest.raises(ValueError, match="last user turn"):
        reprompt([{"role": "assistant", "content": "x"}], "A.", s)
    with pytest.raises(ValueError, match="unknown sdpo settings"):
        sdpo_settings({"sdpo": {"tau": 0.1}})


def test_the_trainer_re_prompts_in_the_tasks_wording_from_its_verl_config(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_cell(["scale=paper", "backend=verl", "algorithm=sdpo", "task=code"])
    s = sdpo_settings(verl_config(cfg, planning=True))
    out = reprompt([{"role": "user", "content": "Print 1."}], "print(1)", s)
    assert out[0]["content"] == (
        "Print 1.\nCorrect solution (it passes all the tests):\n\nprint(1)\n\n"
        "\n\nCorrectly solve the original problem: write a program that passes all its tests.\n"
    )


def test_teacher_inputs_carry_the_first_successful_sibling(tokenizer):
    fields = make_batch(tokenizer)
    tags = [{}, {}, {}, {"is_padding": True}]  # the 4th is a DP padding row: nobody's demonstration
    td, out_tags, has_demo = teacher_inputs(fields, tags, tokenizer, sdpo_settings({}))
    # row 1 (wrong) learns from row 0; row 0 has no *other* successful sibling; group 1's only success is padding
    assert has_demo.tolist() == [False, True, False, False]
    prompts = [p.tolist() for p in td["prompts"].unbind()]
    assert prompts[1] == reprompted_ids(tokenizer, "1+1", "2")  # the EOS is not part of the demonstration
    for i in (0, 2, 3):
        assert prompts[i] == fields["prompts"][i].tolist()
    for i in range(4):
        response = fields["responses"][i].tolist()
        assert td["input_ids"][i].tolist() == prompts[i] + response
        assert td["position_ids"][i].tolist() == list(range(len(prompts[i]) + len(response)))
        assert td["response_mask"][i].tolist() == fields["response_mask"][i].tolist()
        assert out_tags[i] == {
            "prompt_len": len(prompts[i]),
            "response_len": len(response),
            "seq_len": len(prompts[i]) + len(response),
        }


def sdpo_batch(demonstrated: list[float]) -> TensorDict:
    """Two responses (prompt lengths 2 and 1; response lengths 2 and 1) as SDPO's step leaves them:
    ``loss_mask`` on the demonstrated responses' tokens; ``batch_num_tokens`` counted from it, as
    verl's engine counts it (``forward_backward_batch``)."""
    lengths = [2, 1]
    loss_mask = jagged([[d] * n for d, n in zip(demonstrated, lengths, strict=True)], torch.long)
    data = TensorDict(
        {
            "prompts": jagged([[5, 6], [7]], torch.long),
            "responses": jagged([[8, 9], [10]], torch.long),
            "response_mask": jagged([[1, 1], [1]], torch.long),
            "loss_mask": loss_mask,
            "old_log_probs": jagged([[-1.5, -0.2], [-0.7]]),
            "teacher_log_probs": jagged([[-0.5, -0.4], [-2.0]]),
            "sdpo_mask": jagged([[float(d)] * n for d, n in zip(demonstrated, lengths, strict=True)]),
        },
        batch_size=[2],
    )
    counts = {"dp_size": 1, "batch_num_tokens": int(loss_mask.values().sum()), "global_batch_size": 2}
    for k, v in counts.items():
        data[k] = NonTensorData(v)
    return data


def sdpo_actor_config():
    return omega_conf_to_dataclass(
        verl_config(compose_cell(["scale=paper", "backend=verl", "algorithm=sdpo"])).actor_rollout_ref.actor
    )


def test_sdpo_loss_is_the_sampled_token_reverse_kl_over_demonstrated_tokens_by_hand():
    # the response's log-probs sit at positions P-1 … P+R-2 of each sequence: -1.0, -0.2 and -0.7
    out = torch.tensor([0.0, -1.0, -0.2, -3.0, 0.0, -0.7], requires_grad=True)
    nested = {"log_probs": torch.nested.as_nested_tensor([out[:3], out[3:]], layout=torch.jagged)}
    loss, metrics = sdpo_loss(sdpo_actor_config(), nested, sdpo_batch([1, 0]), is_clip=2.0)
    # w = min(exp(lp − old), 2): exp(0.5) = 1.65, exp(0) = 1; (lp − lt): −0.5, 0.2; the mean over the
    # 2 demonstrated tokens (lasgroup/SDPO), not over all 3 response tokens
    w = [min(pow(2.718281828459045, 0.5), 2.0), 1.0]
    expected = (w[0] * (-1.0 + 0.5) * -1.0 + w[1] * (-0.2 + 0.4) * -0.2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()  # d/d lp = w (lp − lt) / 2 on the distilled tokens, 0 elsewhere
    torch.testing.assert_close(out.grad, torch.tensor([0.0, w[0] * -0.5 / 2, w[1] * 0.2 / 2, 0.0, 0.0, 0.0]))
    reported = metrics["actor/pg_loss"]  # summed over micro-batches, as ppo_loss reports a global-batch loss
    assert reported.aggregation == AggregationType.SUM
    assert float(reported.values[0]) == pytest.approx(expected, rel=1e-5)
    # a mini-batch without a demonstration: loss and gradient 0 (not 0/0)
    out.grad = None
    loss, _ = sdpo_loss(sdpo_actor_config(), nested, sdpo_batch([0, 0]), is_clip=2.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(out.grad, torch.zeros(6))


def worker_stub(tmp_path=None, rank: int = 0):
    torch.manual_seed(0)
    actor, teacher = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    return SimpleNamespace(
        actor=SimpleNamespace(engine=SimpleNamespace(module=actor)),
        ref=SimpleNamespace(engine=SimpleNamespace(module=teacher)),
        rank=rank,
    )


def test_ema_teacher_and_its_checkpoint(tmp_path):
    w = worker_stub()
    a, t = w.actor.engine.module, w.ref.engine.module
    before = t.weight.detach().clone()
    PIPOActorRolloutRefWorker.ema_update_teacher(w, 0.05)
    torch.testing.assert_close(t.weight.detach(), 0.95 * before + 0.05 * a.weight.detach())
    saved = {k: v.detach().clone() for k, v in t.state_dict().items()}
    PIPOActorRolloutRefWorker.save_teacher(w, str(tmp_path))
    assert (tmp_path / "sdpo_teacher" / "rank_0.pt").exists()
    with torch.no_grad():
        t.weight.zero_()
    assert PIPOActorRolloutRefWorker.load_teacher(w, str(tmp_path)) is True
    torch.testing.assert_close(t.weight.detach(), saved["weight"])
    assert PIPOActorRolloutRefWorker.load_teacher(worker_stub(rank=1), str(tmp_path)) is False  # no shard
    other = worker_stub()
    other.ref.engine.module = torch.nn.Sequential(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match="another model"):
        PIPOActorRolloutRefWorker.load_teacher(other, str(tmp_path))


def test_sdpo_loss_on_the_worker_and_the_verification_update_swaps_in_the_vanilla_loss():
    cfg = compose_cell(
        [
            "scale=paper",
            "backend=verl",
            "algorithm=sdpo",
            "algorithm.rollout_n=2",
            "algorithm.batch_size=2",
            "algorithm.mini_batch_size=2",
        ]
    )
    group = CPUWorkerGroup(omega_conf_to_dataclass(verl_config(cfg).actor_rollout_ref.actor))
    PIPOActorRolloutRefWorker.use_sdpo_loss(group.worker, 2.0)
    loss_fn = group.worker.loss_fn
    assert loss_fn.func is sdpo_loss and loss_fn.keywords["is_clip"] == 2.0 and group.actor.loss_fn is loss_fn
    data = TensorDict(
        {
            "response_mask": jagged([[1, 1, 1], [1, 1], [1, 1, 1, 1], [1]], torch.long),
            "old_log_probs": jagged([[-1.0] * 3, [-1.0] * 2, [-1.0] * 4, [-1.0]]),
            "advantages": jagged([[0.1] * 3, [0.0] * 2, [0.2] * 4, [0.0]]),
        },
        batch_size=[4],
    )
    data["pipo_lr"] = NonTensorData(0.5)
    seen, inner = [], group.actor.train_mini_batch
    group.actor.train_mini_batch = lambda data: seen.append(group.actor.loss_fn.func) or inner(data)
    PIPOActorRolloutRefWorker.update_actor_pi(group.worker, data)
    call = group.actor.calls[-1]  # PIPO's PI loss: verl's ppo_loss, vanilla clipped (no KL), at η_PI
    assert seen == [ppo_loss] and call["lr"] == 0.5 and call["kl"] is False
    assert group.actor.loss_fn is loss_fn  # SDPO's loss is back for the exploration update


@pytest.fixture
def sdpo_trainer(transfer_queue, tokenizer, hf_dir, monkeypatch):
    def build(pipo: bool):
        cfg = compose_cell(
            [
                "scale=paper",
                "backend=verl",
                "algorithm=sdpo",
                "algorithm.rollout_n=2",
                "algorithm.batch_size=2",
                "algorithm.mini_batch_size=2",
                f"model.hf_id={hf_dir}",
                f"pipo={'on' if pipo else 'off'}",
                "pipo.window=4",
            ]
        )
        config = verl_config(cfg)
        assert trainer_mode(config) == ("pipo_sdpo" if pipo else "sdpo")
        config.trainer.v1.trainer_mode = trainer_mode(config)
        t = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
        t.tokenizer = tokenizer
        t.timing_raw = {}
        t.ref_policy_wg = CPUTeacher()
        t.actor_rollout_wg = t.ref_policy_wg
        return t

    def exploration(self, batch, metrics):
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages"])
        self.actor_rollout_wg.updates.append(data["advantages"].to_padded_tensor(0.0))
        return batch

    monkeypatch.setattr(PPOTrainerSync, "_update_actor", exploration)
    return build


class CPUTeacher:
    """The reference model behind ``compute_ref_log_prob``: the log-prob output at position k of a
    sequence is −len(prompt)/100 − input_ids[k + 1]/1000, put back into TransferQueue."""

    def __init__(self) -> None:
        self.updates: list[torch.Tensor] = []
        self.ema: list[float] = []

    def compute_ref_log_prob(self, meta):
        data = tq.kv_batch_get(keys=meta.keys, partition_id=meta.partition_id)
        assert meta.extra_info["compute_loss"] is False and meta.extra_info["calculate_entropy"] is False
        rows = []
        for prompt, ids in zip(data["prompts"].unbind(), data["input_ids"].unbind(), strict=True):
            lp = -len(prompt) / 100 - ids[1:].float() / 1000
            rows.append(torch.cat([lp, torch.zeros(1)]))
        out = TensorDict({"log_probs": jagged([r.tolist() for r in rows])}, batch_size=[len(rows)])
        tq.kv_batch_put(keys=meta.keys, partition_id=meta.partition_id, fields=out)
        return meta

    def ema_update_teacher(self, tau: float) -> None:
        self.ema.append(tau)


def put(tokenizer, step: int):
    keys = [f"sdpo{step}g{i // 2}_{i}" for i in range(4)]  # verl's {uid}_{session}_{index}: two prompts of two
    return tq.kv_batch_put(
        keys=keys, partition_id="train", fields=make_batch(tokenizer), tags=[{"global_steps": step} for _ in keys]
    )


@pytest.mark.parametrize("pipo", [False, True])
def test_sdpo_step_teacher_log_probs_advantages_update_and_ema(sdpo_trainer, tokenizer, pipo):
    trainer = sdpo_trainer(pipo)
    assert type(trainer) is (PIPOSDPOTrainer if pipo else SDPOTrainer) and trainer.use_reference_policy
    assert trainer.trainer_mode == "sync"
    meta, metrics = put(tokenizer, 1), {}
    trainer._compute_ref_log_prob(meta, metrics)
    fields = tq.kv_batch_get(keys=meta.keys, partition_id="train")
    # groups: row 0 right, row 1 wrong (learns from row 0); row 2 wrong (learns from row 3), row 3 right
    demo = {1: ("1+1", "2"), 2: ("2+3", "5")}
    assert metrics["sdpo/demo_fraction"] == 0.5
    for i in range(4):
        prompt = reprompted_ids(tokenizer, *demo[i]) if i in demo else fields["prompts"][i].tolist()
        teacher = -len(prompt) / 100 - fields["responses"][i].float() / 1000
        torch.testing.assert_close(fields["teacher_log_probs"][i], teacher)
        assert fields["sdpo_mask"][i].tolist() == [float(i in demo)] * len(teacher)
        # verl normalises the actor's loss by the loss mask's tokens: SDPO's are the demonstrated ones
        assert fields["loss_mask"][i].tolist() == [int(i in demo)] * len(teacher)
    assert tq.kv_list(partition_id="sdpo_teacher") in ({}, {"sdpo_teacher": {}}, [])  # cleared

    trainer._compute_advantage(meta, metrics)
    fields = tq.kv_batch_get(keys=meta.keys, partition_id="train")
    for i in range(4):  # (teacher − student) on the distilled rows, 0 elsewhere
        expected = (fields["teacher_log_probs"][i] + 0.5) * float(i in demo)
        torch.testing.assert_close(fields["advantages"][i], expected)
        torch.testing.assert_close(fields["returns"][i], expected)

    trainer._update_actor(meta, metrics)
    # J_t's standard error with or without PIPO: both prompts score (1, 0) and (0, 1), means 0.5 = J_t, so 0
    # (responses taken one by one it would be √(4/3 · 4 · 0.25 / 16) ≈ 0.29)
    assert metrics["pipo/J_se"] == 0.0
    assert trainer.actor_rollout_wg.ema == [0.05]  # one EMA step after the actor update
    assert len(trainer.actor_rollout_wg.updates) == 1
    if pipo:  # B_t is kept with SDPO's attribution: the same log-ratio, not divided by G
        previous = trainer.pipo_controller.previous
        for i in range(4):
            n = len(fields["advantages"][i])
            torch.testing.assert_close(previous.attributions[i, :n], fields["advantages"][i])
        assert "teacher_log_probs" not in previous.batch[0].keys()
        for i in range(4):  # the verification replay's loss runs over every response token again
            assert previous.batch[0]["loss_mask"][i].tolist() == [1] * len(fields["advantages"][i])
    tq.kv_clear(keys=meta.keys, partition_id="train")


def test_sdpo_runs_verls_hybrid_worker_with_the_reference_model_as_teacher(sdpo_trainer):
    trainer = sdpo_trainer(False)
    trainer._init_resource_pool_mgr()
    classes = {role: cls.__ray_actor_class__ for role, cls in trainer.role_worker_mapping.items()}
    assert classes == {Role.ActorRolloutRef: PIPOActorRolloutRefWorker}
    assert trainer.mapping[Role.ActorRolloutRef] == "global_pool" and Role.ActorRollout not in trainer.mapping


def test_sdpo_teacher_through_a_checkpoint(sdpo_trainer, tmp_path, monkeypatch):
    trainer = sdpo_trainer(True)
    calls = []
    trainer.actor_rollout_wg.save_teacher = lambda folder: calls.append(("save", folder))
    trainer.actor_rollout_wg.load_teacher = lambda folder: calls.append(("load", folder)) or [True]
    trainer.config.trainer.default_local_dir = str(tmp_path)
    trainer.global_steps = 3
    monkeypatch.setattr(PPOTrainerSync, "_save_checkpoint", lambda self: calls.append(("verl", None)))
    trainer._save_checkpoint()
    folder = str(tmp_path / "global_step_3")
    assert calls == [("save", folder), ("verl", None)]  # the teacher is there before verl marks it latest
    (tmp_path / "latest_checkpointed_iteration.txt").write_text("3")
    monkeypatch.setattr(PPOTrainerSync, "_load_checkpoint", lambda self: setattr(self, "global_steps", 3))
    trainer._load_checkpoint()
    assert calls[-1] == ("load", folder)
