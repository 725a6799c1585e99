"""Each base algorithm's signal and loss against an independent computation on small hand-made batches."""

import numpy as np
import pytest
import torch

from pipo.algorithm import AttributionConfig, actor_config, get_attribution_fn, policy_loss
from pipo.algorithm.self_distillation import demonstrations, ema_update, sdpo_token_loss
from pipo.backends.local import base_algorithms as base
from pipo.backends.local.rollout import Rollout
from pipo.tasks import Verifier
from tests.backends.test_trainer import make_trainer


def test_dapo_filter_keeps_only_mixed_groups():
    scores = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5, 0.5])
    group = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert base.informative_groups(scores, group) == [1]
    assert base.informative_groups(torch.tensor([1.0]), np.array([0])) == [0]  # a lone response is kept


def test_dapo_overlong_penalty_by_hand():
    # max 16, buffer 4: free up to 12 tokens, then -1/4 per extra token down to -1 at 16
    lengths = torch.tensor([5, 12, 13, 14, 16])
    assert base.overlong_penalty(lengths, 16, 4, 1.0).tolist() == pytest.approx([0, 0, -0.25, -0.5, -1.0])
    assert base.overlong_penalty(lengths, 16, 4, 0.5).tolist() == pytest.approx([0, 0, -0.125, -0.25, -0.5])
    assert base.overlong_penalty(lengths, 16, 0, 1.0).tolist() == [0, 0, 0, 0, 0]


def test_gspo_sequence_ratio_by_hand():
    cfg = actor_config("gspo", "seq-mean-token-mean", 3e-4, 4e-4, 3.0, rollout_n=2)
    old = torch.zeros(2, 3)
    new = torch.tensor([[0.001, 0.0, 0.002], [-0.0006, -0.0006, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    adv = torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, -2.0]])
    loss, _ = policy_loss(cfg, new, old, adv, mask)
    # s_1 = exp(mean(0.001, 0, 0.002)) = exp(0.001) > 1 + 4e-4 → clipped for A > 0: -1 · 1.0004
    # s_2 = exp(-0.0006) < 1 - 3e-4 → for A < 0, max(2 s, 2 · 0.9997) = 2 · 0.9997; masked token ignored
    assert loss.item() == pytest.approx((-1.0004 + 2 * 0.9997) / 2, rel=1e-6)


def test_sdpo_demonstrations_and_token_loss_gradient():
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    group = np.array([0, 0, 0, 1, 1, 1])
    # the first *other* response of the group with a score ≥ 1; none in an all-wrong group
    assert demonstrations(scores, group, 1.0) == [2, 0, 0, None, None, None]
    lp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.5]])
    teacher = torch.tensor([[-0.5, -3.0]])
    loss = sdpo_token_loss(lp, old, teacher, is_clip=1.5).sum()
    loss.backward()
    # gradient w · (log π_s − log π_t): token 1 w = 1, 1·(-0.5); token 2 w = min(e^0.5, 1.5) = 1.5, 1.5·1.0
    assert lp.grad[0].tolist() == pytest.approx([-0.5, 1.5])


def test_sdpo_and_ppo_attributions():
    data = {
        "teacher_log_probs": torch.tensor([[-0.5, -3.0]]),
        "student_log_probs": torch.tensor([[-1.0, -2.0]]),
        "distill_mask": torch.tensor([[1.0, 0.0]]),
        "response_mask": torch.ones(1, 2),
        "advantages": torch.tensor([[0.3, -0.2]]),
    }
    assert get_attribution_fn("sdpo")(data, AttributionConfig(8))[0].tolist() == pytest.approx([0.5, 0.0])
    assert get_attribution_fn("ppo")(data, AttributionConfig(1))[0].tolist() == pytest.approx([0.3, -0.2])
    for name in ("gspo", "dapo"):  # group-relative: A / G
        assert get_attribution_fn(name)(data, AttributionConfig(2))[0].tolist() == pytest.approx([0.15, -0.1])


def test_ema_update():
    t, s = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        t.weight.fill_(1.0)
        s.weight.fill_(3.0)
    ema_update(t, s, 0.05)
    assert t.weight.item() == pytest.approx(0.95 * 1.0 + 0.05 * 3.0)


def test_ppo_signal_is_textbook_gae_on_kl_shaped_rewards(micro_overrides, tmp_path):
    trainer = make_trainer(
        [*micro_overrides, "algorithm=ppo", "algorithm.gamma=0.9", "algorithm.gae_lambda=0.8", "algorithm.kl_coef=0.1"],
        tmp_path,
    )
    torch.manual_seed(0)
    problems = trainer.next_problems(4)
    roll = base_rollout(trainer, problems, n=1)
    scores = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with torch.no_grad():
        old = trainer._log_probs(trainer.policy, roll)
        ref = old - 0.3 * roll.response_mask  # a reference the policy has drifted from
    m = {}
    sig = trainer.learning_signal(problems, roll, scores, old, ref, m)
    values, mask = sig["values"], roll.response_mask
    raw = torch.zeros_like(mask)
    for i in range(len(scores)):
        n = int(mask[i].sum())
        r = [-0.1 * 0.3] * n  # β · KL("kl" = log π − log π_ref) per token
        r[-1] += scores[i].item()
        v = [*values[i, :n].tolist(), 0.0]
        gae = 0.0
        for t in reversed(range(n)):  # δ_t = r_t + γ V_{t+1} − V_t; A_t = δ_t + γ λ A_{t+1}
            gae = r[t] + 0.9 * v[t + 1] - v[t] + 0.9 * 0.8 * gae
            raw[i, t] = gae
    sel = raw[mask.bool()]
    whitened = (raw - sel.mean()) / torch.sqrt(sel.var(unbiased=True) + 1e-8)
    assert torch.allclose(sig["advantages"][mask.bool()], whitened[mask.bool()], atol=1e-5)
    assert torch.allclose(sig["returns"][mask.bool()], (raw + values)[mask.bool()], atol=1e-5)
    assert m["actor/reward_kl_penalty"] == pytest.approx(0.3, rel=1e-5)


def test_sdpo_teacher_log_probs_match_an_unbatched_forward(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, "algorithm=sdpo"], tmp_path)
    torch.manual_seed(0)
    problems = trainer.next_problems(2)
    roll = base_rollout(trainer, problems, n=3)
    scores = torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    signal = trainer.learning_signal(
        problems, roll, scores, trainer._log_probs(trainer.policy, roll).detach(), None, {}
    )
    has = signal["distill_mask"].sum(-1) > 0
    assert has.tolist() == [True, False, True, False, False, False]  # the success itself has no other demo
    for i in (0, 2):
        n = int(roll.response_mask[i].sum())
        response = roll.input_ids[i, -roll.response_length :][:n]
        prompt = problems[0]["prompt"] + roll.responses[1] + "\n" + problems[0]["prompt"]
        ids = torch.tensor([trainer.tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        full = torch.cat([ids, response[None]], 1)
        with torch.no_grad():
            ref = torch.log_softmax(trainer.teacher(input_ids=full).logits[0, ids.shape[1] - 1 : -1], -1)
        expected = ref.gather(-1, response[:, None]).squeeze(-1)
        assert torch.allclose(signal["teacher_log_probs"][i, :n], expected, atol=1e-4)


def base_rollout(trainer, problems, n) -> Rollout:
    from pipo.backends.local.rollout import generate

    return generate(trainer.policy, trainer.tokenizer, [p["prompt"] for p in problems], n, 16, 12, 1.0)


def test_dapo_sampling_stops_at_the_round_bound_and_trains_on_nothing(micro_overrides, tmp_path, caplog):
    trainer = make_trainer([*micro_overrides, "algorithm=dapo", "algorithm.max_gen_rounds=3"], tmp_path)
    trainer.verifier = Verifier(
        "all-correct", lambda response, truth: 1.0
    )  # every group all-correct: nothing informative
    m = trainer.train_step(1)
    assert m["sampling/rounds"] == 3.0 and m["sampling/kept_groups"] == 0.0
    assert m["critic/score/mean"] == 1.0  # J_t from every sampled response, before filtering
    assert "0 of 32 groups are informative after 3 generation rounds" in caplog.text
    assert trainer.cursor == 3 * 32
    assert "actor/pg_loss" not in m and m["pipo/J"] == 1.0
    assert trainer.pipo.previous is None and list(trainer.pipo.feedback.history) == [1.0]


def test_dapo_sampling_fills_the_batch_with_informative_groups(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, "algorithm=dapo"], tmp_path)
    calls = iter(range(10**6))
    trainer.verifier = Verifier(
        "mixed", lambda response, truth: float(next(calls) % 3 == 0)
    )  # every group of 8 is mixed
    problems, _roll, scores, all_scores, m = trainer.sample(1)
    assert m["sampling/rounds"] == 1.0 and len(problems) == 32 and len(scores) == 256
    assert all_scores.mean().item() == pytest.approx(86 / 256)
