"""The verification optimizer choices and cos(Δθ, −g) of their steps, against hand computations."""

import math

import pytest
import torch

from pipo.algorithm.pi_optimizer import UpdateCosine, verification_optimizer


def adamw_actor(param: torch.nn.Parameter) -> torch.optim.AdamW:
    return torch.optim.AdamW([param], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def step(optimizer, param, grad) -> None:
    optimizer.zero_grad()
    param.grad = torch.tensor(grad)
    optimizer.step()


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_sgd_steps_along_the_gradient_and_record_cos_one():
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    sgd = verification_optimizer("sgd", adamw_actor(param))
    for group in sgd.param_groups:
        group["lr"] = 0.3
    with UpdateCosine(sgd) as cosine:
        step(sgd, param, [0.2, -0.1, 0.4])
        step(sgd, param, [0.0, 0.0, 0.0])  # a zero gradient: no direction, nothing recorded
    torch.testing.assert_close(param.detach(), torch.tensor([1.0 - 0.06, -2.0 + 0.03, 0.5 - 0.12]))
    assert cosine.values == [pytest.approx(1.0)]


def test_shared_adamw_momentum_turns_the_step_against_a_reversed_gradient():
    param = torch.nn.Parameter(torch.zeros(2))
    actor = adamw_actor(param)
    step(actor, param, [1.0, 0.0])  # the exploration update: m = 0.1·(1, 0), v = 0.001·(1, 0)
    shared = verification_optimizer("shared", actor)
    assert shared is actor
    with UpdateCosine(shared) as cosine:
        step(shared, param, [-0.1, 0.01])  # a small PI gradient pointing back
    # by hand, AdamW's second step: m = 0.9 m + 0.1 g, v = 0.999 v + 0.001 g², bias-corrected (t = 2)
    m = [0.9 * 0.1 + 0.1 * -0.1, 0.1 * 0.01]
    v = [0.999 * 0.001 + 0.001 * 0.01, 0.001 * 0.0001]
    update = [-0.1 * (mi / (1 - 0.9**2)) / (math.sqrt(vi / (1 - 0.999**2)) + 1e-8) for mi, vi in zip(m, v, strict=True)]
    assert cosine.values == [pytest.approx(cos(update, [0.1, -0.01]), rel=1e-4)]
    assert cosine.values[0] < 0  # the step moved towards the update it was to undo


def test_separate_keeps_its_own_state():
    param = torch.nn.Parameter(torch.zeros(2))
    actor = adamw_actor(param)
    step(actor, param, [1.0, 0.0])
    actor_state = {k: v.clone() for k, v in actor.state[param].items()}
    separate = verification_optimizer("separate", actor)
    assert type(separate) is torch.optim.AdamW and separate.defaults == actor.defaults
    with UpdateCosine(separate) as cosine:
        step(separate, param, [-0.1, 0.1])
    for k, v in actor.state[param].items():
        assert torch.equal(v, actor_state[k]), k  # the actor's moments and step count are untouched
    # a fresh AdamW's first step is −lr·sign(g) (to ε): along −g's signs, not −g itself
    assert cosine.values == [pytest.approx(1.0, abs=1e-6)]
    assert separate.state[param]["step"].item() == 1


def test_unknown_optimizer_is_named():
    with pytest.raises(ValueError, match=r"pipo\.optimizer='adam'"):
        verification_optimizer("adam", adamw_actor(torch.nn.Parameter(torch.zeros(1))))
