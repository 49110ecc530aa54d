"""Quantisation (Zhang et al., ICLR'25, arXiv 2410.16454): unlearning with a small learning rate moves the weights
less than a quantisation step, so rounding them to 4 bits can land the model back on the original."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .base import Attack, AttackContext, Records, Subject

BITS = ("8bit", "4bit")


def quantized_linears(model: torch.nn.Module) -> dict[str, str]:
    """{module name: weight dtype} of the bitsandbytes linears: the proof that the weights really changed."""
    out = {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        if kind in ("Linear4bit", "Linear8bitLt"):
            out[name] = str(module.weight.dtype)
    return out


class Quantize(Attack):
    """Save the plain (adapter-merged) model, reload it quantised with bitsandbytes (8- and 4-bit; its CPU
    backend works) and evaluate the forget and retain sets."""

    kind = "quantize"
    description = "merge the adapter, reload 8-bit and 4-bit (bitsandbytes), re-evaluate forget and retain"

    def __init__(self, bits: Sequence[str] = BITS):
        unknown = [b for b in bits if b not in BITS]
        if unknown or not bits:
            raise ValueError(f"quantize bits={list(bits)}: use a list of {', '.join(BITS)}")
        self.bits = list(bits)

    def variants(self) -> list[str]:
        return list(self.bits)

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        if ctx.load_quantized is None:
            raise RuntimeError("Quantize needs the context's load_quantized (the pipeline gives it)")
        model, processor = subject.load()
        out: dict[str, Records] = {}
        with tempfile.TemporaryDirectory(prefix="clear-quantize-") as tmp:
            model.save_pretrained(tmp)
            processor.save_pretrained(tmp)
            del model
            for bits in self.bits:
                quantized, proc = ctx.load_quantized(Path(tmp), bits)
                linears = quantized_linears(quantized)
                if not linears:
                    raise RuntimeError(f"{bits}: bitsandbytes quantised no linear layer of {subject.label}")
                ctx.say(f"quantize: {subject.label} at {bits} ({len(linears)} linears quantised)")
                out[bits] = ctx.evaluate(quantized, proc, [*ctx.forget_sets, *ctx.retain_sets])
                del quantized
        return out

    def spec(self) -> dict[str, Any]:
        return {"bits": self.bits}
