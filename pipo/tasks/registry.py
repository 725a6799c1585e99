"""Tasks: each one registered :class:`TaskDefinition`, found from its config (``conf/task/<name>.yaml``).

A definition holds everything the suite knows about a task apart from its config: the tiny-scale
stand-in generator (:class:`StandinGenerator`), the verifier(s) the config may name, the paper-scale
preparation (``sources``, read by ``python -m pipo.tasks.prepare``), the SDPO teacher's re-prompt (at
tiny and at paper scale) and the sweeps whose paper tables report the task. The built-in tasks are defined in
``pipo/tasks/families/``, one module each; every module there registers itself when this module is
imported. Adding a task: docs/EXTENDING.md, "Add a task".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pipo.tasks.sources import Source


@dataclass(frozen=True)
class Verifier:
    """A task's verifier: ``score(response, ground_truth)`` within ``[low, high]``; never raises."""

    name: str
    score: Callable[[str, str], float]
    low: float = 0.0
    high: float = 1.0
    batch: Callable[[Sequence[str], Sequence[str]], list[float]] | None = None  # faster many at once

    def __call__(self, response: str, ground_truth: str) -> float:
        return self.score(response, ground_truth)

    def many(self, responses: Sequence[str], truths: Sequence[str]) -> list[float]:
        if self.batch is not None:
            return self.batch(responses, truths)
        return [self.score(r, t) for r, t in zip(responses, truths, strict=True)]


@runtime_checkable
class StandinGenerator(Protocol):
    """A tiny-scale stand-in generator: a module (``pipo/tasks/toy_*.py``) or any object with these members.

    Problems are dicts with at least ``"prompt"`` (the text the model sees), ``"ground_truth"`` (what
    the task's verifier scores a response against) and ``"level"`` (one of ``LEVELS``).

    - ``LEVELS``: the difficulty levels, ``1..n``. A config split's ``level`` is one of them, and the
      per-level option (``TaskDefinition.fraction_option``) has one value per level.
    - ``WORDS`` (optional, default none): multi-character strings the tiny tokenizer keeps as one
      token each (``<answer>``, ``print(``…); everything else is one token per character.
    - ``make_splits(eval_splits, train_size, seed)``: ``eval_splits`` is ``{split name: {"level",
      "size", "kind"}}`` from the config (``kind`` is generator-specific, often None). Returns
      ``{"train": [...], <split name>: [...], ...}``: each evaluation split ``size`` distinct problems
      of its level, the training split ``train_size`` problems no evaluation split holds. Same seed,
      same problems (the tiny model's cache key is a hash of them).
    - ``sft_examples(problems, fractions, seed, reprompt_fraction)``: ``(prompt, response)`` pairs for
      the tiny base model's supervised warm-up on the training problems; a level-L problem's response
      is right with probability ``fractions[L-1]`` (else a plausible wrong one, so RL has something to
      fix), and a ``reprompt_fraction`` of them are shown with a right response in context first, in
      the task's re-prompt (``TaskDefinition.reprompt``), so the base model learns to use SDPO's teacher
      prompt. ``pipo.tasks.toy_code.mix_examples`` does this for problems carrying ``"solution"`` and
      ``"sloppy"`` responses.
    """

    LEVELS: Sequence[int]

    def make_splits(
        self, eval_splits: dict[str, dict[str, Any]], train_size: int, seed: int
    ) -> dict[str, list[dict[str, Any]]]: ...

    def sft_examples(
        self, problems: list[dict[str, Any]], fractions: list[float], seed: int, reprompt_fraction: float = 0.0
    ) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class TeacherPrompt:
    """SDPO's teacher prompt at paper scale (verl, ``pipo.backends.verl.sdpo``): the student's last user
    turn ``{prompt}`` re-written to hold ``solution`` (a successful sibling response, ``{solution}``)."""

    reprompt: str
    solution: str


# SDPO's reference wording (lasgroup/SDPO 0e6d510, verl/trainer/config/actor/actor.yaml:131-140), without its
# environment-feedback part (no task here returns feedback): what SDPO ran for SciKnowEval (Table 3)
SDPO_TEACHER_PROMPT = TeacherPrompt(
    reprompt="{prompt}{solution}\n\nCorrectly solve the original question.\n",
    solution="\nCorrect solution:\n\n{solution}\n\n",
)


@dataclass(frozen=True)
class TaskDefinition:
    """One task: what ``conf/task/<name>.yaml`` refers to by its ``name`` and ``standin.generator``."""

    name: str  # the config's ``name`` (and ``prepare task=<name>``, the parquet folder, verl's ``ability``)
    generator: str  # the config's ``standin.generator``
    standin: StandinGenerator
    verifiers: tuple[Verifier, ...]  # every verifier the config may name (``verifier``, ``eval_verifier``)
    reprompt: Callable[[str, str], str]  # (prompt, demonstration) -> SDPO's teacher prompt at tiny scale
    teacher_prompt: TeacherPrompt = SDPO_TEACHER_PROMPT  # SDPO's teacher prompt at paper scale (verl)
    fraction_option: str = "sft_correct_fraction"  # the standin option holding the per-level fractions
    sources: tuple[Source, ...] = ()  # the paper-scale datasets (pipo.tasks.prepare); none: tiny scale only
    paper_tables: tuple[str, ...] = ()  # sweeps/<name>.yaml whose table (``table.paper``) reports this task


TASKS: dict[str, TaskDefinition] = {}
VERIFIERS: dict[str, Verifier] = {}


def register_verifier(verifier: Verifier) -> Verifier:
    """Make ``verifier`` known by its name (a config's ``verifier``, ``python -m pipo.tasks.score --task``)."""
    known = VERIFIERS.get(verifier.name)
    if known is not None and known != verifier:
        raise ValueError(f"verifier {verifier.name!r} is already registered as a different verifier")
    VERIFIERS[verifier.name] = verifier
    return verifier


def register_task(definition: TaskDefinition) -> TaskDefinition:
    """Register ``definition`` and its verifiers; a name or generator already taken is an error."""
    if not isinstance(definition.standin, StandinGenerator):
        missing = [m for m in ("LEVELS", "make_splits", "sft_examples") if not hasattr(definition.standin, m)]
        raise TypeError(f"task {definition.name!r}: the stand-in generator lacks {missing} (see StandinGenerator)")
    for other in TASKS.values():
        if other.name != definition.name and other.generator == definition.generator:
            raise ValueError(f"task {definition.name!r}: generator {definition.generator!r} belongs to {other.name!r}")
    if definition.name in TASKS and TASKS[definition.name] != definition:
        raise ValueError(f"task {definition.name!r} is already registered")
    for verifier in definition.verifiers:  # all checked before any is registered
        if VERIFIERS.get(verifier.name, verifier) != verifier:
            raise ValueError(f"verifier {verifier.name!r} is already registered as a different verifier")
    for verifier in definition.verifiers:
        register_verifier(verifier)
    TASKS[definition.name] = definition
    return definition


def get_verifier(name: str) -> Verifier:
    if name not in VERIFIERS:
        raise ValueError(f"unknown verifier {name!r} (known: {sorted(VERIFIERS)})")
    return VERIFIERS[name]


def get_task(name: str) -> TaskDefinition:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r} (known: {sorted(TASKS)})")
    return TASKS[name]


def task_definition(task: Any) -> TaskDefinition:
    """The definition of ``task`` (a TaskConfig): the one of its ``name`` if that one has the config's
    stand-in generator, else the one whose generator the config names."""
    generator = task.standin.generator
    named = TASKS.get(task.name)
    if named is not None and named.generator == generator:
        return named
    for definition in TASKS.values():
        if definition.generator == generator:
            return definition
    known = sorted(d.generator for d in TASKS.values())
    raise ValueError(f"task {task.name!r}: unknown stand-in generator {generator!r} (known: {known})")


@dataclass
class TaskData:
    """A task's splits as the trainer reads them; problems are ``{"prompt", "ground_truth", ...}``."""

    train: list[dict[str, Any]]
    benchmarks: dict[str, list[dict[str, Any]]]  # split name -> problems
    stands_for: dict[str, str]  # split name -> paper benchmark
    sft_examples: list[tuple[str, str]]  # the tiny base model's supervised warm-up
    reprompt: Callable[[str, str], str]  # (prompt, demonstration) -> SDPO teacher prompt
    key: str  # identifies the data (part of the tiny model cache key)
    words: tuple[str, ...] = ()  # extra multi-character tokens of the tiny tokenizer


def load_standin(task: Any) -> TaskData:
    """The tiny-scale stand-in of ``task`` (a TaskConfig), from its registered definition."""
    definition = task_definition(task)
    module, st = definition.standin, task.standin
    specs = {name: {"level": sp.level, "size": sp.size, "kind": sp.kind} for name, sp in st.splits.items()}
    splits = module.make_splits(specs, st.train_size, st.data_seed)
    train = splits.pop("train")
    fractions = list(st.options.get(definition.fraction_option, [1.0] * len(module.LEVELS)))
    reprompt = float(st.options.get("sft_reprompt_fraction", 0.0))
    examples = module.sft_examples(train, fractions, st.data_seed, reprompt)
    blob = json.dumps([examples, splits], sort_keys=True)  # the content itself: any change makes a new key
    return TaskData(
        train=train,
        benchmarks=splits,
        stands_for={name: sp.stands_for for name, sp in st.splits.items()},
        sft_examples=examples,
        reprompt=definition.reprompt,
        key=hashlib.sha256(blob.encode()).hexdigest()[:12],
        words=tuple(getattr(module, "WORDS", ())),
    )


from pipo.tasks import families  # noqa: E402  (registers the built-in tasks; they import this module)

families.register_all()
