"""SciKnowEval L3 multiple choice in four domains (Table 3), SDPO's 90/10 train/test split (seed 42).

Verifier: the option letter in ``<answer>…</answer>`` (``pipo.tasks.mcq_verifier``). Tiny scale: toy
MCQ in four "domains" (``pipo.tasks.toy_mcq``). Config: ``conf/task/sciknoweval.yaml``.
"""

from __future__ import annotations

from pipo.tasks import toy_mcq
from pipo.tasks.mcq_verifier import mcq_score
from pipo.tasks.registry import SDPO_TEACHER_PROMPT, TaskDefinition, Verifier, register_task
from pipo.tasks.sources import Converted, RowError, Source, need

MCQ_SUFFIX = "\nAnswer with the letter of the correct option inside <answer></answer>."


def sciknoweval(row: dict) -> Converted:
    question, key = need(row, "question", "answerKey")
    (choices,) = need(row, "choices", types=(dict,))
    texts, labels = choices.get("text"), choices.get("label")
    if not isinstance(texts, list) or not isinstance(labels, list) or len(texts) != len(labels) or not texts:
        raise RowError("choices must hold equally long 'text' and 'label' lists")
    if key.strip() not in labels:
        raise RowError(f"answerKey {key!r} is not one of the labels {labels}")
    options = "\n".join(f"{label}. {text}" for label, text in zip(labels, texts, strict=True))
    return f"{question}\n{options}{MCQ_SUFFIX}", key.strip(), {"domain": row.get("domain"), "type": row.get("type")}


def is_l3_mcq(row: dict) -> bool:
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    return details.get("level") == "L3" and row.get("type") in ("mcq-4-choices", "mcq-2-choices")


TASK = register_task(
    TaskDefinition(
        name="sciknoweval",
        generator="toy_mcq",
        standin=toy_mcq,
        verifiers=(Verifier("mcq", mcq_score),),
        reprompt=toy_mcq.reprompt_text,  # the question, the demonstration, answer again (SDPO's template's order)
        teacher_prompt=SDPO_TEACHER_PROMPT,  # paper scale: SDPO's own, as SDPO ran SciKnowEval (Table 3)
        sources=tuple(
            Source(
                domain,
                "hicai-zju/SciKnowEval",
                "test",
                sciknoweval,
                n,
                config=domain,
                keep=is_l3_mcq,
                extra={"holdout": True},
            )
            for domain, n in (("Biology", 50), ("Chemistry", 210), ("Material", 94), ("Physics", 80))
        ),
        paper_tables=("table3",),
    )
)
