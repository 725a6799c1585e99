"""Run a cell's verl config with verl's own entry point (``run_ppo`` and its v1 task runner).

A ``pipo`` section makes the trainer ``pipo`` (``trainer.v1.trainer_mode``), an ``sdpo`` section
``sdpo``, both ``pipo_sdpo``; the plugin (``pipo.backends.verl.plugin``) registers these in verl's
trainer registry. Without either it is verl's stock synchronous trainer, untouched. verl's CLI works
the same way:

    python -m verl.trainer.main_ppo trainer.v1.trainer_mode=pipo +pipo.algorithm=grpo +pipo.lam=0.1 …
"""

from __future__ import annotations

from importlib.metadata import entry_points

from omegaconf import DictConfig, open_dict

PLUGIN = "pipo"


def trainer_mode(config: DictConfig) -> str | None:
    """The trainer the config's ``pipo`` / ``sdpo`` sections call for (None: leave verl's own)."""
    parts = [name for name in ("pipo", "sdpo") if name in config]
    return "_".join(parts) or None


def run_verl(config: DictConfig) -> None:
    """Train with verl: PIPO's or SDPO's trainer if ``config`` has their section, verl's stock trainer if not."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    from pipo.backends.verl.config import validate_verl

    mode = trainer_mode(config)
    if mode is not None:
        if not any(ep.name == PLUGIN for ep in entry_points(group="verl.plugins")):
            raise RuntimeError(
                "the pipo verl plugin is not installed (pip install -e . registers it): verl's task runner "
                f"would not find the {mode!r} trainer"
            )
        with open_dict(config):
            config.trainer.v1.trainer_mode = mode
    auto_set_device(config)
    validate_verl(config)
    run_ppo(config, task_runner_class=TaskRunnerV1)
