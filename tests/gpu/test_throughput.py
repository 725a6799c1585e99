"""The paper's 4B shapes on this GPU: tokens/s of each pass and the fraction of peak (reproduce/gpu_check.sh).

The measurement goes to ``$PIPO_GPU_CHECK_DIR/throughput.json`` (the script's report reads it), or to the
test's temporary directory when the variable is unset.
"""

import json
import os
import platform
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

from tests.gpu.throughput import MODEL_CONFIGS, matmul_tflops, measure, paper_shapes, peak_tflops

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]
MODEL = os.environ.get("GPU_CHECK_MODEL", "Qwen3-4B-Base")


def test_throughput_of_the_paper_shapes(tmp_path):
    import transformers

    name = torch.cuda.get_device_name()
    peak = float(os.environ["GPU_PEAK_TFLOPS"]) if os.environ.get("GPU_PEAK_TFLOPS") else peak_tflops(name)
    shapes = paper_shapes()
    matmul = matmul_tflops("cuda")
    passes = measure(MODEL_CONFIGS / MODEL, shapes, "cuda", torch.bfloat16, peak)
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "device": name,
        "device_memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
        "host": platform.node(),
        "peak_tflops": peak,
        "peak_source": "GPU_PEAK_TFLOPS" if os.environ.get("GPU_PEAK_TFLOPS") else "datasheet table",
        "matmul_tflops": matmul,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "model": MODEL,
        "dtype": "bfloat16",
        "attention": "sdpa",
        "gradient_checkpointing": shapes.checkpointing,
        "prompt_tokens": shapes.prompt,
        "response_tokens": shapes.response,
        "passes": passes,
        "mfu": passes["forward_backward"]["fraction_of_peak"],  # of peak_tflops: pipo.cost uses it only at that peak
        "achieved_tflops": passes["forward_backward"]["model_tflops"],
    }
    # written before the checks below so that a failed run still shows its figures; tests/gpu/report.py
    # keeps them out of conf/gpu_measured.json and BENCHMARKS.md unless this test passed
    out = Path(os.environ.get("PIPO_GPU_CHECK_DIR") or tmp_path)
    (out / "throughput.json").write_text(json.dumps(result, indent=2))
    for p in passes.values():
        assert p["tokens_per_s"] > 0 and p["model_tflops"] > 0
        # model FLOPs cannot beat the device's own dense matrix product by much (a wrong count would)
        assert p["model_tflops"] < 1.1 * matmul
    # a forward+backward is three forwards' FLOPs: per token it takes longer than a no-grad forward
    assert passes["forward_backward"]["tokens_per_s"] < passes["forward"]["tokens_per_s"]
