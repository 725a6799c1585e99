"""The local trainer's PIPO step: skip rules, an update checked by hand, and pipo=off being the base algorithm."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from pipo.algorithm import Feedback, PreviousBatch
from pipo.backends.local.rollout import generate, log_probs
from pipo.backends.local.trainer import LocalTrainer, step_seed
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.records import RunRecord
from pipo.tasks import load_standin
from pipo.wandb_mirror import WandbMirror


def make_trainer(overrides, tmp_path):
    cfg = compose_cell(overrides)
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    off = WandbMirror("disabled", "p", None, None, "x", "x", tmp_path, {}, [])
    return LocalTrainer(cfg, task, path, RunRecord(tmp_path / "rec"), off)


def state_of(trainer):
    return copy.deepcopy(trainer.policy.state_dict()), copy.deepcopy(trainer.optimizer.state_dict())


def assert_same_state(a, b):
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), k
    assert a[1]["state"].keys() == b[1]["state"].keys()
    for k, s in a[1]["state"].items():
        for name, v in s.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b[1]["state"][k][name])), (k, name)


def feedback(delta, phi):
    return Feedback(J=0.5, mu=0.4, sigma=0.1, delta=delta, phi=phi, history=2)


def previous_batch(trainer, attribution):
    torch.manual_seed(0)
    probs = trainer.task.train[:2]
    roll = generate(trainer.policy, trainer.tokenizer, [p["prompt"] for p in probs], 8, 16, 16, 1.0)
    with torch.no_grad():
        old = log_probs(trainer.policy, roll.input_ids, roll.attention_mask, roll.position_ids, roll.response_length)
    attr = torch.as_tensor(attribution, dtype=torch.float32)[:, None].expand_as(roll.response_mask)
    batch = {
        "input_ids": roll.input_ids,
        "attention_mask": roll.attention_mask,
        "position_ids": roll.position_ids,
        "response_mask": roll.response_mask,
        "old_log_probs": old + 0.05,  # old log-probs offset: ratios ≠ 1
    }
    return PreviousBatch(batch, attr * roll.response_mask, roll.response_mask)


# one mini-batch of 16 responses, so a verification is a single AdamW step at 3e-3, unclipped
ONE_ADAMW_STEP = ["algorithm.mini_batch_size=8", "scale.batch_divisor=4", "pipo.lr=3e-3", "scale.grad_clip=1e9"]


def hand_adamw_step(trainer, loss_of) -> tuple[torch.nn.Module, torch.Tensor]:
    """A copy of the trainer's policy after one AdamW step (lr 3e-3, no weight decay) on ``loss_of(copy)``."""
    model = copy.deepcopy(trainer.policy).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.999), weight_decay=0.0)
    loss = loss_of(model)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return model, loss


def count_forwards(model) -> list[int]:
    """The number of rows of each forward pass of ``model`` from now on."""
    rows: list[int] = []
    model.register_forward_hook(lambda _m, _a, kw, _o: rows.append(len(kw["input_ids"])), with_kwargs=True)
    return rows


def hand_clipped_pi_loss(model, prev, phi: float) -> torch.Tensor:
    """The verification loss written out: PPO's dual-clipped objective (0.2, c = 3) with R = φ·a as
    advantages, token-mean over the stored batch."""
    b = prev.batch
    lp = log_probs(model, b["input_ids"], b["attention_mask"], b["position_ids"], prev.response_mask.shape[1])
    ratio = torch.exp(lp - b["old_log_probs"])
    R = phi * prev.attributions
    per_token = torch.maximum(-R * ratio, -R * ratio.clamp(0.8, 1.2))
    per_token = torch.where(R < 0, torch.minimum(per_token, -R * 3.0), per_token)
    return (per_token * prev.response_mask).sum() / prev.response_mask.sum()


@pytest.mark.parametrize(
    ("delta", "phi", "attribution", "reason"),
    [
        (None, None, [0.1] * 16, "delta undefined"),
        (1.0, 1.0, [0.0] * 16, "all attributions zero"),
        (-2.0, 0.0, [0.1] * 16, "λ = 0 and δ < 0"),
    ],
)
def test_skipped_verification_touches_nothing(micro_overrides, tmp_path, delta, phi, attribution, reason):
    trainer = make_trainer(micro_overrides, tmp_path)
    trainer.train_step(1)  # optimizer state exists
    trainer.pipo.previous = previous_batch(trainer, attribution)
    before = state_of(trainer)
    m = trainer.pipo.verify(feedback(delta, phi), trainer.replay)
    assert m["pipo/verified"] == 0.0, reason
    assert_same_state(before, state_of(trainer))


def test_verification_update_equals_a_hand_written_clipped_step(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, *ONE_ADAMW_STEP], tmp_path)
    attribution = [0.3, -0.1, 0.2, 0.0, 0.25, -0.3, 0.1, 0.05] * 2
    prev = previous_batch(trainer, attribution)
    trainer.pipo.previous = prev
    phi = 0.7
    # independent computation: PPO clipped objective written out, token-mean, one AdamW step on a copy
    model, loss = hand_adamw_step(trainer, lambda m: hand_clipped_pi_loss(m, prev, phi))
    R = phi * prev.attributions

    m = trainer.pipo.verify(feedback(1.5, phi), trainer.replay)
    assert m["pipo/verified"] == 1.0
    assert m["pipo/units"] == float((prev.response_mask * (R != 0)).sum())
    assert m["pipo/pi_loss"] == pytest.approx(loss.item(), rel=1e-4)
    for (name, ours), theirs in zip(trainer.policy.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6), name
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(3e-3)  # η_PI during the step


def test_pipo_off_is_the_base_algorithm(micro_overrides, tmp_path, monkeypatch):
    off = make_trainer([*micro_overrides, "pipo=off"], tmp_path / "off")
    # PIPO on, but the window never reaches min_history: it must add nothing to the base algorithm
    idle = make_trainer([*micro_overrides, "pipo.window=8", "pipo.min_history=8"], tmp_path / "idle")

    def forbidden(*_):
        raise AssertionError("verification step with pipo=off")

    monkeypatch.setattr(off, "replay", forbidden)
    for step in (1, 2, 3):
        m_off, m_idle = off.train_step(step), idle.train_step(step)
        # of PIPO's metrics only J_t's standard error, which every run logs (a diagnostic, PIPO on or off)
        assert [k for k in m_off if k.startswith("pipo/")] == ["pipo/J_se"] and "timing/verify" not in m_off
        assert m_idle["pipo/verified"] == 0.0
        assert m_off["critic/score/mean"] == m_idle["critic/score/mean"] and m_off["pipo/J_se"] == m_idle["pipo/J_se"]
    for (name, a), b in zip(off.policy.state_dict().items(), idle.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("algorithm", "attribution"),
    [
        ("grpo", [0.0] * 8 + [0.3, -0.1, 0.2, 0.0, 0.25, -0.3, 0.1, 0.05]),  # a whole mini-batch of zeros
        ("grpo", [0.0, 0.2, 0.0, -0.1, 0.0, 0.0, 0.4, 0.0] * 2),  # zeros inside each mini-batch
        ("gspo", [0.0, 0.2, 0.0, -0.1, 0.0, 0.0, 0.4, 0.0] * 2),  # a sequence-level ratio
    ],
)
def test_skipping_zero_reward_rows_equals_replaying_every_row(micro_overrides, tmp_path, algorithm, attribution):
    overrides = [*micro_overrides, f"algorithm={algorithm}", "algorithm.mini_batch_size=4", "scale.batch_divisor=4"]
    skip, full = make_trainer(overrides, tmp_path / "skip"), make_trainer(overrides, tmp_path / "full")
    torch.manual_seed(0)
    for p in skip.policy.parameters():  # warm AdamW moments, so a zero-gradient step still moves the weights
        p.grad = torch.randn_like(p)
    skip.optimizer.step()
    full.policy.load_state_dict(skip.policy.state_dict())
    full.optimizer.load_state_dict(copy.deepcopy(skip.optimizer.state_dict()))  # loading alone shares tensors
    prev = previous_batch(skip, attribution)
    skip.pipo.previous = full.pipo.previous = prev
    forwarded = count_forwards(skip.policy)
    pass_everything = full.actor_pass

    def replay_all(*args, active=None, **kwargs):
        return pass_everything(*args, **kwargs)

    full.actor_pass = replay_all
    m_skip = skip.pipo.verify(feedback(1.5, 0.7), skip.replay)
    m_full = full.pipo.verify(feedback(1.5, 0.7), full.replay)

    nonzero = [a != 0 for a in attribution]
    assert forwarded == [sum(nonzero[i : i + 8]) for i in range(0, 16, 8) if any(nonzero[i : i + 8])]
    assert m_skip["pipo/replayed_fraction"] == pytest.approx(sum(nonzero) / 16)
    assert m_skip["pipo/pi_loss"] == pytest.approx(m_full["pipo/pi_loss"], rel=1e-5)
    assert m_skip["pipo/grad_norm"] == pytest.approx(m_full["pipo/grad_norm"], rel=1e-5)
    a, b = state_of(skip), state_of(full)
    for k in a[0]:
        assert torch.allclose(a[0][k], b[0][k], rtol=0, atol=1e-7), k
    for k, s in a[1]["state"].items():
        for name, v in s.items():
            assert torch.allclose(torch.as_tensor(v), torch.as_tensor(b[1]["state"][k][name]), rtol=1e-5, atol=1e-12)


def test_old_log_probs_come_from_the_sampler_not_a_second_forward(micro_overrides, tmp_path, monkeypatch):
    trainer = make_trainer([*micro_overrides, "algorithm=grpo"], tmp_path)
    forwarded = []
    no_grad_pass = trainer._log_probs
    monkeypatch.setattr(trainer, "_log_probs", lambda model, roll: forwarded.append(model) or no_grad_pass(model, roll))
    trainer.train_step(1)
    trainer.train_step(2)
    assert forwarded and all(m is trainer.ref for m in forwarded)  # the KL reference only
    assert trainer.pipo.previous.batch["old_log_probs"].abs().sum() > 0  # the stored ones are the sampler's


def test_a_checkpoint_that_fails_half_way_leaves_the_fresh_state(micro_overrides, tmp_path):
    trainer = make_trainer(micro_overrides, tmp_path)
    fresh = state_of(trainer)
    trainer.train_step(1)
    trainer.save_checkpoint()
    path = trainer.record.ckpt_dir / "state.pt"
    state = torch.load(path, weights_only=True)
    state["optimizer"]["param_groups"].append(dict(state["optimizer"]["param_groups"][0]))  # loads after the model
    torch.save(state, path)

    resumed = make_trainer(micro_overrides, tmp_path)
    assert resumed.load_checkpoint() is False and resumed.step == 0
    assert_same_state(state_of(resumed), fresh)  # not the checkpoint's weights with a fresh optimizer


def test_ppo_critic_has_no_dropout_and_a_seeded_head(micro_overrides, tmp_path):
    a = make_trainer([*micro_overrides, "algorithm=ppo"], tmp_path / "a")
    b = make_trainer([*micro_overrides, "algorithm=ppo"], tmp_path / "b")
    assert all(m.p == 0.0 for m in a.critic.modules() if isinstance(m, torch.nn.Dropout))
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    a.critic.train()  # as in the critic update: two forwards of the same input must agree
    v1, v2 = (a.critic(input_ids=ids).logits for _ in range(2))
    assert torch.equal(v1, v2)
    for (name, p), q in zip(a.critic.state_dict().items(), b.critic.state_dict().values(), strict=True):
        assert torch.equal(p, q), name  # the same value head in every trainer (every process, every seed)


def test_sgd_verification_is_a_plain_gradient_step_at_its_own_rate(micro_overrides, tmp_path):
    trainer = make_trainer(
        [
            *micro_overrides,
            "algorithm.mini_batch_size=8",
            "scale.batch_divisor=4",
            "pipo.optimizer=sgd",
            "scale.grad_clip=1e9",
        ],
        tmp_path,
    )
    assert trainer.cfg.pipo.lr == trainer.cfg.scale.pi_sgd_lr != trainer.cfg.scale.lr  # sgd's own η_PI
    trainer.train_step(1)  # the actor's AdamW has state now
    actor_state = copy.deepcopy(trainer.optimizer.state_dict())
    prev = trainer.pipo.previous = previous_batch(trainer, [0.3, -0.1, 0.2, 0.0, 0.25, -0.3, 0.1, 0.05] * 2)
    phi, eta = 0.7, trainer.cfg.pipo.lr
    # Eq. 11 by hand: θ' = θ − η_PI ∇L_PI, the clipped objective written out, on a copy
    model = copy.deepcopy(trainer.policy).train()
    hand_clipped_pi_loss(model, prev, phi).backward()
    with torch.no_grad():
        expected = {n: p - eta * p.grad if p.grad is not None else p for n, p in model.named_parameters()}
    m = trainer.pipo.verify(feedback(1.5, phi), trainer.replay)
    assert m["pipo/verified"] == 1.0 and m["pipo/update_cos"] == pytest.approx(1.0, abs=1e-5)
    for name, p in trainer.policy.named_parameters():
        assert torch.allclose(p, expected[name], atol=1e-6), name
    after = trainer.optimizer.state_dict()["state"]
    for k, s in actor_state["state"].items():  # the exploration optimizer's moments are untouched
        assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(after[k][n])) for n, v in s.items())


def test_update_cos_in_the_record_is_one_for_sgd_and_the_momentums_for_shared(micro_overrides, tmp_path):
    logged = {}
    for optimizer in ("sgd", "shared"):
        trainer = make_trainer(
            [*micro_overrides, "algorithm=grpo", f"pipo.optimizer={optimizer}", "scale.steps=8", "scale.eval.every=8"],
            tmp_path / optimizer,
        )
        trainer.fit()
        logged[optimizer] = [r["pipo/update_cos"] for r in trainer.record.metrics() if r["pipo/verified"]]
    # sgd: cos 1 up to the float32 rounding of Δθ = θ′ − θ (small steps at pi_sgd_lr 0.05)
    assert len(logged["sgd"]) >= 3 and all(c == pytest.approx(1.0, abs=1e-4) for c in logged["sgd"])
    # shared AdamW: β₁·m of the exploration steps bends every verification step away from −∇L_PI
    assert len(logged["shared"]) >= 3 and all(-1.0 <= c < 0.99 for c in logged["shared"])


def test_a_separate_verification_optimizer_is_checkpointed(micro_overrides, tmp_path):
    overrides = [*micro_overrides, "algorithm=grpo", "pipo.optimizer=separate"]
    trainer = make_trainer(overrides, tmp_path / "a")
    for step in range(1, 5):
        trainer.step = step
        trainer.train_step(step)
    assert trainer.pi_optimizer is not trainer.optimizer and trainer.pi_optimizer.state  # it has stepped
    trainer.save_checkpoint()
    resumed = make_trainer(overrides, tmp_path / "b")
    resumed.record = trainer.record
    assert resumed.load_checkpoint()
    ours, theirs = resumed.pi_optimizer.state_dict()["state"], trainer.pi_optimizer.state_dict()["state"]
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k]["exp_avg"], theirs[k]["exp_avg"]) for k in ours)


def test_sdpo_loss_is_the_mean_over_demonstrated_tokens(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, "algorithm=sdpo"], tmp_path)
    gen = torch.Generator().manual_seed(0)
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0] * 4, [1.0, 0.0, 0.0, 0.0]])
    old, teacher = -torch.rand(4, 4, generator=gen), -torch.rand(4, 4, generator=gen)
    lp = (old + 0.1 * torch.randn(4, 4, generator=gen)).requires_grad_()
    distill = mask * torch.tensor([0.0, 1.0, 0.0, 0.0])[:, None]  # one response of four has a demonstration
    loss_fn = trainer._distillation_loss(old, {"teacher_log_probs": teacher, "distill_mask": distill}, mask)
    loss, _ = loss_fn(lp, torch.arange(4), slice(0, 4))
    # by hand: min(exp(lp − old), 2) · (lp − lt) · lp on the 2 demonstrated tokens, over 2 (not over 10)
    w = torch.exp(lp.detach() - old).clamp(max=trainer.cfg.algorithm.is_clip)
    by_hand = sum(w[1, j] * (lp[1, j] - teacher[1, j]).detach() * lp[1, j] for j in range(2)) / 2
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)
    # a mini-batch without a demonstration: loss 0
    zero, _ = loss_fn(lp[:1], torch.arange(1), slice(0, 1))
    assert zero.item() == 0.0


def test_a_prompt_budget_ends_dapos_run_after_its_epochs_of_sampled_prompts(micro_overrides, tmp_path):
    # scale.budget=epochs (paper scale): DAPO's run is algorithm.epochs passes of sampled prompts
    trainer = make_trainer(
        [
            *micro_overrides,
            "algorithm=dapo",
            "scale.budget=epochs",
            "algorithm.epochs=1",
            "scale.steps=50",
            "scale.eval.every=50",
        ],
        tmp_path,
    )
    trainer.task = dataclasses.replace(trainer.task, train=trainer.task.train[:64])  # 2 batches of 32 prompts
    final = trainer.fit()
    assert 64 <= trainer.cursor < 64 + 32 * trainer.cfg.algorithm.max_gen_rounds  # it stopped once 64 were drawn
    assert 1 <= trainer.step <= 2 and final["step"] == trainer.step  # a last evaluation at the last step
    assert trainer.record.evals()[-1]["step"] == trainer.step
    # the same cell under a step budget trains its steps, whatever it samples
    steps = make_trainer([*micro_overrides, "algorithm=dapo", "algorithm.epochs=1", "scale.steps=3"], tmp_path / "s")
    steps.task = dataclasses.replace(steps.task, train=steps.task.train[:64])
    steps.fit()
    assert steps.step == 3 and steps.cursor > 64


def test_the_authors_verification_is_their_symmetric_loss_plus_kl_on_every_row(micro_overrides, tmp_path):
    # pipo=authors on GRPO: −C·min(ρ, clip(ρ, 0.8, 1.2)) + β·low-var KL to the reference, token-mean over the
    # whole batch (rows without a PI reward still carry the KL term), one AdamW step at the actor's rate
    trainer = make_trainer([*micro_overrides, "pipo=authors", *ONE_ADAMW_STEP, "algorithm.kl_coef=0.5"], tmp_path)
    attribution = [0.3, -0.1, 0.2, 0.0, 0.25, -0.3, 0.0, 0.05] * 2
    prev = previous_batch(trainer, attribution)
    prev.batch["ref_log_probs"] = prev.batch["old_log_probs"] - 0.2
    trainer.pipo.previous = prev
    C = 0.7 * prev.attributions
    b, mask = prev.batch, prev.response_mask

    def authors_loss(model):
        lp = log_probs(model, b["input_ids"], b["attention_mask"], b["position_ids"], mask.shape[1])
        ratio = torch.exp(lp - b["old_log_probs"])
        pg = -C * torch.minimum(ratio, ratio.clamp(0.8, 1.2))
        log_ref_ratio = b["ref_log_probs"] - lp
        kl = (torch.exp(log_ref_ratio) - log_ref_ratio - 1).clamp(-10, 10)
        return ((pg + 0.5 * kl) * mask).sum() / mask.sum()

    model, _ = hand_adamw_step(trainer, authors_loss)
    forwarded = count_forwards(trainer.policy)

    m = trainer.pipo.verify(Feedback(J=0.5, mu=0.4, sigma=0.1, delta=0.7, phi=0.7, history=8), trainer.replay)
    assert m["pipo/verified"] == 1.0 and forwarded == [16] and m["pipo/replayed_fraction"] == 1.0
    for (name, ours), theirs in zip(trainer.policy.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.allclose(ours, theirs, atol=1e-6), name


def spy(obj, name: str, calls: list) -> None:
    """Record the positional arguments of each call of ``obj.name``."""
    original = getattr(obj, name)

    def wrapped(*args):
        calls.append(args)
        return original(*args)

    setattr(obj, name, wrapped)


def test_the_authors_j_is_the_trained_batchs_reward_and_their_ppo_gates_its_advantages(micro_overrides, tmp_path):
    # DAPO keeps the informative groups only: J_t = their mean score (no overlong penalty in the authors'
    # DAPO), not the mean over every sampled response that critic/score/mean reports
    dapo = make_trainer([*micro_overrides, "algorithm=dapo", "pipo=authors", "recipe=authors"], tmp_path / "dapo")
    signal_calls = []
    spy(dapo, "learning_signal", signal_calls)
    m = dapo.train_step(1)
    trained_scores = signal_calls[0][2]
    assert m["pipo/J"] == pytest.approx(trained_scores.mean().item())
    assert m["pipo/J"] != pytest.approx(m["critic/score/mean"])  # uniform groups were dropped
    # PPO: the first gate is 0 (empty window), so B_1's policy update has a zero gradient
    ppo = make_trainer([*micro_overrides, "algorithm=ppo", "pipo=authors"], tmp_path / "ppo")
    update_calls = []
    spy(ppo, "exploration_update", update_calls)
    m = ppo.train_step(1)
    assert m["pipo/gate"] == 0.0 and update_calls[0][3]["advantages"].abs().sum() == 0
    assert ppo.actor_cfg.policy_loss.loss_mode == "pipo_layback_ppo"  # and no dual clip, as their ppo_layback


def test_reward_noise_flips_what_the_trainer_sees_and_nothing_else(micro_overrides, tmp_path):
    clean = make_trainer(micro_overrides, tmp_path / "clean")
    sampled = {}
    for p in (1.0, 0.3):
        noisy = make_trainer([*micro_overrides, f"task.reward_noise={p}"], tmp_path / f"p{p}")
        noisy.policy.load_state_dict(clean.policy.state_dict())
        for trainer, name in ((clean, "clean"), (noisy, p), (noisy, f"{p} again")):
            torch.manual_seed(step_seed(trainer.cfg.seed, 1, 0))  # as train_step seeds the step's sampling
            trainer.cursor = 0
            sampled[name] = trainer.sample(1)
    seen, truth = sampled[1.0][3], sampled["clean"][3]
    torch.testing.assert_close(seen, 1.0 - truth)  # p = 1: every outcome flipped
    assert sampled[1.0][4]["critic/clean_score/mean"] == pytest.approx(truth.mean().item())
    flipped = (sampled[0.3][3] != truth).float()
    assert 0.15 < flipped.mean().item() < 0.45  # about 30% of 256 outcomes
    torch.testing.assert_close(sampled["0.3 again"][3], sampled[0.3][3])  # the step's own draws: resumable


def test_training_problems_are_epochs_of_seeded_permutations(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, "algorithm=grpo"], tmp_path)
    train = trainer.task.train
    n = len(train)
    trainer.cursor = n - 3  # three problems left in epoch 0, then epoch 1 begins
    got = trainer.next_problems(5) + trainer.next_problems(2)
    order = [(0, i) for i in range(n - 3, n)] + [(1, i) for i in range(4)]
    want = [train[int(np.random.default_rng([trainer.cfg.seed, e]).permutation(n)[i])] for e, i in order]
    assert got == want and trainer.cursor == n + 4
