"""Tool use (Table 2): train on ToolRL's RLLA data, evaluate on RLLA, BFCL, API-Bank.

Training reward: ToolRL's (format + correctness, range [-3, 4]); benchmarks: exact call match (Pass@1,
0/1) (``pipo.tasks.tool_verifier``). Tiny scale: toy tool calls (``pipo.tasks.toy_tool``). Config:
``conf/task/tool.yaml``.
"""

from __future__ import annotations

import json

from pipo.tasks import toy_math, toy_tool
from pipo.tasks.registry import TaskDefinition, TeacherPrompt, Verifier, register_task
from pipo.tasks.sources import BFCL_CATEGORIES, Converted, RowError, Source, need
from pipo.tasks.tool_verifier import TOOL_REWARD_RANGE, tool_exact, tool_reward

# SDPO's teacher prompt at paper scale (Table 2 runs no SDPO on tool use): SDPO's wording, for tool calls
TOOL_TEACHER_PROMPT = TeacherPrompt(
    reprompt="{prompt}{solution}\n\nCorrectly answer the original request with the right tool calls.\n",
    solution="\nCorrect tool calls:\n\n{solution}\n\n",
)
TOOL_SYSTEM = (
    "You may call the tools below. To call them, answer with <tool_call>, one JSON object per line "
    '({{"name": ..., "parameters": {{...}}}}), then </tool_call>.\nTools:\n{tools}'
)


def _calls_from_toolrl(ground_truth: str) -> list[dict]:
    if "<tool_call>" not in ground_truth:
        return []
    body = ground_truth.split("<tool_call>", 1)[1].split("</tool_call>", 1)[0]
    calls = []
    for line in filter(str.strip, body.strip().splitlines()):
        try:
            call = json.loads(line)
        except json.JSONDecodeError as err:
            raise RowError(f"a ground-truth tool call is not JSON ({err})") from None
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RowError("a ground-truth tool call has no name")
        args = call.get("parameters", call.get("arguments", {}))
        if not isinstance(args, dict):
            raise RowError("a ground-truth tool call's parameters are not an object")
        calls.append({"name": call["name"], "arguments": {k: [v] for k, v in args.items()}})
    return calls


def toolrl(row: dict) -> Converted:
    """A row of ToolRL's processed parquet (RLLA, API-Bank): verl columns, ToolRL's ground-truth text."""
    (prompt,) = need(row, "prompt", types=(list,))
    (reward,) = need(row, "reward_model", types=(dict,))
    if not isinstance(reward.get("ground_truth"), str):
        raise RowError("reward_model.ground_truth must be text")
    if not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
        raise RowError("prompt must be a list of chat messages")
    return prompt, json.dumps({"calls": _calls_from_toolrl(reward["ground_truth"])}), dict(row.get("extra_info") or {})


def bfcl(row: dict) -> Converted:
    """A BFCL (v3, AST categories) question joined with its possible answer (``row["possible_answer"]``)."""
    (question,) = need(row, "question", types=(list,))
    (functions,) = need(row, "function", types=(list,))
    (answer,) = need(row, "possible_answer", types=(list,))
    turn = question[0] if question and isinstance(question[0], list) else question
    if not turn or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in turn):
        raise RowError("question must hold chat messages")
    calls = []
    for item in answer:
        if not isinstance(item, dict) or len(item) != 1:
            raise RowError("each possible answer must be {function name: {parameter: [allowed values]}}")
        ((name, params),) = item.items()
        if not isinstance(params, dict) or not all(isinstance(v, list) and v for v in params.values()):
            raise RowError(f"possible answer for {name!r} must map each parameter to allowed values")
        calls.append({"name": name, "arguments": params})
    system = {"role": "system", "content": TOOL_SYSTEM.format(tools=json.dumps(functions))}
    return [system, *turn], json.dumps({"calls": calls}), {"id": row.get("id")}


TASK = register_task(
    TaskDefinition(
        name="tool",
        generator="toy_tool",
        standin=toy_tool,
        verifiers=(Verifier("tool", tool_reward, *TOOL_REWARD_RANGE), Verifier("tool_exact", tool_exact)),
        reprompt=toy_math.reprompt_text,  # tiny scale: as every task's (Table 2 runs no SDPO on tool use)
        teacher_prompt=TOOL_TEACHER_PROMPT,
        sources=(
            Source("train", "ToolRL/rlla_4k", "train", toolrl, 3920, loader="local"),
            Source("RLLA", "ToolRL/rlla_4k", "test", toolrl, 80, loader="local"),
            Source(
                "BFCL",
                "gorilla-llm/Berkeley-Function-Calling-Leaderboard",
                "test",
                bfcl,
                sum(BFCL_CATEGORIES.values()),
                loader="bfcl",
            ),
            Source("APIBank", "ToolRL/apibank", "test", toolrl, None, loader="local"),
        ),
        paper_tables=("table2",),
    )
)
