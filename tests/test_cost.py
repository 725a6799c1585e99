"""The plan's GPU-hours (pipo/cost.py) against a hand computation, and where its fraction of peak comes from."""

import json
from pathlib import Path

import pytest

import pipo.cost
from pipo.config import compose_cell, problems
from pipo.cost import cell_gpu_hours, fraction_of_peak
from pipo.sweeps import format_plan, load_sweep, plan

# Qwen3-8B-Base (its model card's config.json): per token, each of 36 layers multiplies by q and o (4096×4096),
# k and v (4096×1024) and the MLP's three 4096×12288 matrices; the LM head is 4096×151936. 2 FLOPs per weight.
PER_TOKEN_8B = 36 * (2 * 4096 * 4096 * 2 + 2 * 4096 * 1024 * 2 + 2 * 4096 * 12288 * 3) + 2 * 4096 * 151936
# attention: QKᵀ and AV, 32 heads of 128, over the 2200·2201/2 causal (query, key) pairs of a 2200-token sequence
ATTENTION_8B = 36 * 2 * 2 * 32 * 128 * (2200 * 2201 // 2)
SEQUENCE_8B = 2200 * PER_TOKEN_8B + ATTENTION_8B  # 200 prompt + 2000 response tokens (conf/scale/paper.yaml)


# what reproduce/gpu_check.sh writes (the fields pipo.cost reads): 494.5 of the H200's 989 TFLOP/s is 50 %
MEASURED_H200 = {"mfu": 0.5, "peak_tflops": 989, "achieved_tflops": 494.5, "date": "2026-12-03", "device": "H200"}
GRPO_8B = ["scale=paper", "model=qwen3_8b_base", "algorithm=grpo"]


def hand_hours(units: float, steps: int, sequences: int, mfu: float) -> float:
    return steps * units * sequences * SEQUENCE_8B / (989e12 * mfu) / 3600


def test_the_plans_8b_grpo_cells_by_hand():
    cells = plan(load_sweep("table1"), ["scale=paper", "scale.resources.cost.mfu=0.35"])
    hours = {c.label.split(" · ")[0] + " " + c.cfg.model.name: c.gpu_hours for c in cells}
    # GRPO, per sequence token: sampling 200 prefill + 2000 decoded at g = 8 → (200 + 8·2000)/2200; old log-probs 1,
    # the KL reference 1, the actor's forward+backward 3; PIPO's verification replays the whole batch (f = 1): 3.
    base = (200 + 8 * 2000) / 2200 + 1 + 1 + 3
    steps = 176  # 3 epochs of MATH's 7,500 problems at 128 prompts a step, the last one partial: ⌈175.8⌉
    sequences = 128 * 8
    assert hours["grpo qwen3_8b_base"] == pytest.approx(hand_hours(base, steps, sequences, 0.35), rel=1e-9)
    assert hours["grpo+pipo(λ=0.1,K=8) qwen3_8b_base"] == pytest.approx(
        hand_hours(base + 3, steps, sequences, 0.35), rel=1e-9
    )
    # PPO: KL in the reward (the reference's forward, 1) and a critic
    # (values 1 + update 3); 1,024 prompts × 1 rollout
    ppo = (200 + 8 * 2000) / 2200 + 1 + 1 + 3 + 4
    assert hours["ppo qwen3_8b_base"] == pytest.approx(hand_hours(ppo, 176, 1024, 0.35), rel=1e-9)
    text = format_plan(load_sweep("table1"), cells)
    assert "at 35% of 989 TFLOP/s per GPU, scale.resources.cost.mfu" in text.splitlines()[-1]


def test_no_gpus_no_gpu_hours_and_an_unknown_model_is_said(tmp_path):
    assert all(c.gpu_hours == 0.0 for c in plan(load_sweep("table1"), []))  # tiny scale: CPU cells
    cells = plan(load_sweep("table4"), ["scale=paper", f"model.hf_id={tmp_path}"])  # a directory, no config.json
    assert cells and all(c.gpu_hours is None for c in cells)
    text = format_plan(load_sweep("table4"), cells)
    assert "       ? GPU-h" in text and f"{len(cells)} cells not counted: unknown model shape" in text


def test_the_measured_fraction_is_used_only_at_the_peak_it_was_measured_against(tmp_path, monkeypatch):
    monkeypatch.setattr(pipo.cost, "MEASURED", tmp_path / "gpu_measured.json")
    (tmp_path / "gpu_measured.json").write_text(json.dumps(MEASURED_H200))
    cfg = compose_cell([*GRPO_8B, "pipo=off"])
    at_h200 = cell_gpu_hours(cfg)
    assert fraction_of_peak(cfg.scale.resources.cost)[0] == 0.5
    a100 = compose_cell([*GRPO_8B, "pipo=off", "scale.resources.cost.peak_tflops=312"])  # an A100's dense bf16
    mfu, source = fraction_of_peak(a100.scale.resources.cost)
    # 50 % of the H200's peak says nothing of an A100's: the assumed 35 % of 312, said so
    assert mfu == 0.35 and "assumed" in source and "989 TFLOP/s peak" in source and "not this plan's 312" in source
    assert cell_gpu_hours(a100) == pytest.approx(at_h200 * (989 * 0.5) / (312 * 0.35), rel=1e-12)
    text = format_plan(
        load_sweep("table1"), plan(load_sweep("table1"), ["scale=paper", "scale.resources.cost.peak_tflops=312"])
    )
    assert "at 35% of 312 TFLOP/s per GPU, assumed: the 50% measured 2026-12-03 on H200" in text
    del_peak = {k: v for k, v in MEASURED_H200.items() if k != "peak_tflops"}
    (tmp_path / "gpu_measured.json").write_text(json.dumps(del_peak))
    with pytest.raises(ValueError, match="peak_tflops"):
        cell_gpu_hours(cfg)


def verification_units(overrides: list[str]) -> float:
    """The verification step's forward-token units per sequence token: the cell with PIPO less the same cell
    without, over the hours of one unit (176 steps of 1,024 sequences at 35 %)."""
    cost = ["scale.resources.cost.mfu=0.35", "scale.resources.cost.replayed=0.3"]
    off = [o for o in overrides if not o.startswith("pipo")] + ["pipo=off"]
    on, off = (cell_gpu_hours(compose_cell([*GRPO_8B, *o, *cost])) for o in (overrides, off))
    return (on - off) / hand_hours(1.0, 176, 128 * 8, 0.35)


@pytest.mark.parametrize(
    ("overrides", "share"),
    [
        (["pipo=on"], 0.3),  # rows without a PI reward are left out: f = 0.3 of the batch forwarded
        (["pipo=on", "pipo.skip_zero=false"], 0.3),  # skip_zero skips whole steps, not rows
        (["pipo=on", "pipo.kl_in_verification=true"], 1.0),  # the KL term's gradient needs every row
        (["pipo=authors"], 1.0),  # kl_in_verification: true
        (["pipo=on", "pipo.kl_in_verification=true", "algorithm.use_kl_loss=false"], 0.3),  # no KL term to keep
        (["pipo=on", "backend=verl", "algorithm.loss_agg_mode=seq-mean-token-sum-norm"], 1.0),  # verl: width-normalised
    ],
)
def test_the_replayed_share_follows_the_backends_row_skip(overrides, share):
    # the verification step is one actor update (3 units) over the forwarded rows
    assert verification_units(overrides) == pytest.approx(3 * share, rel=1e-9)


def test_the_8b_dapo_cell_by_hand():
    cells = ["scale=paper", "model=qwen3_8b_base", "algorithm=dapo", "scale.resources.cost.mfu=0.35"]
    # DAPO samples 1.5 generation rounds per step (scale.resources.cost.dapo_rounds), each 200 prefill + 8·2000
    # decoded units over 2200 tokens; then old log-probs 1, the KL reference 1 (use_kl_loss), the actor's update 3
    base = 1.5 * (200 + 8 * 2000) / 2200 + 1 + 1 + 3
    # 9 epochs of 7,500 problems at 128 prompts: ⌈527.3⌉ = 528 generation rounds, 528 / 1.5 = 352 steps
    steps = 352
    assert cell_gpu_hours(compose_cell([*cells, "pipo=off"])) == pytest.approx(
        hand_hours(base, steps, 128 * 8, 0.35), rel=1e-9
    )
    # PIPO (conf/pipo/on.yaml: no KL in the verification loss) replays f = 1 of the previous batch: one more update
    assert cell_gpu_hours(compose_cell([*cells, "pipo=on"])) == pytest.approx(
        hand_hours(base + 3, steps, 128 * 8, 0.35), rel=1e-9
    )


def test_a_cost_that_cannot_be_computed_leaves_the_plan_printed(tmp_path, monkeypatch):
    # an invalid cell is not costed: mfu = 0 would divide by zero
    cells = plan(load_sweep("table1"), ["scale=paper", "scale.resources.cost.mfu=0"])
    assert cells and all(c.status == "invalid" and c.gpu_hours is None for c in cells)
    assert "       ? GPU-h" in format_plan(load_sweep("table1"), cells)
    # a local model directory whose config.json lacks a shape key: '?' and the reason
    shape = json.loads((Path(pipo.cost.model_config_path("Qwen/Qwen3-8B-Base"))).read_text())
    del shape["head_dim"]
    (tmp_path / "config.json").write_text(json.dumps(shape))
    cells = plan(load_sweep("table4"), ["scale=paper", f"model.hf_id={tmp_path}"])
    assert cells and all(c.gpu_hours is None and c.status == "new" for c in cells)
    text = format_plan(load_sweep("table4"), cells)
    assert f"{len(cells)} cells not counted: {tmp_path / 'config.json'} lacks ['head_dim']" in text
    # a torn measurement file: '?' and what to do
    monkeypatch.setattr(pipo.cost, "MEASURED", tmp_path / "gpu_measured.json")
    (tmp_path / "gpu_measured.json").write_text('{"mfu": 0.4, "peak_tfl')
    cells = plan(load_sweep("table1"), ["scale=paper"])
    assert cells and all(c.gpu_hours is None for c in cells)
    text = format_plan(load_sweep("table1"), cells)
    assert f"{len(cells)} cells not counted: {tmp_path / 'gpu_measured.json'} is not valid JSON" in text
    assert "rerun bash reproduce/gpu_check.sh or delete it" in text


def test_the_measured_fraction_replaces_the_assumed_one_and_a_set_one_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(pipo.cost, "MEASURED", tmp_path / "gpu_measured.json")
    cfg = compose_cell(["scale=paper", "model=qwen3_8b_base", "algorithm=grpo", "pipo=off"])
    assert fraction_of_peak(cfg.scale.resources.cost) == (0.35, "assumed, not measured yet")
    assumed = cell_gpu_hours(cfg)
    (tmp_path / "gpu_measured.json").write_text(json.dumps(MEASURED_H200))
    assert fraction_of_peak(cfg.scale.resources.cost) == (0.5, "measured 2026-12-03 on H200")
    assert cell_gpu_hours(cfg) == pytest.approx(assumed * 0.35 / 0.5, rel=1e-12)
    grpo_8b = ["scale=paper", "model=qwen3_8b_base", "algorithm=grpo", "pipo=off"]
    set_cfg = compose_cell([*grpo_8b, "scale.resources.cost.mfu=0.7"])
    assert cell_gpu_hours(set_cfg) == pytest.approx(assumed * 0.35 / 0.7, rel=1e-12)
    (tmp_path / "gpu_measured.json").write_text(json.dumps({**MEASURED_H200, "mfu": 35}))
    with pytest.raises(ValueError, match="fraction of peak"):
        cell_gpu_hours(cfg)


def test_out_of_range_assumptions_are_problems_of_the_config():
    cfg = compose_cell(["scale=paper", "scale.resources.cost.mfu=35", "scale.resources.cost.replayed=2"])
    found = "\n".join(problems(cfg))
    assert "scale.resources.cost.mfu=35" in found and "scale.resources.cost.replayed=2" in found
