"""Code, tool and MCQ verifiers against hand-computed scores, and hostile inputs to every verifier."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipo.tasks import get_verifier
from pipo.tasks.code_verifier import extract_program, outputs_match
from pipo.tasks.registry import VERIFIERS
from pipo.tasks.tool_verifier import parse_calls, tool_exact, tool_reward


def call(name, **params):
    return json.dumps({"name": name, "parameters": params})


def truth(*calls):
    return json.dumps({"calls": [{"name": n, "arguments": a} for n, a in calls]})


# -- code ---------------------------------------------------------------------------------------
def test_program_extraction_and_output_comparison():
    assert extract_program("text\n```python\na=1\n```\nmore\n```python\nb=2\n```") == "b=2\n"
    assert extract_program("print(1)") == "print(1)"
    assert outputs_match("1 2\n3\n", "1 2 3")
    assert outputs_match("0.3333333", "0.33333333")
    assert not outputs_match("0.34", "0.33")
    assert outputs_match("nan", "nan") and not outputs_match("nan", "1") and not outputs_match("1 2", "1")


def test_code_verifier_by_hand():
    code = get_verifier("code")
    stdio = json.dumps(
        {"kind": "stdio", "tests": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}]}
    )
    assert code("a, b = map(int, input().split())\nprint(a + b)", stdio) == 1.0
    assert code("print(3)", stdio) == 0.0  # one of two tests
    assert code.many(["print(3)", "a,b=map(int,input().split());print(a+b)"], [stdio, stdio]) == [0.0, 1.0]
    assert code("print(3)", "not json") == 0.0
    assert code("", stdio) == 0.0


# -- tool ---------------------------------------------------------------------------------------
def test_tool_reward_matches_toolrl_by_hand():
    gt = truth(("add", {"a": [1], "b": [2]}), ("neg", {"x": [5]}))
    exact = f"<tool_call>\n{call('add', a=1, b=2)}\n{call('neg', x=5)}\n</tool_call>"
    assert tool_reward(exact, gt) == pytest.approx(4.0)  # format 1 + correctness 3
    # names {add, neg} vs {add}: 1/2; add's params: keys 2/2 = 1, values 1 (a) + 0 (b) -> 2;
    # neg unmatched; max = 1 + (1 + 2) + (1 + 1) = 6  =>  correctness = 6 * 2.5 / 6 - 3 = -0.5
    partial = f"<tool_call>\n{call('add', a=1, b=3)}\n</tool_call>"
    assert tool_reward(partial, gt) == pytest.approx(1.0 - 0.5)
    assert tool_reward("no call at all", gt) == -3.0
    assert tool_reward("<tool_call>{not json}</tool_call>", gt) == -3.0
    assert tool_reward("<response>Hi</response>", truth()) == 1.0  # no call expected, none made


def test_tool_exact_matching_bfcl_style():
    gt = truth(("area", {"base": [10], "height": [5], "unit": ["units", ""]}), ("peri", {"n": [3]}))
    ok = f"<tool_call>\n{call('peri', n=3)}\n{call('area', base=10.0, height=5)}\n</tool_call>"
    assert tool_exact(ok, gt) == 1.0  # any order; 10.0 == 10; optional unit omitted
    assert tool_exact(ok.replace('"n": 3', '"n": 4'), gt) == 0.0
    extra = f"<tool_call>\n{call('peri', n=3)}\n{call('area', base=10, height=5, color='red')}\n</tool_call>"
    assert tool_exact(extra, gt) == 0.0  # an unknown parameter
    missing = f"<tool_call>\n{call('peri', n=3)}\n{call('area', base=10)}\n</tool_call>"
    assert tool_exact(missing, gt) == 0.0  # a required parameter absent
    assert tool_exact("<tool_call>" + call("peri", n=3), gt) == 0.0  # unclosed tag
    assert parse_calls('<tool_call>\n{"name": "f", "arguments": {"x": "A "}}\n</tool_call>') == [
        {"name": "f", "arguments": {"x": "A "}}
    ]
    assert (
        tool_exact('<tool_call>{"name": "f", "arguments": {"x": "a"}}</tool_call>', truth(("f", {"x": ["A "]}))) == 1.0
    )


# -- MCQ ----------------------------------------------------------------------------------------
def test_mcq_by_hand():
    mcq = get_verifier("mcq")
    assert mcq("<answer>B</answer>", "B") == 1.0
    assert mcq("<answer> B </answer>", "B") == 1.0
    assert mcq("<answer>A</answer> then <answer>B</answer>", "B") == 1.0  # the last one counts
    assert mcq("<answer>B</answer> then <answer>A</answer>", "B") == 0.0
    assert mcq("<answer>b</answer>", "B") == 0.0
    assert mcq("<answer>B) x</answer>", "B") == 0.0
    assert mcq("B", "B") == 0.0


# -- every verifier: no exception escapes, every score within its range ------------------------
SPECIAL = st.sampled_from(
    ["\\boxed{", "}", "<tool_call>", "</tool_call>", "<answer>", "</answer>", "```python\n", "```", "{", '"name"', "\n",
     "\x00", "\udcff", "9" * 400, "[" * 200, "while True: pass", "import os; os._exit(0)", "print(", "nan", "1e999"]
)  # fmt: skip
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=30), SPECIAL), max_size=12).map("".join)


@pytest.mark.parametrize("name", sorted(VERIFIERS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(response=HOSTILE_TEXT, gt=HOSTILE_TEXT)
def test_no_exception_and_scores_in_range(name, response, gt):
    v = VERIFIERS[name]
    for g in (gt, _valid_truth(name)):
        score = v(response, g)
        assert isinstance(score, float) and v.low <= score <= v.high


def _valid_truth(name: str) -> str:
    return {
        "math": "42",
        "code": json.dumps({"kind": "stdio", "timeout_s": 1, "tests": [{"input": "", "output": "1\n"}]}),
        "tool": truth(("f", {"x": [1]})),
        "tool_exact": truth(("f", {"x": [1]})),
        "mcq": "C",
    }[name]
