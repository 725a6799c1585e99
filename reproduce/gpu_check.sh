#!/usr/bin/env bash
# The GPU check, on one GPU without network: PyTorch and transformers are all it needs (no verl, Ray or
# vLLM). Under 8 minutes on an H100/H200.
#
#   bash reproduce/gpu_check.sh                     # GPU_PEAK_TFLOPS=… for a GPU not in the peak table
#
# Runs the tests marked `gpu` (tests/gpu/), then prints a summary:
#  - throughput of Qwen3-4B-Base's shapes (random weights, bf16, SDPA) at the paper's 512 + 4096-token
#    sequences in verl's micro-batches: tokens/s of a no-grad forward, a forward+backward and a
#    verification step, and the fraction of the GPU's peak they reach. The forward+backward's fraction
#    is written to conf/gpu_measured.json (the plan's GPU-hours and tests/bench/cost_model.py use it
#    instead of the assumed 35 %) and to BENCHMARKS.md's cost-model section;
#  - the local backend on CUDA (a micro GRPO+PIPO cell, and the verification update against the CPU's):
#    these need the project installed (pip install -e .: the local backend calls verl's core_algos) and
#    are skipped, with the reason, where it is not.
# Without a GPU it says so and exits 0, writing nothing. Exit status 1: a test failed.
# GPU_CHECK_JSON / GPU_CHECK_BENCHMARKS: where the measurement goes (default conf/gpu_measured.json,
# BENCHMARKS.md). reproduce/smoke_gpu.sh is the other GPU script: verl's whole stack (vLLM, Ray, a real
# model and data) on a few steps; this one needs none of it.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# 0: a GPU is visible; 3: none; else torch or transformers is missing
probe='import importlib.util as u, sys, torch; sys.exit(5 if u.find_spec("transformers") is None else 0 if torch.cuda.is_available() else 3)'
for candidate in ${PYTHON:-python python3}; do  # the first interpreter that has both (python3 on a bare GPU image)
  "$candidate" -c "$probe" 2>/dev/null
  found=$?
  PYTHON=$candidate
  [ "$found" -eq 0 ] || [ "$found" -eq 3 ] && break
done
if [ "$found" -eq 3 ]; then
  echo "gpu_check: no GPU visible to PyTorch (torch.cuda.is_available() is False): nothing to check or" \
       "measure here; conf/gpu_measured.json and BENCHMARKS.md are left as they are."
  exit 0
elif [ "$found" -ne 0 ]; then
  echo "gpu_check: PyTorch and transformers are needed (pip install torch transformers; or PYTHON=…)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIPO_GPU_CHECK_DIR="$work" TQDM_DISABLE=1 HF_HUB_OFFLINE=1
export GPU_CHECK_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# a hard bound on the whole run (a hang fails instead of blocking the node)
timeout "${GPU_CHECK_TIMEOUT:-450}" "$PYTHON" -m pytest tests/gpu -m gpu -q -p no:cacheprovider \
  --junitxml="$work/junit.xml" "$@"
status=$?
[ "$status" -eq 124 ] && echo "gpu_check: stopped after ${GPU_CHECK_TIMEOUT:-450} s (GPU_CHECK_TIMEOUT)"
if ! "$PYTHON" -m tests.gpu.report "$work" --json "${GPU_CHECK_JSON:-conf/gpu_measured.json}" \
  --benchmarks "${GPU_CHECK_BENCHMARKS:-BENCHMARKS.md}"; then
  [ "$status" -eq 0 ] && status=1
fi
exit "$status"
