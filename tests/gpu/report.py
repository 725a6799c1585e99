"""The GPU check's summary, and the two files it writes (``reproduce/gpu_check.sh`` runs it after pytest).

    python -m tests.gpu.report WORKDIR [--json conf/gpu_measured.json] [--benchmarks BENCHMARKS.md]

WORKDIR holds pytest's ``junit.xml`` and the throughput test's ``throughput.json``. When the throughput
test passed (in ``junit.xml``) and measured against a known peak, the measurement goes to ``--json``
(which ``pipo.cost`` reads: the plan's and ``cost_model.py``'s fraction of peak) and to the block of
``--benchmarks`` between the markers below; otherwise both are left as they are. Exit status 1 when a
test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- gpu_check:begin (written by reproduce/gpu_check.sh; do not edit by hand) -->"
END = "<!-- gpu_check:end -->"
THROUGHPUT_TEST = "test_throughput::test_throughput_of_the_paper_shapes"  # as junit_outcomes names it
PASSES = (
    ("forward", "forward, no grad (log-probs)"),
    ("forward_backward", "forward+backward (an update)"),
    ("verification", "verification step (+ clip, AdamW)"),
)


def junit_outcomes(junit: Path) -> list[tuple[str, str, str]]:
    """(test, passed | failed | error | skipped, message) for each test pytest's JUnit XML lists."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}".replace("tests.gpu.", "")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = "failed" if tag == "failure" else tag
                message = (node.get("message") or "").splitlines()[0] if node.get("message") else ""
                break
        out.append((name, outcome, message))
    return out


def throughput_passed(outcomes: list[tuple[str, str, str]]) -> bool:
    """Whether the throughput test ran and passed (its sanity checks held)."""
    return any(name == THROUGHPUT_TEST and outcome == "passed" for name, outcome, _ in outcomes)


def _fraction(x: float | None) -> str:
    return "?" if x is None else f"{x:.1%}"


def pass_rows(m: dict[str, Any]) -> list[list[str]]:
    """One row per pass: name, rows, tokens/s, model TFLOP/s, fraction of peak, peak memory."""
    rows = []
    for key, name in PASSES:
        p = m["passes"][key]
        memory = "-" if p.get("memory_gb") is None else f"{p['memory_gb']:.0f} GB"
        tflops = f"{p['model_tflops']:.0f}"
        rows.append(
            [name, str(p["rows"]), f"{p['tokens_per_s']:,.0f}", tflops, _fraction(p["fraction_of_peak"]), memory]
        )
    return rows


def assumed_mfu(root: Path = ROOT) -> float:
    """The fraction of peak the plan assumes until one is measured (``conf/scale/paper.yaml``)."""
    import yaml

    return float(
        yaml.safe_load((root / "conf" / "scale" / "paper.yaml").read_text())["resources"]["cost"]["assumed_mfu"]
    )


def render_block(m: dict[str, Any] | None, assumed: float) -> str:
    """BENCHMARKS.md's paragraph on the fraction of peak: the measurement, or how to make it."""
    if m is None:
        return (
            f"**Not measured yet**: the GPU-hours above rest on an assumed {assumed * 100:g} % of peak "
            "(`scale.resources.cost.assumed_mfu`). To measure it, on a GPU node with PyTorch and transformers "
            "(no network, under 8 minutes): `bash reproduce/gpu_check.sh`. It times the paper's 4B shapes, "
            "writes `conf/gpu_measured.json` — which the plan and `cost_model.py` then use — and replaces this "
            "paragraph with its figures."
        )
    head = "| pass | rows | tokens/s | model TFLOP/s | of peak | GPU memory |\n|---|---:|---:|---:|---:|---:|\n"
    table = head + "\n".join("| " + " | ".join(r) + " |" for r in pass_rows(m))
    return (
        f"**Measured** {m['date']} on {m['device']} ({m['device_memory_gb']:g} GiB; torch {m['torch']}, "
        f"CUDA {m['cuda']}, transformers {m['transformers']}; commit {m.get('commit', '?')}), "
        f"`{m.get('command', 'bash reproduce/gpu_check.sh')}`: {m['model']}'s shapes with random weights, bf16, "
        f"SDPA, gradient checkpointing {'on' if m['gradient_checkpointing'] else 'off'}, sequences of "
        f"{m['prompt_tokens']} + {m['response_tokens']} tokens in verl's micro-batches (`conf/backend/verl.yaml`). "
        f"Peak {m['peak_tflops']:g} TFLOP/s ({m['peak_source']}); a dense bf16 matrix product reached "
        f"{m['matmul_tflops']:.0f}. Model FLOPs (`pipo/flops.py`; 3 forwards per forward+backward, "
        "checkpointing's recomputation not counted):\n\n"
        f"{table}\n\n"
        f"The plan and `cost_model.py` use the forward+backward's fraction, {_fraction(m['mfu'])}, instead of "
        f"the assumed {assumed * 100:g} % (`conf/gpu_measured.json`; `scale.resources.cost.mfu` or `--mfu` "
        f"override it) where their peak (`scale.resources.cost.peak_tflops`) is this one, {m['peak_tflops']:g} "
        "TFLOP/s; at another peak they keep the assumed fraction and say so."
    )


def replace_block(text: str, block: str) -> str:
    """``text`` with what stands between the markers replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one {BEGIN!r} … {END!r} block")
    before, rest = text.split(BEGIN)
    _, after = rest.split(END)
    return f"{before}{BEGIN}\n{block}\n{END}{after}"


def summary(outcomes: list[tuple[str, str, str]], m: dict[str, Any] | None) -> str:
    counts = {k: sum(o == k for _, o, _ in outcomes) for k in ("passed", "failed", "error", "skipped")}
    lines = ["", "GPU check: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n)]
    lines += [f"  {o:<8} {name}" + (f": {msg}" if msg else "") for name, o, msg in outcomes]
    if m is not None:
        lines += [
            "",
            f"{m['model']} shapes on {m['device']}: bf16, SDPA, {m['prompt_tokens']} + {m['response_tokens']} tokens; "
            f"peak {m['peak_tflops']} TFLOP/s ({m['peak_source']}), bf16 matmul {m['matmul_tflops']:.0f} TFLOP/s",
            f"  {'pass':<36}{'rows':>5}{'tokens/s':>12}{'TFLOP/s':>9}{'of peak':>9}{'memory':>9}",
        ]
        lines += [f"  {r[0]:<36}{r[1]:>5}{r[2]:>12}{r[3]:>9}{r[4]:>9}{r[5]:>9}" for r in pass_rows(m)]
        lines.append(f"  fraction of peak for the cost model (forward+backward): {_fraction(m['mfu'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--json", type=Path, default=ROOT / "conf" / "gpu_measured.json")
    parser.add_argument("--benchmarks", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    junit, measured = args.workdir / "junit.xml", args.workdir / "throughput.json"
    outcomes = junit_outcomes(junit) if junit.exists() else []
    m = json.loads(measured.read_text()) if measured.exists() else None
    if m is not None:
        m["commit"] = os.environ.get("GPU_CHECK_COMMIT", "?")
        m["command"] = "bash reproduce/gpu_check.sh"
    print(summary(outcomes, m))
    if not outcomes:
        print("  no test ran (pytest stopped before reporting: see its output above)")
    if m is None:
        print(f"\nno throughput measured: {args.json.name} and {args.benchmarks.name} left as they are")
    elif not throughput_passed(outcomes):
        print(
            f"\n{THROUGHPUT_TEST} did not pass: its figures above are not recorded; "
            f"{args.json.name} and {args.benchmarks.name} left as they are"
        )
    elif m["mfu"] is None:
        print(
            f"\n{m['device']} is not in tests/gpu/throughput.py's peak table: set GPU_PEAK_TFLOPS (dense bf16) "
            f"and rerun for a fraction of peak; {args.json.name} and {args.benchmarks.name} left as they are"
        )
    else:
        args.json.write_text(json.dumps(m, indent=2) + "\n")
        args.benchmarks.write_text(replace_block(args.benchmarks.read_text(), render_block(m, assumed_mfu())))
        print(f"\nwrote {args.json} and the measured block of {args.benchmarks}")
    failed = any(o in ("failed", "error") for _, o, _ in outcomes) or not outcomes
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
