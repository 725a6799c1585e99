"""Imported first by every script in ``reproduce/``: this checkout's ``pipo`` and ``analysis`` come
before any installed copy, in this process and in the ones it starts (cells on local workers or SLURM).
(``python reproduce/x.py`` puts ``reproduce/``, not the checkout, first on the path, so an environment
installed from another checkout would silently run that checkout's code.)"""

import os
import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [ROOT]:
    sys.path.insert(0, ROOT)
if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != ROOT:
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
