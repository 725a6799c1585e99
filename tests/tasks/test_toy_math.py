"""Toy math splits: sizes, distinctness, disjointness and answers checked by Python's own arithmetic."""

import re

import pytest

from pipo.tasks.toy_math import LEVELS, make_splits, sft_examples

SPLITS = {
    "a": {"level": 1, "size": 500},
    "b": {"level": 5, "size": 27},
    "c": {"level": 2, "size": 40},
    "d": {"level": 4, "size": 272},
    "e": {"level": 3, "size": 675},
}


@pytest.fixture(scope="module")
def splits():
    return make_splits(SPLITS, 7500, seed=0)


def question(prompt: str) -> str:
    m = re.fullmatch(r"Q:(.*)\nA:", prompt)
    assert m, prompt
    return m.group(1)


def test_sizes_levels_and_answers(splits):
    assert {k: len(v) for k, v in splits.items()} == {"a": 500, "b": 27, "c": 40, "d": 272, "e": 675, "train": 7500}
    for name, spec in SPLITS.items():
        assert {p["level"] for p in splits[name]} == {spec["level"]}
    for problems in splits.values():
        for p in problems:
            q = question(p["prompt"])
            assert re.fullmatch(r"[0-9+\-*]+", q)
            assert str(eval(q)) == p["ground_truth"]  # an independent evaluation of the expression


def test_eval_splits_distinct_and_disjoint_from_train(splits):
    seen = set()
    for name in SPLITS:
        prompts = [p["prompt"] for p in splits[name]]
        assert len(set(prompts)) == len(prompts)
        assert not seen & set(prompts)
        seen |= set(prompts)
    assert not seen & {p["prompt"] for p in splits["train"]}
    assert {p["level"] for p in splits["train"]} == set(LEVELS)


def test_deterministic_by_seed():
    assert make_splits(SPLITS, 100, 3) == make_splits(SPLITS, 100, 3)
    assert make_splits(SPLITS, 100, 3)["a"] != make_splits(SPLITS, 100, 4)["a"]


def test_bad_split_specs():
    with pytest.raises(ValueError, match="unknown level 9"):
        make_splits({"x": {"level": 9, "size": 1}}, 10, 0)
    with pytest.raises(ValueError, match="has 2500 left"):
        make_splits({"x": {"level": 1, "size": 2600}}, 10, 0)


def test_sft_examples_format_mix(splits):
    ex = sft_examples(splits["train"], [1.0, 0.0, 0.5, 0.5, 0.5], seed=0)
    by_level = {}
    for (prompt, response), p in zip(ex, splits["train"], strict=True):
        assert prompt == p["prompt"]
        assert response in (f"\\boxed{{{p['ground_truth']}}}", f"={p['ground_truth']}")
        by_level.setdefault(p["level"], []).append(response.startswith("\\boxed"))
    assert all(by_level[1]) and not any(by_level[2])
    assert 0.4 < sum(by_level[3]) / len(by_level[3]) < 0.6
    with pytest.raises(ValueError, match="one value per level"):
        sft_examples(splits["train"], [1.0], seed=0)
