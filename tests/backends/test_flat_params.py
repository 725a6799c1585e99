"""Flat parameters: the same AdamW update, gradient norm and clipping as torch's per-tensor ones."""

import copy

import torch

from pipo.backends.local.flat_params import FlatParameters, flat_optimizer_state


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Embedding(11, 6), torch.nn.Linear(6, 6), torch.nn.Tanh(), torch.nn.Linear(6, 11))
    m[3].weight = m[0].weight  # tied, as a language model's head and embedding may be
    return m


def loss(m: torch.nn.Module, step: int) -> torch.Tensor:
    ids = torch.randint(0, 11, (4, 3), generator=torch.Generator().manual_seed(step))
    return torch.nn.functional.cross_entropy(m(ids).reshape(-1, 11), ids.reshape(-1)) * (3.0 if step % 2 else 0.1)


def adamw(params) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, lr=0.05, betas=(0.9, 0.99), weight_decay=0.01)


def test_flat_step_equals_torchs_per_tensor_step():
    ref, mod = model(), model()
    flat = FlatParameters(mod)
    assert len(flat.params) == 4 and flat.param.numel() == sum(p.numel() for p in ref.parameters())
    assert mod[3].weight is mod[0].weight  # the tie survives
    opt_ref, opt = adamw(ref.parameters()), adamw([flat.param])
    for step in range(6):  # odd steps: the norm exceeds the limit and the gradients are clipped
        opt_ref.zero_grad()
        loss(ref, step).backward()
        norm_ref = torch.nn.utils.clip_grad_norm_(ref.parameters(), 1.0).item()
        opt_ref.step()
        flat.zero_grad()
        loss(mod, step).backward()
        norm = flat.clip_grad_norm_(1.0)
        opt.step()
        assert abs(norm - norm_ref) <= 1e-6 * norm_ref
        if step == 1:
            assert norm > 1.0
    for p, q in zip(ref.parameters(), mod.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # the moments too, through the converter for per-tensor states (old checkpoints)
    converted = flat_optimizer_state(opt_ref.state_dict())
    ours = opt.state_dict()
    for key in ("exp_avg", "exp_avg_sq", "step"):
        torch.testing.assert_close(converted["state"][0][key], ours["state"][0][key], rtol=1e-5, atol=1e-7)
    assert flat_optimizer_state(ours) is ours


def test_a_per_tensor_optimizer_state_resumes_as_the_flat_one():
    ref, mod = model(), model()
    opt_ref = adamw(ref.parameters())
    for step in range(3):
        opt_ref.zero_grad()
        loss(ref, step).backward()
        opt_ref.step()
    mod.load_state_dict(ref.state_dict())
    flat = FlatParameters(mod)
    opt = adamw([flat.param])
    opt.load_state_dict(flat_optimizer_state(copy.deepcopy(opt_ref.state_dict())))
    opt_ref.zero_grad()
    loss(ref, 3).backward()
    opt_ref.step()
    flat.zero_grad()
    loss(mod, 3).backward()
    opt.step()
    for p, q in zip(ref.parameters(), mod.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    fresh = flat_optimizer_state(adamw(model().parameters()).state_dict())  # saved before any step
    assert fresh["state"] == {} and fresh["param_groups"][0]["params"] == [0]


def test_gradients_land_in_the_buffer_after_module_zero_grad():
    mod = model()
    flat = FlatParameters(mod)
    mod.zero_grad(set_to_none=True)  # detaches the views
    flat.zero_grad()
    loss(mod, 0).backward()
    assert flat.param.grad.abs().sum() > 0
    assert all(p.grad.data_ptr() == g.data_ptr() for p, g in zip(flat.params, flat.grads, strict=True))
