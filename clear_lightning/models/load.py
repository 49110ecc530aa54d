"""Every model, tiny or 7B, is loaded here with `from_pretrained` from a directory or hub id."""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

_CLASSES = {"image_text_to_text": AutoModelForImageTextToText, "causal_lm": AutoModelForCausalLM}


def _quantization(kind: str | None, compute_dtype: torch.dtype) -> Any:
    if kind is None:
        return None
    from transformers import BitsAndBytesConfig  # bitsandbytes is imported lazily, only for QLoRA

    if kind == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype,
            bnb_4bit_use_double_quant=True,
        )
    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"unknown model.quantization '{kind}': use null, 4bit or 8bit")


def load_model(
    path: str,
    model_class: str = "image_text_to_text",
    dtype: str = "float32",
    quantization: str | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
) -> torch.nn.Module:
    """The network in `dtype`, optionally 4/8-bit quantised (then prepared for k-bit training by peft)."""
    if model_class not in _CLASSES:
        raise ValueError(f"unknown model.model_class '{model_class}': use one of {sorted(_CLASSES)}")
    torch_dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    quant = _quantization(quantization, torch_dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()} if torch.cuda.is_available() else "cpu"
    model = _CLASSES[model_class].from_pretrained(path, **kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def load_processor(path: str, model_class: str = "image_text_to_text", revision: str | None = None) -> Any:
    """The model's processor (LLaVA) or tokenizer (text-only LLMs)."""
    if model_class == "causal_lm":
        tok = AutoTokenizer.from_pretrained(path, revision=revision)
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token or tok.eos_token
        return tok
    return AutoProcessor.from_pretrained(path, revision=revision)
