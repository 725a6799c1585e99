"""The GPU check without a GPU: the script's answer, the throughput code on a tiny CPU model, the report."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

import pipo.cost
from pipo.flops import forward_flops
from tests.gpu.report import BEGIN, END, assumed_mfu, main, render_block, replace_block
from tests.gpu.throughput import Shapes, build_model, measure, paper_shapes, peak_tflops, response_log_probs

ROOT = Path(__file__).resolve().parents[1]
TINY = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 8,
    "vocab_size": 40,
    "max_position_embeddings": 64,
    "tie_word_embeddings": True,
}


def test_without_a_gpu_the_script_says_so_exits_0_and_writes_nothing():
    watched = [ROOT / "BENCHMARKS.md", ROOT / "conf" / "gpu_measured.json"]
    before = [p.read_bytes() if p.exists() else None for p in watched]
    proc = subprocess.run(
        ["bash", str(ROOT / "reproduce" / "gpu_check.sh")],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no GPU visible to PyTorch" in proc.stdout
    assert [p.read_bytes() if p.exists() else None for p in watched] == before


def test_the_paper_shapes_from_conf():
    # conf/scale/paper.yaml: 512 + 4096 tokens; conf/backend/verl.yaml: 18,432 tokens per training forward,
    # 36,864 per log-prob forward → 18432 / 4608 = 4 and 36864 / 4608 = 8 full-length rows; checkpointing on
    assert paper_shapes() == Shapes(512, 4096, 4, 8, True)


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),
        ("NVIDIA L4", 121.0),
        ("Tesla T4", None),
    ],
)
def test_the_peak_table(name, peak):
    assert peak_tflops(name) == peak


def test_the_throughput_passes_run_on_a_tiny_cpu_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    shapes = Shapes(prompt=4, response=8, train_rows=2, log_prob_rows=3, checkpointing=True)
    out = measure(tmp_path, shapes, "cpu", torch.float32, peak=0.5, warmup=1, iters=2)
    assert set(out) == {"forward", "forward_backward", "verification"}
    # the forward FLOPs of one 12-token sequence of this config, by hand: per token and layer q 2·16·16 = 512,
    # k and v 2·2·16·8 = 512, o 512, MLP 3·2·16·32 = 3072 → 4608, two layers 9216, head 2·16·40 = 1280 → 10496;
    # × 12 tokens = 125952; attention (QKᵀ, AV) 2·2·16 = 64 per causal pair, 78 pairs, two layers: 9984
    per_sequence = 125952 + 9984
    assert forward_flops(TINY, 12) == per_sequence
    for name, rows, units in (("forward", 3, 1), ("forward_backward", 2, 3), ("verification", 2, 3)):
        p = out[name]
        assert p["rows"] == rows and p["tokens"] == rows * 12
        assert p["tokens_per_s"] == pytest.approx(rows * 12 / p["seconds"])
        assert p["model_tflops"] == pytest.approx(units * rows * per_sequence / p["seconds"] / 1e12)
        assert p["fraction_of_peak"] == pytest.approx(p["model_tflops"] / 0.5)


def test_the_response_log_probs_are_log_softmax_picked(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY))
    model = build_model(tmp_path, "cpu", torch.float32, checkpointing=False).eval()
    ids = torch.randint(0, 40, (2, 9))
    with torch.no_grad():
        logits = model(input_ids=ids).logits  # position t predicts token t + 1; the response is tokens 3…8
        expected = torch.log_softmax(logits[:, 2:8], -1).gather(-1, ids[:, 3:, None])[..., 0]
        assert torch.allclose(response_log_probs(model, ids, 3), expected, atol=1e-6)


def measurement(mfu: float | None) -> dict:
    p = {"rows": 4, "tokens": 18432, "seconds": 1.0, "tokens_per_s": 18432.0, "model_tflops": 400.0}
    return {
        "date": "2026-12-03",
        "device": "NVIDIA H200",
        "device_memory_gb": 139.8,
        "host": "node",
        "peak_tflops": 989.0,
        "peak_source": "datasheet table",
        "matmul_tflops": 780.0,
        "torch": "2.11.0",
        "cuda": "13.0",
        "transformers": "5.17.0",
        "model": "Qwen3-4B-Base",
        "dtype": "bfloat16",
        "attention": "sdpa",
        "gradient_checkpointing": True,
        "prompt_tokens": 512,
        "response_tokens": 4096,
        "passes": {
            k: {**p, "fraction_of_peak": mfu, "memory_gb": 60.0}
            for k in ("forward", "forward_backward", "verification")
        },
        "mfu": mfu,
        "achieved_tflops": 400.0,
    }


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.gpu.test_throughput" name="test_throughput_of_the_paper_shapes" time="60">{throughput}
</testcase>
<testcase classname="tests.gpu.test_local_cuda" name="test_cell" time="0"><skipped message="no verl"/></testcase>
</testsuite></testsuites>"""


def report_dir(tmp_path, mfu, throughput=""):
    """A workdir as gpu_check.sh leaves it: ``throughput``, the throughput test's outcome ('': passed)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "junit.xml").write_text(JUNIT.format(throughput=throughput))
    (work / "throughput.json").write_text(json.dumps(measurement(mfu)))
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text(f"# B\ntext\n{BEGIN}\nold\n{END}\nafter\n")
    return work, bench


def test_the_report_writes_the_measurement_that_the_cost_model_then_reads(tmp_path, capsys, monkeypatch):
    work, bench = report_dir(tmp_path, 0.4)
    measured = tmp_path / "gpu_measured.json"
    assert main([str(work), "--json", str(measured), "--benchmarks", str(bench)]) == 0
    text = capsys.readouterr().out
    assert "1 passed, 1 skipped" in text and "skipped  test_local_cuda::test_cell: no verl" in text
    assert "fraction of peak for the cost model (forward+backward): 40.0%" in text
    written = bench.read_text()
    assert written.startswith("# B\ntext\n") and written.endswith(f"{END}\nafter\n") and "old" not in written
    assert "**Measured** 2026-12-03 on NVIDIA H200" in written and "| forward+backward (an update) | 4 |" in written
    monkeypatch.setattr(pipo.cost, "MEASURED", measured)
    assert pipo.cost.measured()["mfu"] == 0.4


def test_no_peak_writes_nothing(tmp_path, capsys):
    work, bench = report_dir(tmp_path, None)
    measured = tmp_path / "gpu_measured.json"
    assert main([str(work), "--json", str(measured), "--benchmarks", str(bench)]) == 0  # the test itself passed
    assert not measured.exists() and "old" in bench.read_text()
    assert "is not in tests/gpu/throughput.py's peak table" in capsys.readouterr().out


def test_a_failed_throughput_test_with_a_peak_writes_nothing_and_fails(tmp_path, capsys):
    # its throughput.json is written before its sanity checks: a failed check must not become the cost model's
    work, bench = report_dir(tmp_path, 0.4, '<failure message="model FLOPs above the dense matmul"/>')
    measured = tmp_path / "gpu_measured.json"
    assert main([str(work), "--json", str(measured), "--benchmarks", str(bench)]) == 1
    assert not measured.exists() and "old" in bench.read_text()
    out = capsys.readouterr().out
    assert "failed   test_throughput::test_throughput_of_the_paper_shapes: model FLOPs above" in out
    assert "did not pass: its figures above are not recorded" in out


def test_benchmarks_shows_what_conf_gpu_measured_holds():
    # generated, never typed: the committed block is the rendering of the committed measurement (or of none)
    text = (ROOT / "BENCHMARKS.md").read_text()
    assert replace_block(text, render_block(pipo.cost.measured(), assumed_mfu())) == text
