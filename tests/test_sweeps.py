"""Sweeps: the paper's grids as data, every cell composed, validated and signed before any launch."""

import itertools

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipo.config import CONF_DIR, ConfigError, compose_cells
from pipo.sweeps import (
    Sweep,
    cell_overrides,
    format_plan,
    grid_cells,
    load_sweep,
    main,
    multirun_argvs,
    plan,
    refuse_if_invalid,
)

# cells per grid, as in the paper's tables and figures; base-model rows come from step-0 evaluations
PAPER_COUNTS = {
    "table1": 16,
    "table2": 16,
    "table3": 4,
    "table4": 7,
    "table6": 8,
    "table7": 6,
    "fig2": 8,
    "fig4": 18,
    "fig5": 16,
    "controls": 27,  # GRPO off, and on / zero / shuffle / flip × shared / sgd, × seeds 6, 21, 42
}


@pytest.mark.parametrize("scale", ["tiny", "paper"])
@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_grid_sizes_and_unique_signatures(name, scale):
    cells = plan(load_sweep(name), [f"scale={scale}"])
    assert len(cells) == PAPER_COUNTS[name]
    signed = [c.signature for c in cells]
    assert None not in signed and len(set(signed)) == len(signed)


def test_every_grid_is_valid_at_tiny_scale():
    for name in PAPER_COUNTS:
        refuse_if_invalid(plan(load_sweep(name), []))


def test_fast_composition_equals_hydra_on_every_grid():
    seen, cells = set(), []
    for name in PAPER_COUNTS:
        for scale in ("tiny", "paper"):
            for ov in cell_overrides(load_sweep(name), [f"scale={scale}"])[0]:
                key = tuple(sorted(o for o in ov if o.split("=")[0] in ("algorithm", "model", "task", "pipo", "scale")))
                if key not in seen:  # one cell per distinct group choice, plus every value override below
                    seen.add(key)
                    cells.append(ov)
    cells += [["pipo.lam=0.5", "seed=6", "pipo.window=4"], ["algorithm=dapo", "scale.steps=3"]]
    fast = compose_cells(cells)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        for ov, got in zip(cells, fast, strict=True):
            try:
                ref = compose("train", overrides=ov)
            except Exception:  # noqa: BLE001
                assert isinstance(got, Exception), ov
                continue
            assert OmegaConf.to_container(got) == OmegaConf.to_container(ref), ov


def test_a_bad_override_names_the_cell_and_the_key():
    cells = plan(load_sweep("table4"), ["pipo.window=1"], launching=True)
    with pytest.raises(Exception, match=r"(?s)7 of 7 cells are invalid; no job was launched.*pipo.window=1"):
        refuse_if_invalid(cells)
    wrong_type = plan(load_sweep("table4"), ["seed=abc"])
    assert all("seed" in c.problems[0] for c in wrong_type)


def test_paper_scale_without_a_gpu_plans_but_does_not_launch(hf_dir):
    assert all(not c.problems for c in plan(load_sweep("table1"), ["scale=paper"]))
    verl = ["scale=paper", "backend=verl", f"model.hf_id={hf_dir}"]
    launching = plan(load_sweep("table1"), verl, launching=True)
    assert all("GPUs and none is visible" in c.problems[-1] for c in launching)
    # through SLURM the job lands where the GPUs are: no local check; verl's validation passes
    assert all(not c.problems for c in plan(load_sweep("table1"), [*verl, "cluster=slurm"], launching=True))
    local = plan(load_sweep("table1"), ["scale=paper", "cluster=slurm"], launching=True)
    assert all("runs with backend=verl" in c.problems[-1] for c in local)
    # a verl override that verl refuses makes every cell invalid before any launch
    bad = plan(load_sweep("table1"), [*verl, "cluster=slurm", "+verl.actor_rollout_ref.actor.loss_agg_mode=x"])
    assert all("verl rejects the config" in c.problems[0] for c in bad)


def test_the_model_axis_varies_fastest():
    # Hydra's sweepers vary the last axis fastest: parallel cells start on different base models
    (argv,) = multirun_argvs(load_sweep("table1"), [])
    assert argv[-2] == "model=qwen3_8b_base,qwen3_4b_base"


def test_the_longest_cells_launch_first_and_the_grid_keeps_its_order():
    sweep = load_sweep("table1")
    (argv,) = multirun_argvs(sweep, [])
    axes = [a.split("=", 1)[1].split(",") for a in argv[1:-1]]
    launched = list(itertools.product(*axes))  # Hydra's order: the last axis fastest
    assert launched[:2] == [("math", "ppo", "on", "qwen3_8b_base"), ("math", "ppo", "on", "qwen3_4b_base")]
    assert launched[-1] == ("math", "gspo", "off", "qwen3_4b_base")
    # values not listed in launch_first keep the grid's order behind the listed ones
    assert axes[1] == ["ppo", "dapo", "grpo", "gspo"]
    # the grid itself (what the table reads) is untouched
    cells, _ = cell_overrides(sweep, [])
    assert cells[0] == ["task=math", "model=qwen3_4b_base", "algorithm=ppo", "pipo=off"]
    # a user's single value stays as given
    (argv,) = multirun_argvs(sweep, ["algorithm=grpo"])
    assert "algorithm=grpo" in argv


def test_user_overrides_replace_or_add_axes():
    cells, hydra = cell_overrides(load_sweep("table7"), ["seed=6,21", "hydra.launcher.partition=gpu"])
    assert len(cells) == 12 and hydra == ["hydra.launcher.partition=gpu"]
    assert len(plan(load_sweep("table4"), ["pipo.lam=0,1"])) == 3  # pipo=off under a λ axis is one cell
    argvs = multirun_argvs(load_sweep("table4"), ["hydra.launcher.partition=gpu"])
    assert argvs[0][:2] == ["-m", "algorithm=grpo"]
    assert "pipo.lam=0,0.05,0.1,0.2,0.5,1" in argvs[0] and argvs[1][-2:] == [
        "sweep=table4",
        "hydra.launcher.partition=gpu",
    ]


def test_grid_cells_by_hand_with_the_defaults_from_conf():
    # two sub-grids and a third that repeats a cell of the first; the sweep fixes the task, the user a seed
    sweep = Sweep(
        "small",
        "",
        [
            {"algorithm": ["ppo", "grpo"], "pipo": ["off", "on"]},
            {"pipo": ["on"], "pipo.lam": ["0.5"]},
            {"algorithm": ["ppo"], "pipo": ["off"]},
        ],
        fixed=["task=code"],
    )
    cells = grid_cells(sweep, ["seed=6"])
    assert [c.choices for c in cells] == [
        {"task": "code", "algorithm": "ppo", "pipo": "off", "seed": "6"},
        {"task": "code", "algorithm": "ppo", "pipo": "on", "seed": "6"},
        {"task": "code", "algorithm": "grpo", "pipo": "off", "seed": "6"},
        {"task": "code", "algorithm": "grpo", "pipo": "on", "seed": "6"},
        {"task": "code", "pipo": "on", "pipo.lam": "0.5", "seed": "6"},
    ]
    # the rest from conf/: conf/train.yaml's defaults (grpo, qwen3_4b_base) and conf/pipo/*.yaml (λ 0.1, K 8)
    composed = [
        (c.cfg.algorithm.name, c.cfg.model.name, c.cfg.task.name, c.cfg.pipo.enabled, c.cfg.pipo.lam,
         c.cfg.pipo.window, c.cfg.seed)
        for c in cells
    ]  # fmt: skip
    assert composed == [
        ("ppo", "qwen3_4b_base", "code", False, 0.1, 8, 6),
        ("ppo", "qwen3_4b_base", "code", True, 0.1, 8, 6),
        ("grpo", "qwen3_4b_base", "code", False, 0.1, 8, 6),
        ("grpo", "qwen3_4b_base", "code", True, 0.1, 8, 6),
        ("grpo", "qwen3_4b_base", "code", True, 0.5, 8, 6),
    ]
    assert list(cells[0].cfg.task.benchmarks) == ["TACO", "LCBv6", "HumanEval", "MBPP"]


def test_grid_cells_name_a_cell_that_does_not_compose():
    with pytest.raises(ConfigError, match=r"sweep bad: cell \[algorithm=nope\]"):
        grid_cells(Sweep("bad", "", [{"algorithm": ["nope"]}]))


def test_main_returns_what_the_entry_point_builds_from(capsys):
    planned = main("table4", ["--plan"])
    assert (planned.code, planned.ran, planned.sweep.name, len(planned.cells)) == (0, False, "table4", 7)
    assert "7 cells:" in capsys.readouterr().out
    assert main("table4", ["--plan", "pipo.window=1"]).code == 1
    assert main("table4", ["--help"]).code == 0


def test_the_controls_grid_and_every_cells_budget_in_the_plan():
    cells = plan(load_sweep("controls"), [])
    settings = {
        (c.cfg.pipo.enabled, c.cfg.pipo.optimizer, c.cfg.pipo.control, c.cfg.seed, c.cfg.algorithm.name) for c in cells
    }
    on = {
        (True, o, k, s, "grpo")
        for o in ("shared", "sgd")
        for k in ("none", "zero", "shuffle", "flip")
        for s in (6, 21, 42)
    }
    assert len(settings) == 27 and settings == on | {(False, "shared", "none", s, "grpo") for s in (6, 21, 42)}
    assert {c.cfg.pipo.lr for c in cells if c.cfg.pipo.enabled} == {1e-5, 0.05}  # shared: lr; sgd: its own η_PI
    text = format_plan(load_sweep("table1"), plan(load_sweep("table1"), ["scale=paper"]))
    lines = {line.split(" · ")[0].strip(): line for line in text.splitlines() if "qwen3_4b_base" in line}
    assert "176 steps, 22,528 prompts, 180,224 responses" in lines["grpo"]
    assert "176 steps, 180,224 prompts, 180,224 responses" in lines["ppo"]  # the paper's matched budget
    assert "≤528 steps, 67,500 prompts, 540,000 responses" in lines["dapo+pipo(λ=0.1,K=8)"]


def test_the_plan_estimates_cpu_time_from_steps_slots_and_builds(monkeypatch):
    from pipo.sweeps import cpu_minutes

    monkeypatch.setattr("pipo.sweeps.os.cpu_count", lambda: 2)
    cells = plan(load_sweep("table4"), [])  # 6 GRPO+PIPO cells (λ) and GRPO, 100 steps, one core each
    # 100 steps × 0.7 s × (6 × 1.25 + 1) = 595 s on 2 slots; one base model (4B, math) built: 3 min
    train, build, slots = cpu_minutes(cells)
    assert (train, build, slots) == (pytest.approx(595 / 60 / 2), 3.0, 2)
    assert "about 8 min" in format_plan(load_sweep("table4"), cells)


def test_the_feedback_grid_its_run_root_and_each_cells_time_with_the_probe():
    cells = plan(load_sweep("feedback"), [])
    refuse_if_invalid(cells)
    settings = {
        (c.cfg.algorithm.name, c.cfg.pipo.enabled, c.cfg.pipo.performance, c.cfg.pipo.control, c.cfg.seed)
        for c in cells
    }
    arms = [(False, "verifier", "none"), (True, "verifier", "none")]
    arms += [(True, "probe", k) for k in ("none", "zero", "shuffle")]
    expected = {(a, *arm[:1], arm[1], arm[2], s) for a in ("grpo", "dapo") for arm in arms for s in (6, 21, 42)}
    assert len(cells) == 30 and settings == expected
    assert len({c.signature for c in cells}) == 30 and len({c.label for c in cells}) == 30
    assert {(c.cfg.probe.prompts, c.cfg.probe.samples, c.cfg.run_root) for c in cells} == {(128, 8, "runs/feedback")}
    # 100 steps × (0.7 s, × 1.25 with PIPO, + the probe: 0.7 s × 0.25 × 1024 probe / 256 trained responses)
    base = next(c for c in cells if not c.cfg.pipo.enabled)
    on = next(c for c in cells if c.cfg.pipo.enabled)
    assert base.hours == pytest.approx(100 * (0.7 + 0.7 * 0.25 * 4) / 3600)
    assert on.hours == pytest.approx(100 * (0.875 + 0.7 * 0.25 * 4) / 3600)
    # 6 × 2.33 + 24 × 2.625 = 77.0 min of cells on 2 slots, and one 3-min build
    assert "about 41 min" in format_plan(load_sweep("feedback"), cells)
