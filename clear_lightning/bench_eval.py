"""Evaluation cost at LLaVA-1.5-7B's image size on the CPU: shared-prefix scoring against full rows.

A random-init LLaVA shaped like the 7B's vision side where it sets the sequence length — 336 px images cut into
14 px patches, so 576 image tokens per row — with one narrow language and vision layer, so that it runs on the
CPU. Items carry the answer, a paraphrase and five perturbations (seven candidates), as CLEAR's caption items do.
Both layouts score the same items in one process; the table reports tokens through the model per item and items
per second of the teacher-forced part, and their ratio. (`make bench-gpu` is where the 7B itself is measured.)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .data.batching import EvalCollator
from .data.encoding import ExampleEncoder, PromptTemplate
from .data.examples import Example
from .evaluation.shared_prefix import sequence_nll as shared_nll
from .methods import losses
from .models.tiny import TinyLlavaSpec, create_tiny_llava

WORDS = (
    "the a person wearing glasses in front of red green blue wall with soft light smiling hat scarf".split()
)


def _items(n: int, size: int) -> list[Example]:
    g = torch.Generator().manual_seed(0)

    def sentence(k: int) -> str:
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (k,), generator=g)) + "."

    image = Image.new("RGB", (size, size), (120, 90, 60))
    return [
        Example(
            f"bench/{i}",
            "forget_caption",
            "caption",
            "Describe the image in detail.",
            sentence(12),
            image,
            sentence(12),
            tuple(sentence(12) for _ in range(5)),
        )
        for i in range(n)
    ]


def _encoder_and_model(
    examples: list[Example], model_name: str | None, device: str, image_size: int, patch_size: int
) -> tuple[ExampleEncoder, torch.nn.Module]:
    """A tokenizer/processor trained on the items' text, and either a narrow random LLaVA (CPU default) or the
    random-init architecture of `conf/model/<model_name>.yaml` in bf16 on `device` (e.g. llava_1_5_7b on a GPU)."""
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    texts = [t for e in examples for t in (e.question, e.answer, e.paraphrased, *e.perturbed)]
    spec = TinyLlavaSpec(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=64,
        num_layers=1,
        num_heads=4,
        intermediate_size=128,
        vocab_size=600,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = create_tiny_llava(spec, texts, Path(tmp))
        processor = AutoProcessor.from_pretrained(str(path))
        if model_name is None:
            model = LlavaForConditionalGeneration.from_pretrained(str(path))
        else:
            from .bench_gpu import llava_config

            config = llava_config(model_name)
            image_id = processor.tokenizer.convert_tokens_to_ids("<image>")  # our tokenizer's, not the hub's
            config.image_token_id = config.image_token_index = image_id
            with torch.device(device):
                model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return ExampleEncoder(processor, PromptTemplate()), model.eval()


def run(
    items: int = 8, batch_size: int = 4, threads: int = 2, model_name: str | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Score `items` caption items both ways; return tokens/item, items/s and the ratios. `model_name` (a LLaVA
    config, e.g. llava_1_5_7b) measures that architecture, random-init, with its own image and patch size."""
    torch.set_num_threads(threads)
    image_size, patch_size = 336, 14
    if model_name is not None:
        from .bench_gpu import llava_config

        vision = llava_config(model_name).vision_config
        image_size, patch_size = vision.image_size, vision.patch_size
    examples = _items(items, image_size)
    encoder, model = _encoder_and_model(examples, model_name, device, image_size, patch_size)
    out: dict[str, Any] = {
        "model": model_name or "narrow random LLaVA",
        "device": device,
        "image_tokens_per_row": (image_size // patch_size) ** 2,
        "candidates_per_item": 7,
        "items": items,
    }
    for name, shared in (("full_rows", False), ("shared_prefix", True)):
        collate = EvalCollator(encoder, shared_prefix=shared)
        batches = [
            _to(collate(list(enumerate(examples[i : i + batch_size]))), device)
            for i in range(0, items, batch_size)
        ]
        tokens = 0
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.no_grad():
            for b in batches:
                score = b["score"]
                if shared:
                    shared_nll(model, score, b["row_item"])
                    tokens += int(
                        score["prefix"]["attention_mask"].sum() + score["cont"]["attention_mask"].sum()
                    )
                else:
                    logits = model(
                        input_ids=score["input_ids"],
                        attention_mask=score["attention_mask"],
                        pixel_values=score["pixel_values"].to(model.dtype),
                    ).logits
                    losses.sequence_nll(logits, score["labels"])
                    tokens += int(score["attention_mask"].sum())
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        out[name] = {
            "tokens_per_item": tokens / items,
            "items_per_second": items / seconds,
            "seconds": seconds,
        }
    out["token_ratio"] = out["full_rows"]["tokens_per_item"] / out["shared_prefix"]["tokens_per_item"]
    out["speedup"] = out["shared_prefix"]["items_per_second"] / out["full_rows"]["items_per_second"]
    return out


def _to(batch: Any, device: str) -> Any:
    """Tensors (nested in dicts) to the device; pixel values in the model's bf16 happen in the model call."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch


def markdown(result: dict[str, Any]) -> list[str]:
    f, s = result["full_rows"], result["shared_prefix"]
    return [
        "## Evaluation: shared-prefix scoring at 576 image tokens per row (`bench_eval.py`)",
        "",
        f"Random-init {result['model']} on {result['device']}: {result['image_tokens_per_row']} image tokens per "
        f"row; {result['items']} caption items × {result['candidates_per_item']} candidates; "
        "teacher-forced scoring only (generation is unchanged), both layouts in one process.",
        "",
        "| layout | tokens per item | items/s |",
        "|---|---|---|",
        f"| full rows | {f['tokens_per_item']:.0f} | {f['items_per_second']:.2f} |",
        f"| shared prefix | {s['tokens_per_item']:.0f} | {s['items_per_second']:.2f} |",
        f"| **ratio** | **{result['token_ratio']:.2f}× fewer** | **{result['speedup']:.2f}× faster** |",
        "",
    ]


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench", help="where eval.json and eval.md go")
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument(
        "--model", default=None, help="a LLaVA model config (e.g. llava_1_5_7b): its architecture"
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    result = run(items=args.items, model_name=args.model, device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "eval" if args.model is None else f"eval-{args.model}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    header = [
        "# Evaluation cost: shared prefix vs full rows",
        "",
        "Generated by `make bench` (`python -m clear_lightning.bench_eval --out bench`) or, for the 7B on a GPU,"
        " `make bench-gpu` (`... --model llava_1_5_7b --device cuda`); do not edit by hand.",
        "",
    ]
    (out / f"{stem}.md").write_text("\n".join(header + markdown(result)))
    print("\n".join(markdown(result)))


if __name__ == "__main__":
    main()
