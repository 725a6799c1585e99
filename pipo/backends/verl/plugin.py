"""verl plugin (entry point ``verl.plugins: pipo``): registers PIPO's trainer as ``trainer_mode=pipo``.

verl imports every ``verl.plugins`` entry point on ``import verl``, in the driver and in each Ray
process, so the task runner that reads ``trainer.v1.trainer_mode`` finds ``pipo`` in verl's trainer
registry. The registration waits for Ray (only verl's distributed processes need the trainer), so
a plain ``import verl`` (the local backend, the tests) does not pay for importing verl's trainer stack.
"""

from __future__ import annotations

import sys


def register() -> None:
    """Register ``PIPOTrainer`` under ``pipo`` (importing it does; registering again is a no-op)."""
    from verl.trainer.ppo.v1.trainer_base import register_trainer

    from pipo.backends.verl.trainer import PIPOTrainer

    register_trainer("pipo")(PIPOTrainer)


def _in_ray_process() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


if _in_ray_process():
    register()
