"""`bench_gpu` reads its network from the model configs (no re-typed architecture, no download), on CPU."""

from __future__ import annotations

import pytest
import torch
from transformers import LlavaForConditionalGeneration

from clear_lightning.bench_gpu import _Synthetic, llava_config, model_config


def _parameters(config) -> int:
    with torch.device("meta"):  # shapes only: no memory, no init
        model = LlavaForConditionalGeneration(config)
    return sum(p.numel() for p in model.parameters())


def test_7b_scale_is_llava_1_5_7b() -> None:
    config = llava_config("7b")
    assert round(_parameters(config) / 1e9, 2) == 7.06  # llava-hf/llava-1.5-7b-hf: 7.06 B parameters
    vision, text = config.vision_config, config.text_config
    assert (vision.image_size // vision.patch_size) ** 2 == config.image_seq_length == 576
    assert config.image_token_index < text.vocab_size
    assert config.vision_feature_layer == -2 and config.vision_feature_select_strategy == "default"


def test_tiny_scale_is_the_embedded_model_config() -> None:
    cfg = model_config("tiny")
    assert cfg.name == "tiny_llava" and cfg.lora.target_modules == cfg.lora_targets  # interpolation resolved
    config = llava_config(cfg)
    build, text = cfg.build, config.text_config
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size) == (
        build.hidden_size,
        build.num_layers,
        build.vocab_size,
    )
    assert config.vision_config.image_size == build.image_size
    assert config.image_seq_length == (build.image_size // build.patch_size) ** 2


def test_only_llava_model_configs() -> None:
    with pytest.raises(ValueError, match="unknown model config 'nope'"):
        model_config("nope")
    with pytest.raises(ValueError, match="needs a LLaVA"):
        model_config("llama2_7b")


def test_synthetic_rows_hold_the_image_tokens_once() -> None:
    config = llava_config("tiny")  # image token 4: low in the vocabulary, unlike LLaVA-1.5's 32000
    row = _Synthetic(config, steps=1, text_tokens=40, answer_tokens=8)[0]["forget"]
    ids = row["input_ids"]
    assert int((ids == config.image_token_index).sum()) == config.image_seq_length
    assert 3 <= int(ids.min()) and int(ids.max()) < config.text_config.vocab_size
    assert int((row["labels"] != -100).sum()) == 8
    assert row["pixel_values"].shape[-1] == config.vision_config.image_size
