"""The fits: the supervised ones that build the upstream models (the tiny base's pre-training, original, gold),
a method's unlearning fit (a one-shot run, each request of a sequence), and the fixed thread counts that keep
them bit-identical on every machine of a kind."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..data.idk import load_idk_answers
from ..errors import ClearConfigError
from ..methods.finetune import FineTuneModule
from .components import Pipeline, Recipe


def set_threads(threads: int | None) -> None:
    """A fixed intra-op thread count (config `threads`), so that numbers do not depend on the machine's core
    count or OMP_NUM_THREADS: CPU reductions split over another number of threads round differently."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer trainer's threads, likewise
    if threads is not None:
        if int(threads) < 1:
            raise ClearConfigError(
                f"threads={threads} is not a thread count", "use threads=1 (or null for torch's default)"
            )
        torch.set_num_threads(int(threads))


@contextmanager
def fixed_threads(count: int | None) -> Iterator[None]:
    """A fixed thread count for one build (part of its recipe, hence of its key), then the run's again."""
    before = torch.get_num_threads()
    set_threads(count or None)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def replay_count(value: int | str | None) -> int:
    """`replay_prior`: a number of seeded prior rows, `all`, or null/0 for none."""
    if value == "all":
        return 1 << 62  # the data module keeps a seeded subset of that size: here, every row
    try:
        count = int(value or 0)
    except (TypeError, ValueError):
        raise ClearConfigError(
            f"finetune.replay_prior={value!r}", "use a number of rows, all, or 0"
        ) from None
    if count < 0:
        raise ClearConfigError(
            f"finetune.replay_prior={value!r} is negative", "use a number of rows, all, or 0"
        )
    return count


def fit_and_save(p: Pipeline, init: str | Path, out: Path, train_on: str, recipe: Recipe) -> None:
    """Fine-tune the model at `init` on `train_on` with `recipe`; save it (and its processor) to `out/model`."""
    seed = p.settings.upstream_seed
    L.seed_everything(seed, verbose=False)
    model, processor = p.loader.load(init, quantized=False)
    module = FineTuneModule(
        model,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        warmup_ratio=recipe.warmup_ratio,
        schedule=recipe.schedule,
        lora_config=recipe.lora or None,
    )
    replay = replay_count(recipe.replay_prior)
    if replay and train_on != "prior" and not p.source.has_prior:
        p.say(
            f"data={p.source.name} has no prior knowledge to rehearse: finetune.replay_prior is off for this build"
        )
        replay = 0
    dm = p.data(
        p.encoder(processor),
        train_on=train_on,
        batch_size=recipe.batch_size,
        replay_prior=replay,
        face_name_repeats=recipe.face_name_repeats,
        seed=seed,
    )
    trainer = p.trainer(out, max_epochs=recipe.epochs, accumulate_grad_batches=recipe.grad_accum)
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    samples = len(trainer.train_dataloader.dataset) * recipe.epochs  # the loader fit used, not a rebuilt one
    module.trained_model().save_pretrained(out / "model")
    processor.save_pretrained(out / "model")
    cost = {
        "train_on": train_on,
        "samples": samples,
        "fit_seconds": seconds,
        "samples_per_second": samples / seconds,
    }
    (out / "train.json").write_text(json.dumps(cost, indent=2))


def fit_unlearning(
    p: Pipeline, model: Any, processor: Any, directory: Path, what: str, **data: Any
) -> tuple[Any, L.Trainer, float]:
    """The method (a student over `model`) fitted on its forget/retain streams (`data`: more data-module
    arguments); refuses a fit that took no optimiser step, whose scores would be the start model's."""
    s = p.settings
    method = p.method(model=model)
    dm = p.data(
        p.encoder(processor),
        streams=type(method).streams,
        batch_size=s.batch_size,
        idk_answers=load_idk_answers(),
        prompt_pair=getattr(
            method, "prompt_pair", None
        ),  # rows asking one prompt, scored from one prefix (DPO)
        **data,
    )
    # manual-optimisation methods (SCRUB) accumulate gradients themselves; Lightning must not
    accumulate = method.trainer_accumulation(s.grad_accum)
    trainer = p.trainer(directory, max_epochs=s.epochs, accumulate_grad_batches=accumulate)
    start = time.perf_counter()
    trainer.fit(method, datamodule=dm)
    seconds = time.perf_counter() - start
    if (
        trainer.global_step == 0
    ):  # nothing was unlearned: its scores would be the start's, reported as a result
        raise ClearConfigError(
            f"{what} took no optimiser step (epochs={s.epochs}, batch_size={s.batch_size}, "
            f"{len(trainer.train_dataloader.dataset)} training rows)",
            "check optim.epochs, optim.batch_size and the forget split; nothing of this run was written",
        )
    return method, trainer, seconds
