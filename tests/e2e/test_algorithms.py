"""Every base algorithm, with and without PIPO, trains end to end at tiny scale and learns."""

import pytest

from pipo.cell import run_dir
from pipo.config import compose_cell
from pipo.records import RunRecord
from tests.e2e.test_train_cli import train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("pipo", ["off", "on"])
@pytest.mark.parametrize("algorithm", ["ppo", "grpo", "gspo", "dapo", "sdpo"])
def test_cell_learns(algorithm, pipo, model_cache, tmp_path):
    ov = [
        f"algorithm={algorithm}",
        f"pipo={pipo}",
        f"cache_dir={model_cache}",
        f"run_root={tmp_path}",
        "wandb.mode=disabled",
        "scale.steps=30",
        "scale.lr=1e-4",  # 10× the testbed's rate: a clear gain within 30 steps
        "scale.eval.every=30",
        "scale.eval.mean_at_k=0",
    ]
    proc = train(ov)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = RunRecord(run_dir(compose_cell(ov)))
    evals = rec.evals()
    base, final = evals[0]["avg"]["pass@1"], evals[-1]["avg"]["pass@1"]
    print(f"{algorithm} pipo={pipo}: average Pass@1 {base:.3f} → {final:.3f}")
    assert final > base
    rows = rec.metrics()
    assert len(rows) == 30
    if pipo == "on":
        assert all("timing/verify" in r and "pipo/delta" in r for r in rows)
        assert sum(r["pipo/verified"] for r in rows) > 0
    else:
        assert {k for r in rows for k in r if k.startswith("pipo/")} == {"pipo/J_se"}  # the diagnostic alone
