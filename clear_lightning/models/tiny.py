"""The embedded default models, built from a config with random init: a genuine transformers LLaVA
(the multimodal track), a Llama-style causal LM (the text track's stand-in for Llama-2-7B / Mistral-7B), and
stand-ins for the other families (LLaVA-NeXT, Qwen2-VL, Qwen2.5-VL, Gemma-3, Llama-3.2-Vision, Qwen2.5), each from
the family's own config class and with the processor class its real checkpoints use.

Each is created once, saved with `save_pretrained`, and from then on loaded through the same
`from_pretrained` path as the 7B checkpoints (see `models.load`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    CLIPImageProcessorPil,
    CLIPVisionConfig,
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3ImageProcessorPil,
    Gemma3Processor,
    Gemma3TextConfig,
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
    MllamaConfig,
    MllamaForConditionalGeneration,
    MllamaImageProcessorPil,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
    SiglipVisionConfig,
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
# Gemma-3's (the real ids 0-3 first: pad, eos, bos, unk), its chat turns and image markers
GEMMA_SPECIAL_TOKENS = [
    "<pad>",
    "<eos>",
    "<bos>",
    "<unk>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
    "<image_soft_token>",
]
# Llama-3's pre-tokenising regex (its tokenizer.json's Split): a run of newlines is one piece, so the `\n\n` that
# ends a header stays one token whatever follows (GPT-2's regex would split it before a word: a merge across the
# prompt/answer join)
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# Llama-3's header and turn markers, and Llama-3.2-Vision's image token
LLAMA3_SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|finetune_right_pad_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    "<|python_tag|>",
    "<|image|>",
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

    def decoder_sizes(self, tokenizer: Any, layers: int | None = None) -> dict[str, int]:
        """The decoder's sizes under the names transformers' config classes give them (every family's stand-in
        builds its own config class from these); `layers` overrides the layer count (Mllama adds its
        cross-attention layers to the self-attention ones)."""
        return {
            "vocab_size": len(tokenizer),
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers if layers is None else layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_heads,
            "max_position_embeddings": self.max_positions,
        }


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
    texts: Iterable[str],
    vocab_size: int,
    specials: list[str],
    unk: str | None = "<unk>",
    split: str | None = None,
) -> Tokenizer:
    """Byte-level BPE; `split` replaces GPT-2's pre-tokenising regex (e.g. Llama-3's `LLAMA3_SPLIT`)."""
    tok = Tokenizer(models.BPE(unk_token=unk))
    if split is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(split), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
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
    return _bos_tokenizer(
        _train_bpe(texts, vocab_size, SPECIAL_TOKENS), "<s>", "</s>", "<pad>", {"image_token": "<image>"}
    )


def _bos_tokenizer(tok: Any, bos: str, eos: str, pad: str, extra: dict[str, str]) -> PreTrainedTokenizerFast:
    """A fast tokenizer that adds `bos` to every text, as LLaMA's and Gemma's own tokenizers do."""
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, tok.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        unk_token="<unk>",
        pad_token=pad,
        extra_special_tokens=extra,
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
        **spec.decoder_sizes(tokenizer),
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


@dataclass(frozen=True)
class TinyQwen2_5Spec(TinyLlamaSpec):  # noqa: N801 (the family's own spelling)
    """The text track's Qwen2.5 stand-in: a `Qwen2ForCausalLM` from transformers' `Qwen2Config` (biased q/k/v
    projections, rope θ 1e6, untied head as Qwen2.5-7B), random init, with a Qwen2-style chat tokenizer trained
    locally (no BOS, EOS `<|im_end|>`, pad `<|endoftext|>`, as Qwen2.5-Instruct's)."""

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        tokenizer = train_qwen_tokenizer(texts, self.vocab_size)
        config = Qwen2Config(
            **self.decoder_sizes(tokenizer),
            rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
            use_sliding_window=False,
            tie_word_embeddings=False,
            bos_token_id=None,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = Qwen2ForCausalLM(config)
        _set_generation_ids(model, tokenizer)
        return _save(out_dir, model, tokenizer)


@dataclass(frozen=True)
class TinyGemma3Spec(TinyLlamaSpec):
    """Gemma-3 (image-text) from transformers' `Gemma3Config`: a SigLIP tower whose patch features are average-
    pooled to `mm_tokens_per_image` soft tokens, a Gemma-3 decoder (sliding-window and global layers, tied
    embeddings), `Gemma3Processor` + `Gemma3ImageProcessor` (PIL backend), random init.

    As in the real model, the processor resizes every image to one square (no pan-and-scan, off in the real
    checkpoint too) and expands `<start_of_image>` into `\n\n<start_of_image>` + mm_tokens_per_image x
    `<image_soft_token>` + `<end_of_image>\n\n`: at the defaults a 32 px image, 8x8 patches of 4 px, pooled 2x2 to
    16 image tokens (the real 896 px / 14 px = 64x64 patches, pooled 4x4 to 256). It returns `token_type_ids`
    (1 on the soft tokens), from which the model builds its bidirectional attention within each image.
    """

    image_size: int = 32
    patch_size: int = 4
    mm_tokens_per_image: int = 16
    vision_hidden_size: int = 64
    vision_layers: int = 2
    vision_heads: int = 4
    sliding_window: int = 512  # > any stand-in row, as the real 1,024 is for CLEAR's prompts
    global_every: int = 2  # every n-th decoder layer attends globally, the others in the window (the real 6)

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        tokenizer = train_gemma_tokenizer(texts, self.vocab_size)
        processor = Gemma3Processor(
            image_processor=Gemma3ImageProcessorPil(
                size={"height": self.image_size, "width": self.image_size}
            ),
            tokenizer=tokenizer,
            image_seq_length=self.mm_tokens_per_image,
        )
        head_dim = self.hidden_size // self.num_heads
        text = Gemma3TextConfig(
            **self.decoder_sizes(tokenizer),
            head_dim=head_dim,
            query_pre_attn_scalar=head_dim,
            sliding_window=self.sliding_window,
            layer_types=[
                "full_attention" if (i + 1) % self.global_every == 0 else "sliding_attention"
                for i in range(self.num_layers)
            ],
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        vision = SiglipVisionConfig(
            image_size=self.image_size,
            patch_size=self.patch_size,
            hidden_size=self.vision_hidden_size,
            intermediate_size=4 * self.vision_hidden_size,
            num_hidden_layers=self.vision_layers,
            num_attention_heads=self.vision_heads,
            vision_use_head=False,
        )
        ids = tokenizer.convert_tokens_to_ids
        config = Gemma3Config(
            text_config=text,
            vision_config=vision,
            mm_tokens_per_image=self.mm_tokens_per_image,
            boi_token_index=ids("<start_of_image>"),
            eoi_token_index=ids("<end_of_image>"),
            image_token_index=ids("<image_soft_token>"),
        )
        model = Gemma3ForConditionalGeneration(config)
        _set_generation_ids(model, tokenizer)
        # as gemma-3-*-it's generation config: a turn ends at <end_of_turn> (the tokenizer's EOS is <eos>)
        model.generation_config.eos_token_id = [tokenizer.eos_token_id, ids("<end_of_turn>")]
        return _save(out_dir, model, processor)


@dataclass(frozen=True)
class TinyMllamaSpec(TinyLlamaSpec):
    """Llama-3.2-Vision (`mllama`) from transformers' `MllamaConfig`: a tiled ViT (local + gated global layers,
    aspect-ratio tile embeddings) whose features the decoder reads through interleaved cross-attention layers,
    `MllamaProcessor` + `MllamaImageProcessor` (PIL backend), a Llama-3-style tokenizer trained locally; random init.

    The image is not expanded into tokens: the prompt keeps one `<|image|>` token, and every token from it on
    cross-attends to the image's tiles (`cross_attention_mask` [tokens, images, tiles]). The image processor fits
    the image to the best grid of up to `max_tiles` tiles of `image_size` px (as the real 560 px x 4) and pads the
    tile axis to `max_tiles`; each tile gives (image_size / patch_size)^2 + 1 vision tokens (patches + CLS). At the
    defaults: 4 tiles x 17 = 68 vision tokens per image, of which the image's real tiles are attended.

    `num_layers` counts the self-attention (text) layers; a cross-attention layer follows every
    `cross_attention_every`-th of them, starting after the first (the real 11B: 32 text layers, 8 cross-attention
    layers at 3, 8, ..., 38). Mllama initialises the gates of its cross-attention layers and tile embeddings at 0
    (the adapter starts switched off); the stand-in opens them (tanh(1)), so its images reach the text.
    """

    image_size: int = 16  # one tile
    patch_size: int = 4
    max_tiles: int = 4
    vision_hidden_size: int = 32
    vision_layers: int = 2
    vision_global_layers: int = 1
    vision_heads: int = 4
    cross_attention_every: int = 2

    def cross_attention_layers(self) -> list[int]:
        """Indices of the cross-attention layers among all decoder layers: after text layers 0, n, 2n, ..."""
        layers, index = [], 0
        for i in range(self.num_layers):
            index += 1  # text layer i
            if i % self.cross_attention_every == 0:
                layers.append(index)
                index += 1
        return layers

    def create(self, texts: Iterable[str], out_dir: Path) -> Path:
        tokenizer = train_llama3_tokenizer(texts, self.vocab_size)
        processor = MllamaProcessor(
            image_processor=MllamaImageProcessorPil(
                size={"height": self.image_size, "width": self.image_size}, max_image_tiles=self.max_tiles
            ),
            tokenizer=tokenizer,
        )
        cross = self.cross_attention_layers()
        ids = tokenizer.convert_tokens_to_ids
        text = MllamaTextConfig(
            **self.decoder_sizes(tokenizer, layers=self.num_layers + len(cross)),
            cross_attention_layers=cross,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        intermediate = [0]  # the local layers whose outputs join the final one (the real 3, 7, 15, 23, 30)
        vision = MllamaVisionConfig(
            hidden_size=self.vision_hidden_size,
            intermediate_size=4 * self.vision_hidden_size,
            num_hidden_layers=self.vision_layers,
            num_global_layers=self.vision_global_layers,
            attention_heads=self.vision_heads,
            image_size=self.image_size,
            patch_size=self.patch_size,
            max_num_tiles=self.max_tiles,
            intermediate_layers_indices=intermediate,
            vision_output_dim=self.vision_hidden_size * (len(intermediate) + 1),
        )
        config = MllamaConfig(vision_config=vision, text_config=text, image_token_index=ids("<|image|>"))
        model = MllamaForConditionalGeneration(config)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.endswith(("cross_attn_attn_gate", "cross_attn_mlp_gate", "embedding.gate")):
                    param.fill_(1.0)
        _set_generation_ids(model, tokenizer)
        # as Llama-3.2-*-Instruct's generation config: a turn ends at <|eot_id|> (or the end of text)
        model.generation_config.eos_token_id = [ids("<|end_of_text|>"), ids("<|eot_id|>")]
        return _save(out_dir, model, processor)


def train_gemma_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Gemma's specials and roles: BOS `<bos>` added to every text (as Gemma's tokenizer
    does), EOS `<eos>`, pad `<pad>`; the image markers Gemma3Processor reads (boi / eoi / image soft token)."""
    markers = {
        "boi_token": "<start_of_image>",
        "eoi_token": "<end_of_image>",
        "image_token": "<image_soft_token>",
    }
    return _bos_tokenizer(
        _train_bpe(texts, vocab_size, GEMMA_SPECIAL_TOKENS), "<bos>", "<eos>", "<pad>", markers
    )


def train_llama3_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE with Llama-3's pre-tokenising regex, specials and Llama-3.2-Vision-Instruct's roles: BOS
    `<|begin_of_text|>` (which MllamaProcessor writes into the text itself: the tokenizer adds none), EOS `<|eot_id|>`, pad
    `<|finetune_right_pad_id|>`, image token `<|image|>`."""
    tok = _train_bpe(texts, vocab_size, LLAMA3_SPECIAL_TOKENS, unk=None, split=LLAMA3_SPLIT)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|finetune_right_pad_id|>",
        extra_special_tokens={"image_token": "<|image|>"},
    )
