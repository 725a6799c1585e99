"""The README's main job at its defaults: the tiny GRPO+PIPO cell learns (≥ 10 points over its base model)."""

import pytest

from pipo.cell import run_dir
from pipo.config import compose_cell
from pipo.records import RunRecord
from tests.e2e.test_train_cli import train

pytestmark = pytest.mark.slow


def test_default_grpo_pipo_cell_beats_its_base_model_by_10_points(model_cache, tmp_path):
    ov = [f"cache_dir={model_cache}", f"run_root={tmp_path}", "wandb.mode=disabled"]
    proc = train(ov)
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = RunRecord(run_dir(compose_cell(ov))).evals()
    base, final = evals[0], evals[-1]
    assert (base["step"], final["step"]) == (0, 100)
    print(f"average Pass@1: base {base['avg']['pass@1']:.3f} → final {final['avg']['pass@1']:.3f}")
    assert final["avg"]["pass@1"] >= base["avg"]["pass@1"] + 0.10
