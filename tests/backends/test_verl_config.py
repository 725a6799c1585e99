"""backend=verl: every paper-scale cell maps onto a verl config that verl's own validation accepts."""

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from pipo.backends.verl.config import verl_config
from pipo.config import ConfigError, compose_cell, problems
from pipo.sweeps import SWEEPS_DIR, load_sweep, plan

GRIDS = sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))
LOCAL_ONLY = {"noise"}  # task.reward_noise runs on the local backend


def test_every_paper_cell_of_every_grid_yields_a_valid_verl_config(monkeypatch):
    # offline, as planning must work anywhere: verl's validation reads the shipped model configs
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checked = sdpo = 0
    for name in GRIDS:
        cells = plan(load_sweep(name), ["scale=paper", "backend=verl"])
        if name == "feedback":  # the realized-improvement probe runs on the local backend: every cell refused
            assert cells and all(
                c.problems == ["the probe (probe.prompts, pipo.performance=probe) runs on the local backend only"]
                for c in cells
            )
            continue
        if name in LOCAL_ONLY:  # its noisy cells are refused on verl, with the reason
            noisy = [c for c in cells if c.cfg.task.reward_noise > 0]
            assert noisy and all(
                c.problems == ["task.reward_noise runs on the local backend (tiny scale) only"] for c in noisy
            )
            cells = [c for c in cells if c not in noisy]
        for cell in cells:
            cfg = cell.cfg
            a, s = cfg.algorithm, cfg.scale
            assert not cell.problems, (cell.label, cell.problems)
            v = verl_config(cfg, planning=True)  # raises unless verl's validate_config accepts it
            actor = v.actor_rollout_ref.actor
            assert v.data.train_batch_size == a.batch_size and actor.ppo_mini_batch_size == a.mini_batch_size
            assert v.actor_rollout_ref.rollout.n == a.rollout_n
            assert (v.data.max_prompt_length, v.data.max_response_length) == (512, 4096)
            assert actor.policy_loss.loss_mode == {"gspo": "gspo"}.get(a.name, "vanilla")  # SDPO: PIPO's PI loss
            assert (actor.clip_ratio_low, actor.clip_ratio_high) == {"gspo": (3e-4, 4e-4), "dapo": (0.2, 0.28)}.get(
                a.name, (0.2, 0.2)
            )
            assert actor.loss_agg_mode == ("seq-mean-token-mean" if a.name == "gspo" else "token-mean")
            assert actor.optim.lr == 1e-6 and v.trainer.total_training_steps == s.steps
            if a.filter_groups:  # DAPO: the paper's 9 passes of sampled prompts end the run (steps ≤ their bound)
                assert a.name == "dapo" and v.trainer.total_epochs == a.epochs == 9
            else:  # verl stops at total_epochs passes too (drop_last batches): the passes must cover the steps
                assert v.trainer.total_epochs * (cfg.task.train_size // a.batch_size) >= s.steps
            if a.name == "ppo":  # critic, GAE, KL 0.001 in the reward and not in the loss
                assert v.critic.enable and v.algorithm.adv_estimator == "gae" and v.critic.optim.lr == 1e-5
                assert v.algorithm.use_kl_in_reward and v.algorithm.kl_ctrl.kl_coef == 0.001
                assert not actor.use_kl_loss
            elif a.name == "sdpo":  # Table 5: 32 prompts × 8, no KL; the reference model is the EMA teacher
                assert (a.batch_size, a.mini_batch_size, a.rollout_n) == (32, 32, 8)
                assert v.algorithm.adv_estimator == "self_teacher" and not v.algorithm.use_kl_in_reward
                assert not actor.use_kl_loss and not v.actor_rollout_ref.ref.fsdp_config.param_offload
                settings = {k: v.sdpo[k] for k in ("is_clip", "teacher_ema", "success_threshold")}
                assert settings == {"is_clip": 2.0, "teacher_ema": 0.05, "success_threshold": 1.0}
                sdpo += 1
            else:  # group-relative, KL 0.001 in the loss
                assert v.algorithm.adv_estimator == "grpo" and not v.algorithm.use_kl_in_reward
                assert actor.use_kl_loss and actor.kl_loss_coef == 0.001 and actor.kl_loss_type == "low_var_kl"
            dapo = a.name == "dapo"
            assert v.algorithm.filter_groups.enable == dapo
            assert v.reward.reward_manager.name == ("dapo" if dapo else "naive")
            if dapo:  # the soft overlong penalty over the last quarter of 4096 tokens, filter on the verifier
                assert v.algorithm.filter_groups.metric == "acc"
                assert v.reward.reward_kwargs.overlong_buffer_cfg.len == 1024
                assert v.reward.reward_kwargs.max_resp_len == 4096
            assert v.reward.custom_reward_function.reward_kwargs.verifier == cfg.task.verifier
            assert [f.split("/")[-2:] for f in v.data.val_files] == [
                [cfg.task.name, f"{b}.parquet"] for b in cfg.task.benchmarks
            ]
            assert ("pipo" in v) == cfg.pipo.enabled
            if cfg.pipo.enabled:
                eta = 0.6 if cfg.pipo.optimizer == "sgd" else 1e-6  # sgd's own η_PI (scale.pi_sgd_lr)
                assert (v.pipo.lam, v.pipo.window, v.pipo.lr) == (cfg.pipo.lam, cfg.pipo.window, eta)
                assert (v.pipo.optimizer, v.pipo.control) == (cfg.pipo.optimizer, cfg.pipo.control)
            assert v.trainer.default_local_dir.endswith(f"paper/{cell.signature}/ckpt")
            checked += 1
    assert checked >= 80 and sdpo == 2 + 9  # table3: SDPO, SDPO+PIPO; report: 3 seeds × (both + its zero twin)
    assert "sdpo" not in verl_config(compose_cell(["scale=paper", "backend=verl", "algorithm=grpo"]))


def test_sdpo_re_prompts_with_each_tasks_own_template(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def sdpo_section(task: str) -> dict:
        cfg = compose_cell(["scale=paper", "backend=verl", "algorithm=sdpo", f"task={task}"])
        return OmegaConf.to_container(verl_config(cfg, planning=True).sdpo)

    code, mcq = sdpo_section("code"), sdpo_section("sciknoweval")
    # SciKnowEval: SDPO's reference wording (lasgroup/SDPO 0e6d510, actor.yaml:131-140), as SDPO ran Table 3
    question, demo = "Which gas? A. O2 B. N2", "<answer>A</answer>"
    solution = mcq["solution_template"].format(solution=demo)
    assert mcq["reprompt_template"].format(prompt=question, solution=solution) == (
        "Which gas? A. O2 B. N2\nCorrect solution:\n\n<answer>A</answer>\n\n"
        "\n\nCorrectly solve the original question.\n"
    )
    # code: its own, naming what its verifier checks
    solution = code["solution_template"].format(solution="print(1)")
    assert code["reprompt_template"].format(prompt="Print 1.", solution=solution) == (
        "Print 1.\nCorrect solution (it passes all the tests):\n\nprint(1)\n\n"
        "\n\nCorrectly solve the original problem: write a program that passes all its tests.\n"
    )
    assert code["is_clip"] == mcq["is_clip"] == 2.0  # the rest of the section is the algorithm's


def test_pipo_off_is_verl_stock_config_and_on_adds_only_the_pipo_section():
    base = ["scale=paper", "backend=verl", "algorithm=dapo", "wandb.mode=disabled"]
    on, off = verl_config(compose_cell([*base, "pipo=on"])), verl_config(compose_cell([*base, "pipo=off"]))
    on_plain, off_plain = OmegaConf.to_container(on), OmegaConf.to_container(off)
    pipo = on_plain.pop("pipo")
    assert pipo == {
        "lam": 0.1,
        "window": 8,
        "min_history": 2,
        "eps": 1e-6,
        "ddof": 0,
        "delta_clip": None,
        "lr": 1e-6,
        "group_norm": "size",
        "optimizer": "shared",
        "control": "none",
        "window_rule": "paper",
        "diff_clip": None,
        "sigma_floor": None,
        "reward_clip": None,
        "preset": "paper",
        "performance": "verifier",
        "pi_loss": "base",
        "kl_in_verification": False,
        "skip_zero": True,
        "scheduler_step": False,
        "ppo_gate": None,
        "algorithm": "dapo",
    }  # the base algorithm, by name
    for plain in (on_plain, off_plain):  # the cell's name and run directories differ, nothing else
        for key in ("experiment_name", "default_local_dir", "validation_data_dir"):
            plain["trainer"].pop(key)
    assert on_plain == off_plain and off.trainer.v1.trainer_mode == "sync"


def test_verl_overrides_reach_the_config_and_unknown_keys_are_refused():
    base = ["scale=paper", "backend=verl", "algorithm=grpo"]
    cfg = verl_config(compose_cell([*base, "+verl.actor_rollout_ref.rollout.gpu_memory_utilization=0.7"]))
    assert cfg.actor_rollout_ref.rollout.gpu_memory_utilization == 0.7
    with pytest.raises(ConfigError, match="not_a_verl_key"):
        verl_config(compose_cell([*base, "+verl.trainer.not_a_verl_key=1"]))
    with pytest.raises(ConfigError, match="verl rejects"):  # verl's own ActorConfig check
        verl_config(compose_cell([*base, "+verl.actor_rollout_ref.actor.loss_agg_mode=bogus"]))
    assert any("backend is not verl" in p for p in problems(compose_cell(["+verl.trainer.save_freq=3"])))
    # a critic's model config that cannot be read: the cause and the key, on the one line a plan shows
    with pytest.raises(ConfigError) as err:
        verl_config(compose_cell(["scale=paper", "backend=verl", "algorithm=ppo", "model.hf_id=/no/such/model"]))
    assert "\n" not in str(err.value) and "/no/such/model" in str(err.value) and "critic.model" in str(err.value)


@pytest.mark.parametrize("cli", [["-m", "pipo.backends.verl.config"], ["reproduce/train.py", "--verl-config"]])
def test_the_cli_prints_the_complete_verl_config(cli):
    out = subprocess.run(
        [sys.executable, *cli, "scale=paper", "backend=verl", "algorithm=gspo", "pipo.lam=0.5"],
        capture_output=True,
        text=True,
        check=True,
        cwd=SWEEPS_DIR.parent,
    ).stdout
    printed = OmegaConf.create(out[out.index("actor_rollout_ref:") :])
    assert printed.actor_rollout_ref.actor.policy_loss.loss_mode == "gspo" and printed.pipo.lam == 0.5
    assert printed.actor_rollout_ref.rollout.name == "vllm" and printed.trainer.v1.trainer_mode == "sync"


@pytest.mark.parametrize("algorithm", ["grpo", "sdpo"])
def test_the_gpu_smoke_scripts_cell_is_a_valid_verl_config(algorithm, hf_dir):
    """reproduce/smoke_gpu.sh cannot run here (no GPU): its train.py overrides must at least compose
    into a cell without problems and a config verl validates."""
    import re
    import shlex

    script = (SWEEPS_DIR.parent / "reproduce" / "smoke_gpu.sh").read_text()
    command = re.search(r"python reproduce/train\.py (.*?)\n\n", script, re.S).group(1).replace("\\\n", " ")
    env = {"ALGORITHM": algorithm, "MODEL": hf_dir, "STEPS": "5", "DATA": "data", "OUT": "runs-smoke"}
    overrides = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], arg) for arg in shlex.split(command)]
    cfg = compose_cell(overrides)
    assert problems(cfg) == [] and cfg.algorithm.name == algorithm and cfg.pipo.enabled
    v = verl_config(cfg)
    assert v.data.train_batch_size == 8 and v.data.max_response_length == 512 and ("sdpo" in v) == (algorithm == "sdpo")


def test_planning_reads_the_shipped_model_configs_and_returns_the_runs_config(monkeypatch):
    # no hub: planning reads model_configs/ (every grid: the test above); a hub request fails at once
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_cell(["scale=paper", "backend=verl", "algorithm=ppo"])
    run = verl_config(cfg, planning=True)  # the config returned is the run's: the real model, its tokenizer
    assert run.critic.model.path == "Qwen/Qwen3-4B-Base" and run.critic.model.hf_config_path is None
    with pytest.raises(ConfigError, match=r"critic\.model"):  # without the shipped configs verl needs the hub
        verl_config(cfg)


def test_shipped_model_configs_are_the_paper_models_sizes():
    import json

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from pipo.backends.verl.config import MODEL_CONFIGS

    # parameter counts of the model cards: Qwen3-4B 4.0B, Qwen3-8B 8.2B
    expected = {"Qwen3-4B-Base": 4.02e9, "Qwen3-8B-Base": 8.19e9, "Qwen3-8B": 8.19e9}
    for name, count in expected.items():
        config = AutoConfig.from_pretrained(MODEL_CONFIGS / name)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        assert sum(p.numel() for p in model.parameters()) == pytest.approx(count, rel=0.01), name
        assert json.loads((MODEL_CONFIGS / name / "config.json").read_text())["vocab_size"] == 151936


def test_checkpoints_kept_and_their_disk_in_the_plan():
    from pipo.backends.verl.config import MODEL_CONFIGS, checkpoint_disk_gb, parameter_count
    from pipo.sweeps import format_plan

    grpo = compose_cell(["scale=paper", "backend=verl", "algorithm=grpo"])
    v = verl_config(grpo, planning=True)
    assert v.trainer.max_actor_ckpt_to_keep == v.trainer.max_critic_ckpt_to_keep == 2  # backend.setup default
    p = parameter_count(MODEL_CONFIGS / "Qwen3-4B-Base" / "config.json")
    assert checkpoint_disk_gb(grpo) == pytest.approx(2 * 12 * p / 1e9)  # 2 × (fp32 weights + AdamW's moments)
    ppo = compose_cell(["scale=paper", "backend=verl", "algorithm=ppo", "backend.setup.max_ckpt_to_keep=3"])
    assert checkpoint_disk_gb(ppo) == pytest.approx(3 * 2 * 12 * p / 1e9)  # + the critic, 3 kept
    text = format_plan(load_sweep("table1"), plan(load_sweep("table1"), ["scale=paper", "backend=verl"]))
    assert f"{2 * 2 * 12 * p / 1e9:6.0f} GB disk" in next(line for line in text.splitlines() if "  ppo · " in line)


def test_attention_is_sdpa_unless_flash_attn_imports(monkeypatch):
    from pipo.backends.verl import config

    cell = ["scale=paper", "backend=verl", "algorithm=ppo"]
    monkeypatch.setattr(config, "flash_attn_available", lambda: False)
    v = verl_config(compose_cell(cell), planning=True)
    assert v.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert v.critic.model.override_config.attn_implementation == "sdpa"
    with pytest.raises(ConfigError, match="flash-attn is not installed"):
        verl_config(compose_cell([*cell, "backend.setup.attn_implementation=flash_attention_2"]), planning=True)
    monkeypatch.setattr(config, "flash_attn_available", lambda: True)
    v = verl_config(compose_cell(cell), planning=True)
    assert v.actor_rollout_ref.model.override_config.attn_implementation == "flash_attention_2"
    # what .[verl] installs decides the default: flash-attn is not among its requirements
    import importlib.metadata

    requirements = importlib.metadata.requires("pipo-repro") or []
    assert not any(r.startswith("flash") for r in requirements)


def test_table1_as_in_the_authors_scripts_plans_valid_verl_configs(monkeypatch):
    # `python reproduce/table1.py --plan scale=paper backend=verl pipo=off,authors recipe=authors`, offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cells = plan(load_sweep("table1"), ["scale=paper", "backend=verl", "pipo=off,authors", "recipe=authors"])
    assert len(cells) == 16 and not [c.problems for c in cells if c.problems]
    for cell in cells:
        cfg, v = cell.cfg, verl_config(cell.cfg, planning=True)
        a, rollout, actor = cfg.algorithm.name, v.actor_rollout_ref.rollout, v.actor_rollout_ref.actor
        assert (rollout.temperature, rollout.top_p) == ((0.7, 0.95) if a == "grpo" else (1.0, 1.0))
        assert rollout.val_kwargs.do_sample and rollout.val_kwargs.temperature == 0.7 and not v.data.shuffle
        assert rollout.val_kwargs.top_p == 1.0 and rollout.val_kwargs.n == 1  # the authors' validation
        assert actor.use_kl_loss == (a in ("grpo", "dapo"))  # GSPO without KL; PPO's is in the reward
        assert v.reward.reward_manager.name == "naive"  # DAPO without the overlong penalty
        assert actor.policy_loss.loss_mode == (
            "pipo_layback_ppo" if a == "ppo" and cfg.pipo.enabled else {"gspo": "gspo"}.get(a, "vanilla")
        )
        if cfg.pipo.enabled:
            assert (v.pipo.preset, v.pipo.window_rule, v.pipo.min_history, v.pipo.performance) == (
                "authors",
                "authors",
                8,
                "trained",
            )
            assert v.pipo.lr == 1e-6 and v.pipo.pi_loss == "authors" and v.pipo.kl_in_verification


def test_mean_at_k_is_refused_on_verl_whose_validation_is_one_answer_per_problem(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cell = ["scale=paper", "backend=verl", "scale.eval.mean_at_k=4"]
    with pytest.raises(ConfigError, match=r"scale\.eval\.mean_at_k=4: verl's validation takes one answer"):
        verl_config(compose_cell(cell), planning=True)
    cells = plan(load_sweep("table4"), [*cell, "pipo.lam=0.1"])  # the plan shows it, before any launch
    assert cells and all(c.status == "invalid" and "mean@k runs on the local backend" in c.problems[0] for c in cells)
