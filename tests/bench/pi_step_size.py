"""η_PI for ``pipo.optimizer=sgd``: the step size of the shared-AdamW verification update, measured.

    python tests/bench/pi_step_size.py [--steps 40] [overrides...]

Trains one PIPO cell with the shared optimizer (default: GRPO on the 4B stand-in, tiny scale) and
records, for every verification mini-batch step, the norm of the parameter change AdamW applied,
‖Δθ‖, the norm of the (clipped) PI gradient it was given, ‖g‖, and cos(Δθ, −g); and ‖Δθ‖ of every
exploration step. Printed: medians, and ‖Δθ‖/‖g‖ — the learning rate at which a plain gradient step
(Eq. 11) has the shared step's length. ``scale.pi_sgd_lr`` of ``conf/scale/tiny.yaml`` is that median,
rounded, so ``shared`` and ``sgd`` differ in direction, not in step length.
"""

import argparse
import math
import statistics
import tempfile
from pathlib import Path
from typing import ClassVar

from pipo.algorithm.pi_optimizer import UpdateCosine
from pipo.backends.local import trainer as local
from pipo.backends.local.trainer import LocalTrainer
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.records import RunRecord
from pipo.tasks import load_standin
from pipo.wandb_mirror import WandbMirror


class Measured(UpdateCosine):
    """``UpdateCosine`` that also keeps each step's ‖Δθ‖ and ‖g‖ (single process)."""

    steps: ClassVar[list[tuple[float, float, float | None]]] = []

    def _post(self, *args) -> None:
        pairs = list(zip(self._params(), self._before, strict=True))
        step = math.sqrt(sum((p.detach() - b).double().square().sum().item() for p, b in pairs))
        grad = math.sqrt(sum(p.grad.double().square().sum().item() for p, _ in pairs))
        n = len(self.values)
        super()._post(*args)
        Measured.steps.append((step, grad, self.values[-1] if len(self.values) > n else None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the cell")
    args = parser.parse_args()
    overrides = [
        "algorithm=grpo",
        "pipo=on",
        "pipo.optimizer=shared",
        *args.overrides,
        f"scale.steps={args.steps}",
        "wandb.mode=disabled",
    ]
    cfg = compose_cell(overrides)
    task = load_standin(cfg.task)
    path = resolve_model(cfg.model, task, cfg.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        off = WandbMirror("disabled", "p", None, None, "x", "x", Path(tmp), {}, [])
        trainer = LocalTrainer(cfg, task, path, RunRecord(Path(tmp) / "rec"), off)
        local.UpdateCosine = Measured  # the verification update's own measurement, extended
        exploration = []
        explore = trainer.exploration_update

        def measured_exploration(*a, **kw):
            before = trainer.flat.param.detach().clone()
            out = explore(*a, **kw)
            exploration.append((trainer.flat.param.detach() - before).norm().item())
            return out

        trainer.exploration_update = measured_exploration
        for step in range(1, args.steps + 1):
            trainer.train_step(step)
    verify = [s for s in Measured.steps if s[2] is not None]
    if not verify:
        raise SystemExit("no verification step had a PI gradient: train longer (--steps)")
    median = statistics.median
    lr, n_params = cfg.scale.lr, trainer.flat.param.numel()
    print(f"{len(verify)} verification steps, {args.steps} iterations, P = {n_params}, lr = {lr:g}")
    print(f"verification ‖Δθ‖ median {median(s[0] for s in verify):.3g}, ‖g‖ median {median(s[1] for s in verify):.3g}")
    print(f"cos(Δθ, −g) median {median(s[2] for s in verify):+.3f}")
    ratio = median(s[0] / s[1] for s in verify)
    print(f"‖Δθ‖/‖g‖ median {ratio:.3g}  (η_PI for sgd; scale.pi_sgd_lr = {cfg.scale.pi_sgd_lr:g})")
    print(f"exploration update ‖Δθ‖ median {median(exploration):.3g}; lr·√P = {lr * math.sqrt(n_params):.3g}")


if __name__ == "__main__":
    main()
