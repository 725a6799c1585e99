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
2. Paper scale: the terms come from a token-count model of the cell's own config (batch, rollouts,
   KL, critic, DAPO's generation rounds), in units of one forward over one sequence token: a no-grad
   forward costs 1, a forward+backward 3 (backward ≈ 2 forwards, compute-bound at this size),
   prefill 1 per prompt token and decoding g per response token. Assumptions (flags): mean prompt
   and response lengths, g (decoding is memory-bound; g > 1 the more so), f, DAPO's mean generation
   rounds. The optimizer step and the verifier are left out (small next to 4k-token passes).
"""

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from pipo_overhead import trainer

from pipo.algorithm import needs_critic, needs_self_teacher
from pipo.config import compose_cell

ALGORITHMS = ("ppo", "grpo", "gspo", "dapo", "sdpo")


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
    r = response / (prompt + response)  # response share of a sequence's tokens
    rounds = dapo_rounds if a.filter_groups else 1.0
    step = rounds * (g * r + (1 - r))  # sampling: prefill + decoding
    step += 1  # old log-probs
    step += 1 if (a.use_kl_loss or a.use_kl_in_reward) else 0  # reference forward
    step += 3  # actor update
    if needs_critic(a):
        step += 1 + 3  # critic values + critic update
    if needs_self_teacher(a):
        step += 1  # the self-teacher's forward on the re-prompted sequences
    return step, 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=14)
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--gen-cost", type=float, nargs="+", default=[2.0, 4.0, 8.0], help="g")
    parser.add_argument("--replayed", type=float, nargs="+", default=[1.0, 0.5], help="f at paper scale")
    parser.add_argument("--prompt-tokens", type=float, default=200)
    parser.add_argument("--response-tokens", type=float, default=2000)
    parser.add_argument("--dapo-rounds", type=float, default=1.5)
    parser.add_argument("--skip-tiny", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if not args.skip_tiny:
        print("tiny scale (measured components → predicted ratio, next to the measured ratio)")
        print(f"{'algorithm':<10}{'f':>6}{'predicted':>11}{'measured':>10}")
        with tempfile.TemporaryDirectory() as tmp:
            for algo in args.algorithms:
                pred, meas, f = tiny(algo, args.steps, Path(tmp) / algo)
                print(f"{algo:<10}{f:>6.2f}{pred:>11.2f}{meas:>10.2f}", flush=True)
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


if __name__ == "__main__":
    main()
