"""Math reasoning (Table 1; also Tables 4, 6, 7): train on MATH, evaluate on five benchmarks (Pass@1).

Verifier: math-verify on the last ``\\boxed{}`` (``pipo.tasks.math_verifier``). Tiny scale: toy
arithmetic (``pipo.tasks.toy_math``). Config: ``conf/task/math.yaml``.
"""

from __future__ import annotations

from collections.abc import Callable

from pipo.tasks import toy_math
from pipo.tasks.math_verifier import last_boxed, math_score
from pipo.tasks.registry import SDPO_TEACHER_PROMPT, TaskDefinition, Verifier, register_task
from pipo.tasks.sources import Converted, RowError, Source, answer_text, need

MATH_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."


def math_lighteval(row: dict) -> Converted:
    problem, solution = need(row, "problem", "solution")
    answer = last_boxed(solution)
    if not answer or not answer.strip():
        raise RowError("the solution has no \\boxed{} answer")
    return problem + MATH_SUFFIX, answer.strip(), {"level": row.get("level"), "type": row.get("type")}


def math_answer(question_key: str, answer_keys: tuple[str, ...]) -> Callable[[dict], Converted]:
    """A math benchmark row: its question, and the first of ``answer_keys`` it has."""

    def convert(row: dict) -> Converted:
        (question,) = need(row, question_key)
        key = next((k for k in answer_keys if row.get(k) is not None), None)
        if key is None:
            raise RowError(f"missing field {answer_keys[0]!r}")
        value = row[key]
        if isinstance(value, list):
            if not value:
                raise RowError(f"field {key!r} is an empty list")
            value = value[0]
        if not isinstance(value, str | int | float):
            raise RowError(f"field {key!r} is {type(value).__name__}, expected a string or number")
        return question + MATH_SUFFIX, answer_text(value), {"id": str(row.get("id", row.get("unique_id", "")))}

    return convert


TASK = register_task(
    TaskDefinition(
        name="math",
        generator="toy_math",
        standin=toy_math,
        verifiers=(Verifier("math", math_score),),
        reprompt=toy_math.reprompt_text,
        teacher_prompt=SDPO_TEACHER_PROMPT,  # paper scale: SDPO's own wording
        fraction_option="sft_boxed_fraction",
        sources=(
            Source("train", "DigitalLearningGmbH/MATH-lighteval", "train", math_lighteval, 7500),
            Source("MATH500", "HuggingFaceH4/MATH-500", "test", math_answer("problem", ("answer",)), 500),
            Source("AIME25", "math-ai/aime25", "test", math_answer("problem", ("answer",)), 30),
            Source("AMC23", "math-ai/amc23", "test", math_answer("question", ("answer",)), 40),
            Source("Minerva", "math-ai/minervamath", "test", math_answer("question", ("answer",)), 272),
            Source(
                "OlympiadBench",
                "math-ai/olympiadbench",
                "test",
                math_answer("question", ("final_answer", "answer")),
                675,
            ),
        ),
        paper_tables=("table1", "table4", "table6", "table7"),
    )
)
