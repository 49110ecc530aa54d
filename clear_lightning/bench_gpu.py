"""`make bench-gpu`: what our reference model saves, on a random-init LLaVA with the 7B configuration.

No download: the network is the architecture of `conf/model/llava_1_5_7b.yaml`'s checkpoint (LLaVA-1.5-7B:
CLIP ViT-L/14-336 + Llama-2-7B; see `llava_config` for where it is read from) with random weights, saved once
and re-loaded through `models.load.load_model` like the real checkpoint, with that model config's LoRA adapter.
For one unlearning method that needs θ₀ (KL by default), it measures peak GPU memory and training tokens/s of

- `lora_bf16`: LoRA student, θ₀ = the same weights with the adapter disabled (ours, one copy);
- `qlora_4bit`: the same on 4-bit NF4 weights (bitsandbytes);
- `copy_reference`: LoRA student + a frozen second bf16 copy as θ₀ (the authors' code).

`--scale tiny` runs the same code on `conf/model/tiny_llava.yaml`'s network (CPU-testable); `--scale` also takes
any LLaVA model config's name. Results: `<out>/gpu.json` and `gpu.md`.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import CONFIG_DIR, offline_by_default, register_resolvers

offline_by_default()

import lightning as L  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

VARIANTS = {
    "lora_bf16": {"quantization": None, "reference": "adapter"},
    "qlora_4bit": {"quantization": "4bit", "reference": "adapter"},
    "copy_reference": {"quantization": None, "reference": "copy"},
}
SCALES = {"7b": "llava_1_5_7b", "tiny": "tiny_llava"}  # `--scale`: a model config of conf/model/
# What a checkpoint's own config.json sets beyond transformers' `LlavaConfig` defaults, for the checkpoints a
# model config names and this machine may not hold. The defaults ARE LLaVA-1.5-7B's architecture (transformers
# documents `LlavaConfig()` as "llava-1.5-7b style": CLIP ViT-L/14 at 336 px, 576 image tokens, image token 32000,
# vision feature layer -2, "default" select strategy, gelu projector, and `LlamaConfig()` = Llama-2-7B's decoder);
# llava-hf/llava-1.5-7b-hf's config.json overrides only the decoder's vocabulary (32064, padded), context length
# and RMSNorm epsilon, so these entries are that file's architecture info, not a re-typed architecture.
# `tests/test_bench_gpu.py` checks the result has LLaVA-1.5-7B's 7.06 B parameters.
CHECKPOINT_CONFIGS: dict[str, dict[str, Any]] = {
    "llava-hf/llava-1.5-7b-hf": {
        "text_config": {
            "model_type": "llama",
            "vocab_size": 32064,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
        },
    },
}


def model_config(name: str) -> DictConfig:
    """The `model` node of `python -m clear_lightning model=<name>` (7b / tiny: `SCALES`), composed by Hydra from
    conf/model/ alone (the leaf and its defaults, e.g. `_base`), interpolations resolved."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException

    register_resolvers()
    name = SCALES.get(name, name)
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(overrides=[f"+model={name}"]).model
    except MissingConfigException:
        known = sorted([*SCALES, *(p.stem for p in (CONFIG_DIR / "model").glob("[!_]*.yaml"))])
        raise ValueError(f"unknown model config '{name}': use one of {known}") from None
    OmegaConf.resolve(cfg)
    if cfg.get("model_class") != "image_text_to_text":
        raise ValueError(
            f"model '{cfg.name}' is a {cfg.get('model_class')} model: the benchmark needs a LLaVA"
        )
    return cfg


class _Vocabulary:
    """What `models.tiny.build_model` reads of its tokenizer: a vocabulary of `size` tokens, the special tokens
    first (`models.tiny.SPECIAL_TOKENS`). The real tokenizer is trained on the dataset; the benchmark has none."""

    def __init__(self, size: int):
        from .models.tiny import SPECIAL_TOKENS

        self.size, self.ids = size, {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        self.pad_token_id, self.bos_token_id = self.ids["<pad>"], self.ids["<s>"]
        self.eos_token_id = self.ids["</s>"]

    def __len__(self) -> int:
        return self.size

    def convert_tokens_to_ids(self, token: str) -> int:
        return self.ids[token]


def llava_config(model: DictConfig | str) -> Any:
    """The architecture of a model config's network, with no download:

    - `build` (a config-built model such as tiny_llava): the config `models.tiny.build_model` gives that spec;
    - `path`: the checkpoint's own config.json where it is local (a directory, or the Hugging Face cache);
    - else `CHECKPOINT_CONFIGS[path]` over transformers' `LlavaConfig` defaults (see there).
    """
    from transformers import AutoConfig

    cfg = model_config(model) if isinstance(model, str) else model
    if cfg.get("build") is not None:
        from hydra.utils import instantiate

        from .models.tiny import build_model

        spec = instantiate(cfg.build)
        return build_model(_Vocabulary(spec.vocab_size), spec).config
    path, revision = str(cfg.path), cfg.get("revision")
    try:
        return AutoConfig.from_pretrained(path, revision=revision, local_files_only=True)
    except OSError:
        if path not in CHECKPOINT_CONFIGS:
            raise ValueError(
                f"model '{cfg.name}': {path} is neither local nor in bench_gpu.CHECKPOINT_CONFIGS; download it "
                "(huggingface-cli download) or add its config.json's entries there"
            ) from None
    return AutoConfig.for_model("llava", **CHECKPOINT_CONFIGS[path])


def save_random_llava(config: Any, out: Path, device: str) -> Path:
    """Random-init weights in bf16, built directly on the device, saved as an HF checkpoint."""
    from transformers import LlavaForConditionalGeneration

    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    del model
    _free(device)
    return out


class _Synthetic(Dataset):
    """Forget/retain stream batches shaped like a CLEAR caption row: image tokens + prompt + answer."""

    def __init__(self, config: Any, steps: int, text_tokens: int, answer_tokens: int, seed: int = 0):
        self.config, self.steps = config, steps
        self.text_tokens, self.answer_tokens = text_tokens, answer_tokens
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.steps

    def _row(self) -> dict[str, torch.Tensor]:
        c = self.config
        n_image = c.image_seq_length
        # random text ids in [3, vocab), never the image token (the first special tokens pad, unk, bos are left out)
        text = torch.randint(3, c.text_config.vocab_size - 1, (self.text_tokens,), generator=self.generator)
        text += (text >= c.image_token_index).long()
        ids = torch.cat([text[:2], torch.full((n_image,), c.image_token_index), text[2:]])
        labels = torch.full_like(ids, -100)
        labels[-self.answer_tokens :] = ids[-self.answer_tokens :]
        size = c.vision_config.image_size
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "labels": labels,
            "pixel_values": torch.randn(3, size, size, generator=self.generator),
        }

    def __getitem__(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        return {"forget": self._row(), "retain": self._row()}


class _Timer(L.Callback):
    """Wall time of the steps after `warmup` (the first steps include CUDA and allocator warm-up)."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.steps = warmup, None, 0

    def _sync(self, pl_module: L.LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx == self.warmup:
            self._sync(pl_module)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if batch_idx >= self.warmup:
            self.steps += 1

    def on_train_end(self, trainer, pl_module) -> None:  # noqa: ANN001
        self._sync(pl_module)
        self.seconds = time.perf_counter() - self.start if self.start is not None else float("nan")


def _bytes(module: torch.nn.Module | None) -> int:
    if module is None:
        return 0
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


def _free(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def measure(
    checkpoint: Path,
    config: Any,
    model_cfg: DictConfig,
    variant: str,
    device: str,
    steps: int,
    warmup: int,
    text_tokens: int,
    answer_tokens: int,
    gradient_checkpointing: bool,
) -> dict[str, Any]:
    """Load, wrap in the KL method with the model config's LoRA, train `steps` batches of batch size 1 per stream;
    peak memory and speed. Attention is sdpa for every variant (the model config's `auto` would pick flash-attn
    where installed), so the variants differ only in how θ₀ is kept."""
    from .methods.kl import KLMinimisation
    from .models.load import load_model

    spec = VARIANTS[variant]
    dtype = "bfloat16" if device == "cuda" else "float32"  # no bf16 arithmetic on most CPUs
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = load_model(
        str(checkpoint),
        str(model_cfg.model_class),
        dtype,
        spec["quantization"],
        "sdpa",
        gradient_checkpointing=gradient_checkpointing,
    )
    if device == "cuda" and spec["quantization"] is None:
        model = model.to(device)
    method = KLMinimisation(
        model,
        name="kl",
        lora_config=OmegaConf.to_container(model_cfg.lora, resolve=True),
        reference=spec["reference"],
    )  # the paper's optimiser (AdamW, lr 1e-5, wd 0.01) and schedule: UnlearningModule's defaults
    weights = {"student_and_adapter": _bytes(method.model), "reference_copy": _bytes(method.reference_model)}
    data = DataLoader(_Synthetic(config, warmup + steps, text_tokens, answer_tokens), batch_size=1)
    timer = _Timer(warmup)
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if device == "cuda" else "32-true",
        max_steps=warmup + steps,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        callbacks=[timer],
    )
    trainer.fit(method, train_dataloaders=data)
    tokens_per_step = 2 * (config.image_seq_length + text_tokens)  # forget + retain rows
    result = {
        "variant": variant,
        "quantization": spec["quantization"],
        "reference": spec["reference"],
        "weights_gb": sum(weights.values()) / 1e9,
        "reference_copy_gb": weights["reference_copy"] / 1e9,
        "peak_memory_gb": torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None,
        "tokens_per_second": tokens_per_step * timer.steps / timer.seconds,
        "seconds_per_step": timer.seconds / max(1, timer.steps),
        "steps_timed": timer.steps,
    }
    del trainer, method, model
    _free(device)
    return result


def run(
    scale: str = "7b",  # 7b, tiny (SCALES) or a conf/model/ config name
    variants: tuple[str, ...] = tuple(VARIANTS),
    device: str | None = None,
    steps: int = 10,
    warmup: int = 3,
    text_tokens: int = 64,
    answer_tokens: int = 32,
    gradient_checkpointing: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown variant(s) {sorted(unknown)}: use {sorted(VARIANTS)}")
    model_cfg = model_config(scale)
    config = llava_config(model_cfg)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        start = time.perf_counter()
        checkpoint = save_random_llava(config, Path(tmp) / "llava", device)
        build_seconds = time.perf_counter() - start
        results = [
            measure(
                checkpoint,
                config,
                model_cfg,
                v,
                device,
                steps,
                warmup,
                text_tokens,
                answer_tokens,
                gradient_checkpointing,
            )
            for v in variants
        ]
    by_name = {r["variant"]: r for r in results}
    key = "peak_memory_gb" if device == "cuda" else "weights_gb"
    ratio = None
    if "lora_bf16" in by_name and "copy_reference" in by_name:
        ratio = by_name["lora_bf16"][key] / by_name["copy_reference"][key]
    return {
        "scale": scale,
        "model": str(model_cfg.name),
        "architecture": str(model_cfg.path or "built from model.build"),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "method": "kl (θ₀ forward on retain, student on forget + retain)",
        "batch": f"1 forget + 1 retain row, {config.image_seq_length} image + {text_tokens} text tokens each",
        "gradient_checkpointing": gradient_checkpointing,
        "build_seconds": build_seconds,
        "results": results,
        "memory_ratio_ours_vs_copy": ratio,
        "memory_ratio_measure": key,
    }


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# GPU benchmark: reference-model memory ({report['scale']} LLaVA, {report['device']})",
        "",
        f"Method: {report['method']}. Batch: {report['batch']}. "
        f"Gradient checkpointing: {report['gradient_checkpointing']}.",
        "",
        "| variant | θ₀ | weights (GB) | of which θ₀ copy (GB) | peak memory (GB) | tokens/s | s/step |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        peak = f"{r['peak_memory_gb']:.2f}" if r["peak_memory_gb"] is not None else "n/a (CPU)"
        lines.append(
            f"| {r['variant']} | {r['reference']} | {r['weights_gb']:.3f} | {r['reference_copy_gb']:.3f} | "
            f"{peak} | {r['tokens_per_second']:.0f} | {r['seconds_per_step']:.3f} |"
        )
    if report["memory_ratio_ours_vs_copy"] is not None:
        lines += [
            "",
            f"**Ours / authors' ({report['memory_ratio_measure']}): {report['memory_ratio_ours_vs_copy']:.2f}**",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--scale", default="7b", help="7b, tiny or a conf/model/ LLaVA config name")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="where the random checkpoint is saved")
    args = parser.parse_args()
    report = run(
        args.scale,
        tuple(args.variants.split(",")),
        steps=args.steps,
        warmup=args.warmup,
        gradient_checkpointing=not args.no_gradient_checkpointing,
        workdir=args.workdir,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu" if report["scale"] == "7b" else f"gpu-{report['scale']}"
    (args.out / f"{stem}.json").write_text(json.dumps(report, indent=2))
    (args.out / f"{stem}.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
