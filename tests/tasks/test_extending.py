"""Adding a task as a newcomer would (docs/EXTENDING.md, "Add a task"): a toy "reverse a word" task.

The steps: (1) a stand-in generator (``StandinGenerator``), (2) a verifier, (3) a re-prompt,
(4) ``register_task(TaskDefinition(...))``, (5) ``conf/task/<name>.yaml``, (6) compose a cell with
``task=<name>`` and load its stand-in. A real task puts steps 1-4 in ``pipo/tasks/families/<name>.py``
and step 5 in ``conf/task/``; here they live in the test and a temporary config folder.
"""

import itertools
import random

import pytest

from pipo.config import compose_cell, problems
from pipo.tasks import TaskDefinition, Verifier, get_task, get_verifier, load_standin, register_task, registry
from pipo.tasks.toy_code import mix_examples
from pipo.tasks.toy_math import draw_splits


# (1) the stand-in generator: a word over "abc" of level + 1 letters; the answer is the word reversed
class ToyReverse:
    LEVELS = (1, 2, 3)  # word lengths 2, 3, 4: 9, 27 and 81 distinct words
    WORDS = ()  # one token per character is enough

    @staticmethod
    def problem(level: int, word: str) -> dict:
        return {
            "prompt": f"R:{word}\n",
            "ground_truth": word[::-1],
            "level": level,
            "solution": word[::-1],
            "sloppy": word,  # the word copied, not reversed
        }

    def make_splits(self, eval_splits: dict, train_size: int, seed: int) -> dict[str, list[dict]]:
        rng = random.Random(seed)
        pools = {}
        for level in self.LEVELS:
            pools[level] = ["".join(w) for w in itertools.product("abc", repeat=level + 1)]
            rng.shuffle(pools[level])
        drawn = draw_splits(pools, eval_splits, train_size, rng, "toy_reverse")
        return {name: [self.problem(level, w) for level, w in items] for name, items in drawn.items()}

    def sft_examples(self, problems: list[dict], fractions: list[float], seed: int, reprompt_fraction: float = 0.0):
        return mix_examples(problems, fractions, seed, reprompt_fraction, len(self.LEVELS), reprompt=reverse_reprompt)


# (2) the verifier: the share of positions holding the right letter (never raises)
def reverse_score(response: str, ground_truth: str) -> float:
    response = response.strip()
    longest = max(len(response), len(ground_truth))
    return sum(a == b for a, b in zip(response, ground_truth, strict=False)) / longest if longest else 0.0


# (3) SDPO's teacher prompt at tiny scale: a successful sibling's answer, then the question
def reverse_reprompt(prompt: str, demonstration: str) -> str:
    return f"e.g. {demonstration}\n{prompt}"


CONFIG = """\
name: reverse
verifier: reverse
train_size: 1000            # the "paper's" training set (there is none: no sources, tiny scale only)
benchmarks: [Rev3, Rev4]
standin:
  generator: toy_reverse
  data_seed: 0
  train_size: 200
  max_prompt_length: 8
  max_response_length: 8
  splits:
    toy_rev3: {stands_for: Rev3, level: 2, size: 10}
    toy_rev4: {stands_for: Rev4, level: 3, size: 20}
  options:
    sft_correct_fraction: [1.0, 1.0, 1.0]
    sft_reprompt_fraction: 0.0
"""


@pytest.fixture
def reverse_task(monkeypatch, tmp_path):
    """Steps 4-6: register the definition, write its config, compose a cell on it."""
    monkeypatch.setattr(registry, "TASKS", dict(registry.TASKS))  # the registration ends with the test
    monkeypatch.setattr(registry, "VERIFIERS", dict(registry.VERIFIERS))
    definition = register_task(
        TaskDefinition(
            name="reverse",
            generator="toy_reverse",
            standin=ToyReverse(),
            verifiers=(Verifier("reverse", reverse_score),),
            reprompt=reverse_reprompt,
        )
    )
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "reverse.yaml").write_text(CONFIG)
    cfg = compose_cell([f"hydra.searchpath=[file://{tmp_path}]", "task=reverse"])
    return definition, cfg


def test_a_registered_task_is_found_from_its_config(reverse_task):
    definition, cfg = reverse_task
    assert problems(cfg) == []
    assert get_task("reverse") is definition and registry.task_definition(cfg.task) is definition
    assert get_verifier(cfg.task.verifier).score is reverse_score


def test_its_stand_in_has_the_configured_splits(reverse_task):
    _, cfg = reverse_task
    data = load_standin(cfg.task)
    assert {n: len(p) for n, p in data.benchmarks.items()} == {"toy_rev3": 10, "toy_rev4": 20}
    assert data.stands_for == {"toy_rev3": "Rev3", "toy_rev4": "Rev4"}
    assert len(data.train) == 200 and {p["level"] for p in data.train} == {1, 2, 3}
    assert all(len(p["prompt"]) == len("R:\n") + 3 for p in data.benchmarks["toy_rev3"])
    assert all(len(p["prompt"]) == len("R:\n") + 4 for p in data.benchmarks["toy_rev4"])
    train = {p["prompt"] for p in data.train}
    for split in data.benchmarks.values():  # distinct, and never seen in training
        prompts = [p["prompt"] for p in split]
        assert len(set(prompts)) == len(prompts) and not train & set(prompts)
    # sft_correct_fraction 1 and no re-prompts: every warm-up answer is the word reversed
    assert data.sft_examples == [(p["prompt"], p["prompt"][2:-1][::-1]) for p in data.train]
    assert data.reprompt is reverse_reprompt and data.words == ()
    assert load_standin(cfg.task).key == data.key  # same config, same data, same tiny-model cache key


def test_its_warm_up_uses_its_re_prompt_and_wrong_answers(reverse_task):
    _, cfg = reverse_task
    cfg.task.standin.options.sft_reprompt_fraction = 1.0
    data = load_standin(cfg.task)
    prompt = data.train[0]["prompt"]  # "R:<word>\n"
    answer = prompt[2:-1][::-1]
    assert data.sft_examples[0] == (f"e.g. {answer}\n{prompt}", answer)
    cfg.task.standin.options.sft_reprompt_fraction = 0.0
    cfg.task.standin.options.sft_correct_fraction = [0.0, 0.0, 0.0]
    assert load_standin(cfg.task).sft_examples == [(p["prompt"], p["prompt"][2:-1]) for p in data.train]


def test_its_verifier_scores_right_and_wrong_answers(reverse_task):
    _, cfg = reverse_task
    verifier = get_verifier(cfg.task.verifier)
    assert verifier("cba", "cba") == 1.0
    assert verifier(" cba\n", "cba") == 1.0
    assert verifier("abc", "cba") == pytest.approx(1 / 3)  # only the middle b is in place
    assert verifier("cb", "cba") == pytest.approx(2 / 3)  # c, b in place; a missing
    assert verifier("cbaa", "cba") == pytest.approx(3 / 4)  # one letter too many
    assert verifier("", "cba") == 0.0
    data = load_standin(cfg.task)
    problem = data.benchmarks["toy_rev4"][0]
    assert verifier.many([problem["solution"], problem["sloppy"]], [problem["ground_truth"]] * 2)[0] == 1.0


def test_registration_errors(reverse_task):
    definition, _ = reverse_task
    with pytest.raises(ValueError, match="generator 'toy_reverse' belongs to 'reverse'"):
        register_task(TaskDefinition("reverse2", "toy_reverse", ToyReverse(), (), reverse_reprompt))
    with pytest.raises(ValueError, match="verifier 'reverse' is already registered"):
        register_task(
            TaskDefinition("reverse3", "toy_reverse3", ToyReverse(), (Verifier("reverse", len),), reverse_reprompt)
        )

    class NoWarmUp:
        LEVELS = (1,)

        def make_splits(self, eval_splits, train_size, seed):
            return {"train": []}

    with pytest.raises(TypeError, match=r"lacks \['sft_examples'\]"):
        register_task(TaskDefinition("bad", "toy_bad", NoWarmUp(), (), reverse_reprompt))
    assert "reverse2" not in registry.TASKS and "bad" not in registry.TASKS
    assert register_task(definition) is definition  # registering the same definition again is harmless


@pytest.mark.slow
def test_a_cell_trains_on_it(reverse_task, micro_overrides, tmp_path):
    """The recipe's last step: ``python reproduce/train.py task=reverse`` (here a micro GRPO+PIPO cell)."""
    from pipo.cell import run_dir
    from pipo.records import RunRecord
    from pipo.run import run_cell

    _, cfg = reverse_task
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    cfg = compose_cell([searchpath, "task=reverse", "algorithm=grpo", "pipo=on", *micro_overrides])
    final = run_cell(cfg)
    assert final is not None and final["step"] == 4
    assert {b: e["n"] for b, e in final["benchmarks"].items()} == {"toy_rev3": 10, "toy_rev4": 20}
    record = RunRecord(run_dir(cfg))
    assert record.status()["state"] == "done" and [m["step"] for m in record.metrics()] == [1, 2, 3, 4]
    assert all(0.0 <= m["critic/score/mean"] <= 1.0 for m in record.metrics())  # the task's own verifier
