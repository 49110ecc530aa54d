"""Every model, tiny or 7B, is loaded here with `from_pretrained` from a directory or hub id."""

from __future__ import annotations

import copy
import importlib.util
import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
)
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

from ..errors import ClearConfigError

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


def attention_implementation(requested: str | None) -> str | None:
    """`auto` = FlashAttention-2 where flash-attn is installed and CUDA is present, else PyTorch SDPA."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_model(
    path: str,
    model_class: str = "image_text_to_text",
    dtype: str = "float32",
    quantization: str | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    gradient_checkpointing: bool = False,
) -> torch.nn.Module:
    """The network in `dtype`, optionally 4/8-bit quantised (then prepared for k-bit training by peft),
    optionally with gradient checkpointing (activations recomputed in backward: memory for time)."""
    if model_class not in _CLASSES:
        raise ValueError(f"unknown model.model_class '{model_class}': use one of {sorted(_CLASSES)}")
    torch_dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    attn = attention_implementation(attn_implementation)
    if attn:
        kwargs["attn_implementation"] = attn
    quant = _quantization(quantization, torch_dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": torch.cuda.current_device()} if torch.cuda.is_available() else "cpu"
    try:
        model = _CLASSES[model_class].from_pretrained(path, **kwargs)
    except OSError as err:
        if os.environ.get("HF_HUB_OFFLINE") == "1" and not Path(path).exists():
            raise ClearConfigError(
                f"model {path} is not in the local Hugging Face cache and offline mode is on",
                "download it where there is internet (huggingface-cli download <id> --local-dir DIR) and "
                "pass model.path=DIR, or unset HF_HUB_OFFLINE",
            ) from err
        raise
    if quantization == "4bit":
        _check_4bit_blocks(model)
        _keep_4bit_trainable_on_cpu(model)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # a frozen base + LoRA: the checkpointed blocks need a grad input
    return model


def _check_4bit_blocks(model: torch.nn.Module, block: int = 64) -> None:
    """bitsandbytes quantises in blocks of 64 inputs; narrower layers fail later with an opaque shape error."""
    narrow = [
        n for n, m in model.named_modules() if type(m).__name__ == "Linear4bit" and m.in_features < block
    ]
    if narrow:
        raise ClearConfigError(
            f"model.quantization=4bit needs linear layers with >= {block} inputs; {narrow[0]} has "
            f"{model.get_submodule(narrow[0]).in_features} ({len(narrow)} such layers)",
            "use a wider model (e.g. model.build.hidden_size=64) or model.quantization=null",
        )


def _keep_4bit_trainable_on_cpu(model: torch.nn.Module) -> None:
    """On AVX512-bf16 CPUs, bitsandbytes repacks 4-bit weights for inference at the first eval-mode, no-grad
    forward (θ₀, evaluation), one way, and the repacked kernel has no autograd: every later training step would
    then silently lose the gradient through frozen 4-bit layers. Keep the trainable layout."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def processor_without(processor_class: type, parts: Sequence[str]) -> type:
    """`processor_class` without the sub-processors `parts` (e.g. `video_processor`), under the same name.

    transformers finds a processor's sub-processors from its `__init__` signature, both when it loads them
    (`from_pretrained`) and when it checks them; Qwen2-VL's video processor needs torchvision, which this CPU
    stack cannot import (docs: README "Models"). The subclass's signature lacks `parts`, so they are neither
    loaded nor checked and the parent receives None for them; `save_pretrained` writes the parent's name, so a
    checkpoint saved this way loads with the full processor where torchvision exists. The parent hands its
    sub-processors on positionally, so only trailing ones can be left out (Qwen2-VL's order: image processor,
    tokenizer, video processor); others are refused.
    """
    params = inspect.signature(processor_class.__init__).parameters
    attributes = processor_class.get_attributes()
    missing = [p for p in parts if p not in attributes]
    if missing:
        raise ClearConfigError(
            f"{processor_class.__name__} has no sub-processor {missing[0]}",
            f"model.processor_without may name only {attributes}",
        )
    kept = [a for a in attributes if a not in parts]
    if attributes[: len(kept)] != kept:
        raise ClearConfigError(
            f"{processor_class.__name__}: only trailing sub-processors of {attributes} can be left out, not {parts}",
            "set model.processor_without=[] (or install torchvision for the full processor)",
        )

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        processor_class.__init__(self, *args, **kwargs)

    __init__.__signature__ = inspect.Signature([p for n, p in params.items() if n not in parts])  # type: ignore[attr-defined]
    return type(processor_class.__name__, (processor_class,), {"__init__": __init__, "__module__": __name__})


def load_processor(
    path: str,
    model_class: str = "image_text_to_text",
    revision: str | None = None,
    without: Sequence[str] = (),
) -> Any:
    """The model's processor (LLaVA, Qwen2-VL) or tokenizer (text-only LLMs); `without` names sub-processors
    to leave out (`processor_without`), the processor class then being the one AutoProcessor would pick."""
    if model_class == "causal_lm":
        tok = AutoTokenizer.from_pretrained(path, revision=revision)
        if tok.pad_token is None:
            tok.pad_token = tok.unk_token or tok.eos_token
        return tok
    if not without:
        return AutoProcessor.from_pretrained(path, revision=revision)
    model_type = AutoConfig.from_pretrained(path, revision=revision).model_type
    if model_type not in PROCESSOR_MAPPING_NAMES:
        raise ClearConfigError(
            f"model.processor_without is set, but transformers has no processor class for '{model_type}' ({path})",
            "set model.processor_without=[] to load the checkpoint's processor with AutoProcessor",
        )
    processor_class = getattr(transformers, PROCESSOR_MAPPING_NAMES[model_type])
    return processor_without(processor_class, without).from_pretrained(path, revision=revision)


class ModelLoader:
    """Loads the configured model family from any checkpoint directory or hub id (`conf/model/*.yaml`'s
    `loader`), and remembers the content digests of every local directory it loaded (for provenance).

    `quantization` (QLoRA) applies to unlearning and evaluation; the upstream fine-tunes pass `quantized=False`
    and train in `dtype`, as in the paper. The configured checkpoint's `revision` is pinned; other paths
    (our own artifacts) have none. `processor_without` lists sub-processors the processor is built without
    (Qwen2-VL's `video_processor`: it needs torchvision; this benchmark has no videos).
    """

    def __init__(
        self,
        name: str,
        model_class: str = "image_text_to_text",
        dtype: str = "float32",
        path: str | None = None,
        revision: str | None = None,
        quantization: str | None = None,
        attn_implementation: str | None = None,
        gradient_checkpointing: bool = False,
        processor_without: Sequence[str] = (),
    ):
        if model_class not in _CLASSES:
            raise ClearConfigError(
                f"unknown model.model_class '{model_class}'", f"use one of {', '.join(sorted(_CLASSES))}"
            )
        if quantization not in (None, "4bit", "8bit"):
            raise ClearConfigError(f"unknown model.quantization '{quantization}'", "use null, 4bit or 8bit")
        if not hasattr(torch, str(dtype)):
            raise ClearConfigError(f"unknown model.dtype '{dtype}'", "use float32, bfloat16 or float16")
        self.name, self.model_class, self.dtype = name, model_class, dtype
        self.path, self.revision, self.quantization = path, revision, quantization
        self.attn_implementation, self.gradient_checkpointing = attn_implementation, gradient_checkpointing
        self.processor_without = tuple(processor_without or ())
        self.loaded: dict[str, dict[str, str]] = {}

    @property
    def text_only(self) -> bool:
        """Text-track models (Llama-2, Mistral): image rows are dropped and visual sets skipped, said so."""
        return self.model_class == "causal_lm"

    def quantized(self, quantization: str) -> ModelLoader:
        """The same family loaded with bitsandbytes `quantization` (4bit | 8bit): the quantisation attack."""
        loader = copy.copy(self)
        loader.quantization, loader.loaded = quantization, self.loaded
        if quantization not in ("4bit", "8bit"):
            raise ClearConfigError(f"unknown quantization '{quantization}'", "use 4bit or 8bit")
        return loader

    def load(self, path: str | Path, quantized: bool = True) -> tuple[torch.nn.Module, Any]:
        """Model + processor from a checkpoint dir or hub id."""
        from ..artifacts import file_digests

        revision = self.revision if str(path) == str(self.path) else None
        model = load_model(
            str(path),
            self.model_class,
            self.dtype,
            self.quantization if quantized else None,
            self.attn_implementation,
            revision,
            gradient_checkpointing=bool(self.gradient_checkpointing),
        )
        if Path(str(path)).is_dir():
            self.loaded[str(path)] = file_digests(Path(str(path)))
        return model, load_processor(str(path), self.model_class, revision, self.processor_without)
