"""Run a cell's verl config with verl's own entry point (``run_ppo`` and its v1 task runner).

With a ``pipo`` section the config names the trainer ``pipo`` (``trainer.v1.trainer_mode``), which the
plugin (``pipo.backends.verl.plugin``) registers in verl's trainer registry; without one it is verl's
stock synchronous trainer, untouched. verl's CLI works the same way:

    python -m verl.trainer.main_ppo trainer.v1.trainer_mode=pipo +pipo.lam=0.1 …
"""

from __future__ import annotations

from importlib.metadata import entry_points

from omegaconf import DictConfig, open_dict

PLUGIN = "pipo"


def run_verl(config: DictConfig) -> None:
    """Train with verl: PIPO's trainer if ``config`` has a ``pipo`` section, verl's stock trainer if not."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    from pipo.backends.verl.config import validate_verl

    if "pipo" in config:
        if not any(ep.name == PLUGIN for ep in entry_points(group="verl.plugins")):
            raise RuntimeError(
                "the pipo verl plugin is not installed (pip install -e . registers it): verl's task runner "
                "would not find the 'pipo' trainer"
            )
        with open_dict(config):
            config.trainer.v1.trainer_mode = "pipo"
    auto_set_device(config)
    validate_verl(config)
    run_ppo(config, task_runner_class=TaskRunnerV1)
