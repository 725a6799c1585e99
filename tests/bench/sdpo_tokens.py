"""Which tokens SDPO's distillation pushes up or down, on the multiple-choice stand-in.

    python tests/bench/sdpo_tokens.py [--ckpt RUN/ckpt/state.pt] [--problems 256] [overrides...]

Samples 8 responses per training question from the student (the base model, or the policy of a
run record's checkpoint, its EMA teacher beside it), scores them, re-prompts each response's first
successful sibling as SDPO does, and reads every sampled token's log-probability under the teacher
and the student, and the probability both give to ending the response right after ``<answer>``.
SDPO's loss moves a token up where log π_teacher − log π_student > 0 and down where
it is negative (``pipo.algorithm.self_distillation.sdpo_token_loss``). Printed per kind of token:
how many, mean π_student, mean π_teacher, and the mean log-ratio.
"""

import argparse
import copy
from collections import defaultdict

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipo.algorithm.self_distillation import demonstrations
from pipo.backends.local.base_algorithms import self_teacher_log_probs
from pipo.backends.local.rollout import generate, log_probs
from pipo.config import compose_cell
from pipo.models import resolve_model
from pipo.tasks import get_verifier, load_standin


def kind(token: str, position: int, demo: str, previous: str) -> str:
    """The token's role in a response ``<answer>X</answer><eos>``, relative to the demonstrated letter."""
    if token == "<eos>":
        return "EOS after </answer>" if previous == "</answer>" else f"EOS at position {position} (answer cut short)"
    if token in ("<answer>", "</answer>"):
        return token
    if token in "ABCD" and len(token) == 1:
        return "letter = the demonstration's" if token == demo else "letter ≠ the demonstration's"
    return "other"


@torch.no_grad()
def p_eos_after_open(model, tokenizer, prompts: list[str]) -> float:
    """Mean π(EOS | prompt, ``<answer>``): the probability of ending the response before any letter."""
    enc = tokenizer([f"{p}<answer>" for p in prompts], padding=True, add_special_tokens=False, return_tensors="pt")
    position_ids = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
    logits = model(**enc, position_ids=position_ids).logits[:, -1].float()
    return torch.softmax(logits, -1)[:, tokenizer.eos_token_id].mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", help="a run record's checkpoint (its policy and EMA teacher)")
    parser.add_argument("--problems", type=int, default=256, help="training questions sampled, 8 responses each")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the cell (model=..., task=...)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = compose_cell(["model=qwen3_8b", "task=sciknoweval", "algorithm=sdpo", *args.overrides])
    data = load_standin(cfg.task)
    path = resolve_model(cfg.model, data, cfg.cache_dir)
    student = AutoModelForCausalLM.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    teacher = copy.deepcopy(student)
    if args.ckpt:
        state = torch.load(args.ckpt, map_location="cpu", weights_only=False)
        student.load_state_dict(state["model"])
        teacher.load_state_dict(state["teacher"])
        print(f"policy and teacher of {args.ckpt} (step {state['step']})")
    problems = data.train[: args.problems]
    st, n = cfg.task.standin, cfg.algorithm.rollout_n
    torch.manual_seed(0)
    with torch.no_grad():
        roll = generate(student, tokenizer, [p["prompt"] for p in problems], n, st.max_prompt_length,
                        st.max_response_length, 1.0)  # fmt: skip
        truths = [problems[g]["ground_truth"] for g in roll.group]
        scores = torch.tensor(get_verifier(cfg.task.verifier).many(roll.responses, truths))
        t_lp, has = self_teacher_log_probs(teacher, tokenizer, problems, roll, scores, data.reprompt, 1.0)
        s_lp = log_probs(student, roll.input_ids, roll.attention_mask, roll.position_ids, roll.response_length)
    demo = demonstrations(scores, roll.group, 1.0)
    lengths = roll.response_mask.sum(-1)
    print(f"{len(roll.responses)} responses: score {scores.mean():.3f}, length {lengths.mean():.2f} tokens, "
          f"{has.float().mean():.0%} with a demonstration")  # fmt: skip
    plain = [p["prompt"] for p in problems]
    shown = [data.reprompt(p["prompt"], p["solution"]) for p in problems]
    print(f"π(EOS right after <answer>): student {p_eos_after_open(student, tokenizer, plain):.3f}, "
          f"teacher shown the right answer {p_eos_after_open(teacher, tokenizer, shown):.3f}")  # fmt: skip
    stats = defaultdict(list)
    R = roll.response_length
    for i in has.nonzero().flatten().tolist():
        shown = roll.responses[demo[i]].removeprefix("<answer>")[:1]
        tokens = tokenizer.convert_ids_to_tokens(roll.input_ids[i, -R:].tolist())
        for k in range(int(lengths[i])):
            ratio = (t_lp[i, k] - s_lp[i, k]).item()
            stats[kind(tokens[k], k, shown, tokens[k - 1] if k else "")].append((s_lp[i, k].item(), ratio))
    print(f"{'token':38} {'n':>6} {'π_student':>10} {'π_teacher':>10} {'log-ratio':>10}")
    for name, rows in sorted(stats.items(), key=lambda kv: -len(kv[1])):
        s = torch.tensor(rows)
        p_s, p_t = s[:, 0].exp().mean().item(), (s[:, 0] + s[:, 1]).exp().mean().item()
        print(f"{name:38} {len(rows):6d} {p_s:10.3f} {p_t:10.3f} {s[:, 1].mean().item():+10.3f}")


if __name__ == "__main__":
    main()
