"""Typed schemas of the Hydra config groups, and the checks a composed cell must pass.

The YAML files under ``conf/`` hold the values; these dataclasses hold the shape, so a
misspelt key or a value of the wrong type fails at composition with Hydra's message.
``validate`` then checks what types cannot (ranges, divisibility) and lists every problem.
"""

from __future__ import annotations

import functools
import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf, flag_override

from pipo.algorithm.algorithms import algorithm_problems, registry_problems
from pipo.algorithm.settings import CONTROLS, GROUP_NORMS, OPTIMIZERS, PERFORMANCES, PI_LOSSES, WINDOW_RULES


@dataclass
class AlgorithmConfig:
    """A base algorithm's settings at paper scale (Table 5); ``scale`` divides the batch sizes."""

    name: str = MISSING
    adv_estimator: str = MISSING  # verl advantage estimator name
    policy_loss: str = MISSING  # verl policy loss name
    loss_agg_mode: str = "token-mean"
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.2
    clip_ratio_c: float = 3.0
    batch_size: int = MISSING  # prompts per iteration
    mini_batch_size: int = MISSING  # prompts per optimizer step
    rollout_n: int = MISSING
    epochs: int = 1  # passes over the training data at paper scale
    norm_adv_by_std: bool = True
    use_kl_loss: bool = False  # KL to the reference model as a loss term (GRPO, GSPO, DAPO)
    use_kl_in_reward: bool = False  # KL to the reference model as a per-token reward penalty (PPO)
    kl_coef: float = 0.0
    kl_type: str = "low_var_kl"  # verl kl_penalty name
    entropy_coeff: float = 0.0
    # PPO: a critic (value head on the same architecture) and GAE
    critic_warmup_steps: int = 0  # iterations that train only the critic
    cliprange_value: float = 0.5
    gamma: float = 1.0
    gae_lambda: float = 1.0
    # DAPO: dynamic sampling and the soft overlong penalty
    filter_groups: bool = False  # drop groups whose scores are all equal, sample more until the batch is full
    max_gen_rounds: int = 1  # bound on generation rounds per iteration when filtering
    overlong_buffer_fraction: float = 0.0  # of max_response_length; 0: no overlong penalty
    overlong_penalty_factor: float = 1.0
    # SDPO: self-teacher
    teacher_ema: float = 0.05  # τ: teacher ← (1 − τ) teacher + τ student after each update
    is_clip: float = 2.0  # clamp of the student's importance weight
    success_threshold: float = 1.0  # a sibling rollout with a score ≥ this is a demonstration


@dataclass
class TinyModelConfig:
    """How a tiny stand-in is built: Qwen3Config fields and the supervised warm-up."""

    arch: dict[str, Any] = field(default_factory=dict)
    sft_steps: int = 2000
    sft_batch_size: int = 64
    sft_lr: float = 3e-3
    sft_seed: int = 0


@dataclass
class ModelConfig:
    name: str = MISSING
    hf_id: str = MISSING  # the paper's model
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


@dataclass
class StandinSplit:
    stands_for: str = MISSING  # the paper benchmark this split stands in for
    level: int = MISSING
    size: int = MISSING
    kind: str | None = None  # generator-specific (toy_code: stdio | function)


@dataclass
class StandinConfig:
    """The tiny-scale stand-in of a task: a generator and its splits."""

    generator: str = MISSING
    data_seed: int = 0
    train_size: int = MISSING
    max_prompt_length: int = 16  # tokens (characters) at tiny scale
    max_response_length: int = 16
    lr: float = 1.0e-5  # the tiny scale's learning rate on this stand-in (docs/ALGORITHM.md, "The tiny testbed")
    splits: dict[str, StandinSplit] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # generator-specific


@dataclass
class TaskConfig:
    name: str = MISSING
    verifier: str = MISSING  # the training reward (pipo/tasks/registry.py:VERIFIERS)
    eval_verifier: str | None = None  # the benchmarks' metric when it differs (0/1 for Pass@1)
    train_size: int = MISSING  # the paper's training set (sets the paper scale's number of iterations)
    benchmarks: list[str] = field(default_factory=list)
    standin: StandinConfig = field(default_factory=StandinConfig)
    reward_noise: float = 0.0  # each training verifier outcome s becomes 1 − s with this probability


@dataclass
class PIPOConfig:
    """PIPO's settings (docs/ALGORITHM.md, "Choices the paper leaves open"); ``enabled: false``: the base
    algorithm alone."""

    enabled: bool = MISSING
    preset: str = "paper"  # the reading these settings start from: paper (conf/pipo/on.yaml) | authors
    lam: float = 0.1  # rectification λ
    window: int = 8  # K, the sliding-window length
    min_history: int = 2  # no verification while fewer J values are in the window
    eps: float = 1e-6
    ddof: int = 0  # 0: population std of the window
    delta_clip: float | None = None  # bound on |δ|; null: none (paper)
    lr: float = MISSING  # η_PI
    group_norm: str = "size"  # size: a_i = A_i / G; none: a_i = A_i
    optimizer: str = "shared"  # the verification update's: shared (the actor's AdamW) | separate | sgd (Eq. 11)
    control: str = "none"  # none | zero | shuffle | flip: controls that keep the update, not the feedback
    window_rule: str = "paper"  # paper | authors: J_t in the anchor, each value pushed twice (docs/FIDELITY.md)
    diff_clip: float | None = None  # bound on |J − μ| before dividing by σ (authors: 5)
    sigma_floor: float | None = None  # σ below it (or a one-value window) counts as 1 (authors: 1e-6)
    reward_clip: float | None = None  # bound on |δ·a_u|, λ applied after it (authors: 10)
    performance: str = "verifier"  # J_t: verifier | trained (the trained batch's rewards, authors) | probe
    pi_loss: str = "base"  # verification loss: base | authors (pipo/algorithm/losses.py)
    kl_in_verification: bool = False  # the base algorithm's KL loss in the verification loss (authors)
    skip_zero: bool = True  # no verification step when every PI reward is zero (authors: false)
    scheduler_step: bool = False  # verification steps the LR scheduler once more (authors; verl)
    ppo_gate: float | None = None  # critic algorithms: B_t's advantages × clip(ξ', ±gate) (authors: 2)


@dataclass
class ProbeConfig:
    """The realized-improvement probe (local backend; docs/ALGORITHM.md, "Is the feedback right?"): before
    every iteration the policy is scored on ``prompts`` fixed training prompts, ``samples`` responses each,
    with one sampling seed for the whole run. Evaluation only, unless ``pipo.performance=probe``."""

    prompts: int = 0  # 0: off
    samples: int = 8


@dataclass
class EvalConfig:
    every: int = 25  # steps between evaluations (also at step 0 and at the end)
    temperature: float = 0.0  # Pass@1's one answer per problem: 0 greedy; > 0 sampled (authors: 0.7)
    mean_at_k: int = 4  # samples per problem for mean@k at the sampling temperature; 0: off
    batch_size: int = 512


@dataclass
class CostConfig:
    """The assumptions of the plan's GPU-hours (``pipo.cost``; BENCHMARKS.md §5). The defaults are the
    paper-scale ones that ``conf/scale/paper.yaml`` spells out; a cell without GPUs costs no GPU-hours."""

    prompt_tokens: int = 200  # mean tokens of a prompt and of a response (of the lengths allowed)
    response_tokens: int = 2000
    decode_cost: float = 8.0  # g: a decoded token in forward-token units (decoding is memory-bound)
    dapo_rounds: float = 1.5  # filter_groups: mean generation rounds per step
    replayed: float = 1.0  # f: share of the previous batch the verification step forwards (1: all of it)
    peak_tflops: float = 989.0  # per GPU, dense bf16 (H100 / H200)
    mfu: float | None = None  # fraction of peak over a step; None: the measured one, else assumed_mfu
    assumed_mfu: float = 0.35  # used until reproduce/gpu_check.sh has measured it (conf/gpu_measured.json)


@dataclass
class ResourcesConfig:
    """What one cell's job asks the cluster for (used by cluster=slurm and the plan's estimate)."""

    gpus: int = 0
    cpus: int = 2
    mem_gb: int = 8
    timeout_min: int = 60
    cpu_step_seconds: float = 0.7  # one iteration's wall time on `cpus` cores: the plan's estimate without GPUs
    est_probe_factor: float = 0.0  # the probe's time per response over a step's per trained response (the plan's)
    cost: CostConfig = field(default_factory=CostConfig)  # the plan's GPU-hours (pipo.cost)


@dataclass
class ScaleConfig:
    """Budget and shared hyperparameters of a scale."""

    name: str = MISSING
    batch_divisor: int = 1  # algorithm.batch_size and mini_batch_size are divided by it
    steps: int = MISSING  # training iterations (budget=epochs: their bound)
    budget: str = (
        "steps"  # what ends a run: steps (scale.steps iterations) | epochs (algorithm.epochs passes of prompts)
    )
    max_prompt_length: int = MISSING
    max_response_length: int = MISSING
    temperature: float = 1.0
    top_p: float = 1.0  # rollout nucleus sampling
    shuffle: bool = True  # seeded data order; false: the training file's order (the authors' scripts)
    lr: float = MISSING
    pi_sgd_lr: float = MISSING  # η_PI's default under pipo.optimizer=sgd (docs/ALGORITHM.md)
    critic_lr: float = MISSING
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0
    save_every: int = 10
    eval: EvalConfig = field(default_factory=EvalConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


@dataclass
class BackendConfig:
    name: str = MISSING
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0: leave torch's default
    setup: dict[str, Any] | None = None  # backend=verl: how the node runs it (not part of a cell's identity)


@dataclass
class ClusterConfig:
    name: str = MISSING


@dataclass
class WandbConfig:
    mode: str = "offline"  # online | offline | disabled
    project: str = "pipo"
    entity: str | None = None
    group: str | None = None


@dataclass
class TrainConfig:
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    pipo: PIPOConfig = field(default_factory=PIPOConfig)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    seed: int = 42  # data seed: data order and sampling; the starting model is the same
    recipe: str = "paper"  # base-algorithm and sampling settings: paper (Table 5) | authors (their scripts)
    sweep: str | None = None  # the sweep a cell was launched by (W&B group); not part of its identity
    force: bool = False  # rerun a cell whose record says done
    run_root: str = "runs"
    cache_dir: str = ".cache/pipo"
    verl: dict[str, Any] = field(default_factory=dict)  # backend=verl: any verl key (+verl.trainer.save_freq=5)


@dataclass(frozen=True)
class Budget:
    """A cell's training budget: iterations and prompts sampled, and which of the two ends the run."""

    steps: int  # an upper bound when prompts end the run
    prompts: int  # an upper bound when steps end a run whose filter draws more prompts
    bound: str  # steps | prompts
    filtered: bool  # the algorithm drops groups and samples more prompts to fill its batch
    rollouts: int  # responses per prompt

    def describe(self) -> str:
        """e.g. ``176 steps, 22,528 prompts, 180,224 responses``; ≤ marks an upper bound."""
        steps = f"{'≤' if self.bound == 'prompts' else ''}{self.steps:,} steps"
        at_most = "≤" if self.bound == "steps" and self.filtered else ""
        return f"{steps}, {at_most}{self.prompts:,} prompts, {at_most}{self.prompts * self.rollouts:,} responses"


def budget(cfg: Any) -> Budget:
    """The budget of a composed cell (``scale.budget``, docs/ALGORITHM.md "Training budget"):
    ``steps``: ``scale.steps`` iterations, a filtering algorithm (DAPO) drawing up to
    ``max_gen_rounds`` batches of prompts each; ``epochs``: ``algorithm.epochs`` passes of sampled
    prompts over the training set, as verl counts epochs — for DAPO the paper's 9 passes, of which
    its filter trains on what it keeps (``scale.steps`` then bounds the iterations)."""
    a, s = cfg.algorithm, cfg.scale
    per_step = a.batch_size // s.batch_divisor
    filtered = bool(a.filter_groups)
    if s.budget == "epochs" and filtered:
        return Budget(s.steps, a.epochs * cfg.task.train_size, "prompts", filtered, a.rollout_n)
    rounds = a.max_gen_rounds if filtered else 1
    return Budget(s.steps, s.steps * per_step * rounds, "steps", filtered, a.rollout_n)


def iterations(epochs: int, train_size: int, batch_size: int) -> int:
    """Iterations of ``epochs`` passes over ``train_size`` prompts, ``batch_size`` per iteration."""
    return math.ceil(epochs * train_size / batch_size)


def local_slots(cpus: int, mem_gb: float, gpus: int) -> int:
    """How many cells of this size run at once on this machine (``cluster=local``)."""
    if gpus > 0:
        return 1  # one cell holds the machine's GPUs
    mem_total_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return max(1, min((os.cpu_count() or 1) // max(cpus, 1), int(mem_total_gb // max(mem_gb, 1e-9))))


def register_schemas() -> None:
    """Register the schema that ``conf/train.yaml`` lists first in its defaults, and our resolvers."""
    store = ConfigStore.instance()
    if "train_schema.yaml" not in store.repo:  # storing converts the dataclass anew: once per process
        store.store(name="train_schema", node=TrainConfig)
    if not OmegaConf.has_resolver("iterations"):
        OmegaConf.register_new_resolver("iterations", iterations)
    if not OmegaConf.has_resolver("or_default"):  # ${or_default:${sweep},adhoc}: a null value's stand-in
        OmegaConf.register_new_resolver("or_default", lambda x, default: default if x is None else x)
    if not OmegaConf.has_resolver("pi_lr"):  # η_PI's default: the actor's lr for AdamW, its own for sgd
        OmegaConf.register_new_resolver("pi_lr", lambda optimizer, adam, sgd: sgd if optimizer == "sgd" else adam)
    if not OmegaConf.has_resolver("local_slots"):
        OmegaConf.register_new_resolver("local_slots", local_slots)
    if not OmegaConf.has_resolver("nonzero_or_null"):  # e.g. no --gpus-per-node=0 for a CPU-only job
        OmegaConf.register_new_resolver("nonzero_or_null", lambda x: x if x else None)


class ConfigError(ValueError):
    """A composed cell that cannot run; the message lists every problem."""


WANDB_MODES = ("online", "offline", "disabled")
LOSS_AGG_MODES = ("token-mean", "token-sum", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm")


@functools.cache
def _schema_keys() -> tuple[str, dict[str, Any]] | None:
    """The keys of ``TrainConfig``, nested (see ``_keys_of``), worked out once."""
    return _keys_of(OmegaConf.structured(TrainConfig))


def _keys_of(schema: Any) -> tuple[str, dict[str, Any]] | None:
    """(class name, {key: its own schema keys, or None for a value or a free-form dict}) of a schema."""
    if not (isinstance(schema, DictConfig) and is_dataclass(OmegaConf.get_type(schema))):
        return None
    return OmegaConf.get_type(schema).__name__, {k: _keys_of(schema._get_node(k)) for k in schema.keys()}


def _unknown_keys(node: Any, schema: tuple[str, dict[str, Any]] | None, path: str) -> list[str]:
    """Keys of ``node`` that its schema does not define (a ``+key=`` override gets past the struct flag)."""
    if not (isinstance(node, dict) and schema):
        return []
    name, keys = schema
    out = []
    for key, value in node.items():
        if key not in keys:
            out.append(f"{path}{key}: not a key of {name}")
        else:
            out.extend(_unknown_keys(value, keys[key], f"{path}{key}."))
    return out


class _Fields(dict):
    """A resolved config as plain data with attribute access (``c.pipo.lam``)."""

    def __getattr__(self, key: str) -> Any:
        value = self[key]
        return _Fields(value) if isinstance(value, dict) else value


def problems(cfg: DictConfig | dict) -> list[str]:
    """Every reason why a composed cell cannot run (empty if none); ``cfg`` may be its ``to_container``."""
    plain = to_container(cfg) if isinstance(cfg, DictConfig) else cfg
    out = _unknown_keys(plain, _schema_keys(), "")
    c: Any = _Fields(plain)
    a, p, s = c.algorithm, c.pipo, c.scale
    if not 0.0 <= p.lam <= 1.0:
        out.append(f"pipo.lam={p.lam}: λ must lie in [0, 1]")
    if p.window < 2:
        out.append(f"pipo.window={p.window}: the window K must be >= 2")
    if not 1 <= p.min_history <= p.window:
        out.append(f"pipo.min_history={p.min_history}: must lie in [1, pipo.window={p.window}]")
    if p.group_norm not in GROUP_NORMS:
        out.append(f"pipo.group_norm={p.group_norm!r}: expected one of {GROUP_NORMS}")
    if p.window_rule not in WINDOW_RULES:
        out.append(f"pipo.window_rule={p.window_rule!r}: expected one of {WINDOW_RULES}")
    for key in ("diff_clip", "sigma_floor", "reward_clip"):
        if p[key] is not None and p[key] <= 0:
            out.append(f"pipo.{key}={p[key]}: must be > 0 or null")
    if p.optimizer not in OPTIMIZERS:
        out.append(f"pipo.optimizer={p.optimizer!r}: expected one of {OPTIMIZERS}")
    if p.control not in CONTROLS:
        out.append(f"pipo.control={p.control!r}: expected one of {CONTROLS}")
    if p.performance not in PERFORMANCES:
        out.append(f"pipo.performance={p.performance!r}: expected one of {PERFORMANCES}")
    out.extend(probe_problems(c))
    if p.pi_loss not in PI_LOSSES:
        out.append(f"pipo.pi_loss={p.pi_loss!r}: expected one of {PI_LOSSES}")
    if p.ppo_gate is not None and p.ppo_gate <= 0:
        out.append(f"pipo.ppo_gate={p.ppo_gate}: must be > 0 or null")
    if not 0.0 < s.top_p <= 1.0 or s.eval.temperature < 0:
        out.append(f"scale.top_p={s.top_p} must lie in (0, 1] and scale.eval.temperature={s.eval.temperature} be >= 0")
    out.extend(verifier_problems(c.task))
    if not 0.0 <= c.task.reward_noise <= 1.0:
        out.append(f"task.reward_noise={c.task.reward_noise}: a probability, in [0, 1]")
    elif c.task.reward_noise > 0 and c.backend.name == "verl":
        out.append("task.reward_noise runs on the local backend (tiny scale) only")
    if p.delta_clip is not None and p.delta_clip <= 0:
        out.append(f"pipo.delta_clip={p.delta_clip}: must be > 0 or null")
    if p.lr <= 0 or s.lr <= 0:
        out.append(f"learning rates must be > 0 (scale.lr={s.lr}, pipo.lr={p.lr})")
    if a.loss_agg_mode not in LOSS_AGG_MODES:
        out.append(f"algorithm.loss_agg_mode={a.loss_agg_mode!r}: expected one of {LOSS_AGG_MODES}")
    if a.rollout_n < 1:
        out.append(f"algorithm.rollout_n={a.rollout_n}: must be >= 1")
    out.extend(algorithm_problems(a))
    if a.use_kl_loss and a.use_kl_in_reward:
        out.append("algorithm: use either use_kl_loss or use_kl_in_reward, not both")
    if a.filter_groups and a.max_gen_rounds < 1:
        out.append(f"algorithm.max_gen_rounds={a.max_gen_rounds}: must be >= 1")
    if not 0.0 <= a.overlong_buffer_fraction < 1.0:
        out.append(f"algorithm.overlong_buffer_fraction={a.overlong_buffer_fraction}: must lie in [0, 1)")
    if not 0.0 < a.teacher_ema <= 1.0:
        out.append(f"algorithm.teacher_ema={a.teacher_ema}: must lie in (0, 1]")
    for key in ("batch_size", "mini_batch_size"):
        if a[key] % s.batch_divisor:
            out.append(f"algorithm.{key}={a[key]} is not divisible by scale.batch_divisor={s.batch_divisor}")
    if a.batch_size % a.mini_batch_size:
        out.append(f"algorithm.batch_size={a.batch_size} is not a multiple of mini_batch_size={a.mini_batch_size}")
    if s.budget not in ("steps", "epochs"):
        out.append(f"scale.budget={s.budget!r}: expected 'steps' or 'epochs'")
    if s.steps < 1:
        out.append(f"scale.steps={s.steps}: must be >= 1")
    if s.save_every < 1 or s.eval.every < 1:
        out.append("scale.save_every and scale.eval.every must be >= 1")
    out.extend(_cost_problems(s.resources.cost))
    if c.wandb.mode not in WANDB_MODES:
        out.append(f"wandb.mode={c.wandb.mode!r}: expected one of {WANDB_MODES}")
    if c.backend.name not in ("local", "verl"):
        out.append(f"backend={c.backend.name!r}: expected local or verl")
    if problem := backend_problem(s.name, c.backend.name):
        out.append(problem)
    if c.verl and c.backend.name != "verl":
        out.append("verl.* overrides are given but backend is not verl")
    if set(c.task.benchmarks) != {sp["stands_for"] for sp in c.task.standin.splits.values()}:
        out.append("task.standin.splits must stand in for exactly the task's benchmarks")
    return out


def verifier_problems(task: Any) -> list[str]:
    """``task.verifier`` and ``task.eval_verifier`` (when set) that no task registered (pipo/tasks/registry.py)."""
    from pipo.tasks.registry import VERIFIERS  # the built-in tasks register theirs on import

    return [
        f"task.{key}={task[key]!r}: not a registered verifier (registered: {sorted(VERIFIERS)})"
        for key in ("verifier", "eval_verifier")
        if task[key] is not None and task[key] not in VERIFIERS
    ]


def _cost_problems(cost: Any) -> list[str]:
    """Out-of-range assumptions of the plan's GPU-hours (``scale.resources.cost``)."""
    out = []
    for key in ("mfu", "assumed_mfu"):
        if cost[key] is not None and not 0.0 < cost[key] <= 1.0:
            out.append(f"scale.resources.cost.{key}={cost[key]}: a fraction of peak, in (0, 1]")
    if not 0.0 <= cost.replayed <= 1.0:
        out.append(f"scale.resources.cost.replayed={cost.replayed}: a share of the batch, in [0, 1]")
    for key in ("prompt_tokens", "response_tokens", "decode_cost", "dapo_rounds", "peak_tflops"):
        if cost[key] <= 0 or (key == "dapo_rounds" and cost[key] < 1):
            out.append(f"scale.resources.cost.{key}={cost[key]}: must be > 0 (dapo_rounds >= 1)")
    return out


def probe_problems(c: Any) -> list[str]:
    """What is wrong with the probe's settings (``probe``) and with ``pipo.performance=probe``."""
    pr, out = c.probe, []
    if pr.prompts < 0 or pr.samples < 1:
        out.append(f"probe.prompts={pr.prompts} must be >= 0 (0: off) and probe.samples={pr.samples} >= 1")
    on = pr.prompts > 0
    feeds = c.pipo.enabled and c.pipo.performance == "probe"
    if feeds and not on:
        out.append("pipo.performance=probe takes J_t from the probe: set probe.prompts (and probe.samples)")
    if (on or feeds) and c.backend.name == "verl":
        out.append("the probe (probe.prompts, pipo.performance=probe) runs on the local backend only")
    train = c.task.standin.train_size
    if on and c.scale.name == "tiny" and pr.prompts > train:
        out.append(f"probe.prompts={pr.prompts}: more than the {train} training prompts of the stand-in task")
    return out


def validate(cfg: DictConfig) -> None:
    """Raise ``ConfigError`` listing every problem of a composed cell that is to run: ``problems`` and
    the names it looks up in the registries (``registry_problems``)."""
    found = problems(cfg)
    if not found:
        found = registry_problems(cfg.algorithm)
    if found:
        raise ConfigError("invalid cell config:\n  - " + "\n  - ".join(found))


def backend_problem(scale: str, backend: str, running: bool = False) -> str | None:
    """Why ``backend`` cannot run a cell of ``scale`` (None if it can): tiny cells run on the local
    backend, the paper's models on verl. A tiny cell on verl is never valid; a larger cell on the local
    backend can still be planned and signed anywhere, and is refused only when it is to run (``running``)."""
    if backend == "verl" and scale == "tiny":
        return "backend=verl runs the paper's models (scale=paper); tiny cells run with backend=local"
    if running and backend == "local" and scale != "tiny":
        return f"scale={scale} runs with backend=verl (the local backend runs tiny cells)"
    return None


def to_container(cfg: DictConfig) -> dict:
    """The resolved config as plain Python data."""
    return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]


CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("algorithm", "model", "task", "pipo", "scale", "backend", "cluster", "recipe")


@functools.cache
def _plain_option(group: str, option: str) -> DictConfig | None:
    """A group option's node, schema-typed, if its file is plain values (no defaults list, no package)."""
    path = CONF_DIR / group / f"{option}.yaml"
    text = path.read_text() if path.exists() else ""
    if not text or "defaults:" in text or "@package" in text:
        return None
    schema = TrainConfig.__dataclass_fields__[group].default_factory()  # type: ignore[misc]
    return OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))


@functools.cache
def _parse_override(line: str) -> Any:
    """One command-line override parsed by Hydra's grammar (cached: grids repeat the same ones)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([line])[0]


def copy_config(cfg: DictConfig) -> DictConfig:
    """A deep copy (a pickle round trip: 3× faster than ``copy.deepcopy`` on a composed cell)."""
    return pickle.loads(pickle.dumps(cfg))


# per config name: one read-only composition per choice of group options (conf/ is read once per process)
_COMPOSED: dict[str, dict[tuple[str, ...], DictConfig | Exception]] = {}


def compose_cells(cells: Sequence[Sequence[str]], config_name: str = "train") -> list[DictConfig | Exception]:
    """Compose many cells from ``conf/`` (as ``reproduce/train.py`` would); a failing cell gives its exception.

    Fast path, for planning whole grids: Hydra composes each distinct choice of the group options
    that have their own defaults list or package (``cluster=slurm``) once; the options that are
    plain values replace their node (typed by the schema). One read-only config is shared by the
    cells with the same choices; a cell's ``key=value`` overrides are applied to a copy as Hydra
    would apply them. Anything else (``+key``, ``~key``, ``hydra.*``) takes Hydra's full composition.
    ``tests/test_sweeps.py`` checks the two paths agree on every grid.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.types import OverrideType

    register_schemas()
    by_choice = _COMPOSED.setdefault(config_name, {})
    out: list[DictConfig | Exception] = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):

        def full(overrides: Sequence[str]) -> DictConfig | Exception:
            try:
                return compose(config_name, overrides=list(overrides))
            except Exception as err:  # noqa: BLE001 - the caller reports it with the cell named
                return err

        for overrides in cells:
            try:
                parsed = [_parse_override(line) for line in overrides]
            except Exception as err:  # noqa: BLE001
                out.append(err)
                continue
            if any(o.type != OverrideType.CHANGE or o.key_or_group.startswith("hydra") or o.package for o in parsed):
                out.append(full(overrides))
                continue
            choices = [o for o in parsed if o.key_or_group in GROUPS]
            values = [o for o in parsed if o.key_or_group not in GROUPS]
            missing = [o for o in choices if not (CONF_DIR / o.key_or_group / f"{o.value()}.yaml").exists()]
            if missing:
                group = missing[0].key_or_group
                known = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
                out.append(ConfigError(f"Could not find '{group}/{missing[0].value()}' (available: {known})"))
                continue
            key = tuple(sorted(o.input_line for o in choices))
            if key not in by_choice:
                # a recipe other than the paper's overrides other groups' nodes: compose those cells whole
                whole = any(o.key_or_group == "recipe" and o.value() != "paper" for o in choices)
                nodes = {
                    o.key_or_group: None if whole else _plain_option(o.key_or_group, str(o.value())) for o in choices
                }
                base = tuple(sorted(o.input_line for o in choices if nodes[o.key_or_group] is None))
                if base not in by_choice:
                    by_choice[base] = full(list(base))
                cfg = by_choice[base]
                if not isinstance(cfg, Exception):
                    cfg = copy_config(cfg)
                    OmegaConf.set_readonly(cfg, False)
                    with flag_override(cfg, "no_deepcopy_set_nodes", True):  # each node is a fresh copy
                        for group, node in nodes.items():
                            if node is not None:
                                cfg[group] = copy_config(node)
                    OmegaConf.set_readonly(cfg, True)
                by_choice[key] = cfg
            cfg = by_choice[key]
            if values and not isinstance(cfg, Exception):
                cfg = copy_config(cfg)
                OmegaConf.set_readonly(cfg, False)
                try:
                    for o in values:
                        OmegaConf.update(cfg, o.key_or_group, o.value(), merge=False)
                except Exception as err:  # noqa: BLE001
                    cfg = ConfigError(f"Could not override '{o.key_or_group}': {err}".splitlines()[0])
            out.append(cfg)
    return out


def compose_cell(overrides: Sequence[str] = (), config_name: str = "train") -> DictConfig:
    """Compose one cell from ``conf/`` with Hydra, exactly as ``reproduce/train.py`` would."""
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))
