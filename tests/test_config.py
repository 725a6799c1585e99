"""Every config composes; a wrong key, type, option or value fails with a clear message."""

import os

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from pipo.config import CONF_DIR, ConfigError, backend_problem, compose_cell, problems, validate


def group_options(group):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["algorithm", "model", "task", "pipo", "scale", "backend", "cluster", "recipe"])
def test_every_option_of_every_group_composes_and_validates(group):
    for option in group_options(group):
        extra = ["scale=paper"] if (group, option) == ("backend", "verl") else []  # verl runs the paper's models
        algorithms = [f"algorithm={a}" for a in ("grpo", "ppo", "gspo", "dapo", "sdpo")] if group == "recipe" else [""]
        for algorithm in algorithms:  # a recipe has a part per algorithm
            cfg = compose_cell([f"{group}={option}", *filter(None, [algorithm]), *extra])
            validate(cfg)
        if group == "recipe":
            assert cfg.recipe == option
        elif "name" in cfg[group]:
            assert cfg[group].name == option


def test_verl_backend_refuses_tiny_cells():
    found = problems(compose_cell(["backend=verl"]))
    assert any("tiny cells run with backend=local" in p for p in found)
    assert problems(compose_cell(["backend=verl", "scale=paper", "algorithm=sdpo"])) == []


def test_one_rule_says_which_backend_runs_which_scale():
    assert backend_problem("tiny", "local") is None and backend_problem("paper", "verl", running=True) is None
    for running in (False, True):  # a tiny cell on verl is never valid
        assert "tiny cells run with backend=local" in backend_problem("tiny", "verl", running)
    assert backend_problem("paper", "local") is None  # planned and signed anywhere ...
    assert "scale=paper runs with backend=verl" in backend_problem("paper", "local", running=True)  # ... not run


def test_defaults_are_the_tiny_grpo_pipo_cell():
    cfg = compose_cell()
    assert (cfg.algorithm.name, cfg.pipo.enabled, cfg.scale.name, cfg.model.name) == (
        "grpo",
        True,
        "tiny",
        "qwen3_4b_base",
    )
    assert cfg.pipo.lr == cfg.scale.lr  # η_PI defaults to the learning rate


def test_unknown_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException) as err:
        compose_cell(["pipo.lamda=0.5"])
    assert "Key 'lamda' not in 'PIPOConfig'" in str(err.value.__cause__)
    # appending with + gets past Hydra's struct flag, not past validation
    assert problems(compose_cell(["+pipo.lamda=0.5"])) == ["pipo.lamda: not a key of PIPOConfig"]


def test_wrong_type_fails_at_composition():
    with pytest.raises(ConfigCompositionException) as err:
        compose_cell(["pipo.window=eight"])
    assert isinstance(err.value.__cause__, ValidationError)
    assert "window" in str(err.value.__cause__)


def test_unknown_option_lists_the_available_ones():
    with pytest.raises(ConfigCompositionException, match=r"(?s)Could not find 'algorithm/grpoo'.*grpo"):
        compose_cell(["algorithm=grpoo"])


def test_values_out_of_range_are_all_listed():
    cfg = compose_cell(["pipo.lam=1.5", "pipo.window=1", "algorithm.rollout_n=1", "wandb.mode=loud"])
    found = problems(cfg)
    assert any("pipo.lam=1.5" in p for p in found)
    assert any("pipo.window=1" in p for p in found)
    assert any("algorithm.rollout_n=1" in p for p in found)
    assert any("wandb.mode='loud'" in p for p in found)
    with pytest.raises(ConfigError, match="λ must lie in"):
        validate(cfg)
    more = problems(compose_cell(["task.reward_noise=1.5", "pipo.performance=sampled", "pipo.ppo_gate=-1"]))
    assert [p.split(":")[0] for p in more] == [
        "pipo.performance='sampled'",
        "pipo.ppo_gate=-1.0",
        "task.reward_noise=1.5",
    ]
    assert problems(compose_cell(["scale=paper", "backend=verl", "task.reward_noise=0.1"])) == [
        "task.reward_noise runs on the local backend (tiny scale) only"
    ]


def test_an_unregistered_verifier_fails_validation_naming_the_registered_ones(tmp_path):
    from pipo.run import run_cell

    cfg = compose_cell(["task.verifier=maths", "task.eval_verifier=exact", f"run_root={tmp_path}"])
    found = [p for p in problems(cfg) if "verifier" in p]
    assert [p.split(":")[0] for p in found] == ["task.verifier='maths'", "task.eval_verifier='exact'"]
    for p in found:  # the built-in tasks' verifiers (conf/task/*.yaml), named
        assert all(f"'{name}'" in p for name in ("code", "math", "mcq", "tool", "tool_exact"))
    with pytest.raises(ConfigError, match=r"task\.verifier='maths'"):
        run_cell(cfg)  # refused before anything runs: no record is started
    assert not any(tmp_path.iterdir())
    assert not [p for p in problems(compose_cell(["task=tool"])) if "verifier" in p]  # tool + tool_exact


def test_batch_divisibility():
    found = problems(compose_cell(["scale.batch_divisor=3"]))
    assert any("not divisible by scale.batch_divisor=3" in p for p in found)


def test_local_slots_from_cores_memory_and_gpus():
    from pipo.config import local_slots

    cores = os.cpu_count()
    mem_gb = int(open("/proc/meminfo").read().split()[1]) / 2**20  # MemTotal, kB
    assert local_slots(1, 0.5, 0) == min(cores, int(mem_gb // 0.5))
    assert local_slots(cores, 1, 0) == 1
    assert local_slots(1, mem_gb * 2, 0) == 1  # never zero
    assert local_slots(1, 1, 8) == 1  # a GPU cell holds the machine


def test_budgets_side_by_side_at_paper_and_tiny_scale():
    from pipo.config import budget

    def of(*overrides):
        return budget(compose_cell(["task=math", *overrides]))

    # paper: epochs over MATH's 7,500 prompts; PPO's 24 epochs of 1,024 match GRPO's 3 of 128 × 8 in responses
    grpo, ppo, dapo = (of("scale=paper", f"algorithm={a}") for a in ("grpo", "ppo", "dapo"))
    assert (grpo.steps, grpo.prompts, grpo.bound) == (176, 176 * 128, "steps")  # ceil(3 · 7500 / 128)
    assert (ppo.steps, ppo.prompts * ppo.rollouts) == (176, 176 * 1024 * 1) == (176, grpo.prompts * 8)
    # DAPO: 9 passes of sampled prompts end the run; its filter trains on what it keeps, ≤ ceil(9 · 7500 / 128) steps
    assert (dapo.steps, dapo.prompts, dapo.bound) == (528, 9 * 7500, "prompts")
    assert dapo.describe() == "≤528 steps, 67,500 prompts, 540,000 responses"
    # tiny: every cell trains 100 steps of 32 prompts; DAPO samples up to 4 batches per step
    assert of("algorithm=grpo").describe() == "100 steps, 3,200 prompts, 25,600 responses"
    assert of("algorithm=dapo").describe() == "100 steps, ≤12,800 prompts, ≤102,400 responses"


def test_the_tiny_learning_rate_is_the_stand_ins_unless_overridden():
    assert compose_cell(["task=code"]).scale.lr == 3e-6  # conf/task/code.yaml: standin.lr
    assert compose_cell(["task=math"]).scale.lr == 1e-5
    assert compose_cell(["task=code", "scale.lr=2e-4"]).scale.lr == 2e-4
    assert compose_cell(["task=code", "scale=paper"]).scale.lr == 1e-6  # paper scale: its own
