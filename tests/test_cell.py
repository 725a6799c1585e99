"""Cell identity: the signature depends on what changes the numbers, and nothing else."""

from pathlib import Path

from pipo.cell import label, run_dir, semantic_config, signature
from pipo.config import compose_cell


def test_signature_ignores_paths_logging_and_launcher():
    base = signature(compose_cell())
    assert (
        signature(compose_cell(["run_root=/elsewhere", "wandb.mode=disabled", "cache_dir=/tmp/x", "force=true"]))
        == base
    )
    where = ["cluster=slurm", "scale.resources.cpus=8", "scale.resources.timeout_min=600"]
    assert signature(compose_cell(where)) == signature(compose_cell(["hydra.launcher.n_jobs=1"])) == base


def test_signature_changes_with_semantics():
    base = signature(compose_cell())
    others = [
        signature(compose_cell([o]))
        for o in ["seed=21", "pipo.lam=0.5", "pipo.window=4", "pipo=off", "model=qwen3_8b_base", "scale.lr=2e-4"]
    ]
    assert len({base, *others}) == 1 + len(others)


def test_pipo_off_ignores_pipo_knobs():
    assert signature(compose_cell(["pipo=off"])) == signature(compose_cell(["pipo=off", "pipo.lam=0.7"]))
    assert semantic_config(compose_cell(["pipo=off"]))["pipo"] == {"enabled": False}


def test_run_dir_and_label():
    cfg = compose_cell(["seed=6"])
    assert run_dir(cfg) == Path("runs") / "tiny" / signature(cfg)
    assert label(cfg) == "grpo+pipo(λ=0.1,K=8) · qwen3_4b_base · math · seed 6"
    assert label(compose_cell(["pipo=off"])).startswith("grpo · ")
