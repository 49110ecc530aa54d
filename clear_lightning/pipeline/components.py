"""The typed objects a stage receives: what `compose.assemble` builds once from the config, and nothing else.

`Settings` holds the plain values (names, seeds, switches, the ingredients of artifact keys); `Pipeline` holds
those settings and the objects built from `_target_` / `_partial_` YAML (model loader, encoder, data module,
trainer, evaluator, method, recipes, summarizer). Stages never see the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L

from ..artifacts import ArtifactStore, is_main_process
from ..data.datamodule import CLEARDataModule
from ..data.encoding import ExampleEncoder
from ..data.source import SnapshotSource
from ..evaluation.module import Evaluator
from ..metrics.summarizer import Summarizer
from ..models.load import ModelLoader
from ..provenance import provenance


@dataclass(frozen=True)
class Recipe:
    """A supervised fine-tune (`conf/finetune/*.yaml`) or the tiny base's pre-training (`conf/pretrain/*.yaml`)."""

    epochs: int
    batch_size: int
    lr: float
    grad_accum: int = 1
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    schedule: str = "cosine"
    lora: dict[str, Any] | None = None
    replay_prior: int | str | None = None  # prior-knowledge rows rehearsed: a count, `all`, or none
    face_name_repeats: int = (
        1  # each face → name row this many times per epoch (the fine-tunes' hardest task)
    )
    seed: int = 0  # seed of the base/original/gold models (the run's `seed` varies unlearning only)
    threads: int | None = None  # a fixed thread count for this build (part of its key)
    # its numbers are checked, naming the key, by pipeline/validate.py before it is built


@dataclass(frozen=True)
class Settings:
    """Plain values of one run, read from the config by `compose.assemble` alone."""

    stage: str
    seed: int
    upstream_seed: int
    model_name: str
    split: str
    modality: str
    method_name: str
    run_dir: Path
    threads: int | None
    precision: str  # weights dtype / trainer precision / thread count: part of every upstream key
    build_missing: bool
    parallel_builds: bool
    metric_mode: str
    # evaluation
    eval_sets: tuple[str, ...]
    eval_key: dict[str, Any]  # the evaluation recipe, as an artifact key
    truth_ratio_mean: str
    max_items: int | None
    generation: str
    answer_eos: bool
    shared_prefix: bool  # score candidates from one prefix pass per item where the model allows it
    checkpoint: str | None
    gold: str | None
    # unlearning
    epochs: int
    batch_size: int
    grad_accum: int
    # upstream artifact keys' config parts (plain dicts, exactly as configured)
    build_key: dict[str, Any] | None
    pretrain_key: dict[str, Any]
    finetune_key: dict[str, Any]
    target_run: str | None = None  # stage=attack: the run directory attacked
    sequence: tuple[str, ...] = ()  # sequence=nested: the cumulative forget split of each request, in order
    sequence_name: str = "none"
    # the resolved config, recorded with every result and handed to a second build process
    resolved: dict[str, Any] = field(repr=False, default_factory=dict)


class TrainerFactory:
    """A fresh `lightning.Trainer` per fit or test, from the trainer's `_target_` spec (its strategy and the
    callbacks are instantiated anew each time: a Lightning strategy or callback belongs to one Trainer), with
    the logger partial writing into the given directory."""

    def __init__(
        self,
        spec: dict[str, Any],
        logger: Callable[..., Any] | None = None,
        callbacks: dict[str, dict[str, Any]] | None = None,
    ):
        self.spec, self._logger, self._callbacks = spec, logger, callbacks or {}

    def __call__(self, directory: Path | None = None, **kwargs: Any) -> L.Trainer:
        from hydra.utils import instantiate

        logger = self._logger(save_dir=str(directory)) if (self._logger and directory is not None) else False
        callbacks = [instantiate(c) for c in self._callbacks.values()] if logger else []
        return instantiate(self.spec, logger=logger, callbacks=callbacks, **kwargs)

    def quiet(self) -> L.Trainer:
        """For `trainer.test`: no logger, no callbacks."""
        return self(None)


@dataclass
class Pipeline:
    """The object graph of one run."""

    settings: Settings
    store: ArtifactStore
    unchecked_source: SnapshotSource  # validated on first use (`source`)
    loader: ModelLoader
    base_spec: (
        Callable[[], Any] | None
    )  # builds the config-built model's init (tiny models); None = a checkpoint
    encoder: Callable[..., ExampleEncoder]  # partial: (processor, [cache, add_eos])
    datamodule: Callable[..., CLEARDataModule]  # partial: (source, encoder, …)
    trainer: TrainerFactory
    evaluator: Callable[..., Evaluator]  # partial: (model, tokenizer, set_names)
    method: Callable[..., Any]  # partial: (model) → UnlearningModule
    pretrain: Recipe
    finetune: Recipe
    summarizer: Summarizer
    attacks: dict[str, Any] = field(default_factory=dict)  # name -> attacks.base.Attack (attacks=standard)
    data_rows: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def source(self) -> SnapshotSource:
        source = self.unchecked_source
        self.data_rows = source.validate()  # every config and column of benchmark.md §2, rows recounted
        return source

    def data(self, encoder: ExampleEncoder | None, **kwargs: Any) -> CLEARDataModule:
        """This run's data module over `encoder` (None: only the rows, no encoding)."""
        kwargs.setdefault("eval_sets", self.settings.eval_sets)  # eval.sets + eval.probes
        kwargs.setdefault("split", self.settings.split)  # a sequence's request scores its own split
        return self.datamodule(
            source=self.source,
            encoder=encoder,
            image_tasks=self.source.image_tasks,
            text_only=self.loader.text_only,
            **kwargs,
        )

    def provenance(self, **extra: Any) -> dict[str, Any]:
        source = self.source  # validates the data first, which recounts its rows
        return provenance(
            self.settings.seed,
            source.revision,
            {"data_rows": self.data_rows, "loaded": dict(self.loader.loaded), **extra},
        )

    def say(self, message: str) -> None:
        """Stage decisions are printed, not just logged: the user should see what is built and why."""
        if is_main_process():
            print(f"[clear_lightning] {message}", flush=True)

    def timed(self) -> Callable[[], float]:
        start = time.perf_counter()
        return lambda: time.perf_counter() - start
