"""A cell's verl config: ``conf/`` (algorithm, model, task, PIPO, scale) mapped onto verl's own tree.

    python -m pipo.backends.verl.config scale=paper algorithm=dapo model=qwen3_8b_base   # print it

verl's ``ppo_trainer`` config is composed through ``pkg://verl.trainer.config`` (so every default is
verl's), the cell's values are set on it key by key (a key verl does not have is an error), then the
cell's ``verl.*`` overrides, and the result passes verl's own ``validate_config``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from pipo.algorithm.algorithms import needs_critic, needs_self_teacher
from pipo.algorithm.settings import NO_DUAL_CLIP
from pipo.backends.verl.records import VALIDATION_DIR
from pipo.cell import label, run_dir
from pipo.config import ConfigError, budget, copy_config
from pipo.tasks.registry import task_definition

REWARD_FN = Path(__file__).with_name("reward.py")


@contextmanager
def _own_hydra() -> Iterator[None]:
    """Let Hydra's compose API run inside a running Hydra app (reproduce/train.py), then restore it."""
    from hydra.core.global_hydra import GlobalHydra

    gh = GlobalHydra.instance()
    saved = gh.hydra
    gh.clear()
    try:
        yield
    finally:
        gh.clear()
        gh.hydra = saved


@functools.cache
def _stock() -> DictConfig:
    from hydra import compose, initialize_config_module

    with _own_hydra(), initialize_config_module("verl.trainer.config", version_base=None):
        return compose("ppo_trainer")


def stock_config() -> DictConfig:
    """verl's own default ``ppo_trainer`` config (a fresh copy: a pickle round trip, 3× faster than deepcopy)."""
    return copy_config(_stock())


ATTENTION = ("sdpa", "eager", "flash_attention_2")


def flash_attn_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def attention(choice: str) -> str:
    """The attention implementation transformers is asked for (``backend.setup.attn_implementation``):
    ``auto`` is flash-attn's where it is installed, PyTorch's SDPA otherwise (``.[verl]`` installs no
    flash-attn; verl's own default, flash_attention_2, would fail to load the model)."""
    if choice == "auto":
        return "flash_attention_2" if flash_attn_available() else "sdpa"
    if choice not in ATTENTION:
        raise ConfigError(f"backend.setup.attn_implementation={choice!r}: expected auto or one of {ATTENTION}")
    if choice == "flash_attention_2" and not flash_attn_available():
        raise ConfigError(
            "backend.setup.attn_implementation=flash_attention_2, but flash-attn is not installed here "
            "(pip install flash-attn --no-build-isolation), or choose sdpa"
        )
    return choice


def gated_ppo(cfg: DictConfig) -> bool:
    """The authors' PPO variant (``pipo.ppo_gate``): B_t trains on gated advantages without the dual clip."""
    return cfg.pipo.enabled and cfg.pipo.ppo_gate is not None and needs_critic(cfg.algorithm)


def cell_values(cfg: DictConfig) -> dict[str, Any]:
    """The verl keys a cell sets (dotted key → value), from Table 5 of the paper and ``conf/``."""
    a, s, t, m, b = cfg.algorithm, cfg.scale, cfg.task, cfg.model, cfg.backend.setup
    div = s.batch_divisor
    data = Path(b.data_dir).resolve() / t.name  # absolute: verl's processes need not share our cwd
    ckpt = run_dir(cfg).resolve() / "ckpt"
    actor, rollout, ref = "actor_rollout_ref.actor", "actor_rollout_ref.rollout", "actor_rollout_ref.ref"
    v: dict[str, Any] = {
        "data.train_files": str(data / "train.parquet"),
        "data.val_files": [str(data / f"{name}.parquet") for name in t.benchmarks],
        "data.train_batch_size": a.batch_size // div,
        "data.max_prompt_length": s.max_prompt_length,
        "data.max_response_length": s.max_response_length,
        "data.seed": cfg.seed,
        "data.shuffle": s.shuffle,
        "data.filter_overlong_prompts": True,
        "data.truncation": "left",
        "actor_rollout_ref.model.path": m.hf_id,
        "actor_rollout_ref.model.enable_gradient_checkpointing": b.gradient_checkpointing,
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.model.override_config": {"attn_implementation": attention(b.attn_implementation)},
        f"{actor}.optim.lr": s.lr,
        f"{actor}.optim.weight_decay": s.weight_decay,
        f"{actor}.optim.betas": list(s.betas),
        f"{actor}.grad_clip": s.grad_clip,
        f"{actor}.ppo_mini_batch_size": a.mini_batch_size // div,
        f"{actor}.use_dynamic_bsz": True,
        f"{actor}.ppo_max_token_len_per_gpu": b.max_token_len_per_gpu,
        f"{actor}.policy_loss.loss_mode": NO_DUAL_CLIP if gated_ppo(cfg) else a.policy_loss,
        f"{actor}.loss_agg_mode": a.loss_agg_mode,
        f"{actor}.clip_ratio": a.clip_ratio_low,  # the symmetric ε of pipo.pi_loss=authors (as locally)
        f"{actor}.clip_ratio_low": a.clip_ratio_low,
        f"{actor}.clip_ratio_high": a.clip_ratio_high,
        f"{actor}.clip_ratio_c": a.clip_ratio_c,
        f"{actor}.use_kl_loss": a.use_kl_loss,
        f"{actor}.kl_loss_coef": a.kl_coef if a.use_kl_loss else 0.0,
        f"{actor}.kl_loss_type": a.kl_type,
        f"{actor}.entropy_coeff": a.entropy_coeff,
        f"{actor}.fsdp_config.param_offload": b.param_offload,
        f"{actor}.fsdp_config.optimizer_offload": b.optimizer_offload,
        f"{rollout}.name": b.rollout,
        f"{rollout}.n": a.rollout_n,
        f"{rollout}.temperature": s.temperature,
        f"{rollout}.top_p": s.top_p,
        f"{rollout}.gpu_memory_utilization": b.gpu_memory_utilization,
        f"{rollout}.tensor_model_parallel_size": b.tensor_parallel_size,
        f"{rollout}.log_prob_use_dynamic_bsz": True,
        f"{rollout}.log_prob_max_token_len_per_gpu": b.log_prob_max_token_len_per_gpu,
        f"{rollout}.calculate_log_probs": True,
        # Pass@1 is one answer per problem, greedy (docs/ALGORITHM.md, "Evaluation choices") unless
        # scale.eval.temperature samples it (the authors' validation, at top-p 1.0 as theirs and as the
        # local backend's sampled Pass@1; scale.top_p is the rollout's, and local mean@k's)
        f"{rollout}.val_kwargs.n": 1,
        f"{rollout}.val_kwargs.do_sample": s.eval.temperature > 0,
        f"{rollout}.val_kwargs.temperature": s.eval.temperature,
        f"{rollout}.val_kwargs.top_p": 1.0,
        f"{ref}.log_prob_use_dynamic_bsz": True,
        f"{ref}.log_prob_max_token_len_per_gpu": b.log_prob_max_token_len_per_gpu,
        f"{ref}.fsdp_config.param_offload": True,
        "algorithm.adv_estimator": a.adv_estimator,
        "algorithm.norm_adv_by_std_in_grpo": a.norm_adv_by_std,
        "algorithm.use_kl_in_reward": a.use_kl_in_reward,
        "algorithm.kl_penalty": a.kl_type,
        "algorithm.kl_ctrl.kl_coef": a.kl_coef if a.use_kl_in_reward else 0.0,
        "algorithm.gamma": a.gamma,
        "algorithm.lam": a.gae_lambda,
        "reward.custom_reward_function.path": str(REWARD_FN),
        "reward.custom_reward_function.name": "compute_score",
        "trainer.nnodes": 1,
        "trainer.n_gpus_per_node": s.resources.gpus,
        # the budget (pipo.config.budget): verl stops at total_training_steps or after total_epochs passes of
        # whole batches of prompts, whichever comes first. Prompts bound DAPO's run at paper scale (its
        # epochs, as the paper's verl counts them); otherwise the steps do, with passes enough for them
        # however many prompts verl drops for their length (one batch per pass is enough)
        "trainer.total_training_steps": s.steps,
        "trainer.total_epochs": a.epochs if budget(cfg).bound == "prompts" else s.steps * a.max_gen_rounds,
        "trainer.save_freq": s.save_every,
        "trainer.max_actor_ckpt_to_keep": b.max_ckpt_to_keep,
        "trainer.max_critic_ckpt_to_keep": b.max_ckpt_to_keep,
        "trainer.test_freq": s.eval.every,
        "trainer.validation_data_dir": str(run_dir(cfg).resolve() / VALIDATION_DIR),  # per-problem outcomes
        "trainer.critic_warmup": a.critic_warmup_steps,
        "trainer.default_local_dir": str(ckpt),
        "trainer.resume_mode": "auto",
        "trainer.project_name": cfg.wandb.project,
        "trainer.experiment_name": label(cfg),
        "trainer.logger": ["console", "file"] + ([] if cfg.wandb.mode == "disabled" else ["wandb"]),
        "trainer.device": cfg.backend.device,
        "trainer.use_v1": True,
        "trainer.v1.trainer_mode": "sync",
    }
    if needs_critic(a):  # PPO: a critic on the same model
        v |= {
            "critic.enable": True,
            "critic.model.path": m.hf_id,
            "critic.model.override_config": {"attn_implementation": attention(b.attn_implementation)},
            "critic.optim.lr": s.critic_lr,
            "critic.optim.weight_decay": s.weight_decay,
            "critic.ppo_mini_batch_size": a.mini_batch_size // div,
            "critic.use_dynamic_bsz": True,
            "critic.ppo_max_token_len_per_gpu": b.max_token_len_per_gpu,
            "critic.cliprange_value": a.cliprange_value,
            "critic.grad_clip": s.grad_clip,
        }
    if a.filter_groups:  # DAPO: drop groups whose verifier scores are all equal (verl's v1 refills the batch)
        v |= {
            "algorithm.filter_groups.enable": True,
            "algorithm.filter_groups.metric": "acc",
        }
    if a.overlong_buffer_fraction > 0:  # DAPO's soft overlong penalty, through verl's dapo reward manager
        v["reward.reward_manager.name"] = "dapo"
    if needs_self_teacher(a):  # SDPO: verl's reference model is the EMA teacher, used every step
        # and moved towards the actor, so it stays on the GPU; its inputs hold a sibling's response too
        v |= {
            f"{ref}.fsdp_config.param_offload": False,
            f"{ref}.log_prob_max_token_len_per_gpu": b.log_prob_max_token_len_per_gpu + s.max_response_length,
        }
    return v


def _reward_kwargs(cfg: DictConfig) -> dict[str, Any]:
    """What ``reward.py`` needs, and DAPO's overlong buffer as verl's dapo reward manager reads it."""
    out: dict[str, Any] = {
        "verifier": cfg.task.verifier,
        "eval_verifier": cfg.task.eval_verifier,
        "benchmarks": list(cfg.task.benchmarks),
    }
    a, length = cfg.algorithm, cfg.scale.max_response_length
    if a.overlong_buffer_fraction > 0:
        out["overlong_buffer_cfg"] = {
            "enable": True,
            "len": int(length * a.overlong_buffer_fraction),
            "penalty_factor": a.overlong_penalty_factor,
            "log": False,
        }
        out["max_resp_len"] = length
    return out


def verl_config(cfg: DictConfig, planning: bool = False) -> DictConfig:
    """The complete verl config of the cell ``cfg`` (backend=verl), validated by verl.

    With PIPO on it carries a ``pipo`` section that the PIPO trainer reads, for SDPO an ``sdpo`` section
    (``pipo.backends.verl.sdpo``: its settings and the task's re-prompt, ``TaskDefinition.teacher_prompt``);
    otherwise it is exactly the config verl's stock trainer runs.
    ``planning``: verl's validation reads the shipped configs of the paper's models
    (``model_configs/``), so a plan needs no network; the returned config is the run's all the same.
    """
    if cfg.backend.name != "verl":
        raise ConfigError(f"backend={cfg.backend.name}: a verl config is made for backend=verl only")
    if cfg.scale.eval.mean_at_k:  # verl validates once, with val_kwargs: that is Pass@1's one answer
        raise ConfigError(
            f"scale.eval.mean_at_k={cfg.scale.eval.mean_at_k}: verl's validation takes one answer per problem "
            "(Pass@1); mean@k runs on the local backend"
        )
    out = stock_config()
    for key, value in cell_values(cfg).items():
        if not _has(out, key):
            raise ConfigError(f"verl {_version()} has no config key {key!r} (the PIPO mapping needs updating)")
        OmegaConf.update(out, key, value, merge=False)
    reward_kwargs = _reward_kwargs(cfg)
    with open_dict(out):
        out.reward["reward_kwargs"] = reward_kwargs  # verl's dapo reward manager reads it here
        out.reward.custom_reward_function["reward_kwargs"] = {
            k: reward_kwargs[k]
            for k in ("verifier", "eval_verifier", "benchmarks")  # compute_score's keyword arguments
        }
        if cfg.pipo.enabled:  # what pipo.backends.verl.trainer.PIPOTrainer reads
            pipo = {k: v for k, v in OmegaConf.to_container(cfg.pipo, resolve=True).items() if k != "enabled"}
            out["pipo"] = {**pipo, "algorithm": cfg.algorithm.name}  # its definition and attribution
        if needs_self_teacher(cfg.algorithm):  # what pipo.backends.verl.sdpo reads
            a, prompt = cfg.algorithm, task_definition(cfg.task).teacher_prompt  # the task's own re-prompt
            out["sdpo"] = {
                "is_clip": a.is_clip,
                "teacher_ema": a.teacher_ema,
                "success_threshold": a.success_threshold,
                "reprompt_template": prompt.reprompt,
                "solution_template": prompt.solution,
            }
    if cfg.verl:
        try:
            out = OmegaConf.merge(out, OmegaConf.to_container(cfg.verl, resolve=True))
        except Exception as err:  # omegaconf names the key verl does not have
            raise ConfigError(f"verl.* override rejected by verl's config: {err}") from err
    validate_verl(offline_models(out) if planning else out)
    return out


MODEL_CONFIGS = Path(__file__).with_name("model_configs")


def planning_model_dir(model: str) -> Path | None:
    """The shipped config directory of a hub model id (``Qwen/Qwen3-4B-Base``), None for a local
    directory or a model without one."""
    if Path(model).expanduser().is_dir():
        return None
    shipped = MODEL_CONFIGS / model.rstrip("/").split("/")[-1]
    return shipped if (shipped / "config.json").exists() else None


def offline_models(config: DictConfig) -> DictConfig:
    """A copy of ``config`` whose model configs verl's validation reads from ``model_configs/`` (no
    tokenizer: validation needs none) wherever the model is a hub id that one is shipped for."""
    out = copy_config(config)
    for node in (out.actor_rollout_ref.model, out.critic.model):
        shipped = planning_model_dir(str(node.path))
        if shipped is not None:
            with open_dict(node):
                node.hf_config_path = str(shipped)
                node.load_tokenizer = False
    return out


CHECKPOINT_BYTES_PER_PARAMETER = 12  # verl's FSDP checkpoint: fp32 weights (4) and AdamW's two moments (8)


def parameter_count(config_json: Path) -> int:
    """A Qwen3 model's parameter count from its ``config.json`` (embeddings, layers, head)."""
    import json

    c = json.loads(config_json.read_text())
    h, inter, v, hd = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["head_dim"]
    heads, kv = c["num_attention_heads"], c["num_key_value_heads"]
    attention = h * heads * hd * 2 + h * kv * hd * 2 + 2 * hd  # q, o; k, v; q/k norms
    layer = attention + 3 * h * inter + 2 * h  # + the gated MLP and the two norms
    return v * h * (1 if c.get("tie_word_embeddings") else 2) + c["num_hidden_layers"] * layer + h


def checkpoint_disk_gb(cfg: DictConfig) -> float | None:
    """The disk the cell's verl checkpoints take at most: ``backend.setup.max_ckpt_to_keep`` of them, each
    the actor (and PPO's critic) with its optimizer, SDPO's teacher beside; None for a model without a
    shipped config (a local directory's size is not known here)."""
    model = planning_model_dir(cfg.model.hf_id)
    if model is None:
        return None
    p = parameter_count(model / "config.json")
    per_checkpoint = p * CHECKPOINT_BYTES_PER_PARAMETER * (2 if needs_critic(cfg.algorithm) else 1)
    if needs_self_teacher(cfg.algorithm):
        per_checkpoint += p * 4  # the EMA teacher's fp32 shards
    return cfg.backend.setup.max_ckpt_to_keep * per_checkpoint / 1e9


# keys verl's validation does not read (run paths and names, the data seed, PIPO's and SDPO's own sections)
UNVALIDATED = (
    "pipo",
    "sdpo",
    "trainer.default_local_dir",
    "trainer.experiment_name",
    "trainer.validation_data_dir",
    "data.seed",
)
_VERDICTS: dict[str, str | None] = {}  # verl's verdict per config without them: a grid's cells share most


def validate_verl(config: DictConfig) -> None:
    """verl's own validation (``verl.utils.config.validate_config``), errors as ``ConfigError``; a config
    that differs from one already validated only in ``UNVALIDATED`` keys gets the same verdict."""
    key = _verdict_key(config)
    if key not in _VERDICTS:
        _VERDICTS[key] = _verl_verdict(config)
    if _VERDICTS[key] is not None:
        raise ConfigError(f"verl rejects the config: {_VERDICTS[key]}")


def _verdict_key(config: DictConfig) -> str:
    import json

    plain = OmegaConf.to_container(config, resolve=False)  # interpolations as written: equal trees resolve alike
    for dotted in UNVALIDATED:
        *parents, leaf = dotted.split(".")
        node = plain
        for part in parents:
            node = node.get(part, {})
        node.pop(leaf, None)
    return json.dumps(plain, sort_keys=True, default=str)


def _verl_verdict(config: DictConfig) -> str | None:
    """None if verl accepts ``config``, else why not (one line)."""
    from hydra.errors import InstantiationException
    from verl.utils.config import validate_config

    use_critic = (
        bool(config.critic.enable) if config.critic.enable is not None else config.algorithm.adv_estimator == "gae"
    )
    use_reference = bool(config.algorithm.get("use_kl_in_reward", False) or config.actor_rollout_ref.actor.use_kl_loss)
    try:  # (verl.trainer.ppo.utils' need_critic / need_reference_policy, without importing its trainer stack)
        with contextlib.redirect_stdout(io.StringIO()):  # verl prints its verdict; ours is the exception
            validate_config(config, use_reference_policy=use_reference, use_critic=use_critic)
    except (AssertionError, ValueError, TypeError, InstantiationException) as err:
        # one line: a sweep's plan shows the first line of a cell's problem (e.g. a model whose config
        # cannot be fetched: hydra's "Error in call to target …" line, then the cause and the key)
        return " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return None


def _has(config: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(config, parent) if parent else config
    return isinstance(node, DictConfig) and leaf in node.keys()


def _version() -> str:
    import verl

    return verl.__version__


def main(argv: list[str] | None = None) -> int:
    """Print the complete verl config of the cell given by ``argv``'s overrides (backend=verl implied)."""
    from pipo.config import compose_cell, validate

    argv = sys.argv[1:] if argv is None else argv
    if {"-h", "--help"} & set(argv):
        print(__doc__)
        return 0
    overrides = [a for a in argv if not a.startswith("backend=")] + ["backend=verl"]
    try:
        cfg = compose_cell(overrides)
        validate(cfg)
        print(OmegaConf.to_yaml(verl_config(cfg), resolve=True))
    except Exception as err:  # noqa: BLE001 - a bad override or cell: the message, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
