"""Torch datasets, samplers and collators over `Example`s: training rows, paired streams, evaluation items."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from .encoding import CONTINUED_INPUTS, IGNORE_INDEX, TOKEN_INPUTS, ExampleEncoder, pad_batch
from .examples import Example, with_answer


class EncodedDataset(Dataset):
    """Plain supervised rows (fine-tuning the original/gold models, pre-training the tiny base)."""

    def __init__(self, examples: Sequence[Example], encoder: ExampleEncoder):
        self.examples, self.encoder = list(examples), encoder

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.encoder.encode(self.examples[i])


class PairedStreams(Dataset):
    """Forget-anchored pairing (benchmark.md §4): item i is forget[i] plus a random retain row and an IDK answer.

    One epoch is one pass over the forget set. The random draws come from a generator seeded with
    (seed, rank), so ranks see different retain rows and a rerun sees the same ones. `retain_by_modality` draws
    each retain row among those of its forget row's modality (with batches of one modality,
    `GroupedBatchSampler`: for models whose batches cannot mix text and image rows, Mllama's).
    """

    def __init__(
        self,
        forget: Sequence[Example],
        encoder: ExampleEncoder,
        streams: Sequence[str],
        retain: Sequence[Example] = (),
        idk_answers: Sequence[str] = (),
        seed: int = 0,
        rank: int = 0,
        retain_by_modality: bool = False,
    ):
        if "retain" in streams and not retain:
            raise ValueError("the method needs a retain stream but the retain set is empty")
        if "idk" in streams and not idk_answers:
            raise ValueError("the method needs IDK answers but none were given")
        self.forget, self.retain, self.idk = list(forget), list(retain), list(idk_answers)
        self.encoder, self.streams = encoder, tuple(streams)
        self.generator = torch.Generator().manual_seed(seed * 100_003 + rank)
        self.retain_by_modality = retain_by_modality
        if retain_by_modality and "retain" in streams:
            missing = {f.modality for f in self.forget} - {r.modality for r in self.retain}
            if missing:
                raise ValueError(f"no retain rows of modality {sorted(missing)} to pair the forget rows with")

    def __len__(self) -> int:
        return len(self.forget)

    def _draw(self, n: int) -> int:
        return int(torch.randint(n, (1,), generator=self.generator))

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {}
        if "forget" in self.streams:
            item["forget"] = self.encoder.encode(self.forget[i])
        if "retain" in self.streams:
            pool = self.retain
            if self.retain_by_modality:
                pool = [r for r in self.retain if r.modality == self.forget[i].modality]
            item["retain"] = self.encoder.encode(pool[self._draw(len(pool))])
        if "idk" in self.streams:
            idk = with_answer(self.forget[i], self.idk[self._draw(len(self.idk))], "idk")
            item["idk"] = self.encoder.encode(idk)
        return item


class StreamCollator:
    """Collates dicts of streams into one padded batch per stream; with `pair=(a, b)`, also `pair`: the shared-
    prefix layout of each item's two rows of those streams (they ask the same prompt: DPO's rejected forget answer
    and chosen IDK answer), so both are scored from one prefix pass."""

    def __init__(self, pad_id: int, pair: Sequence[str] | None = None):
        self.pad_id, self.pair = pad_id, tuple(pair) if pair else None

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        out = {k: pad_batch([it[k] for it in items], self.pad_id) for k in items[0]}
        if self.pair:
            a, b = self.pair
            out["pair"] = shared_prefix_layout([[it[a], it[b]] for it in items], self.pad_id)
        return out


class RowCollator:
    """Collates plain encoded rows."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return pad_batch(rows, self.pad_id)


class GroupedBatchSampler(Sampler[list[int]]):
    """Seeded batches that never mix text and image rows: a mixed batch pads text rows to image length.

    Rank-aware (each rank takes every world_size-th batch) and epoch-aware via `set_epoch`.
    """

    def __init__(
        self, groups: Sequence[str], batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1
    ):
        self.groups, self.batch_size, self.seed = list(groups), batch_size, seed
        self.rank, self.world_size, self.epoch = rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        batches = []
        for key in sorted(set(self.groups)):
            idx = [i for i, k in enumerate(self.groups) if k == key]
            order = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
            batches += [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return [batches[j] for j in torch.randperm(len(batches), generator=g).tolist()]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._batches()
        usable = len(batches) - len(batches) % self.world_size if self.world_size > 1 else len(batches)
        return iter(batches[self.rank : usable : self.world_size])

    def __len__(self) -> int:
        n = len(self._batches())
        return n // self.world_size if self.world_size > 1 else n


class EvalDataset(Dataset):
    """Evaluation items with their position, so scores can be de-duplicated across ranks."""

    def __init__(self, examples: Sequence[Example]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> tuple[int, Example]:
        return i, self.examples[i]


class EvalCollator:
    """Builds, per batch of items, the teacher-forced rows (answer, paraphrase, perturbations) and the
    left-padded generation prompts; both carry the image (benchmark.md §3: generation is given the image)."""

    def __init__(self, encoder: ExampleEncoder, shared_prefix: bool = False):
        self.encoder, self.shared_prefix = encoder, shared_prefix

    def __call__(self, items: list[tuple[int, Example]]) -> dict[str, Any]:
        rows_by_item, row_item, row_role = [], [], []
        for j, (_, ex) in enumerate(items):
            candidates = [(0, ex.answer)]
            if ex.paraphrased is not None:
                candidates.append((1, ex.paraphrased))
            candidates += [(2, p) for p in ex.perturbed]
            rows_by_item.append([self.encoder.encode(ex, answer=text) for _, text in candidates])
            row_item += [j] * len(candidates)
            row_role += [role for role, _ in candidates]
        prompts = [dict(self.encoder.prompt(ex)) for _, ex in items]
        rows = [r for item_rows in rows_by_item for r in item_rows]
        return {
            "index": torch.tensor([i for i, _ in items], dtype=torch.long),
            "examples": [ex for _, ex in items],
            # one prefix per item + candidate continuations (evaluation/shared_prefix.py), or every row in full
            "score": shared_prefix_layout(rows_by_item, self.encoder.pad_id)
            if self.shared_prefix
            else pad_batch(rows, self.encoder.pad_id, side="right"),
            "row_item": torch.tensor(row_item, dtype=torch.long),
            "row_role": torch.tensor(row_role, dtype=torch.long),
            "generate": pad_batch(prompts, self.encoder.pad_id, side="left"),
        }


def _common_prefix(rows: list[dict[str, Any]]) -> int:
    """Longest common prefix of the rows' ids, cut before any row's first supervised token."""
    ids = [r["input_ids"] for r in rows]
    n = min(len(x) for x in ids)
    for r in rows:
        first = next((i for i, label in enumerate(r["labels"]) if label != IGNORE_INDEX), len(r["labels"]))
        n = min(n, first)
    k = 0
    while k < n and all(x[k] == ids[0][k] for x in ids):
        k += 1
    return max(k, 1)  # at least one token: the continuation needs the prefix's last logit


def shared_prefix_layout(rows_by_item: list[list[dict[str, Any]]], pad_id: int) -> dict[str, Any]:
    """The batch of one shared-prefix scoring pass: `prefix` (one right-padded row per item, with its image
    inputs), `prefix_len` [items], `cont` (one right-padded continuation per candidate, no image; the per-token
    inputs that go on over the answer, Mllama's cross-attention mask, sliced with it)."""
    prefixes, conts, lengths = [], [], []
    for rows in rows_by_item:
        n = _common_prefix(rows)
        head = {k: v for k, v in rows[0].items() if k != "labels"}
        prefixes.append(
            {
                **head,
                **{k: head[k][:n] for k in TOKEN_INPUTS if k in head},
                "input_ids": head["input_ids"][:n],
            }
        )
        lengths.append(n)
        conts += [
            {
                "input_ids": r["input_ids"][n:],
                "labels": r["labels"][n:],
                **{k: r[k][n:] for k in CONTINUED_INPUTS if k in r},  # Mllama: which image tiles they see
            }
            for r in rows
        ]
    return {
        "prefix": pad_batch(prefixes, pad_id, side="right"),
        "prefix_len": torch.tensor(lengths, dtype=torch.long),
        "cont": pad_batch(conts, pad_id, side="right"),
    }
