"""The pipeline's stages (DESIGN.md): pretrain → finetune (original) → gold → unlearn → eval.

Upstream models are artifacts keyed by what determines them, so a repeated run reuses them and a
changed recipe rebuilds them. Each function here builds or finds one artifact.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from .artifacts import ArtifactStore, digest, file_digests, is_main_process
from .data.clear_mini import load_idk_answers
from .data.datamodule import CLEARDataModule
from .data.encoding import ExampleEncoder, PromptTemplate
from .data.examples import corpus
from .data.source import SnapshotSource
from .errors import ClearConfigError
from .evaluation.module import Evaluator
from .evaluation.records import read_records, write_records
from .methods.finetune import FineTuneModule
from .models.load import load_model, load_processor
from .provenance import provenance

log = logging.getLogger(__name__)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


@dataclass
class Context:
    """Everything a stage needs: the resolved config, the artifact store and the data source."""

    cfg: DictConfig
    # content digests of every model directory this run loaded (weights, tokenizer), for provenance
    loaded: dict[str, dict[str, str]] = field(default_factory=dict)

    @cached_property
    def store(self) -> ArtifactStore:
        return ArtifactStore(self.cfg.paths.artifacts)

    @cached_property
    def source(self) -> SnapshotSource:
        source = instantiate(self.cfg.data)
        self.data_rows = source.validate()  # every config and column of SPEC §2, rows recounted
        return source

    @property
    def model_cfg(self) -> DictConfig:
        return self.cfg.model

    @property
    def text_only(self) -> bool:
        """Text-track models (Llama-2, Mistral): image rows are dropped and visual sets skipped, said so."""
        return self.cfg.model.model_class == "causal_lm"

    @property
    def builds_locally(self) -> bool:
        return self.cfg.model.get("build") is not None

    @property
    def build_missing(self) -> bool:
        value = self.cfg.build_missing
        return self.builds_locally if value == "auto" else bool(value)

    @property
    def precision(self) -> str:
        """Weights dtype, trainer precision and the CPU thread count: a bf16 GPU build is not the fp32 CPU build
        of the same recipe, and CPU reductions split over another number of threads round differently."""
        return f"{self.model_cfg.dtype}/{self.cfg.trainer.precision}/threads={self.cfg.get('threads')}"

    @property
    def upstream_seed(self) -> int:
        """Seed of the base/original/gold models: fixed while `seed` varies the unlearning run."""
        return int(self.cfg.finetune.get("seed", 0))

    def provenance(self, **extra: Any) -> dict[str, Any]:
        source = self.source  # validates the data first, which recounts its rows
        return provenance(
            self.cfg.seed,
            source.revision,
            {"data_rows": self.data_rows, "loaded": dict(self.loaded), **extra},
        )

    def say(self, message: str) -> None:
        """Stage decisions are printed, not just logged: the user should see what is built and why."""
        if is_main_process():
            print(f"[clear_lightning] {message}", flush=True)

    # --- building blocks --------------------------------------------------------------------
    def load(self, path: str | Path, quantized: bool = True) -> tuple[Any, Any]:
        """Model + processor from a checkpoint dir or hub id. `model.quantization` (QLoRA) applies to
        unlearning and evaluation; the upstream fine-tunes pass `quantized=False` and train in model.dtype
        with LoRA, as in the paper."""
        m = self.model_cfg
        revision = (
            m.get("revision") if path == m.get("path") else None
        )  # pinned only for the configured checkpoint
        model = load_model(
            str(path),
            m.model_class,
            m.dtype,
            m.get("quantization") if quantized else None,
            m.get("attn_implementation"),
            revision,
            gradient_checkpointing=bool(m.get("gradient_checkpointing")),
        )
        if Path(str(path)).is_dir():
            self.loaded[str(path)] = file_digests(Path(str(path)))
        return model, load_processor(str(path), m.model_class, revision)

    def encoder(self, processor: Any, cache: bool | None = None, add_eos: bool = True) -> ExampleEncoder:
        template = PromptTemplate(**_plain(self.model_cfg.prompt))
        cache = self.cfg.data_cache if cache is None else cache
        return ExampleEncoder(processor, template, add_eos=add_eos, cache=cache)

    def datamodule(self, encoder: ExampleEncoder, **kwargs: Any) -> CLEARDataModule:
        cfg = self.cfg
        defaults = dict(
            source=self.source,
            encoder=encoder,
            split=cfg.split.name,
            modalities=list(cfg.modality.forget),
            eval_batch_size=cfg.eval.batch_size,
            eval_sets=list(cfg.eval.sets),
            max_eval_items=cfg.eval.max_items,
            image_tasks=self.source.image_tasks,
            seed=cfg.seed,
            prompt_seed=cfg.get("prompt_seed", 0),
            text_only=self.text_only,
            real_world_column=cfg.eval.real_world_column,
        )
        return CLEARDataModule(**{**defaults, **kwargs})

    def trainer(self, directory: Path, **kwargs: Any) -> L.Trainer:
        logger = instantiate(self.cfg.logger, save_dir=str(directory)) if self.cfg.logger else False
        callbacks = [instantiate(c) for c in (self.cfg.get("callbacks") or {}).values()] if logger else []
        return instantiate(self.cfg.trainer, logger=logger, callbacks=callbacks, **kwargs)


# --- artifacts -------------------------------------------------------------------------------
def base_model(ctx: Context, build: bool) -> tuple[str, dict[str, Any]]:
    """The starting checkpoint: a hub id/dir, or (tiny model) a config-built, pre-trained artifact."""
    m = ctx.model_cfg
    if not ctx.builds_locally:
        if not m.get("path"):
            raise ClearConfigError(
                f"model '{m.name}' has neither model.path nor model.build", "set model.path"
            )
        return str(m.path), {"path": str(m.path), "revision": m.get("revision")}
    key = {
        "build": _plain(m.build),
        "data": ctx.source.identity(),
        "pretrain": _plain(ctx.cfg.pretrain),
        "seed": ctx.upstream_seed,
        "precision": ctx.precision,
    }
    found = ctx.store.get("base", key)
    if found:
        return str(found / "model"), {"artifact": digest(key)}
    if not build:
        raise ClearConfigError(f"the base model of {m.name} is not built yet", "run stage=pretrain first")
    prior = ctx.source.has_prior
    ctx.say(
        f"building the {m.name} base model (random init + pre-training on prior knowledge)"
        if prior
        else f"building the {m.name} base model: random init only, since data={ctx.source.name} has no prior "
        "knowledge to pre-train on (Real metrics will sit at chance)"
    )

    def builder(out: Path) -> None:
        spec = instantiate(m.build)
        L.seed_everything(ctx.upstream_seed, verbose=False)
        texts = corpus(ctx.source, extra=load_idk_answers())
        if prior:
            spec.create(texts, out / "init")
            with _threads(ctx.cfg.pretrain.get("threads")):  # the base builds alone: it may use both cores
                _fit_and_save(ctx, out / "init", out, "prior", ctx.cfg.pretrain)
        else:
            spec.create(texts, out / "model")

    path = ctx.store.build("base", key, builder, ctx.provenance(stage="pretrain"))
    return str(path / "model"), {"artifact": digest(key)}


def _finetune_key(ctx: Context, which: str, base_key: dict[str, Any]) -> dict[str, Any]:
    return {
        "base": base_key,
        "data": ctx.source.identity(),
        "finetune": _plain(ctx.cfg.finetune),
        "seed": ctx.upstream_seed,
        "precision": ctx.precision,
        "train_on": "full" if which == "original" else ctx.cfg.split.name,
    }


def finetuned_model(ctx: Context, which: str, build: bool) -> tuple[Path, dict[str, Any]]:
    """`original` (fine-tuned on everything) or `gold` (on the retain set of this split) (SPEC §4)."""
    base_path, base_key = base_model(ctx, build)
    key = _finetune_key(ctx, which, base_key)
    found = ctx.store.get(which, key)
    if found:
        return found / "model", key
    if not build:
        raise ClearConfigError(
            f"the {which} model for {ctx.model_cfg.name} ({key['train_on']}) is not built yet",
            f"run stage={'finetune' if which == 'original' else 'gold'} first, or pass build_missing=true "
            "(on a 7B model this costs GPU-hours)",
        )
    ctx.say(
        f"building the {which} model: fine-tune on {'full' if which == 'original' else 'retain of ' + ctx.cfg.split.name}"
    )
    train_on = "full" if which == "original" else "retain"
    path = ctx.store.build(
        which,
        key,
        lambda out: _fit_and_save(ctx, base_path, out, train_on, ctx.cfg.finetune),
        ctx.provenance(stage=which),
    )
    return path / "model", key


def set_threads(threads: int | None) -> None:
    """A fixed intra-op thread count (config `threads`), so that numbers do not depend on the machine's core
    count or OMP_NUM_THREADS: CPU reductions split over another number of threads round differently."""
    import os

    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the tokenizer trainer's threads, likewise
    if threads is not None:
        if int(threads) < 1:
            raise ClearConfigError(
                f"threads={threads} is not a thread count", "use threads=1 (or null for torch's default)"
            )
        torch.set_num_threads(int(threads))


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """A fixed thread count for one build (part of its recipe, hence of its key), then the run's again."""
    import torch

    before = torch.get_num_threads()
    set_threads(count or None)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _replay_count(value: Any) -> int:
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


def _fit_and_save(ctx: Context, init: str | Path, out: Path, train_on: str, recipe: DictConfig) -> None:
    L.seed_everything(ctx.upstream_seed, verbose=False)
    model, processor = ctx.load(init, quantized=False)
    lora = _plain(recipe.lora) if recipe.get("lora") else None
    module = FineTuneModule(
        model,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        warmup_ratio=recipe.warmup_ratio,
        schedule=recipe.schedule,
        lora_config=lora,
    )
    dm = ctx.datamodule(
        ctx.encoder(processor),
        train_on=train_on,
        batch_size=recipe.batch_size,
        replay_prior=_replay_count(recipe.get("replay_prior")),
        seed=ctx.upstream_seed,
    )
    trainer = ctx.trainer(out, max_epochs=recipe.epochs, accumulate_grad_batches=recipe.get("grad_accum", 1))
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


def evaluation(
    ctx: Context, model_dir: Path, model_key: dict[str, Any], label: str, build: bool = True
) -> Path:
    """Per-item records of a stored model on this split's evaluation sets, cached as an artifact."""
    recipe = {k: v for k, v in _plain(ctx.cfg.eval).items() if k not in ("checkpoint", "gold")}
    key = {
        "model": digest(model_key),
        "split": ctx.cfg.split.name,
        "eval": recipe,
        "label": label,
        "quantization": ctx.model_cfg.get("quantization"),
    }
    found = ctx.store.get("eval", key)
    if found:
        return found
    if not build:
        raise ClearConfigError(f"no stored evaluation of the {label} model", f"run stage={label} first")
    ctx.say(f"evaluating the {label} model on {ctx.cfg.split.name}")

    def builder(out: Path) -> None:
        model, processor = ctx.load(model_dir)
        start = time.perf_counter()
        records, seconds = evaluate(ctx, model, processor)
        total = time.perf_counter() - start
        write_records(out / "eval", records)
        items = sum(len(r) for r in records.values())
        cost = {"items": items, "seconds": total, "items_per_second": items / total, **seconds}
        (out / "meta.json").write_text(json.dumps({**eval_identity(ctx, label), "cost": cost}, indent=2))

    return ctx.store.build("eval", key, builder, ctx.provenance(stage="eval", label=label))


def eval_identity(ctx: Context, label: str) -> dict[str, Any]:
    """What a gold evaluation must match for its scores to be comparable."""
    return {
        "label": label,
        "model": ctx.model_cfg.name,
        "split": ctx.cfg.split.name,
        "data_revision": ctx.source.revision,
        "eval_sets": list(ctx.cfg.eval.sets),
        "truth_ratio_mean": ctx.cfg.eval.truth_ratio_mean,
        "max_items": ctx.cfg.eval.max_items,
    }


def evaluate(
    ctx: Context, model: Any, processor: Any
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, float]]:
    """`trainer.test` over every evaluation set; returns the per-item records and time spent."""
    ev = ctx.cfg.eval
    dm = ctx.datamodule(ctx.encoder(processor, cache=False, add_eos=bool(ev.answer_eos)))
    names = list(dm.evaluation_sets())
    tokenizer = getattr(processor, "tokenizer", processor)
    evaluator = Evaluator(
        model, tokenizer, names, ev.max_new_tokens, ev.truth_ratio_mean, generation=ev.generation
    )
    trainer = instantiate(ctx.cfg.trainer, logger=False, callbacks=[])
    trainer.test(evaluator, datamodule=dm, verbose=False)
    return evaluator.records, dict(evaluator.seconds)


def load_gold(ctx: Context, path: Path) -> dict[str, list[dict[str, Any]]]:
    """Gold records, refusing a gold evaluation of another split, model, data revision, truth-ratio mean or item
    cap (SPEC §6): its per-item R or its item set would not be comparable."""
    meta_file = Path(path) / "meta.json"
    if not meta_file.exists():
        raise ClearConfigError(
            f"no gold evaluation metadata at {path}", "point eval.gold at a gold evaluation directory"
        )
    meta = json.loads(meta_file.read_text())
    want = eval_identity(ctx, "gold")
    defaults = {
        "truth_ratio_mean": "arithmetic",
        "max_items": None,
    }  # metadata written before these were recorded
    for key in ("model", "split", "data_revision", "truth_ratio_mean", "max_items"):
        if meta.get(key, defaults.get(key)) != want[key]:
            raise ClearConfigError(
                f"the gold evaluation at {path} is for {key}={meta.get(key, defaults.get(key))!r}, "
                f"this run has {want[key]!r}",
                "score against a gold evaluation with the same model, split, data revision, eval.truth_ratio_mean "
                "and eval.max_items (stage=gold with the same overrides)",
            )
    return read_records(Path(path) / "eval")


# --- the two references, built side by side ---------------------------------------------------------------------
def references(ctx: Context, build: bool) -> dict[str, tuple[Path, dict[str, Any], Path]]:
    """The original and gold models with their evaluations: {which: (model dir, model key, evaluation dir)}.

    When both must be built on the CPU with one thread per process (the default `threads: 1`) and the machine
    has a second core, gold is built in a second process while this one builds the original: two single-thread
    builds use both cores without the oversubscription of two multi-thread jobs, and each stays bit-identical
    to a build made alone (`parallel_builds: auto|true|false`).
    """
    child = None
    if build and _parallel_builds(ctx):
        _, base_key = base_model(ctx, build=True)  # shared by both: built first
        missing = [w for w in ("original", "gold") if not ctx.store.get(w, _finetune_key(ctx, w, base_key))]
        if missing == ["original", "gold"]:
            child = _start_child(ctx, "gold")
    out = {}
    try:
        for which in ("original", "gold"):
            if which == "gold" and child is not None:
                child.join()
                if child.exitcode != 0:
                    raise RuntimeError(
                        f"building the gold model in a second process failed (exit {child.exitcode})"
                    )
                child = None
            path, key = finetuned_model(ctx, which, build)
            out[which] = (path, key, evaluation(ctx, path, key, which, build))
    finally:
        if child is not None and child.is_alive():
            child.terminate()
            child.join()
    return out


def _parallel_builds(ctx: Context) -> bool:
    import os

    import torch.distributed as dist

    setting = ctx.cfg.get("parallel_builds", "auto")
    if setting != "auto":
        return bool(setting)
    trainer = ctx.cfg.trainer
    return (
        ctx.cfg.get("threads") == 1
        and (os.cpu_count() or 1) >= 2
        and trainer.get("accelerator") == "cpu"
        and trainer.get("devices", 1) == 1
        and not (dist.is_available() and dist.is_initialized())
    )


def _start_child(ctx: Context, which: str) -> Any:
    import multiprocessing

    container = OmegaConf.to_container(ctx.cfg, resolve=True)
    container["trainer"]["enable_progress_bar"] = False  # one progress bar on the terminal: the parent's
    ctx.say(f"building the {which} model in a second process meanwhile")
    process = multiprocessing.get_context("spawn").Process(target=_build_in_child, args=(container, which))
    process.start()
    return process


def _build_in_child(container: dict[str, Any], which: str) -> None:
    from .config import offline_by_default, register_resolvers
    from .logging_setup import quiet_libraries

    offline_by_default()
    register_resolvers()
    quiet_libraries()
    cfg = OmegaConf.create(container)
    set_threads(cfg.get("threads"))
    ctx = Context(cfg)
    path, key = finetuned_model(ctx, which, build=True)
    evaluation(ctx, path, key, which, build=True)
