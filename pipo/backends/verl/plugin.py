"""verl plugin (entry point ``verl.plugins: pipo``): registers PIPO's and SDPO's trainers
(``trainer_mode`` ``pipo``, ``sdpo``, ``pipo_sdpo``).

verl imports every ``verl.plugins`` entry point on ``import verl``, in the driver and in each Ray
process, so the task runner that reads ``trainer.v1.trainer_mode`` finds them in verl's trainer
registry. The registration waits for Ray (only verl's distributed processes need the trainer), so
a plain ``import verl`` (the local backend, the tests) does not pay for importing verl's trainer stack.
"""

from __future__ import annotations

import logging
import sys


def register() -> None:
    """Register the trainers (importing their modules does; registering again is a no-op)."""
    from verl.trainer.ppo.v1.trainer_base import register_trainer

    from pipo.backends.verl.sdpo import PIPOSDPOTrainer, SDPOTrainer
    from pipo.backends.verl.trainer import PIPOTrainer

    for name, cls in (("pipo", PIPOTrainer), ("sdpo", SDPOTrainer), ("pipo_sdpo", PIPOSDPOTrainer)):
        register_trainer(name)(cls)


def _in_ray_process() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def register_or_warn() -> None:
    """``register``, and on failure a WARNING with the traceback before the error propagates: verl
    logs a plugin's import error at DEBUG only, and the run would then fail with "Unknown trainer"."""
    try:
        register()
    except Exception:
        logging.getLogger(__name__).warning(
            "PIPO's verl plugin could not register its trainers (pipo, sdpo, pipo_sdpo)", exc_info=True
        )
        raise


if _in_ray_process():
    register_or_warn()
