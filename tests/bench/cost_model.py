"""A cost model of PIPO's step-time ratio, checked at tiny scale and extrapolated to paper scale.

    python tests/bench/cost_model.py [--steps 14] [--gen-cost 2 4 8] [--replayed 1.0 0.5]
                                     [--prompt-tokens 200] [--response-tokens 2000] [--dapo-rounds 1.5]

Model. A step is made of passes over the batch's sequences: sampling, no-grad forwards (old
log-probs; the reference for KL; PPO's values; SDPO's teacher) and forward+backward updates (the
actor; PPO's critic). PIPO adds one actor update over the replayed fraction f of the previous batch
(rows whose PI rewards are all zero are skipped), so

    ratio = 1 + f · T_actor_update / T_base_step.

1. Tiny scale: every term is measured (the trainer's timing/* metrics, pipo=off and pipo=on side by
   side, medians over the steps where PIPO verifies, f measured) and the predicted ratio is printed
   next to the measured one.
2. Paper scale: the terms come from the token-count model of the cell's own config (batch, rollouts,
   KL, critic, DAPO's generation rounds) that the plan uses (``pipo.cost.step_units``), in units of
   one forward over one sequence token: a no-grad forward costs 1, a forward+backward 3 (backward ≈ 2
   forwards, compute-bound at this size), prefill 1 per prompt token and decoding g per response
   token. Assumptions (flags): mean prompt and response lengths, g (decoding is memory-bound; g > 1
   the more so), f, DAPO's mean generation rounds. The optimizer step and the verifier are left out
   (small next to 4k-token passes).
3. GPU-hours per Table 1 cell: those units × the cell's sequences × the forward FLOPs of one sequence
   (``pipo.flops``, from the shipped model configs), at a fraction of the GPUs' peak — by default the
   one ``bash reproduce/gpu_check.sh`` measured (``conf/gpu_measured.json``), else the assumed 35 %;
   ``--mfu`` overrides it —, over the cell's steps;
   PIPO's replay at f = 1 (the whole previous batch) and at the fractions f of rows with a PI reward
   measured at tiny scale and implied by the paper's numbers. Only GRPO and GSPO have rows without
   one (degenerate groups); PPO's GAE and DAPO's kept groups give every row a non-zero advantage.
   The paper's f: under its own i.i.d.-rollout model (Appendix) with a Beta distribution of the
   per-problem success rate p fitted to its final Pass@1 and Pass@8 (Tables 1 and 6, 4B), a group of
   n is degenerate with probability E[p^n + (1 − p)^n]; the evaluation sets stand in for the
   training set, at the end of training.
"""

import argparse
import csv
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from pipo_overhead import trainer

from pipo.config import compose_cell
from pipo.cost import cell_gpu_hours, fraction_of_peak, step_units

ALGORITHMS = ("ppo", "grpo", "gspo", "dapo", "sdpo")
TABLE1 = ("ppo", "grpo", "gspo", "dapo")
MODELS = {"qwen3_4b_base": "4B", "qwen3_8b_base": "8B"}
PAPER = Path(__file__).parents[2] / "analysis" / "paper"
BENCHMARKS = ("MATH500", "AIME25", "AMC23", "Minerva", "Olympiad")


def tiny(algorithm: str, steps: int, tmp: Path) -> tuple[float, float, float]:
    """(predicted, measured ratio, replayed fraction) at tiny scale."""
    on = trainer([f"algorithm={algorithm}", "pipo=on"], tmp / "on")
    off = trainer([f"algorithm={algorithm}", "pipo=off"], tmp / "off")
    base, actor, step_on, replayed = [], [], [], []
    for step in range(1, steps + 1):
        m_on, m_off = on.train_step(step), off.train_step(step)
        if m_on.get("pipo/verified"):
            base.append(m_off["timing/step"])
            actor.append(m_off["timing/update_actor"] - m_off.get("timing/update_critic", 0.0))
            step_on.append(m_on["timing/step"])
            replayed.append(m_on["pipo/replayed_fraction"])
    f, t_base = statistics.mean(replayed), statistics.median(base)
    return 1 + f * statistics.median(actor) / t_base, statistics.median(step_on) / t_base, f


def paper_units(algorithm: str, prompt: float, response: float, g: float, dapo_rounds: float) -> tuple[float, float]:
    """(base step, one actor update) in forward-token units per sequence token, from the paper-scale config."""
    a = compose_cell([f"algorithm={algorithm}", "scale=paper"]).algorithm
    return step_units(a, prompt, response, g, dapo_rounds)


def beta_moment(a: float, b: float, k: int) -> float:
    """E[p^k] for p ~ Beta(a, b)."""
    out = 1.0
    for j in range(k):
        out *= (a + j) / (a + b + j)
    return out


def degenerate_share(pass1: float, pass8: float, n: int) -> float:
    """P(a group of n rollouts is all-correct or all-wrong), p ~ Beta fitted to mean ``pass1`` and
    P(at least one of 8 correct) = ``pass8`` (both in [0, 1]). E[(1 − p)^8] falls with the
    concentration a + b at a fixed mean, so the fit is a bisection on it (in log space)."""
    target = 1.0 - pass8
    lo, hi = 1e-4, 1e6
    for _ in range(200):
        s = (lo * hi) ** 0.5
        if beta_moment((1 - pass1) * s, pass1 * s, 8) > target:
            lo = s
        else:
            hi = s
    a, b = pass1 * s, (1 - pass1) * s
    return beta_moment(a, b, n) + beta_moment(b, a, n)


def paper_replayed(algorithm: str, n: int) -> float | None:
    """The paper's f for ``algorithm`` (its +PIPO row, 4B), averaged over the five benchmarks."""
    if algorithm not in ("grpo", "gspo"):
        return 1.0  # PPO (GAE) and DAPO (kept groups): every row has a non-zero advantage
    method = f"{algorithm.upper()}+PIPO"

    def row(name: str) -> dict:
        with open(PAPER / name) as f:
            return next(r for r in csv.DictReader(f) if r["model"] == "Qwen3-4B-Base" and r["method"] == method)

    p1, p8 = row("table1_math_pass1.csv"), row("table6_math_pass8.csv")
    shares = [degenerate_share(float(p1[b]) / 100, float(p8[b]) / 100, n) for b in BENCHMARKS]
    return 1.0 - statistics.mean(shares)


def gpu_hours(algorithm: str, model: str, g: float, args, f: float | None) -> float:
    """GPU-hours of a Table 1 cell at paper scale (the plan's ``pipo.cost.cell_gpu_hours`` under this
    script's assumptions); ``f`` None: PIPO off, else its replayed fraction."""
    cost = "scale.resources.cost"
    overrides = [
        f"algorithm={algorithm}",
        "scale=paper",
        f"model={model}",
        "pipo=off" if f is None else "pipo=on",
        f"{cost}.prompt_tokens={args.prompt_tokens}",
        f"{cost}.response_tokens={args.response_tokens}",
        f"{cost}.decode_cost={g}",
        f"{cost}.dapo_rounds={args.dapo_rounds}",
        f"{cost}.peak_tflops={args.peak_tflops}",
        f"{cost}.replayed={1.0 if f is None else f}",
    ]
    if args.mfu is not None:
        overrides.append(f"{cost}.mfu={args.mfu}")
    return cell_gpu_hours(compose_cell(overrides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--gen-cost", type=float, nargs="+", default=[2.0, 4.0, 8.0], help="g")
    parser.add_argument("--replayed", type=float, nargs="+", default=[1.0, 0.5], help="f at paper scale")
    parser.add_argument("--prompt-tokens", type=int, default=200)
    parser.add_argument("--response-tokens", type=int, default=2000)
    parser.add_argument("--dapo-rounds", type=float, default=1.5)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="per GPU (H100/H200 dense bf16)")
    parser.add_argument(
        "--mfu",
        type=float,
        default=None,
        help="fraction of peak over a whole step (default: measured by reproduce/gpu_check.sh, else 0.35 assumed)",
    )
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    tiny_f: dict[str, float] = {}
    if not args.skip_tiny:
        print("tiny scale (measured components → predicted ratio, next to the measured ratio)")
        print(f"{'algorithm':<10}{'f':>6}{'predicted':>11}{'measured':>10}")
        with tempfile.TemporaryDirectory() as tmp:
            for algo in args.algorithms:
                pred, meas, tiny_f[algo] = tiny(algo, args.steps, Path(tmp) / algo)
                print(f"{algo:<10}{tiny_f[algo]:>6.2f}{pred:>11.2f}{meas:>10.2f}", flush=True)
    print(
        f"\npaper scale (Table 5 batches; {args.prompt_tokens:g} prompt + {args.response_tokens:g} response "
        f"tokens; DAPO {args.dapo_rounds:g} generation rounds): predicted PIPO step-time ratio"
    )
    cols = [(g, f) for f in args.replayed for g in args.gen_cost]
    print(f"{'algorithm':<10}" + "".join(f"{f'g={g:g},f={f:g}':>14}" for g, f in cols))
    for algo in args.algorithms:
        row = []
        for g, f in cols:
            step, actor = paper_units(algo, args.prompt_tokens, args.response_tokens, g, args.dapo_rounds)
            row.append(1 + f * actor / step)
        print(f"{algo:<10}" + "".join(f"{x:>14.2f}" for x in row))
    g = max(args.gen_cost)  # the costliest decoding: the replay's smallest share
    cost = compose_cell(["scale=paper", f"scale.resources.cost.peak_tflops={args.peak_tflops}"]).scale.resources.cost
    mfu, source = (args.mfu, "--mfu") if args.mfu is not None else fraction_of_peak(cost)
    print(
        f"\nGPU-hours per Table 1 cell (g={g:g}; {mfu:g} of {args.peak_tflops:g} TFLOP/s per GPU, {source}; "
        "f: the share of the previous batch replayed)"
    )
    head = ["base", "+PIPO f=1", "f tiny", "+PIPO", "f paper", "+PIPO"]
    print(f"{'cell':<10}" + "".join(f"{h:>11}" for h in head))
    for model, size in MODELS.items():
        for algo in TABLE1:
            n = compose_cell([f"algorithm={algo}", "scale=paper"]).algorithm.rollout_n
            cells = [f"{gpu_hours(algo, model, g, args, f):>11.0f}" for f in (None, 1.0)]
            for f in (tiny_f.get(algo), paper_replayed(algo, n)):
                hours = None if f is None else gpu_hours(algo, model, g, args, f)
                cells += [f"{'-':>11}"] * 2 if f is None else [f"{f:>11.2f}", f"{hours:>11.0f}"]
            print(f"{algo + ' ' + size:<10}" + "".join(cells))


if __name__ == "__main__":
    main()
