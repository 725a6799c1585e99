"""verl's own FSDP training engine in a CPU-only test process.

verl 0.9 registers platforms for CUDA, NPU and ROCm only. ``CPUPlatform`` is its CUDA platform with
the device calls pointed at the CPU; with it, a gloo process group of one rank and FSDP2, verl's
``TrainingWorker`` builds its real engine (``FSDPEngineWithLMHead``) on CPU and runs its real
mini-batch loop, micro-batching, padding conversions, loss and optimizer step on a tiny model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
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
def cpu_verl(port: int = 29533) -> Iterator[None]:
    """verl on the CPU platform, with a one-rank gloo process group, for the block's duration."""
    saved_platform = platform_manager._current_platform
    env = {  # VERL_ENGINE_DEVICE: verl's engine registry gives the FSDP engine registered for CUDA
        "VERL_ENGINE_DEVICE": "cuda",
        "RANK": "0",
        "WORLD_SIZE": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    saved_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    platform_manager.set_platform(CPUPlatform())
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
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
