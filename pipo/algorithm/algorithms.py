"""Base algorithms: one registered definition each, consulted by both backends.

A definition says what the algorithm *is* (what it needs beside the actor, how many rollouts a
prompt takes); its settings (advantage estimator and policy loss from verl's registries, batch
sizes, KL…) are ``conf/algorithm/<name>.yaml``; its PIPO attribution is registered under the same
name in ``pipo.algorithm.attribution``. Backends ask the questions below (``needs_critic``, …),
as verl's ``need_critic(config)`` does, and never compare algorithm or estimator names.

This module imports neither torch nor verl: planning a grid reads it for every cell. The names a
cell gives verl's registries are checked when it is to run (``registry_problems``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BaseAlgorithm:
    """What a base algorithm needs; see ``docs/EXTENDING.md`` for adding one.

    Attributes:
        name: ``algorithm.name`` (``conf/algorithm/<name>.yaml``) and its attribution's name.
        critic: trains a value model beside the actor; its advantages need values (verl's GAE).
        self_teacher: learns from an EMA self-teacher re-prompted with a successful sibling (SDPO)
            instead of reward advantages; the teacher takes verl's reference-model slot, so the
            algorithm has no KL reference.
        min_rollouts: responses per prompt it needs (2 for group-relative advantages).
        max_rollouts: at most this many (PPO samples one); None: no bound.
    """

    name: str
    critic: bool = False
    self_teacher: bool = False
    min_rollouts: int = 1
    max_rollouts: int | None = None


BASE_ALGORITHMS: dict[str, BaseAlgorithm] = {}


def register_base_algorithm(definition: BaseAlgorithm) -> BaseAlgorithm:
    """Register ``definition`` under its name (re-registering the same definition is a no-op)."""
    known = BASE_ALGORITHMS.get(definition.name)
    if known is not None and known != definition:
        raise ValueError(f"base algorithm {definition.name!r} is already registered as {known}")
    BASE_ALGORITHMS[definition.name] = definition
    return definition


def base_algorithm(name: str) -> BaseAlgorithm:
    if name not in BASE_ALGORITHMS:
        raise ValueError(
            f"no base algorithm registered as {name!r} (known: {sorted(BASE_ALGORITHMS)}; docs/EXTENDING.md)"
        )
    return BASE_ALGORITHMS[name]


for _definition in (
    BaseAlgorithm("ppo", critic=True, max_rollouts=1),
    BaseAlgorithm("grpo", min_rollouts=2),
    BaseAlgorithm("gspo", min_rollouts=2),
    BaseAlgorithm("dapo", min_rollouts=2),
    BaseAlgorithm("sdpo", self_teacher=True, min_rollouts=2),
):
    register_base_algorithm(_definition)


def definition_of(algorithm: Any) -> BaseAlgorithm:
    """The definition of a cell's ``algorithm`` section (a config node or dict with ``name``)."""
    return base_algorithm(algorithm["name"] if isinstance(algorithm, dict) else algorithm.name)


def needs_critic(algorithm: Any) -> bool:
    return definition_of(algorithm).critic


def needs_self_teacher(algorithm: Any) -> bool:
    return definition_of(algorithm).self_teacher


def needs_reference(algorithm: Any) -> bool:
    """A frozen reference model for a KL term (in the loss or in the reward)."""
    return bool(algorithm["use_kl_loss"] or algorithm["use_kl_in_reward"])


def algorithm_problems(algorithm: Any) -> list[str]:
    """What is wrong with a cell's ``algorithm`` section for its registered definition (empty if nothing)."""
    a = algorithm
    if a["name"] not in BASE_ALGORITHMS:
        return [f"algorithm.name={a['name']!r}: no base algorithm registered (known: {sorted(BASE_ALGORITHMS)})"]
    d = BASE_ALGORITHMS[a["name"]]
    out = []
    if a["rollout_n"] < d.min_rollouts:
        out.append(f"algorithm.rollout_n={a['rollout_n']}: {d.name} needs >= {d.min_rollouts} rollouts per prompt")
    if d.max_rollouts is not None and a["rollout_n"] > d.max_rollouts:
        out.append(f"algorithm.rollout_n={a['rollout_n']}: {d.name} samples at most {d.max_rollouts} per prompt")
    if d.self_teacher and needs_reference(a):
        out.append(
            f"algorithm={d.name}: its self-teacher takes the reference model's place, so it has no KL "
            "reference (set use_kl_loss=false, use_kl_in_reward=false)"
        )
    return out


def registry_problems(algorithm: Any) -> list[str]:
    """The names a cell's ``algorithm`` section looks up that are not registered: its PIPO attribution,
    and verl's advantage estimator and policy loss (imports torch and verl)."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY, POLICY_LOSS_REGISTRY

    from pipo.algorithm.attribution import ATTRIBUTION_REGISTRY

    a, out = algorithm, []
    if a["name"] not in ATTRIBUTION_REGISTRY:
        out.append(f"algorithm={a['name']}: no PIPO attribution registered under its name (pipo.algorithm.attribution)")
    if not definition_of(a).self_teacher and a["adv_estimator"] not in ADV_ESTIMATOR_REGISTRY:
        out.append(f"algorithm.adv_estimator={a['adv_estimator']!r}: not in verl's advantage-estimator registry")
    if a["policy_loss"] not in POLICY_LOSS_REGISTRY:
        out.append(f"algorithm.policy_loss={a['policy_loss']!r}: not in verl's policy-loss registry")
    return out
