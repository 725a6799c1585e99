"""The built-in tasks, one module each; a module registers its task (``register_task``) when imported.

``pipo.tasks.registry`` imports every module of this package (``register_all``), so a task added here
is known wherever the registry is: the trainer, the verl reward workers, ``pipo.tasks.prepare`` and
``pipo.tasks.score``.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all() -> None:
    """Import (and so register) every task module of this package, in name order."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
