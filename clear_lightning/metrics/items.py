"""Per-item evaluation numbers gathered across ranks, so every set statistic can be computed once, on all items."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

_SCALAR_STATES = ("loss", "loss_paraphrased", "rougeL_recall")


class ItemResults(Metric):
    """Collects per-item losses and ROUGE-L; compute() returns them sorted and de-duplicated by item index.

    Perturbed losses are stored flattened with a per-item width, so batches with different numbers of
    perturbations (K) concatenate and all-gather like any 1-D "cat" state; compute() re-pads them with NaN.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("index", default=[], dist_reduce_fx="cat")
        for name in _SCALAR_STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")
        self.add_state("perturbed_flat", default=[], dist_reduce_fx="cat")
        self.add_state("perturbed_width", default=[], dist_reduce_fx="cat")

    def update(
        self,
        index: Tensor,
        loss: Tensor,
        loss_paraphrased: Tensor,
        losses_perturbed: Tensor,
        rougeL_recall: Tensor,
    ) -> None:
        """Append one batch; losses_perturbed is [B, K], NaN-padded where an item has fewer than K."""
        batch = index.numel()
        perturbed = losses_perturbed.detach().float().reshape(batch, -1)
        columns = {"loss": loss, "loss_paraphrased": loss_paraphrased, "rougeL_recall": rougeL_recall}
        for name, value in columns.items():
            if value.numel() != batch:
                raise ValueError(f"{name} has {value.numel()} values for a batch of {batch} items")
            getattr(self, name).append(value.detach().float().reshape(-1))
        self.index.append(index.detach().long().reshape(-1))
        self.perturbed_flat.append(perturbed.reshape(-1))
        width = torch.full((batch,), perturbed.shape[1], dtype=torch.long, device=index.device)
        self.perturbed_width.append(width)

    def compute(self) -> dict[str, Tensor]:
        """Per-item tensors in index order, keeping the first copy of items a DistributedSampler duplicated."""
        if isinstance(self.index, list) and not self.index:
            empty = torch.empty(0, device=self.device)
            return {
                "index": empty.long(),
                **{name: empty.clone() for name in _SCALAR_STATES},
                "losses_perturbed": torch.empty(0, 0, device=self.device),
            }
        # after a sync a rank with no data contributes a float empty tensor, hence the casts
        index = dim_zero_cat(self.index).long()
        widths = dim_zero_cat(self.perturbed_width).long()
        perturbed = _pad_rows(dim_zero_cat(self.perturbed_flat).float(), widths)
        keep = _first_occurrence_sorted(index)
        out = {"index": index[keep], "losses_perturbed": perturbed[keep]}
        for name in _SCALAR_STATES:
            out[name] = dim_zero_cat(getattr(self, name)).float()[keep]
        return out

    def to_rows(self) -> list[dict[str, Any]]:
        """One plain dict per item (NaN padding removed), ready to merge into the JSONL records."""
        result = self.compute()
        # torchmetrics squeezes a one-element result to 0-d: a set of one item must still give one row
        index = result["index"].reshape(-1)
        result = {
            k: v.reshape(index.numel(), -1) if k == "losses_perturbed" else v.reshape(-1)
            for k, v in result.items()
        }
        rows = []
        for i, item in enumerate(index.tolist()):
            perturbed = result["losses_perturbed"][i]
            rows.append(
                {
                    "index": int(item),
                    "loss": float(result["loss"][i]),
                    "loss_paraphrased": float(result["loss_paraphrased"][i]),
                    "losses_perturbed": perturbed[~torch.isnan(perturbed)].tolist(),
                    "rougeL_recall": float(result["rougeL_recall"][i]),
                }
            )
        return rows


def _pad_rows(flat: Tensor, widths: Tensor) -> Tensor:
    """Rebuild the [N, K_max] perturbed-loss matrix from flattened rows of varying width, padding with NaN."""
    width_max = int(widths.max()) if widths.numel() else 0
    out = torch.full((widths.numel(), width_max), float("nan"), dtype=flat.dtype, device=flat.device)
    for row, values in enumerate(torch.split(flat, widths.tolist())):
        out[row, : values.numel()] = values
    return out


def _first_occurrence_sorted(index: Tensor) -> Tensor:
    """Positions that sort items by index and keep only the first occurrence of each index."""
    order = torch.sort(index, stable=True).indices
    sorted_index = index[order]
    first = torch.ones_like(sorted_index, dtype=torch.bool)
    first[1:] = sorted_index[1:] != sorted_index[:-1]
    return order[first]
