"""The built-in task definitions agree with their configs, the sweeps and the paper's tables."""

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from pipo.config import CONF_DIR
from pipo.tasks import StandinGenerator, get_task, toy_math
from pipo.tasks.registry import TASKS

ROOT = Path(__file__).resolve().parents[2]
TASK_CONFIGS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))


def test_every_config_has_a_definition_and_every_definition_a_config():
    assert sorted(TASKS) == TASK_CONFIGS == ["code", "math", "sciknoweval", "tool"]


@pytest.mark.parametrize("name", TASK_CONFIGS)
def test_definition_matches_its_config(name):
    cfg, definition = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml"), get_task(name)
    assert definition.name == cfg.name == name
    assert definition.generator == cfg.standin.generator
    assert isinstance(definition.standin, StandinGenerator)
    verifiers = {v.name for v in definition.verifiers}
    assert cfg.verifier in verifiers and cfg.get("eval_verifier", cfg.verifier) in verifiers
    assert definition.fraction_option in cfg.standin.options
    assert len(cfg.standin.options[definition.fraction_option]) == len(definition.standin.LEVELS)
    # paper scale: one output split per benchmark, and a training split (its own source, or held out)
    names = {src.name for src in definition.sources}
    assert names - {"train"} == set(cfg.benchmarks)
    assert "train" in names or any(src.extra.get("holdout") for src in definition.sources)


@pytest.mark.parametrize("name", sorted(set(TASK_CONFIGS) - {"sciknoweval"}))
def test_every_task_but_mcq_keeps_the_math_re_prompt(name):
    """SDPO's teacher prompt at tiny scale is the same text for these tasks, as it always was."""
    reprompt = get_task(name).reprompt
    assert reprompt is toy_math.reprompt_text
    assert reprompt("Q:1+2\nA:", "\\boxed{3}") == "Q:1+2\nA:\\boxed{3}\nQ:1+2\nA:"


def test_the_mcq_re_prompt_shows_the_demonstration_then_asks_again():
    """As SDPO's template: the question, the solution, then "solve the original question" (a line break)."""
    reprompt = get_task("sciknoweval").reprompt
    assert reprompt("bio:7?A3B7C1D9\n", "<answer>B</answer>") == "bio:7?A3B7C1D9\n<answer>B</answer>\n"


def _sweep_tasks(sweep: dict) -> set[str]:
    """The tasks a sweep's cells run on (``task=…`` fixed, or a ``task`` grid axis; else the default)."""
    tasks = {f.split("=", 1)[1] for f in sweep.get("fixed", []) if f.startswith("task=")}
    for grid in sweep.get("grids", []):
        tasks |= set(grid.get("task", []))
    return tasks or {"math"}  # conf/train.yaml's default


def test_paper_tables_are_the_sweeps_that_report_the_task():
    reported: dict[str, set[str]] = {name: set() for name in TASKS}
    for path in sorted((ROOT / "sweeps").glob("*.yaml")):
        sweep = yaml.safe_load(path.read_text())
        paper = (sweep.get("table") or {}).get("paper")
        if paper:
            assert (ROOT / "analysis" / "paper" / paper).is_file()
            for task in _sweep_tasks(sweep):
                reported[task].add(path.stem)
    assert {name: set(d.paper_tables) for name, d in TASKS.items()} == reported
