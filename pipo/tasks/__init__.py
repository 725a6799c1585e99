"""Task definitions (``registry``: one registered ``TaskDefinition`` per task, ``families/``: the
built-in ones), their datasets and verifiers, and the toy stand-ins used at tiny scale."""

from pipo.tasks.registry import (
    SDPO_TEACHER_PROMPT,
    StandinGenerator,
    TaskData,
    TaskDefinition,
    TeacherPrompt,
    Verifier,
    get_task,
    get_verifier,
    load_standin,
    register_task,
    register_verifier,
    task_definition,
)

__all__ = [
    "SDPO_TEACHER_PROMPT",
    "StandinGenerator",
    "TaskData",
    "TaskDefinition",
    "TeacherPrompt",
    "Verifier",
    "get_task",
    "get_verifier",
    "load_standin",
    "register_task",
    "register_verifier",
    "task_definition",
]
