"""Which modules are the units of sharding and activation checkpointing under FSDP (`trainer=fsdp`)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import torch

from ..errors import ClearConfigError

# transformers' repeated blocks of the supported models: the language models' decoder layers and the
# vision towers' encoder layers. Classes a transformers version lacks are skipped.
_LAYERS = (
    ("transformers.models.llama.modeling_llama", "LlamaDecoderLayer"),
    ("transformers.models.mistral.modeling_mistral", "MistralDecoderLayer"),
    ("transformers.models.clip.modeling_clip", "CLIPEncoderLayer"),
    ("transformers.models.qwen2_vl.modeling_qwen2_vl", "Qwen2VLDecoderLayer"),
    ("transformers.models.qwen2_vl.modeling_qwen2_vl", "Qwen2VLVisionBlock"),
    ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLDecoderLayer"),
    ("transformers.models.qwen2_5_vl.modeling_qwen2_5_vl", "Qwen2_5_VLVisionBlock"),
)


def decoder_layer_classes(names: Sequence[str] | None = None) -> set[type[torch.nn.Module]]:
    """One FSDP unit per transformer block: small enough to gather one at a time, big enough to be fast.

    `names` are the model YAML's `fsdp_units` (dotted class paths: its decoder layer and vision block), so a new
    model family needs no code here; without them, every class of `_LAYERS` this transformers version has.
    """
    if names is not None:
        found = set()
        for name in names:
            module, _, cls = str(name).rpartition(".")
            try:
                found.add(getattr(importlib.import_module(module), cls))
            except (ImportError, AttributeError, ValueError) as err:
                raise ClearConfigError(
                    f"model.fsdp_units: cannot import {name} ({err})",
                    "name the model's repeated block classes by their full module path",
                ) from err
        return found
    found = set()
    for module, name in _LAYERS:
        try:
            found.add(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return found
