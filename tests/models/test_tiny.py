"""Tiny base models: character tokenizer, deterministic cached build, loaded through from_pretrained."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pipo.models.tiny import build_tokenizer, ensure_tiny_model

ARCH = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 32,
}
SFT = {"steps": 5, "batch_size": 4, "lr": 1e-3, "seed": 0}
EXAMPLES = [("Q:1+2\nA:", "\\boxed{3}"), ("Q:2+2\nA:", "=4")]


def test_character_tokenizer_roundtrip():
    tok = build_tokenizer()
    text = "Q:12*3+4\nA:\\boxed{40}"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    batch = tok(["ab", "abcd"], padding=True, add_special_tokens=False)["input_ids"]
    assert batch[0][:2] == [tok.pad_token_id] * 2  # left padding for generation
    assert tok("é", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]


def test_build_is_cached_deterministic_and_loads_like_a_hub_model(tmp_path):
    a = ensure_tiny_model("m", ARCH, SFT, EXAMPLES, "data", tmp_path / "c1")
    stamp = (a / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model("m", ARCH, SFT, EXAMPLES, "data", tmp_path / "c1") == a
    assert (a / "model.safetensors").stat().st_mtime_ns == stamp  # not rebuilt
    b = ensure_tiny_model("m", ARCH, SFT, EXAMPLES, "data", tmp_path / "c2")
    ma, mb = AutoModelForCausalLM.from_pretrained(a), AutoModelForCausalLM.from_pretrained(b)
    assert ma.config.model_type == "qwen3"
    for (name, pa), (_, pb) in zip(ma.state_dict().items(), mb.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    loaded = AutoTokenizer.from_pretrained(a)
    assert loaded("Q:1+2", add_special_tokens=False)["input_ids"] == build_tokenizer()("Q:1+2")["input_ids"]
    other = ensure_tiny_model("m", ARCH, {**SFT, "steps": 6}, EXAMPLES, "data", tmp_path / "c1")
    assert other != a  # a different recipe is a different cache entry


def test_extra_words_are_single_tokens_and_decode_back_exactly(tmp_path):
    words = ("<tool_call>", "</tool_call>", '{"name":"')
    tok = build_tokenizer(words)
    text = '<tool_call>{"name":"f"}</tool_call>\n<tool_call'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # <tool_call> {"name":" f " } </tool_call> \n < t o o l _ c a l l
    assert len(ids) == 1 + 1 + 1 + 1 + 1 + 1 + 1 + 10
    assert tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)(text, add_special_tokens=False)["input_ids"] == ids
    plain = build_tokenizer()
    assert len(tok) == len(plain) + len(words)
    assert plain("a\n", add_special_tokens=False)["input_ids"] == tok("a\n", add_special_tokens=False)["input_ids"]
