"""Score every candidate answer of an item from one shared prefix: the image and the prompt run once per item.

An item has up to seven candidates (answer, paraphrase, perturbations). As full rows, LLaVA-1.5 would run its 576
image tokens and the question seven times; here the prefix (the candidates' longest common prefix, cut before the
first supervised token) runs once with the KV cache kept, the cache is expanded over the item's candidates, and
only the continuations run again. The losses equal the full rows' (to float rounding): the same tokens at the same
positions attend to the same keys.

The batch layout (one prefix per item, one continuation per candidate) is `data.batching.shared_prefix_layout`.
Models whose positions are not a plain 1-D count (Qwen2-VL's 3-D M-RoPE) keep the full rows (`supports`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import Tensor

from ..data.encoding import IGNORE_INDEX, image_inputs
from ..methods import losses

# multimodal RoPE: positions of the image tokens are 3-D, a continuation's cannot be a plain offset
UNSUPPORTED_MODEL_TYPES = frozenset({"qwen2_vl", "qwen2_5_vl", "qwen3_vl"})


def supports(model: torch.nn.Module) -> bool:
    """Whether the model's cache can be expanded and continued with plain 1-D positions."""
    config = getattr(model, "config", None)
    types = {
        getattr(config, "model_type", None),
        getattr(getattr(config, "text_config", None), "model_type", None),
    }
    return not (types & UNSUPPORTED_MODEL_TYPES)


def _cache_keyword(model: torch.nn.Module) -> str:
    """`cache` in recent transformers, `past_key_values` before (a PEFT wrapper forwards either)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def candidate_logits(
    model: torch.nn.Module, batch: dict[str, Any], row_item: Tensor
) -> tuple[Tensor, Tensor]:
    """Logits and labels of every candidate row [R, 1 + C] (the first column unsupervised), aligned as a full
    row's for `methods.losses` (position t predicts label t+1). Differentiable: training may use it."""
    prefix, cont, lengths = batch["prefix"], batch["cont"], batch["prefix_len"]
    out = model(
        input_ids=prefix["input_ids"],
        attention_mask=prefix["attention_mask"],
        **image_inputs(prefix),
        use_cache=True,
    )
    rows = torch.arange(len(lengths), device=lengths.device)
    last = out.logits[rows, lengths - 1]  # [items, V]: predicts each candidate's first continuation token
    cache = out.past_key_values
    cache.reorder_cache(row_item)  # one copy of the item's cache per candidate
    width = cont["input_ids"].shape[1]
    positions = lengths[row_item, None] + torch.arange(width, device=lengths.device)[None]
    tail = model(
        input_ids=cont["input_ids"],
        attention_mask=torch.cat([prefix["attention_mask"][row_item], cont["attention_mask"]], dim=1),
        position_ids=positions,
        use_cache=False,
        **image_inputs(
            cont
        ),  # no image (it is in the cache); Mllama: the tiles the answer tokens cross-attend to
        **{_cache_keyword(model): cache},
    ).logits
    logits = torch.cat([last[row_item, None], tail], dim=1)  # position t predicts continuation token t
    ignore = torch.full_like(cont["labels"][:, :1], IGNORE_INDEX)
    return logits, torch.cat([ignore, cont["labels"]], dim=1)


def sequence_nll(model: torch.nn.Module, batch: dict[str, Any], row_item: Tensor) -> Tensor:
    """Mean answer-token NLL of every candidate row [R] (as `losses.sequence_nll` of the full rows)."""
    return losses.sequence_nll(*candidate_logits(model, batch, row_item))


def pair_items(batch: dict[str, Any]) -> Tensor:
    """`row_item` of a two-candidate-per-item layout (`data.batching.StreamCollator`'s `pair`)."""
    n = len(batch["prefix_len"])
    return torch.arange(n, device=batch["prefix_len"].device).repeat_interleave(2)
