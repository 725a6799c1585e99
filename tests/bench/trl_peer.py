"""The local trainer's GRPO step against TRL's ``GRPOTrainer`` on the same work, in one run.

    pip install -e ".[bench]"          # TRL, for this benchmark only
    python tests/bench/trl_peer.py [--rounds 10] [--repeats 2] [overrides...]

Same tiny base model (the cached stand-in of ``model=``), same prompts (the stand-in task's training
split), same verifier as the reward, same batch (``algorithm.batch_size / scale.batch_divisor``
prompts × ``rollout_n`` samples per generation round), same mini-batches (one optimizer step per
``mini_batch_size / batch_divisor`` prompts), same sampling (temperature, no top-k/top-p), same
maximum response length, same KL setting (k3 / low-var KL in the loss with the cell's ``kl_coef``;
TRL then keeps a reference model as we do), same learning rate and CPU threads; PIPO off, one epoch
per batch. A *round* is what one of our ``train_step`` calls does: sample a batch, score it, take
the optimizer steps. Both sides run ``--rounds`` rounds, ``--repeats`` times, alternating; printed:
median seconds per round of each and the ratio TRL / ours.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.tasks import get_verifier, load_standin


def ours(cfg, model_path: Path, rounds: int, tmp: Path) -> list[float]:
    from pipo.backends.local.trainer import LocalTrainer
    from pipo.records import RunRecord
    from pipo.wandb_mirror import WandbMirror

    task = load_standin(cfg.task)
    off = WandbMirror("disabled", "", None, None, "", "", tmp, {}, [])
    trainer = LocalTrainer(cfg, task, model_path, RunRecord(tmp), off)
    trainer.train_step(1)  # warm-up
    return [trainer.train_step(step)["timing/step"] for step in range(2, rounds + 2)]


def trl(cfg, model_path: Path, rounds: int, tmp: Path) -> list[float]:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    a, s = cfg.algorithm, cfg.scale
    prompts_per_round = a.batch_size // s.batch_divisor
    mini_batches = a.batch_size // a.mini_batch_size
    task = load_standin(cfg.task)
    verifier = get_verifier(cfg.task.verifier)
    rows = [task.train[i % len(task.train)] for i in range(prompts_per_round * (rounds + 1))]
    data = Dataset.from_list([{"prompt": r["prompt"], "ground_truth": r["ground_truth"]} for r in rows])

    def reward(completions, ground_truth, **_):
        return [float(x) for x in verifier.many(completions, ground_truth)]

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_args, **_kw):
            stamps.append(time.perf_counter())

    args = GRPOConfig(
        output_dir=str(tmp),
        use_cpu=True,
        bf16=False,
        seed=cfg.seed,
        learning_rate=s.lr,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=s.weight_decay,
        max_grad_norm=s.grad_clip,
        num_generations=a.rollout_n,
        per_device_train_batch_size=prompts_per_round * a.rollout_n // mini_batches,
        steps_per_generation=mini_batches,
        num_iterations=1,
        max_completion_length=s.max_response_length,
        temperature=s.temperature,
        top_k=0,
        top_p=1.0,
        beta=a.kl_coef if a.use_kl_loss else 0.0,
        epsilon=a.clip_ratio_low,
        loss_type="dapo",  # token-mean over the mini-batch, as verl's token-mean
        max_steps=(rounds + 1) * mini_batches,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    model = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        callbacks=[Clock()],
    )
    start = time.perf_counter()
    trainer.train()
    ends = stamps[mini_batches - 1 :: mini_batches]  # the end of each round
    per_round = [b - a_ for a_, b in zip([start, *ends[:-1]], ends, strict=True)]
    return per_round[1:]  # the first round warms up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    cfg = compose_cell(["algorithm=grpo", "pipo=off", "wandb.mode=disabled", *args.overrides])
    model_path = resolve_model(cfg.model, load_standin(cfg.task), cfg.cache_dir)
    torch.set_num_threads(2)
    a, s = cfg.algorithm, cfg.scale
    print(
        f"GRPO, {a.batch_size // s.batch_divisor} prompts × {a.rollout_n} samples per round, "
        f"{a.batch_size // a.mini_batch_size} optimizer steps per round, ≤ {s.max_response_length} response "
        f"tokens, KL coef {a.kl_coef if a.use_kl_loss else 0}, {torch.get_num_threads()} threads"
    )
    t_ours, t_trl = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            t_trl += trl(cfg, model_path, args.rounds, Path(tmp) / f"trl{r}")
            t_ours += ours(cfg, model_path, args.rounds, Path(tmp) / f"ours{r}")
    a_, b = statistics.median(t_ours), statistics.median(t_trl)
    print(f"seconds per round (median of {len(t_ours)}): ours {a_:.3f}, TRL {b:.3f}; TRL / ours = {b / a_:.2f}")


if __name__ == "__main__":
    main()
