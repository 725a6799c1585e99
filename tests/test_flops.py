"""The forward FLOP count (pipo/flops.py) against a hand count and against torch's own FLOP counter."""

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import Qwen3Config, Qwen3ForCausalLM

from pipo.flops import forward_flops, linear_flops_per_token, read_model_config

TINY = {
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 4,
    "vocab_size": 10,
}


def test_a_tiny_config_by_hand():
    # per token and layer: q 2·8·8 = 128, k and v 2·2·8·4 = 128, o 2·8·8 = 128, MLP 3·2·8·16 = 768 → 1152;
    # two layers 2304, LM head 2·8·10 = 160 → 2464 per token, × 3 tokens = 7392.
    # attention per layer: (QKᵀ + AV) 2·2 · heads 2 · head_dim 4 = 32 per pair; causal pairs of 3 tokens
    # 1 + 2 + 3 = 6 → 192, two layers 384; without the mask 9 pairs → 288, two layers 576.
    assert linear_flops_per_token(TINY) == 2464
    assert forward_flops(TINY, 3) == 7392 + 384
    assert forward_flops(TINY, 3, causal=False) == 7392 + 576


def test_torchs_flop_counter_agrees_on_a_real_qwen3_forward():
    config = Qwen3Config(**TINY, max_position_embeddings=64, attn_implementation="eager")
    model = Qwen3ForCausalLM(config).eval()
    ids = torch.randint(0, 10, (1, 7))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(input_ids=ids)
    by_module = counter.get_flop_counts()
    # eager attention multiplies the full L×L score matrix (the mask is added after): the unmasked count;
    # the rotary embedding's small inv_freq × positions product is left out of ours (elementwise work)
    counted = counter.get_total_flops() - sum(by_module["Qwen3ForCausalLM.model.rotary_emb"].values())
    assert counted == forward_flops(TINY, 7, causal=False)


def test_the_weight_products_are_twice_the_parameters_less_embedding_and_norms(tmp_path):
    # a second formula on the shipped 8B config: every weight matrix is used once per token (2 FLOPs per
    # weight), the input embedding (untied) is a lookup and the norms are elementwise
    from pipo.backends.verl.config import MODEL_CONFIGS, parameter_count

    path = MODEL_CONFIGS / "Qwen3-8B-Base" / "config.json"
    c = json.loads(path.read_text())
    h, layers, hd = c["hidden_size"], c["num_hidden_layers"], c["head_dim"]
    norms = layers * (2 * h + 2 * hd) + h
    assert not c["tie_word_embeddings"]
    assert linear_flops_per_token(c) == 2 * (parameter_count(path) - c["vocab_size"] * h - norms)


def test_a_config_without_the_shape_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="not a Qwen3-architecture config"):
        read_model_config(tmp_path)
    with pytest.raises(ValueError, match="seq_len"):
        forward_flops(TINY, 0)
