"""Shared fixtures: a micro cell config (fast to build and train) for trainer-level tests."""

import pytest

MICRO = [
    "model.tiny.arch.hidden_size=32",
    "model.tiny.arch.intermediate_size=64",
    "model.tiny.arch.num_hidden_layers=1",
    "model.tiny.sft_steps=300",
    "scale.steps=4",
    "scale.save_every=2",
    "scale.eval.every=2",
    "scale.eval.mean_at_k=0",
    "wandb.mode=disabled",
]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One cache of built tiny models for the whole test session."""
    return str(tmp_path_factory.mktemp("model_cache"))


@pytest.fixture
def micro_overrides(model_cache, tmp_path):
    return [*MICRO, f"cache_dir={model_cache}", f"run_root={tmp_path / 'runs'}"]


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory):
    """A tiny Qwen3 model directory (config, seeded random weights, tokenizer): what verl reads of a model
    to validate a config (this machine cannot download Qwen3-4B-Base's), and a model verl's engine can load."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from pipo.models.tiny import build_tokenizer

    path = tmp_path_factory.mktemp("hf_model")
    config = Qwen3Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        vocab_size=128,
        architectures=["Qwen3ForCausalLM"],
    )
    torch.manual_seed(0)
    Qwen3ForCausalLM(config).save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def transfer_queue():
    """A local Ray instance with verl's TransferQueue (where verl keeps a step's batch)."""
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    yield
    tq.close()
    ray.shutdown()
