"""docs/EXTENDING.md's recipe "Add a base algorithm", followed step by step for RLOO.

1. its settings, ``conf/algorithm/rloo.yaml`` (here in a config folder of the test's own, found through
   ``hydra.searchpath``), with verl's ``rloo`` advantage estimator;
2. its definition, ``register_base_algorithm(BaseAlgorithm("rloo", min_rollouts=2))``;
3. its PIPO attribution, registered under its name: here a_i = A_i / (G − 1).
Then it trains with PIPO on the local backend, and its paper-scale verl config composes, passes
verl's validation, and the verl trainer's PIPO step replays with RLOO's attribution.
"""

from __future__ import annotations

import pytest
import torch

from pipo.algorithm import BaseAlgorithm, register_attribution, register_base_algorithm
from pipo.cell import run_dir
from pipo.config import CONF_DIR, compose_cell, validate
from pipo.records import RunRecord
from pipo.run import run_cell

RLOO_YAML = """\
name: rloo
adv_estimator: rloo       # verl's leave-one-out estimator
policy_loss: vanilla
batch_size: 128
mini_batch_size: 64
rollout_n: 8
epochs: 3
use_kl_loss: true
kl_coef: 0.001
"""
ATTRIBUTED: list[dict] = []  # each call of the attribution: what it was given


@register_attribution("rloo")
def rloo_attribution(data, config):
    """a_i = A_i / (G − 1) on every token of response i."""
    ATTRIBUTED.append({k: v.clone() for k, v in data.items()})
    return data["advantages"].detach() * data["response_mask"] / (config.group_size - 1)


register_base_algorithm(BaseAlgorithm("rloo", min_rollouts=2))


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("my_conf")
    (root / "algorithm").mkdir()
    (root / "algorithm" / "rloo.yaml").write_text(RLOO_YAML)
    return root


def rloo(conf_dir, *overrides: str):
    return compose_cell(["algorithm=rloo", f"hydra.searchpath=[file://{conf_dir}]", *overrides])


def test_the_new_algorithm_is_checked_against_its_definition(conf_dir):
    assert not (CONF_DIR / "algorithm" / "rloo.yaml").exists()  # nothing added to the project's conf/
    with pytest.raises(ValueError, match="rloo needs >= 2 rollouts per prompt"):
        validate(rloo(conf_dir, "algorithm.rollout_n=1"))
    with pytest.raises(ValueError, match="not in verl's advantage-estimator registry"):
        validate(rloo(conf_dir, "algorithm.adv_estimator=rloo2"))


def test_rloo_trains_with_pipo_on_the_local_backend(conf_dir, micro_overrides):
    ATTRIBUTED.clear()
    cfg = rloo(
        conf_dir,
        *micro_overrides,
        "pipo=on",
        "algorithm.batch_size=16",
        "algorithm.mini_batch_size=8",
        "scale.batch_divisor=4",
        "algorithm.rollout_n=4",
    )
    final = run_cell(cfg)
    assert final is not None and final["step"] == 4
    assert len(ATTRIBUTED) == 4  # one attribution per iteration, by the algorithm's own function
    rows = RunRecord(run_dir(cfg)).metrics()
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all("pipo/verified" in r for r in rows)
    for data in ATTRIBUTED:  # verl's RLOO advantages: each response's score minus the mean of its 3 siblings'
        assert data["advantages"].shape == data["response_mask"].shape


def test_rloo_on_verl_composes_validates_and_replays_with_its_attribution(conf_dir, transfer_queue):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.v1 import PPOTrainerSync
    from verl.utils.config import omega_conf_to_dataclass

    from pipo.backends.verl.config import verl_config
    from pipo.backends.verl.trainer import PIPOTrainer
    from tests.backends.test_verl_trainer import ETA_PI, LENGTHS, CPUWorkerGroup, G, run_step

    cfg = rloo(
        conf_dir,
        "scale=paper",
        "backend=verl",
        "pipo=on",
        "algorithm.rollout_n=2",
        "algorithm.batch_size=2",
        "algorithm.mini_batch_size=2",
        f"pipo.lr={ETA_PI}",
    )
    validate(cfg)
    config = verl_config(cfg)  # verl's own validation passes
    assert config.algorithm.adv_estimator == "rloo" and config.pipo.algorithm == "rloo"
    config.trainer.v1.trainer_mode = "pipo"
    trainer = PIPOTrainer(OmegaConf.create(OmegaConf.to_container(config)))
    trainer.actor_rollout_wg = CPUWorkerGroup(omega_conf_to_dataclass(config.actor_rollout_ref.actor))
    trainer.timing_raw = {}
    original = PPOTrainerSync._update_actor
    PPOTrainerSync._update_actor = lambda self, batch, metrics: batch  # verl's own update: not on a CPU
    try:
        advantages = [0.5, -0.5, 1.0, -1.0]
        for step, accs in enumerate([[1, 0, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]], start=1):
            m = run_step(trainer, step, accs, advantages)
    finally:
        PPOTrainerSync._update_actor = original
    assert m["pipo/verified"] == 1.0
    call = trainer.actor_rollout_wg.actor.calls[-1]
    mask = torch.tensor([[1.0 if j < n else 0.0 for j in range(max(LENGTHS))] for n in LENGTHS])
    expected = m["pipo/phi"] * torch.tensor(advantages)[:, None] / (G - 1) * mask  # φ · A / (G − 1), not A / G
    torch.testing.assert_close(call["advantages"], expected)
