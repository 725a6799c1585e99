"""Evaluation: Pass@1 with one answer per problem (greedy by default), and mean@k at the rollout's sampling
settings (temperature, top-p)."""

from __future__ import annotations

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from pipo.backends.local.rollout import generate
from pipo.tasks import Verifier


def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    benchmarks: dict[str, list[dict]],
    stands_for: dict[str, str],
    verifier: Verifier,
    max_prompt_length: int,
    max_new_tokens: int,
    temperature: float,
    mean_at_k: int,
    batch_size: int,
    pass1_temperature: float = 0.0,
    top_p: float = 1.0,
) -> dict:
    """Per-benchmark counts (so any average can be recomputed), each problem's Pass@1 outcome
    (``per_problem``: its position in the split → score, so two runs compare problem by problem),
    and their unweighted averages.

    Pass@1 takes one answer per problem: greedy, or sampled at ``pass1_temperature`` when it is > 0
    (the authors' validation, top-p 1.0 as theirs); with ``mean_at_k`` > 0, that many samples per problem
    at ``temperature`` with nucleus ``top_p`` (the rollout's: ``scale.temperature``, ``scale.top_p``) give
    mean@k and the per-problem correct counts (for unbiased pass@k).
    """
    out: dict = {"benchmarks": {}}
    for name, problems in benchmarks.items():
        greedy, sampled, per_problem, outcomes = 0.0, 0.0, [], []
        for i in range(0, len(problems), batch_size):
            chunk = problems[i : i + batch_size]
            prompts = [p["prompt"] for p in chunk]
            truths = [p["ground_truth"] for p in chunk]
            greedy_pass = pass1_temperature == 0
            t1 = temperature if greedy_pass else pass1_temperature
            r = generate(model, tokenizer, prompts, 1, max_prompt_length, max_new_tokens, t1, greedy=greedy_pass)
            scores = verifier.many(r.responses, truths)
            outcomes += [float(x) for x in scores]
            greedy += sum(scores)
            if mean_at_k:
                r = generate(
                    model, tokenizer, prompts, mean_at_k, max_prompt_length, max_new_tokens, temperature, top_p=top_p
                )
                correct = [0.0] * len(chunk)
                scores = verifier.many(r.responses, [truths[g] for g in r.group])
                for s, g in zip(scores, r.group, strict=True):
                    correct[g] += s
                per_problem += correct
                sampled += sum(correct)
        n = len(problems)
        entry = {
            "stands_for": stands_for.get(name, name),
            "n": n,
            "correct": greedy,
            "pass@1": greedy / n,
            "per_problem": {str(i): x for i, x in enumerate(outcomes)},
        }
        if mean_at_k:
            entry.update(
                {
                    "k": mean_at_k,
                    "correct_samples": sampled,
                    f"mean@{mean_at_k}": sampled / (n * mean_at_k),
                    "correct_per_problem": per_problem,
                }
            )  # pass@k for any k ≤ samples from these
        out["benchmarks"][name] = entry
    rows = out["benchmarks"].values()
    out["avg"] = {"pass@1": sum(e["pass@1"] for e in rows) / len(rows)}
    if mean_at_k:
        out["avg"][f"mean@{mean_at_k}"] = sum(e[f"mean@{mean_at_k}"] for e in rows) / len(rows)
    return out
