"""Dataset preparation on fixture files written in each dataset's real schema."""

import json
from pathlib import Path

import pandas as pd
import pytest

from pipo.tasks import get_verifier
from pipo.tasks.authors_eval import AUTHORS_FILES, last_boxed
from pipo.tasks.prepare import holdout, main, prepare

FIXTURES = str(Path(__file__).parent / "fixtures")
VERL_COLUMNS = ["data_source", "prompt", "ability", "reward_model", "extra_info"]


def read(out: Path, task: str, split: str) -> pd.DataFrame:
    df = pd.read_parquet(out / task / f"{split}.parquet")
    assert list(df.columns) == VERL_COLUMNS
    assert (df.ability == task).all()
    return df


def truths(df: pd.DataFrame) -> list[str]:
    return [r["ground_truth"] for r in df.reward_model]


def test_math(tmp_path, capsys):
    counts = prepare("math", tmp_path, FIXTURES)
    assert counts == {"train": 2, "MATH500": 1, "AIME25": 2, "AMC23": 1, "Minerva": 1, "OlympiadBench": 1}
    err = capsys.readouterr().err
    assert "MATH-lighteval/default/train, row 2: the solution has no \\boxed{} answer" in err
    assert "MATH-500/default/test, row 1: missing field 'answer'" in err
    assert "amc23/default/test, row 1: not valid JSON" in err
    assert "olympiadbench/default/test, row 1: field 'final_answer' is an empty list" in err
    assert "warning: math/MATH500: 1 rows, expected 500" in err
    assert truths(read(tmp_path, "math", "train")) == ["2", "\\frac{1}{2}"]
    assert truths(read(tmp_path, "math", "AMC23")) == ["27"]  # 27.0 in the dataset
    assert truths(read(tmp_path, "math", "OlympiadBench")) == ["$\\frac{1}{2}$"]
    prompt = read(tmp_path, "math", "MATH500").prompt[0]
    assert prompt[0]["role"] == "user" and prompt[0]["content"].startswith("Compute $2\\cdot 3$.")
    math = get_verifier("math")
    assert math("so \\boxed{0.5}", truths(read(tmp_path, "math", "OlympiadBench"))[0]) == 1.0


def test_code_ground_truths_accept_the_reference_solutions(tmp_path, capsys):
    counts = prepare("code", tmp_path, FIXTURES)
    assert counts == {"train": 2, "TACO": 1, "LCBv6": 2, "HumanEval": 1, "MBPP": 1}  # LCB: 2024 problem left out
    err = capsys.readouterr().err
    assert "TACO/default/train, row 2: input_output is not" in err
    assert "mbpp/full/test, row 1: test_list must be a non-empty list of strings" in err
    code = get_verifier("code")
    taco_std, taco_fn = truths(read(tmp_path, "code", "train"))
    assert code("print(2*int(input()))", taco_std) == 1.0 and code("print(int(input()))", taco_std) == 0.0
    assert (
        code("def square(x):\n    return x*x", taco_fn) == 1.0 and code("def square(x):\n    return x", taco_fn) == 0.0
    )
    lcb_std, lcb_fn = truths(read(tmp_path, "code", "LCBv6"))
    assert [t["input"] for t in json.loads(lcb_std)["tests"]] == ["2\n", "5\n"]  # public + decoded private
    assert code("print(2*int(input()))", lcb_std) == 1.0
    assert code("class Solution:\n    def add(self, a, b):\n        return a + b", lcb_fn) == 1.0
    assert code("class Solution:\n    def add(self, a, b):\n        return a - b", lcb_fn) == 0.0
    (he,) = truths(read(tmp_path, "code", "HumanEval"))
    assert code("def add(a, b):\n    return a + b", he) == 1.0 and code("def add(a, b):\n    return a", he) == 0.0
    (mbpp,) = truths(read(tmp_path, "code", "MBPP"))
    assert code("def double(x):\n    return 2*x", mbpp) == 1.0 and code("def double(x):\n    return x", mbpp) == 0.0


def test_tool(tmp_path, capsys):
    counts = prepare("tool", tmp_path, FIXTURES)
    assert counts == {"train": 2, "RLLA": 1, "BFCL": 4, "APIBank": 2}
    assert "rlla_4k/default/train, row 2: field 'prompt' is str, expected list" in capsys.readouterr().err
    train = truths(read(tmp_path, "tool", "train"))
    assert json.loads(train[0]) == {"calls": [{"name": "get_weather", "arguments": {"city": ["Paris"]}}]}
    assert json.loads(train[1]) == {"calls": []}
    bfcl = read(tmp_path, "tool", "BFCL")
    assert bfcl.prompt[0][0]["role"] == "system" and "calc_area" in bfcl.prompt[0][0]["content"]
    exact = get_verifier("tool_exact")
    answer = '<tool_call>\n{"name": "calc_area", "parameters": {"base": 10, "height": 5}}\n</tool_call>'
    assert exact(answer, truths(bfcl)[0]) == 1.0


def test_sciknoweval_keeps_l3_mcq_and_holds_out_ten_percent(tmp_path, capsys):
    counts = prepare("sciknoweval", tmp_path, FIXTURES)
    # per domain: 10 L3 MCQs (+ an L1, an open question, a bad key) -> 9 train + 1 test
    assert counts == {"train": 36, "Biology": 1, "Chemistry": 1, "Material": 1, "Physics": 1}
    assert capsys.readouterr().err.count("answerKey 'E' is not one of the labels") == 4
    test_q = read(tmp_path, "sciknoweval", "Biology").prompt[0][0]["content"]
    train_q = {p[0]["content"] for p in read(tmp_path, "sciknoweval", "train").prompt}
    assert test_q not in train_q and len(train_q) == 36
    assert truths(read(tmp_path, "sciknoweval", "Physics")) == ["B"]
    # verl groups validation metrics by data_source: each domain is its own, training rows name the dataset
    for domain in ("Biology", "Chemistry", "Material", "Physics"):
        df = read(tmp_path, "sciknoweval", domain)
        assert set(df.data_source) == {domain} and {e["dataset"] for e in df.extra_info} == {"hicai-zju/SciKnowEval"}
    assert set(read(tmp_path, "sciknoweval", "train").data_source) == {"hicai-zju/SciKnowEval"}


def test_holdout_is_seeded_and_rounds_the_test_part_up():
    rows = list(range(95))
    train, test = holdout(rows, 0.1, 42)
    assert len(test) == 10 and sorted(train + test) == rows
    assert holdout(rows, 0.1, 42) == (train, test) and holdout(rows, 0.1, 1) != (train, test)


def test_cli_strict_and_errors(tmp_path):
    with pytest.raises(SystemExit, match="1"):
        main(["task=math", f"out_dir={tmp_path}", f"source={FIXTURES}", "strict=true"])
    with pytest.raises(SystemExit, match="unknown task 'chess'"):
        main(["task=chess", f"out_dir={tmp_path}"])
    with pytest.raises(SystemExit, match="bad argument"):
        main(["task=math", "outdir=x"])
    with pytest.raises(SystemExit, match="not on the Hugging Face hub"):
        prepare("tool", tmp_path, "hub")


AUTHORS_EVAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "authors_eval"  # ../shared of the repo
needs_authors_eval = pytest.mark.skipif(
    not AUTHORS_EVAL.is_dir(), reason=f"the authors' evaluation sets are not at {AUTHORS_EVAL}"
)


@needs_authors_eval
def test_the_authors_evaluation_sets_as_a_source_score_with_our_verifiers(tmp_path, capsys):
    counts = prepare("math", tmp_path, f"authors:{AUTHORS_EVAL}")
    assert counts == {"MATH500": 500, "AIME25": 30, "AMC23": 40, "Minerva": 272, "OlympiadBench": 674}
    assert (
        "training split is not public" in capsys.readouterr().out and not (tmp_path / "math" / "train.parquet").exists()
    )
    math = get_verifier("math")
    for name in counts:
        rows = pd.read_parquet(tmp_path / "math" / f"{name}.parquet")
        truths = [r["ground_truth"] for r in rows.reward_model]
        assert set(rows.data_source) == {name} and all(isinstance(t, str) for t in truths)
        assert sum(math.many([f"so \\boxed{{{t}}}" for t in truths], truths)) == len(truths), name
        assert sum(math.many(["\\boxed{no}"] * len(truths), truths)) == 0, name
    # MATH-500's ground truth there is the full solution: its boxed answer equals their own `answer` column
    ours = [r["ground_truth"] for r in pd.read_parquet(tmp_path / "math" / "MATH500.parquet").reward_model]
    theirs = pd.read_parquet(AUTHORS_EVAL / "HuggingFaceH4_MATH-500.parquet")
    assert sum(math.many([f"\\boxed{{{a}}}" for a in theirs.answer], ours)) == 500
    assert "\\boxed" in theirs.reward_model[0]["ground_truth"][0] and "\\boxed" not in ours[0]
    counts = prepare("sciknoweval", tmp_path, f"authors:{AUTHORS_EVAL}")
    assert counts == {"Biology": 422, "Chemistry": 621, "Material": 494, "Physics": 344}
    mcq = get_verifier("mcq")
    rows = pd.read_parquet(tmp_path / "sciknoweval" / "Physics.parquet")
    truths = [r["ground_truth"] for r in rows.reward_model]
    assert sum(mcq.many([f"<answer>{t}</answer>" for t in truths], truths)) == 344 and set(truths) <= set("ABCD")


@needs_authors_eval
def test_a_bad_row_of_the_authors_files_is_reported_and_skipped(tmp_path, capsys):
    import shutil

    for name in AUTHORS_FILES["sciknoweval"].values():
        shutil.copy(AUTHORS_EVAL / name, tmp_path / name)
    physics = pd.read_parquet(tmp_path / AUTHORS_FILES["sciknoweval"]["Physics"])
    physics.at[3, "reward_model"] = {"ground_truth": "", "style": "rule"}
    physics.to_parquet(tmp_path / AUTHORS_FILES["sciknoweval"]["Physics"])
    counts = prepare("sciknoweval", tmp_path / "out", f"authors:{tmp_path}")
    assert (
        counts["Physics"] == 343 and "sciknoweval_physics.parquet, row 3: empty ground truth" in capsys.readouterr().err
    )
    assert last_boxed(r"a \boxed{\frac{1}{2}} then \boxed{x^{2}}.") == "x^{2}" and last_boxed("none") is None
