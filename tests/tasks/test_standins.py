"""The tiny stand-ins of the code, tool and MCQ tasks, checked against independent computations."""

import json
import operator
import re
from functools import reduce

import pytest

from pipo.config import compose_cell
from pipo.models.tiny import build_tokenizer
from pipo.tasks import get_verifier, load_standin

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod}


@pytest.fixture(scope="module", params=["code", "tool", "sciknoweval"])
def task(request):
    cfg = compose_cell([f"task={request.param}"])
    return cfg, load_standin(cfg.task)


def test_splits_are_sized_as_configured_and_unseen_in_training(task):
    cfg, data = task
    assert {n: len(p) for n, p in data.benchmarks.items()} == {n: s.size for n, s in cfg.task.standin.splits.items()}
    assert len(data.train) == cfg.task.standin.train_size
    train = {p["prompt"] for p in data.train}
    for problems in data.benchmarks.values():
        prompts = [p["prompt"] for p in problems]
        assert len(set(prompts)) == len(prompts) and not train & set(prompts)
    lengths, tok = cfg.task.standin, build_tokenizer(data.words)

    def longest(texts):
        return max(len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts)

    assert longest(p["prompt"] for p in data.train) <= lengths.max_prompt_length
    assert longest(r for _, r in data.sft_examples) < lengths.max_response_length  # EOS fits too


def test_reference_answers_score_full_marks_and_sloppy_ones_do_not(task):
    cfg, data = task
    verifier = get_verifier(cfg.task.eval_verifier or cfg.task.verifier)
    for name, problems in data.benchmarks.items():
        sample = problems[:60]
        truths = [p["ground_truth"] for p in sample]
        assert verifier.many([p["solution"] for p in sample], truths) == [1.0] * len(sample), name
        assert sum(verifier.many([p["sloppy"] for p in sample], truths)) < len(sample), name


def test_toy_code_programs_compute_the_chain_left_to_right():
    cfg = compose_cell(["task=code"])
    data = load_standin(cfg.task)
    for p in data.benchmarks["toy_lcb"][:50] + data.benchmarks["toy_humaneval"][:50]:
        steps = re.findall(r"(//|[-+*%])(\d+)", p["prompt"][2:])
        truth = json.loads(p["ground_truth"])
        for x in (7, 23, 58):
            want = reduce(lambda acc, s: OPS[s[0]](acc, int(s[1])), steps, x)
            if truth["kind"] == "stdio":
                assert {"input": f"{x}\n", "output": f"{want}\n"} in truth["tests"]
            else:
                assert f"assert f({x}) == {want}" in truth["tests"]


def test_toy_tool_calls_name_the_tool_behind_each_synonym():
    synonyms = {"plus": "add", "sum": "add", "total": "add", "times": "mul", "prod": "mul", "scale": "mul",
                "top": "max", "big": "max", "most": "max", "low": "min", "small": "min", "least": "min",
                "minus": "neg", "flip": "neg", "invert": "neg", "square": "sq", "pow2": "sq", "area": "sq",
                "size": "abs", "mag": "abs", "norm": "abs", "next": "inc", "succ": "inc", "bump": "inc"}  # fmt: skip
    data = load_standin(compose_cell(["task=tool"]).task)
    for p in data.train[:200]:
        word, *values = p["prompt"][2:].split()
        (call,) = json.loads(p["ground_truth"])["calls"]
        assert call["name"] == synonyms.get(word, word)
        assert [v[0] for v in call["arguments"].values()] == [int(v) for v in values]


def test_toy_mcq_answers_follow_each_domain_rule():
    where = {
        "bio": lambda q: q % 4,
        "chem": lambda q: (q + 1) % 4,
        "mat": lambda q: q // 3 % 4,
        "phys": lambda q: (9 - q) % 4,
    }
    wanted = {
        "bio": lambda q: q,
        "chem": lambda q: (q + 1) % 10,
        "mat": lambda q: (q + q) % 10,
        "phys": lambda q: 9 - q,
    }
    data = load_standin(compose_cell(["task=sciknoweval"]).task)
    for problems in data.benchmarks.values():
        for p in problems:
            domain, rest = p["prompt"].strip().split(":")
            q, options = rest.split("?")
            digits = [int(d) for d in options[1::2]]
            assert options[::2] == "ABCD"
            assert [d == wanted[domain](int(q)) for d in digits].count(True) == 1
            assert p["ground_truth"] == "ABCD"[digits.index(wanted[domain](int(q)))]
            assert p["ground_truth"] == "ABCD"[where[domain](int(q))]


def test_toy_mcq_splits_hold_each_answer_letter_equally():
    """Answering one letter throughout scores a quarter, to one question, in every split."""
    data = load_standin(compose_cell(["task=sciknoweval"]).task)
    for name, problems in [*data.benchmarks.items(), ("train", data.train)]:
        counts = [sum(p["ground_truth"] == c for p in problems) for c in "ABCD"]
        assert sum(counts) == len(problems) and max(counts) - min(counts) <= 1, (name, counts)
        assert max(counts) <= -(-len(problems) // 4), name  # a constant answer: at most ceil(n/4) right
    for domain in ("bio", "chem", "mat", "phys"):  # the training split: within each domain too
        counts = [sum(p["ground_truth"] == c and p["prompt"].startswith(domain) for p in data.train) for c in "ABCD"]
        assert counts == [250] * 4, (domain, counts)  # 4000 training problems / (4 domains × 4 letters)


def test_toy_mcq_warm_up_answers_as_the_demonstration_does_right_or_wrong():
    """Re-prompted warm-up examples show any letter and answer it: only copying fits them."""
    cfg = compose_cell(["task=sciknoweval"])
    data = load_standin(cfg.task)
    shown = [(p, r) for p, r in data.sft_examples if "<answer>" in p]  # a demonstration: the teacher prompt
    share = len(shown) / len(data.sft_examples)
    assert abs(share - cfg.task.standin.options.sft_reprompt_fraction) < 0.03
    solution = {p["prompt"]: p["solution"] for p in data.train}
    right = 0
    for prompt, response in shown:
        question, demo, end = prompt.split("\n")
        assert end == "" and re.fullmatch(r"<answer>[ABCD]</answer>", demo) and response == demo
        right += demo == solution[question + "\n"]
    assert 0.2 < right / len(shown) < 0.3  # a uniform letter is the right one a quarter of the time
