"""The plan's GPU-hours (pipo/cost.py) against a hand computation, and where its fraction of peak comes from."""

import json

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
    assert "       ? GPU-h" in text and f"{len(cells)} cells of unknown model shape not counted" in text


def test_the_measured_fraction_replaces_the_assumed_one_and_a_set_one_wins(tmp_path, monkeypatch):
    monkeypatch.setattr(pipo.cost, "MEASURED", tmp_path / "gpu_measured.json")
    cfg = compose_cell(["scale=paper", "model=qwen3_8b_base", "algorithm=grpo", "pipo=off"])
    assert fraction_of_peak(cfg.scale.resources.cost) == (0.35, "assumed, not measured yet")
    assumed = cell_gpu_hours(cfg)
    (tmp_path / "gpu_measured.json").write_text(json.dumps({"mfu": 0.5, "date": "2026-12-03", "device": "H200"}))
    assert fraction_of_peak(cfg.scale.resources.cost) == (0.5, "measured 2026-12-03 on H200")
    assert cell_gpu_hours(cfg) == pytest.approx(assumed * 0.35 / 0.5, rel=1e-12)
    grpo_8b = ["scale=paper", "model=qwen3_8b_base", "algorithm=grpo", "pipo=off"]
    set_cfg = compose_cell([*grpo_8b, "scale.resources.cost.mfu=0.7"])
    assert cell_gpu_hours(set_cfg) == pytest.approx(assumed * 0.35 / 0.7, rel=1e-12)
    (tmp_path / "gpu_measured.json").write_text(json.dumps({"mfu": 35}))
    with pytest.raises(ValueError, match="fraction of peak"):
        cell_gpu_hours(cfg)


def test_out_of_range_assumptions_are_problems_of_the_config():
    cfg = compose_cell(["scale=paper", "scale.resources.cost.mfu=35", "scale.resources.cost.replayed=2"])
    found = "\n".join(problems(cfg))
    assert "scale.resources.cost.mfu=35" in found and "scale.resources.cost.replayed=2" in found
