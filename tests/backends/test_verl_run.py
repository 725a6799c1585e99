"""A backend=verl cell end to end around verl's trainer: the record the analysis reads, and resume.

verl's training itself needs GPUs; it is replaced by a function that logs what verl's trainer logs
through verl's own ``file`` logger (``verl.utils.tracking.FileLogger``), in the process where the
config's Ray runtime environment would put it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from verl.utils.tracking import FileLogger

from analysis.runs import load_metrics, load_runs, scores
from pipo.backends.verl import main as verl_main
from pipo.backends.verl.config import verl_config
from pipo.backends.verl.reward import compute_score
from pipo.config import ConfigError, compose_cell
from pipo.records import RunRecord
from pipo.run import run_cell

BENCH = {"MATH500": 4, "AIME25": 2, "AMC23": 5, "Minerva": 2, "OlympiadBench": 8}


@pytest.fixture
def cell(tmp_path, hf_dir):
    data = tmp_path / "data" / "math"
    data.mkdir(parents=True)
    for name, n in {"train": 3, **BENCH}.items():
        pd.DataFrame({"data_source": [name] * n, "prompt": [[{"role": "user", "content": "1+1?"}]] * n}).to_parquet(
            data / f"{name}.parquet"
        )
    return [
        "scale=paper",
        "backend=verl",
        "algorithm=grpo",
        "scale.steps=4",
        f"model.hf_id={hf_dir}",  # a local model directory (no hub here)
        f"backend.setup.data_dir={tmp_path / 'data'}",
        f"run_root={tmp_path / 'runs'}",
        "wandb.mode=disabled",
    ]


def dump_validation(config, step: int) -> None:
    """verl's validation dump (``trainer.validation_data_dir``): a row per answer with the reward function's
    keys; the even-numbered problems of each benchmark are answered right."""
    kwargs = config.reward.custom_reward_function.reward_kwargs
    rows = []
    for name, n in BENCH.items():
        for i in range(n):
            answer = "\\boxed{2}" if i % 2 == 0 else "\\boxed{3}"
            score = compute_score(name, answer, "2", {"split": "test", "index": i}, **kwargs)
            rows.append({"input": "1+1?", "output": answer, "gts": "2", "step": step, **score})
    folder = Path(config.trainer.validation_data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{step}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def fake_verl(steps, fail_after=None, acc=0.5):
    """Logs like verl's trainer: validation at step 0 and at the end, PIPO and actor metrics per step."""

    def run(config):
        env = config.ray_kwargs.ray_init.runtime_env.env_vars
        os.environ["VERL_FILE_LOGGER_PATH"] = env.VERL_FILE_LOGGER_PATH  # as in verl's Ray processes
        try:
            logger = FileLogger(config.trainer.project_name, config.trainer.experiment_name)
        finally:
            del os.environ["VERL_FILE_LOGGER_PATH"]
        for step in steps:
            data = {
                "actor/pg_loss": 0.1 * step,
                "pipo/J": acc,
                "pipo/verified": 1.0,
                "timing_s/step": 60.0,
                "critic/score/mean": acc,
                "response_length/mean": 100.0,
            }
            if step in (0, config.trainer.total_training_steps):
                data = {} if step == 0 else data
                data |= {f"val-core/{name}/acc/mean@1": (step + 1) / 10 for name in BENCH}
                dump_validation(config, step)
            logger.log(data, step)
            if step == fail_after:
                raise KeyboardInterrupt("preempted")

    return run


def test_a_verl_cell_leaves_the_record_the_analysis_reads_and_resumes(cell, monkeypatch, tmp_path):
    monkeypatch.setattr(verl_main, "run_verl", fake_verl(range(0, 3), fail_after=2, acc=0.1))
    with pytest.raises(KeyboardInterrupt):
        run_cell(compose_cell(cell))
    record = RunRecord(next((tmp_path / "runs" / "paper").iterdir()))
    assert record.status()["state"] == "failed"
    assert [m["step"] for m in record.metrics()] == [1, 2]  # what the attempt logged is kept
    assert [e["step"] for e in record.evals()] == [0]

    monkeypatch.setattr(verl_main, "run_verl", fake_verl(range(2, 5), acc=0.9))  # resumed from step 2
    final = run_cell(compose_cell(cell))
    assert sorted(p.name for p in record.path.glob("verl_log.*")) == ["verl_log.0.jsonl", "verl_log.1.jsonl"]
    metrics = record.metrics()
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]
    assert [m["pipo/J"] for m in metrics] == [0.1, 0.9, 0.9, 0.9]  # the resumed attempt's step 2 wins
    assert record.status()["state"] == "done" and final["avg"]["pass@1"] == pytest.approx(0.5)
    runs = load_runs(tmp_path / "runs").frame
    first, last = scores(runs, "first"), scores(runs, "last")
    assert dict(zip(first.benchmark, first.n, strict=True)) == BENCH
    assert first["pass@1"].tolist() == pytest.approx([0.1] * 5) and last["pass@1"].tolist() == pytest.approx([0.5] * 5)
    assert last.correct.sum() == pytest.approx(0.5 * sum(BENCH.values()))
    for entry in record.evals():  # each problem's outcome, from verl's validation dump of that step
        assert {b: e["per_problem"] for b, e in entry["benchmarks"].items()} == {
            name: {str(i): float(i % 2 == 0) for i in range(n)} for name, n in BENCH.items()
        }
    curves = load_metrics(record.path)  # what the training-dynamics and wall-clock figures read
    assert curves["timing/step"].tolist() == [60.0] * 4 and curves["critic/score/mean"].tolist()[-1] == 0.9


def test_missing_prepared_data_is_a_clear_error(cell, monkeypatch, tmp_path):
    monkeypatch.setattr(verl_main, "run_verl", fake_verl(range(0, 5)))
    os.remove(tmp_path / "data" / "math" / "AMC23.parquet")
    with pytest.raises(ConfigError, match=r"prepared data missing: .*AMC23.parquet.*pipo.tasks.prepare"):
        run_cell(compose_cell(cell))


def test_run_verl_runs_verls_own_task_runner_with_pipo_as_its_trainer_mode(monkeypatch):
    import verl.trainer.main_ppo as main_ppo

    calls = []

    def run_ppo(config, task_runner_class):
        calls.append((config, task_runner_class))

    monkeypatch.setattr(main_ppo, "run_ppo", run_ppo)
    base = ["scale=paper", "backend=verl", "algorithm=gspo"]
    off = verl_config(compose_cell([*base, "pipo=off"]))
    verl_main.run_verl(off)
    verl_main.run_verl(verl_config(compose_cell([*base, "pipo=on"])))
    (off_cfg, off_runner), (on_cfg, on_runner) = calls
    assert off_runner is on_runner is main_ppo.TaskRunnerV1
    assert off_cfg == verl_config(compose_cell([*base, "pipo=off"]))  # PIPO off: verl's stock config, untouched
    assert (off_cfg.trainer.v1.trainer_mode, on_cfg.trainer.v1.trainer_mode) == ("sync", "pipo")
    sdpo = ["scale=paper", "backend=verl", "algorithm=sdpo", "model=qwen3_8b", "task=sciknoweval"]
    for pipo, mode in (("off", "sdpo"), ("on", "pipo_sdpo")):  # verl has no SDPO: ours, with or without PIPO
        verl_main.run_verl(verl_config(compose_cell([*sdpo, f"pipo={pipo}"])))
        assert calls[-1][0].trainer.v1.trainer_mode == mode


def test_a_run_whose_data_ran_out_is_incomplete_not_done(cell, monkeypatch, tmp_path):
    # verl's loop ended at step 2 of 4 (its data loader ran out): no final validation at step 4
    def short(config):
        fake_verl(range(0, 3))(config)

    monkeypatch.setattr(verl_main, "run_verl", short)
    run_cell(compose_cell(cell))
    status = RunRecord(next((tmp_path / "runs" / "paper").iterdir())).status()
    assert status["state"] == "incomplete" and status["step"] == 2 and "step 2 of 4" in status["error"]
    assert load_runs(tmp_path / "runs").frame["state"].tolist() == ["incomplete"]  # tables read done runs only


def test_the_step_budget_is_met_with_40_percent_of_prompts_over_the_length_limit():
    for algorithm in ("ppo", "grpo", "gspo", "dapo", "sdpo"):
        cfg = compose_cell(["scale=paper", "backend=verl", f"algorithm={algorithm}", "scale.budget=steps"])
        v = verl_config(cfg, planning=True)
        batches_per_pass = int(0.6 * cfg.task.train_size) // v.data.train_batch_size  # verl drops the long 40 %
        rounds = cfg.algorithm.max_gen_rounds if cfg.algorithm.filter_groups else 1
        # verl's loop: total_epochs passes of whole batches; each step takes at most `rounds` batches
        assert v.trainer.total_epochs * batches_per_pass >= v.trainer.total_training_steps * rounds, algorithm


def test_a_hub_model_without_the_hub_fails_in_seconds_naming_the_download(cell, monkeypatch):
    monkeypatch.setattr(verl_main, "run_verl", fake_verl(range(0, 5)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"huggingface-cli download Qwen/Qwen3-4B-Base --local-dir"):
        run_cell(compose_cell([*cell, "model.hf_id=Qwen/Qwen3-4B-Base"]))


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="with a GPU the script would train")
def test_smoke_script_pre_checks_offline(hf_dir, tmp_path):
    script = Path(__file__).parents[2] / "reproduce" / "smoke_gpu.sh"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DATA": str(tmp_path / "data"), "OUT": str(tmp_path / "out")}
    hub = subprocess.run(
        ["bash", str(script)], env={**env, "MODEL": "Qwen/Qwen3-0.6B-Base"}, capture_output=True, text=True, timeout=60
    )
    assert hub.returncode != 0 and "huggingface-cli download Qwen/Qwen3-0.6B-Base" in hub.stderr
    no_data = subprocess.run(
        ["bash", str(script)], env={**env, "MODEL": str(hf_dir)}, capture_output=True, text=True, timeout=60
    )
    assert no_data.returncode != 0 and "source=DIR" in no_data.stdout + no_data.stderr
    (tmp_path / "data" / "math").mkdir(parents=True)
    (tmp_path / "data" / "math" / "train.parquet").write_bytes(b"")  # prepared data (the script checks it exists)
    local = subprocess.run(
        ["bash", str(script)], env={**env, "MODEL": str(hf_dir)}, capture_output=True, text=True, timeout=60
    )
    assert local.returncode != 0 and "pre-checks passed; no GPU visible" in local.stdout
