"""verl's own FSDP training engine in a CPU-only test process.

verl 0.9 registers platforms for CUDA, NPU and ROCm only. ``CPUPlatform`` is its CUDA platform with
the device calls pointed at the CPU; with it, a gloo process group (one rank, or one per process) and
FSDP2, verl's ``TrainingWorker`` builds its real engine (``FSDPEngineWithLMHead``) on CPU and runs its
real mini-batch loop, micro-batching, padding conversions, loss and optimizer step on a tiny model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import torch
from omegaconf import DictConfig, open_dict
from verl.plugin.platform import platform_manager
from verl.plugin.platform.platform_cuda import PlatformCUDA


class _CPUModule(SimpleNamespace):
    """``torch.cpu`` plus the memory and seeding calls verl makes of ``torch.cuda`` (no-ops here)."""

    def __getattr__(self, name: str):
        if hasattr(torch.cpu, name):
            return getattr(torch.cpu, name)
        if name == "mem_get_info":
            return lambda *args, **kwargs: (0, 0)
        if name == "get_device_name":
            return lambda *args, **kwargs: "CPU"
        if "mem" in name or name in ("empty_cache", "manual_seed", "manual_seed_all", "set_device"):
            return lambda *args, **kwargs: 0
        raise AttributeError(name)


class CPUPlatform(PlatformCUDA):
    device_name = "cpu"
    device_module = _CPUModule()

    def is_available(self) -> bool:
        return True

    def current_device(self) -> str:
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        pass

    def synchronize(self, device_index: int | None = None) -> None:
        pass

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        pass

    def empty_cache(self) -> None:
        pass

    def communication_backend_name(self) -> str:
        return "gloo"

    @contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        yield


@contextmanager
def cpu_verl(port: int = 29533, rank: int = 0, world_size: int = 1, timeout_s: float = 600.0) -> Iterator[None]:
    """verl on the CPU platform, with a gloo process group of ``world_size`` ranks (this process is
    ``rank``; every rank enters with the same ``port``), for the block's duration. A collective that a
    peer never joins raises after ``timeout_s``."""
    saved_platform = platform_manager._current_platform
    env = {  # VERL_ENGINE_DEVICE: verl's engine registry gives the FSDP engine registered for CUDA
        "VERL_ENGINE_DEVICE": "cuda",
        "RANK": str(rank),
        "LOCAL_RANK": str(rank),
        "WORLD_SIZE": str(world_size),
        "LOCAL_WORLD_SIZE": str(world_size),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    platform_manager.set_platform(CPUPlatform())
    torch.distributed.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=timeout_s),
    )
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()
        platform_manager._current_platform = saved_platform
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cpu_actor_config(config: DictConfig) -> None:
    """A composed verl config's actor, made to run on the CPU exactly: FSDP2 (FSDP1 needs a GPU) and
    float32 compute (so a hand computation in float32 can be compared to 1e-5)."""
    actor = config.actor_rollout_ref.actor
    actor.strategy = "fsdp2"
    with open_dict(actor):
        actor.fsdp_config.mixed_precision = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}


def grpo_cpu_config(hf_dir: str, prompts: int, mini_batch: int, eta_pi: float, max_tokens: int) -> DictConfig:
    """The verl config of a paper-scale GRPO+PIPO cell on the tiny model at ``hf_dir``: ``prompts`` × 2
    rollouts, mini-batches of ``mini_batch`` prompts, SGD verification at ``eta_pi``, dynamic
    micro-batches of ``max_tokens``, the actor on the CPU (:func:`cpu_actor_config`)."""
    from pipo.backends.verl.config import verl_config
    from pipo.config import compose_cell

    cell = compose_cell(
        [
            "scale=paper",
            "backend=verl",
            "algorithm=grpo",
            "algorithm.rollout_n=2",
            f"algorithm.batch_size={prompts}",
            f"algorithm.mini_batch_size={mini_batch}",
            f"model.hf_id={hf_dir}",
            f"pipo.lr={eta_pi}",
            "pipo.optimizer=sgd",
        ]
    )
    config = verl_config(cell)
    config.trainer.v1.trainer_mode = "pipo"
    config.actor_rollout_ref.actor.ppo_max_token_len_per_gpu = max_tokens
    cpu_actor_config(config)
    return config


def training_worker(config: DictConfig):
    """verl's actor ``TrainingWorker`` built from ``config`` as ``ActorRolloutRefWorker.init_model`` builds it."""
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.config import TrainingWorkerConfig
    from verl.workers.engine_workers import TrainingWorker

    actor = omega_conf_to_dataclass(config.actor_rollout_ref.actor)
    actor.model_config = omega_conf_to_dataclass(config.actor_rollout_ref.model)
    training = TrainingWorkerConfig(
        model_type="language_model",
        model_config=actor.model_config,
        engine_config=actor.engine,
        optimizer_config=actor.optim,
        checkpoint_config=actor.checkpoint,
    )
    a = config.actor_rollout_ref.actor
    training.engine_config.use_dynamic_bsz = a.use_dynamic_bsz
    training.engine_config.max_token_len_per_gpu = a.ppo_max_token_len_per_gpu
    training.engine_config.micro_batch_size_per_gpu = a.ppo_micro_batch_size_per_gpu
    training.engine_config.use_remove_padding = actor.model_config.get("use_remove_padding", False)
    worker = TrainingWorker(training)
    worker.reset()
    return worker, actor


def pipo_extension(worker, actor_config):
    """PIPO's worker extension as ``init_model`` leaves it (the actor, its loss, its dispatch mesh) over
    ``worker`` (``training_worker``'s); its ``__init__`` needs Ray, so it is assembled here."""
    from verl.single_controller.base import Worker
    from verl.workers.utils.losses import ppo_loss

    from pipo.backends.verl.worker import PIPOActorRolloutRefWorker

    extension = PIPOActorRolloutRefWorker.__new__(PIPOActorRolloutRefWorker)
    Worker.__init__(extension)
    extension.actor, extension.loss_fn = worker, partial(ppo_loss, config=actor_config)
    extension.set_dispatch_collect(mesh_name="actor", **worker.get_dispatch_collect())
    worker.set_loss_fn(extension.loss_fn)
    return extension


def agent_loop_rows(hf_dir: str, shapes: list[tuple[int, int]], seed: int = 1) -> tuple[list[dict], list[torch.Tensor]]:
    """Responses of ``shapes`` ((prompt, response) lengths, random tokens) as verl's TransferQueue agent
    loop stores them, plus their old log-probs under the model in ``hf_dir`` (a plain float32 copy)."""
    from transformers import AutoModelForCausalLM
    from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
    from verl.utils.model import compute_position_id_with_mask

    gen = torch.Generator().manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    rows, old = [], []
    for p, r in shapes:
        out = AgentLoopOutput(
            prompt_ids=torch.randint(3, 120, (p,), generator=gen).tolist(),
            response_ids=torch.randint(3, 120, (r,), generator=gen).tolist(),
            response_mask=[1] * r,
            metrics=AgentLoopMetrics(),
        )
        field = out.as_dict()  # verl's agent_loop_tq._agent_loop_postprocess adds these four
        field["loss_mask"] = field["response_mask"]
        field["input_ids"] = torch.cat([field["prompts"], field["responses"]])
        attention = torch.ones_like(field["input_ids"])[None]
        field["position_ids"] = compute_position_id_with_mask(attention).squeeze(0)
        rows.append(field)
        old.append(response_log_probs(model, field["input_ids"], r).detach())
    return rows, old


def response_log_probs(model, input_ids: torch.Tensor, response_length: int) -> torch.Tensor:
    """The log-probs ``model`` gives the last ``response_length`` tokens of ``input_ids`` (one sequence)."""
    logits = model(input_ids=input_ids[None]).logits[0]
    lp = torch.log_softmax(logits[:-1].float(), -1).gather(-1, input_ids[1:, None])[:, 0]
    return lp[-response_length:]
