"""The LightningDataModule: forget / retain / IDK training streams, the holdout split (persons never trained on)
and one loader per evaluation set."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..contract import FULL, RETAIN_OF, holdout_config, with_tofu
from ..errors import ClearConfigError
from .batching import (
    EncodedDataset,
    EvalCollator,
    EvalDataset,
    GroupedBatchSampler,
    PairedStreams,
    RowCollator,
    StreamCollator,
)
from .encoding import ExampleEncoder
from .examples import (
    Example,
    SetUnavailableError,
    eval_examples,
    holdout_examples,
    is_visual_set,
    prior_examples,
    training_examples,
    unavailable_reason,
)
from .source import SnapshotSource

log = logging.getLogger(__name__)

TRAIN_SETS = (FULL, "retain", "prior")


def retain_config(split: str) -> str:
    """retainNN for forgetNN, with an error that lists the valid splits."""
    if split not in RETAIN_OF:
        raise ClearConfigError(f"unknown split '{split}'", f"use split= one of {', '.join(RETAIN_OF)}")
    return RETAIN_OF[split]


class CLEARDataModule(L.LightningDataModule):
    """Builds only what the stage and method need.

    `train_on` = full | retain | prior gives plain supervised training (original, gold, pre-training);
    `train_on=None` gives forget-anchored pairs of the method's `streams` (unlearning).
    `replay_prior=n` mixes a seeded subset of n prior-knowledge rows into plain training: a 7B model keeps
    what it knew through a LoRA fine-tune at lr 1e-5, a 1 M-parameter model fully fine-tuned at 3e-3 does not.
    `text_only=True` (Llama-2 / Mistral, the text track) keeps the text rows of every set and skips the visual
    evaluation sets (the summary lists every requested set that was not evaluated).
    The holdout split (`holdout_examples`, the `holdout_*` evaluation sets) holds persons that no training set
    contains, as many as the forget set has (`holdoutNN` for `forgetNN`); a source without them (the real
    CLEAR has none) skips those sets. `skipped_sets` maps every requested set that `evaluation_sets` left out
    to the reason.
    """

    def __init__(
        self,
        source: SnapshotSource,
        encoder: ExampleEncoder,
        split: str = "forget10",
        modalities: Sequence[str] = ("text", "visual"),
        streams: Sequence[str] = ("forget", "retain"),
        train_on: str | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 32,
        eval_sets: Sequence[str] = (),
        max_eval_items: int | None = None,
        idk_answers: Sequence[str] = (),
        replay_prior: int = 0,
        face_name_repeats: int = 1,
        shared_prefix: bool = False,
        prompt_pair: Sequence[str] | None = None,
        image_tasks: Sequence[str] = ("caption",),
        seed: int = 0,
        prompt_seed: int = 0,
        num_workers: int = 0,
        text_only: bool = False,
        real_world_column: str = "prompt",
        item_transform: Callable[[str, list[Example]], list[Example]] | None = None,
        forget_done: str | None = None,
        batch_by_modality: bool = False,
    ):
        super().__init__()
        if train_on is not None and train_on not in TRAIN_SETS:
            raise ClearConfigError(f"unknown training set '{train_on}'", f"use one of {TRAIN_SETS}")
        bad = set(modalities) - {"text", "visual"}
        if bad or not modalities:
            raise ClearConfigError(
                f"unknown modalities {sorted(bad) or '[]'}", "use modality=text|visual|both"
            )
        self.retain_split = retain_config(split)
        self.source, self.encoder, self.split = source, encoder, split
        self.modalities, self.streams, self.train_on = tuple(modalities), tuple(streams), train_on
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.prompt_seed = (
            prompt_seed  # fixed per dataset: the same caption question in every run and in gold
        )
        self.eval_sets, self.max_eval_items = tuple(eval_sets), max_eval_items
        self.idk_answers, self.num_workers = tuple(idk_answers), num_workers
        self.replay_prior, self.image_tasks = replay_prior, tuple(image_tasks)
        if int(face_name_repeats) < 1:
            raise ClearConfigError(
                f"face_name_repeats={face_name_repeats} < 1", "use 1 (each face-name row once) or more"
            )
        self.face_name_repeats = int(face_name_repeats)
        self.shared_prefix = (
            shared_prefix  # evaluation: one prefix pass per item (evaluation/shared_prefix.py)
        )
        self.prompt_pair = (
            prompt_pair  # training: two streams asking one prompt, scored from one prefix (DPO)
        )
        self.text_only, self.real_world_column = text_only, real_world_column
        self.item_transform = item_transform  # robustness attacks: (set, items) -> the items to score
        # sequential requests: the cumulative split earlier requests unlearned; its rows leave the forget stream
        self.forget_done = forget_done
        # unlearning batches of one modality, each forget row paired with a retain row of its modality (models
        # that read image inputs by row, Mllama: `model.batch_by_modality`); the fine-tunes' batches always are
        self.batch_by_modality = bool(batch_by_modality)
        self._eval: dict[str, list[Example]] | None = None
        self._skipped: dict[str, str] | None = None

    # --- training ---------------------------------------------------------------------------
    def forget_examples(self) -> list[Example]:
        """The forget rows of the chosen modality; refusing an empty set (nothing to unlearn)."""
        if self.text_only and "visual" in self.modalities:
            raise ClearConfigError(
                f"the model is text-only but the forget modalities are {list(self.modalities)}",
                "use modality=text for text-only models (the text track), or a vision-language model",
            )
        rows = training_examples(
            self.source, with_tofu(self.split), self.prompt_seed, "forget", self.image_tasks
        )
        rows = [r for r in rows if r.modality in self.modalities]
        if self.forget_done is not None:  # the splits are nested: drop the rows an earlier request unlearned
            done = training_examples(
                self.source, with_tofu(self.forget_done), self.prompt_seed, "forget", self.image_tasks
            )
            seen = {_content(r) for r in done}
            rows = [r for r in rows if _content(r) not in seen]
        if not rows:
            raise ClearConfigError(
                f"the forget set of split={self.split} with modalities {list(self.modalities)}"
                + (f" without the rows of {self.forget_done}" if self.forget_done else "")
                + " has no rows",
                "choose another split/modality, or regenerate the data with more persons (data.num_persons)",
            )
        return rows

    def retain_examples(self) -> list[Example]:
        """Retain rows: always both modalities (benchmark.md §1), text only for a text-only model."""
        return self._usable(
            training_examples(
                self.source, with_tofu(self.retain_split), self.prompt_seed, "retain", self.image_tasks
            )
        )

    @property
    def holdout_split(self) -> str:
        """`holdoutNN` for split `forgetNN`: holdout persons as many as forget persons."""
        return holdout_config(self.split)

    def holdout_examples(self) -> list[Example]:
        """The holdout persons' rows of the forget modalities (text QA; captions / face-name where the data has
        holdout images), never trained on: the non-members of membership inference (benchmark.md §10), to compare
        with `forget_examples`. Raises `ClearConfigError` when the data has no holdout persons."""
        try:
            rows = holdout_examples(self.source, self.split, self.prompt_seed, self.image_tasks)
        except SetUnavailableError as err:
            raise ClearConfigError(err.problem, err.fix) from err
        rows = [r for r in self._usable(rows) if r.modality in self.modalities]
        if not rows:
            raise ClearConfigError(
                f"the holdout persons of split={self.split} have no rows of modalities {list(self.modalities)}",
                "the real CLEAR has no holdout images: use modality=text, or data=clear_mini",
            )
        return rows

    def _usable(self, rows: list[Example]) -> list[Example]:
        return [r for r in rows if r.modality == "text"] if self.text_only else rows

    def _replay_rows(self) -> list[Example]:
        prior = self._usable(prior_examples(self.source))
        order = torch.randperm(len(prior), generator=_seeded(self.seed)).tolist()
        return [prior[i] for i in sorted(order[: self.replay_prior])]

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        if self.train_on is not None:
            examples = self._usable(
                {
                    FULL: lambda: training_examples(
                        self.source, with_tofu(FULL), self.prompt_seed, image_tasks=self.image_tasks
                    ),
                    "retain": self.retain_examples,
                    "prior": lambda: prior_examples(self.source),
                }[self.train_on]()
            )
            if self.train_on != "prior":  # face → name of the persons, the hardest association of a fine-tune
                examples += [e for e in examples if e.kind == "face_name"] * (self.face_name_repeats - 1)
            if self.replay_prior and self.train_on != "prior":
                examples += self._replay_rows()
            sampler = GroupedBatchSampler(
                [e.modality for e in examples], self.batch_size, self.seed, rank=rank, world_size=world
            )
            return DataLoader(
                EncodedDataset(examples, self.encoder),
                batch_sampler=sampler,
                collate_fn=RowCollator(self.encoder.pad_id),
                num_workers=self.num_workers,
            )
        forget = self.forget_examples()
        data = PairedStreams(
            forget,
            self.encoder,
            self.streams,
            retain=self.retain_examples() if "retain" in self.streams else (),
            idk_answers=self.idk_answers,
            seed=self.seed,
            rank=rank,
            retain_by_modality=self.batch_by_modality,
        )
        if self.batch_by_modality:  # batches of text rows or of image rows (each rank its share of them)
            sampler = GroupedBatchSampler(
                [e.modality for e in forget], self.batch_size, self.seed, rank=rank, world_size=world
            )
            order: dict[str, Any] = {"batch_sampler": sampler}
        elif (
            world > 1
        ):  # each rank a shard of the forget rows (Lightning's injection is off: see trainer/ddp)
            order = {
                "sampler": DistributedSampler(data, world, rank, shuffle=True, seed=self.seed),
                "batch_size": self.batch_size,
            }
        else:
            order = {"shuffle": True, "generator": _seeded(self.seed), "batch_size": self.batch_size}
        return DataLoader(
            data,
            collate_fn=StreamCollator(self.encoder.pad_id, self.prompt_pair),
            num_workers=self.num_workers,
            **order,
        )

    # --- evaluation -------------------------------------------------------------------------
    def evaluation_sets(self) -> dict[str, list[Example]]:
        """Evaluation items per set; visual sets are skipped for a text-only model, and holdout sets where the
        data has no holdout persons; `skipped_sets` says which and why."""
        if self._eval is None:
            self._eval, skipped = {}, self.skipped_sets
            for name in self.eval_sets:
                if name in skipped:
                    log.warning("skipping evaluation set %s: %s", name, skipped[name])
                    continue
                items = eval_examples(self.source, name, self.split, self.prompt_seed, self.real_world_column)
                if self.max_eval_items:
                    items = items[: self.max_eval_items]
                if self.item_transform is not None:
                    items = self.item_transform(name, items)
                    if not items:  # e.g. a relearning probe that keeps no item of this set
                        continue
                self._eval[name] = items
        return self._eval

    @property
    def skipped_sets(self) -> dict[str, str]:
        """{set: reason} for every requested evaluation set that `evaluation_sets` leaves out (visual sets for a
        text-only model, holdout sets where the data has no holdout persons). Cheap: builds no items."""
        if self._skipped is None:
            reasons = {name: self._skip_reason(name) for name in self.eval_sets}
            self._skipped = {name: why for name, why in reasons.items() if why is not None}
        return dict(self._skipped)

    def _skip_reason(self, name: str) -> str | None:
        if self.text_only and is_visual_set(name):
            return "visual set: the model is text-only"
        return unavailable_reason(self.source, name, self.split)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per set; under several processes each rank scores a shard (padded by repeating
        items, which the metric de-duplicates by index)."""
        rank, world = self._rank()
        loaders = []
        for items in self.evaluation_sets().values():
            data = EvalDataset(items)
            sampler = DistributedSampler(data, world, rank, shuffle=False) if world > 1 else None
            loaders.append(
                DataLoader(
                    data,
                    batch_size=self.eval_batch_size,
                    sampler=sampler,
                    collate_fn=EvalCollator(self.encoder, self.shared_prefix),
                    num_workers=self.num_workers,
                )
            )
        return loaders


def _content(example: Example) -> tuple:
    """What a row says, whatever its config and position: its kind, answer and question or image pixels (a
    caption's question is chosen per row id, which differs between configs)."""
    if example.image is None:
        return (example.kind, example.question, example.answer)
    return (example.kind, example.answer, example.image.size, example.image.tobytes())


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
