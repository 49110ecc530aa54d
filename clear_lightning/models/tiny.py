"""The embedded default models, built from a config with random init: a genuine transformers LLaVA
(the multimodal track), a Llama-style causal LM (the text track's stand-in for Llama-2-7B / Mistral-7B), and
stand-ins for the other families (LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL), each from the family's own config class and with the
processor class its real checkpoints use.

Each is created once, saved with `save_pretrained`, and from then on loaded through the same
`from_pretrained` path as the 7B checkpoints (see `models.load`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessorPil,
    LlavaNextProcessor,
    LlavaProcessor,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)

from .load import processor_without

SPECIAL_TOKENS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]
# Qwen2's chat and vision specials (the real tokenizer's names; no BOS, EOS = <|im_end|>, pad = <|endoftext|>)
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


@dataclass(frozen=True)
class TinyLlamaSpec:
    """Sizes of the tiny text-only model (the text track's stand-in): a Llama-style decoder."""

    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 1024
    vocab_size: int = 4000
    max_positions: int = 512

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        """Tokenizer + random-init LlamaForCausalLM, saved as an HF checkpoint."""
        tokenizer = train_tokenizer(texts, self.vocab_size)
        model = LlamaForCausalLM(text_config(tokenizer, self))
        _set_generation_ids(model, tokenizer)
        return _save(out_dir, model, tokenizer)


@dataclass(frozen=True)
class TinyLlavaSpec(TinyLlamaSpec):
    """The same decoder with a CLIP-style vision tower; ~1.5 M parameters by default so CPU training takes
    seconds."""

    image_size: int = 32
    patch_size: int = 8
    vision_hidden_size: int = 64
    vision_layers: int = 2
    vision_heads: int = 4

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        return create_tiny_llava(self, texts, out_dir)


def _train_bpe(
    texts: Iterable[str], vocab_size: int, specials: list[str], unk: str | None = "<unk>"
) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=unk))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        min_frequency=1,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


@dataclass(frozen=True)
class TinyLlavaNextSpec(TinyLlavaSpec):
    """LLaVA-NeXT (v1.6) from transformers' `LlavaNextConfig`: a CLIP tower, a Mistral decoder (as
    llava-v1.6-mistral-7b) and `LlavaNextProcessor` + `LlavaNextImageProcessor` (PIL backend).

    Anyres tiling as in the real model: the image is resized to the best-fitting `grid_pinpoints` resolution and
    cut into image_size tiles, plus one downscaled overview; the processor expands `<image>` into the overview's
    patch tokens + the unpadded tiles' patch tokens + one newline token per feature row, so the count depends on
    the image's shape. At the defaults a square image gets a 2x2 grid: 16 + 64 + 8 = 88 image tokens.
    """

    image_size: int = 16  # one tile; the real model's 336 px
    patch_size: int = 4
    grid_pinpoints: tuple[tuple[int, int], ...] = ((16, 32), (32, 16), (32, 32), (16, 48), (48, 16))

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        tokenizer = train_tokenizer(texts, self.vocab_size)
        size = self.image_size
        pinpoints = [list(p) for p in self.grid_pinpoints]
        image_processor = LlavaNextImageProcessorPil(
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            image_grid_pinpoints=pinpoints,
        )
        processor = LlavaNextProcessor(
            image_processor=image_processor,
            tokenizer=tokenizer,
            patch_size=self.patch_size,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,  # CLIP's CLS, dropped by the "default" strategy
        )
        vision = clip_vision_config(self)
        llama = text_config(tokenizer, self)
        text = MistralConfig(**{k: getattr(llama, k) for k in _DECODER_FIELDS}, sliding_window=None)
        config = LlavaNextConfig(
            vision_config=vision,
            text_config=text,
            image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
            image_grid_pinpoints=pinpoints,
            image_seq_length=(size // self.patch_size) ** 2,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
        model = LlavaNextForConditionalGeneration(config)
        _set_generation_ids(model, tokenizer)
        return _save(out_dir, model, processor)


_DECODER_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
)


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on the dataset's own text, so names become single tokens."""
    tok = _train_bpe(texts, vocab_size, SPECIAL_TOKENS)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )


def build_processor(tokenizer: PreTrainedTokenizerFast, spec: TinyLlavaSpec) -> LlavaProcessor:
    """A real LlavaProcessor: it expands `<image>` into one token per patch, like LLaVA-1.5's."""
    size = spec.image_size
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
    )


def clip_vision_config(spec: TinyLlavaSpec) -> CLIPVisionConfig:
    """The CLIP-style vision tower of the LLaVA-family stand-ins (one tile of `image_size` px)."""
    return CLIPVisionConfig(
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        hidden_size=spec.vision_hidden_size,
        intermediate_size=4 * spec.vision_hidden_size,
        num_hidden_layers=spec.vision_layers,
        num_attention_heads=spec.vision_heads,
        projection_dim=spec.vision_hidden_size,
    )


def build_model(tokenizer: PreTrainedTokenizerFast, spec: TinyLlavaSpec) -> LlavaForConditionalGeneration:
    """CLIP-style vision tower + projector + Llama-style decoder, randomly initialised."""
    vision = clip_vision_config(spec)
    text = text_config(tokenizer, spec)
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(spec.image_size // spec.patch_size) ** 2,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    model = LlavaForConditionalGeneration(config)
    _set_generation_ids(model, tokenizer)
    return model


def text_config(tokenizer: PreTrainedTokenizerFast, spec: TinyLlamaSpec) -> LlamaConfig:
    """The Llama-style decoder shared by both tiny models."""
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )


def _save(out_dir: Path, model: torch.nn.Module, processor: Any) -> Path:
    """Save a stand-in as an HF checkpoint (weights + tokenizer or processor), loaded later by `from_pretrained`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def _set_generation_ids(model: torch.nn.Module, tokenizer: PreTrainedTokenizerFast) -> None:
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id


def create_tiny_llava(spec: TinyLlavaSpec, texts: Iterable[str], out_dir: Path) -> Path:
    """Build tokenizer, processor and random-init model, and save them as an HF checkpoint."""
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    processor = build_processor(tokenizer, spec)
    model = build_model(tokenizer, spec)
    return _save(out_dir, model, processor)


@dataclass(frozen=True)
class TinyQwen2VLSpec(TinyLlamaSpec):
    """A Qwen2-VL from transformers' `Qwen2VLConfig` (ViT with 2x2 patch merger, M-RoPE decoder), random init,
    with the real checkpoints' `Qwen2VLProcessor` + `Qwen2VLImageProcessor` (PIL backend) and a Qwen2-style
    chat tokenizer trained locally.

    Dynamic resolution as in the real model: the image processor resizes each image to multiples of
    patch_size x merge_size px within [min_pixels, max_pixels], keeping its aspect ratio, so one image token
    covers (patch_size x merge_size)^2 px and images of different shapes expand to different token counts.
    The processor is built without its video processor (`models.load.processor_without`: it needs
    torchvision), and saved under the parent's name.
    """

    patch_size: int = 4
    merge_size: int = 2
    min_pixels: int = 16 * 16
    max_pixels: int = 32 * 32  # a 32x32 face: (32 / 8)^2 = 16 image tokens
    vision_hidden_size: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    mrope_section: tuple[int, ...] | None = None  # (t, h, w) rotary pairs; None = Qwen2-VL's 1/4, 3/8, 3/8

    processor_class = Qwen2VLProcessor
    config_class = Qwen2VLConfig
    model_class = Qwen2VLForConditionalGeneration

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        tokenizer = train_qwen_tokenizer(texts, self.vocab_size)
        processor = self.processor(tokenizer)
        model = self.model_class(self.config(tokenizer))
        _set_generation_ids(model, tokenizer)
        return _save(out_dir, model, processor)

    def processor(self, tokenizer: PreTrainedTokenizerFast) -> Qwen2VLProcessor:
        image_processor = Qwen2VLImageProcessorPil(
            patch_size=self.patch_size,
            merge_size=self.merge_size,
            temporal_patch_size=2,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
        )
        return processor_without(self.processor_class, ["video_processor"])(
            image_processor=image_processor, tokenizer=tokenizer
        )

    def vision_config(self) -> dict:
        return {
            "depth": self.vision_layers,
            "embed_dim": self.vision_hidden_size,
            "hidden_size": self.hidden_size,  # the merger projects to the decoder width
            "num_heads": self.vision_heads,
            "mlp_ratio": 4,
            "patch_size": self.patch_size,
            "spatial_merge_size": self.merge_size,
            "temporal_patch_size": 2,
        }

    def _mrope_section(self) -> list[int]:
        """M-RoPE's split of the head's rotary pairs (head_dim / 2) over time, height and width, in the real
        model's proportions (16, 24, 24 of 64); it must sum exactly to head_dim / 2."""
        half = self.hidden_size // self.num_heads // 2
        t = half // 4
        return [t, (half - t) // 2, half - t - (half - t) // 2]

    def config(self, tokenizer: PreTrainedTokenizerFast) -> Qwen2VLConfig:
        ids = tokenizer.convert_tokens_to_ids
        text = {
            "vocab_size": len(tokenizer),
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_heads,
            "max_position_embeddings": self.max_positions,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": list(self.mrope_section or self._mrope_section()),
            },
            "bos_token_id": None,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        return self.config_class(
            text_config=text,
            vision_config=self.vision_config(),
            image_token_id=ids("<|image_pad|>"),
            video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"),
            vision_end_token_id=ids("<|vision_end|>"),
            tie_word_embeddings=False,
        )


@dataclass(frozen=True)
class TinyQwen2_5VLSpec(TinyQwen2VLSpec):  # noqa: N801 (the family's own spelling)
    """Qwen2.5-VL: the Qwen2-VL layout with a SwiGLU, RMSNorm vision tower using windowed attention (full
    attention in `fullatt_block_indexes`) and `Qwen2_5_VLProcessor`; the same image processor."""

    window_size: int = 16  # px: 2x2 merged tokens per window, so a 32x32 image has 4 windows
    fullatt_blocks: tuple[int, ...] = (1,)

    processor_class = Qwen2_5_VLProcessor
    config_class = Qwen2_5_VLConfig
    model_class = Qwen2_5_VLForConditionalGeneration

    def vision_config(self) -> dict:
        return {
            "depth": self.vision_layers,
            "hidden_size": self.vision_hidden_size,
            "intermediate_size": 2 * self.vision_hidden_size,
            "out_hidden_size": self.hidden_size,
            "num_heads": self.vision_heads,
            "patch_size": self.patch_size,
            "spatial_merge_size": self.merge_size,
            "temporal_patch_size": 2,
            "window_size": self.window_size,
            "fullatt_block_indexes": list(self.fullatt_blocks),
        }


def train_qwen_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Qwen2's specials and roles: no BOS, EOS `<|im_end|>` (ends an assistant turn), pad
    `<|endoftext|>`, image token `<|image_pad|>` (what Qwen2VLProcessor expands)."""
    tok = _train_bpe(texts, vocab_size, QWEN_SPECIAL_TOKENS, unk=None)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
    )
