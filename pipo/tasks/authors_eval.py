"""The authors' evaluation sets (``JacckMa/pipo_verl`` 7f48e23, ``dataset/``) as a local source of
``python -m pipo.tasks.prepare task=<task> source=authors:DIR``.

Their files are verl parquet already (chat ``prompt`` with the authors' instruction, ``reward_model``);
they become this project's rows unchanged but for three things: ``data_source`` is the benchmark's
name, the ground truth is one string, and MATH-500's — the full reference solution there — is its
last ``\\boxed{}`` answer, so the project's verifiers score them. The training splits are not public:
``train.parquet`` still comes from ``source=hub`` or ``source=DIR``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipo.tasks.sources import RowError

# benchmark (conf/task/<task>.yaml) -> the authors' file (../shared/data/authors_eval/README.md)
AUTHORS_FILES = {
    "math": {
        "MATH500": "HuggingFaceH4_MATH-500.parquet",
        "AIME25": "math-ai_aime25.parquet",
        "AMC23": "math-ai_amc23.parquet",
        "Minerva": "knoveleng_Minerva-Math.parquet",
        "OlympiadBench": "olympiad.parquet",
    },
    "sciknoweval": {
        "Biology": "sciknoweval_biology.parquet",
        "Chemistry": "sciknoweval_chemistry.parquet",
        "Material": "sciknoweval_material.parquet",
        "Physics": "sciknoweval_physics.parquet",
    },
}


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{…}`` in ``text`` (braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def ground_truth(benchmark: str, value: Any) -> str:
    """One string: a list's single element; MATH-500's solution reduced to its boxed answer."""
    if not isinstance(value, str):
        values = list(value) if value is not None else []
        if len(values) != 1 or not isinstance(values[0], str):
            raise RowError(f"expected one ground truth, got {values!r:.80}")
        value = values[0]
    if benchmark == "MATH500":
        boxed = last_boxed(value)
        if boxed is None:
            raise RowError("MATH-500's reference solution has no \\boxed{} answer")
        value = boxed
    if not value.strip():
        raise RowError("empty ground truth")
    return value.strip()


def authors_rows(task: str, benchmark: str, directory: str | Path, problems: list[str]) -> list[dict]:
    """The benchmark's rows from the authors' file in ``directory``; a bad row adds to ``problems``."""
    import pandas as pd

    path = Path(directory) / AUTHORS_FILES[task][benchmark]
    if not path.exists():
        raise SystemExit(f"{path} is missing (the authors' evaluation sets: JacckMa/pipo_verl 7f48e23, dataset/)")
    out = []
    for i, row in enumerate(pd.read_parquet(path).to_dict("records")):
        try:
            messages = [dict(m) for m in row["prompt"]]
            if not messages or not all(isinstance(m.get("content"), str) for m in messages):
                raise RowError("prompt is not a list of chat messages")
            truth = ground_truth(benchmark, row["reward_model"]["ground_truth"])
        except (RowError, KeyError, TypeError) as err:
            problems.append(f"{path.name}, row {i}: {err}")
            continue
        out.append(
            {
                "data_source": benchmark,
                "prompt": messages,
                "ability": task,
                "reward_model": {"style": "rule", "ground_truth": truth},
                "extra_info": {"split": benchmark, "index": i, "dataset": f"authors:{path.name}"},
            }
        )
    return out
