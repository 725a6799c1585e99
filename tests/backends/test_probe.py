"""The realized-improvement probe: it observes and never steers; with pipo.performance=probe it is J_t."""

import math

import numpy as np
import pytest
import torch

from pipo.cell import signature
from pipo.config import ConfigError, compose_cell, validate
from tests.backends.test_trainer import make_trainer, state_of

PROBE = ["probe.prompts=6", "probe.samples=3"]


def train(trainer, steps: int) -> list[dict]:
    return [trainer.train_step(t) for t in range(1, steps + 1)]


@pytest.mark.slow
def test_a_run_with_the_probe_trains_bit_identically_to_one_without(micro_overrides, tmp_path):
    cell = [*micro_overrides, "algorithm=grpo", "pipo=on", "scale.batch_divisor=16"]  # 8 prompts × 8 per step
    off, on = make_trainer(cell, tmp_path / "off"), make_trainer([*cell, *PROBE], tmp_path / "on")
    m_off, m_on = train(off, 10), train(on, 10)
    a, b = state_of(off), state_of(on)
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k]), k
    for k, s in a[1]["state"].items():
        for name, v in s.items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b[1]["state"][k][name])), (k, name)
    assert [m["pipo/delta"] for m in m_off] == [m["pipo/delta"] for m in m_on]
    # logged every step: the probe's score of θ_t on 6 × 3 responses (a multiple of 1/18), and J's noise
    for m in m_on:
        assert 0 <= m["probe/score"] <= 1 and math.isclose(m["probe/score"] * 18, round(m["probe/score"] * 18))
        assert m["timing/probe"] > 0 and m["pipo/J_se"] >= 0
    assert all("probe/score" not in m and m["pipo/J_se"] >= 0 for m in m_off)


def test_the_probe_takes_no_rng_state_from_the_run_and_repeats_its_draws(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, *PROBE, "probe.prompts=16", "probe.samples=8"], tmp_path)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    trainer.policy.train()
    first = trainer.probe.score(trainer.policy)
    assert torch.equal(torch.get_rng_state(), before)  # neither read into nor advanced
    assert trainer.policy.training  # the model's mode as it was
    torch.manual_seed(7)  # whatever the run's state, the same θ gets the same draws and the same score
    again = trainer.probe.score(trainer.policy)
    assert first["probe/score"] == again["probe/score"] and first["probe/se"] == again["probe/se"]
    assert len(trainer.probe.problems) == 16 and len({p["prompt"] for p in trainer.probe.problems}) == 16


def test_probe_j_is_the_probes_score_of_the_policy_before_the_step(micro_overrides, tmp_path):
    trainer = make_trainer([*micro_overrides, "algorithm=grpo", *PROBE, "pipo.performance=probe"], tmp_path)
    for m in train(trainer, 3):
        assert m["pipo/J"] == m["probe/score"] and m["pipo/J_se"] == m["probe/se"]
        assert m["pipo/J"] != m["critic/score/mean"] or m["probe/score"] in (0.0, 1.0)


def test_the_probe_is_part_of_a_cells_identity_only_when_it_feeds_j():
    base = compose_cell(["pipo=on"])
    assert signature(compose_cell(["pipo=on", *PROBE])) == signature(base)
    assert signature(compose_cell(["pipo=off", *PROBE])) == signature(compose_cell(["pipo=off"]))
    fed = signature(compose_cell(["pipo=on", *PROBE, "pipo.performance=probe"]))
    assert fed != signature(base)
    assert fed != signature(compose_cell(["pipo=on", "probe.prompts=6", "probe.samples=4", "pipo.performance=probe"]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["pipo.performance=probe"], "pipo.performance=probe takes J_t from the probe"),
        (["probe.prompts=8", "scale=paper", "backend=verl"], "runs on the local backend only"),
        (["probe.prompts=8", "pipo.performance=probe", "scale=paper", "backend=verl"], "local backend only"),
        (["probe.prompts=100000"], "more than the"),
        (["probe.prompts=8", "probe.samples=0"], "probe.samples=0"),
    ],
)
def test_bad_probe_settings_are_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(compose_cell(overrides))


def test_j_se_of_the_local_trainer_is_the_spread_of_the_prompt_means(micro_overrides, tmp_path, monkeypatch):
    """J_se on a batch whose scores are set: 8 responses per prompt, prompt p answered right p mod 5 times."""
    trainer = make_trainer([*micro_overrides, "algorithm=grpo", "pipo=off"], tmp_path)
    real = trainer.sample
    made = np.array([float(i % 8 < (i // 8) % 5) for i in range(8 * trainer.prompts_per_step)])

    def fixed_scores(step):
        problems, roll, _, _, m = real(step)
        made_t = torch.tensor(made, dtype=torch.float32)
        return problems, roll, made_t, made_t, m

    monkeypatch.setattr(trainer, "sample", fixed_scores)
    m = trainer.train_step(1)
    means = made.reshape(-1, 8).mean(1)  # the SE of the mean of equal-size prompt means: a second formula
    assert m["pipo/J_se"] == pytest.approx(means.std(ddof=1) / math.sqrt(len(means)), rel=1e-9)


def test_each_probe_batch_draws_the_same_whatever_the_batch_before_it_consumed(micro_overrides, tmp_path, monkeypatch):
    """Common random numbers across steps: a batch that ran longer (more sampling steps) at θ_t than at
    θ_{t−1} must not shift the next batch's draws."""
    import pipo.backends.local.probe as probe_module

    trainer = make_trainer([*micro_overrides, "probe.prompts=8", "probe.samples=2"], tmp_path)
    trainer.probe.prompts_per_call = 4  # two batches
    real, starts, extra = probe_module.generate, [], [0]

    def generate(*args, **kwargs):
        starts.append(torch.get_rng_state())
        if len(starts) % 2 == 1:
            torch.rand(extra[0])  # the first batch consumes more or fewer draws
        return real(*args, **kwargs)

    monkeypatch.setattr(probe_module, "generate", generate)
    for extra[0] in (0, 1000):
        trainer.probe.score(trainer.policy)
    assert len(starts) == 4
    assert torch.equal(starts[1], starts[3]) and not torch.equal(starts[0], starts[1])
