#!/usr/bin/env bash
# A few steps of GRPO+PIPO (or ALGORITHM+PIPO) on verl with a small model, on one GPU: the verl
# backend's smoke test.
#
#   pip install -e ".[verl]"          # verl's GPU stack (vLLM rollout) beside the project
#   bash reproduce/smoke_gpu.sh       # MODEL=/path/or/hf-id  DATA=data  OUT=runs-smoke  STEPS=5
#   ALGORITHM=sdpo bash reproduce/smoke_gpu.sh   # SDPO's teacher, loss and EMA on verl
#
# Without internet (HF_HUB_OFFLINE=1, most GPU nodes): MODEL=/local/model/dir and DATA prepared
# elsewhere (or SOURCE=DIR of downloaded datasets); the pre-checks say what is missing in seconds.
# It prepares MATH (python -m pipo.tasks.prepare; needs the Hugging Face hub, or DATA prepared before),
# trains STEPS iterations (8 prompts × 8 rollouts, ≤512-token responses, 64 problems per benchmark),
# then checks the run record: done, validated at step 0 and at the end, PIPO verified at least once
# (SDPO: and a teacher demonstration found). Exit status 0 means the whole path (config → verl →
# plugin → worker extension → record) ran.
# Throughput and the fraction of peak the cost model uses, without verl: reproduce/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-Qwen/Qwen3-0.6B-Base}
DATA=${DATA:-data}
OUT=${OUT:-runs-smoke}
STEPS=${STEPS:-5}
ALGORITHM=${ALGORITHM:-grpo}

python -m pipo.hub "$MODEL"       # a local directory, a cached model, or the hub reachable: else what to download
[ -f "$DATA/math/train.parquet" ] || python -m pipo.tasks.prepare task=math out_dir="$DATA" source="${SOURCE:-hub}"
nvidia-smi -L >/dev/null 2>&1 || { echo "pre-checks passed; no GPU visible (nvidia-smi)"; exit 1; }

python reproduce/train.py scale=paper backend=verl algorithm="$ALGORITHM" pipo=on \
  model.hf_id="$MODEL" scale.steps="$STEPS" scale.eval.every="$STEPS" scale.save_every=2 \
  algorithm.batch_size=8 algorithm.mini_batch_size=8 pipo.delta_clip=3 \
  scale.max_response_length=512 scale.resources.gpus=1 \
  backend.setup.data_dir="$DATA" backend.setup.gpu_memory_utilization=0.4 \
  +verl.data.val_max_samples=64 +verl.trainer.val_before_train=true \
  run_root="$OUT" wandb.mode=disabled

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
record = max(Path(sys.argv[1], "paper").glob("*/status.json"), key=lambda p: p.stat().st_mtime).parent
status = json.loads((record / "status.json").read_text())
evals = json.loads((record / "eval.json").read_text())["evals"]
rows = [json.loads(line) for line in (record / "metrics.jsonl").read_text().splitlines()]
verified = sum(r.get("pipo/verified", 0) for r in rows)
print(f"{record}: {status['state']}, evaluations at steps {[e['step'] for e in evals]}, "
      f"PIPO verified {verified:.0f} of {len(rows)} steps, final Pass@1 {evals[-1]['avg']['pass@1']:.3f}")
assert status["state"] == "done" and evals[0]["step"] == 0 and verified >= 1, "smoke test failed"
demos = [r["sdpo/demo_fraction"] for r in rows if "sdpo/demo_fraction" in r]
assert not demos or max(demos) > 0, "SDPO found no successful sibling to re-prompt with"
PY
