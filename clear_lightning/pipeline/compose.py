"""The composition root: the only code that reads the config. It validates it and builds the run's objects.

Everything is instantiated from `_target_` / `_partial_` YAML — the model loader (`model.loader`), the encoder,
the data module and the evaluator (`conf/config.yaml`), the trainer, logger and callbacks, the method with its
`optim.optimizer` / `optim.scheduler` partials, the pre-train and fine-tune recipes and the summarizer — and
every config error is raised here, before any model is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..artifacts import ArtifactStore
from ..contract import FORGET_SPLITS
from ..errors import ClearConfigError
from ..metrics.summarizer import METRIC_MODES
from . import validate
from .components import Pipeline, Settings, TrainerFactory

STAGES = ("pretrain", "finetune", "gold", "unlearn", "eval", "attack")


def plain(node: Any) -> Any:
    """A config node as plain Python (resolved); anything else unchanged."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def recipe_key(node: DictConfig) -> dict[str, Any]:
    """A recipe's artifact-key part: its configured fields, without Hydra's `_target_`."""
    return {k: v for k, v in plain(node).items() if not str(k).startswith("_")}


def _make(node: Any, what: str, **kwargs: Any) -> Any:
    """`instantiate`, surfacing our own config errors rather than Hydra's wrapper, naming the node otherwise."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ClearConfigError):
            raise cause from None
        if isinstance(cause, TypeError | ValueError):
            raise ClearConfigError(f"{what}: {cause}", f"fix the `{what}` settings") from err
        raise


def _parallel_builds(cfg: DictConfig) -> bool:
    """`parallel_builds: auto` = two single-thread builds side by side on a CPU machine with two cores."""
    setting = cfg.get("parallel_builds", "auto")
    if setting != "auto":
        return bool(setting)
    import torch.distributed as dist

    trainer = cfg.trainer
    return (
        cfg.get("threads") == 1
        and (os.cpu_count() or 1) >= 2
        and trainer.get("accelerator") == "cpu"
        and trainer.get("devices", 1) == 1
        and not (dist.is_available() and dist.is_initialized())
    )


def settings(cfg: DictConfig) -> Settings:
    """The run's plain values, validated."""
    if cfg.stage not in STAGES:
        raise ClearConfigError(f"unknown stage '{cfg.stage}'", f"use stage= one of {', '.join(STAGES)}")
    if cfg.metric_mode not in METRIC_MODES:  # first: evaluation settings are resolved from it
        raise ClearConfigError(
            f"unknown metric_mode '{cfg.metric_mode}'", f"use metric_mode= one of {', '.join(METRIC_MODES)}"
        )
    threads = cfg.get("threads")
    if threads is not None and int(threads) < 1:
        raise ClearConfigError(
            f"threads={threads} is not a thread count", "use threads=1 (or null for torch's default)"
        )
    m, ev, optim = cfg.model, cfg.eval, cfg.optim
    eval_sets = tuple(dict.fromkeys([*ev.sets, *(ev.get("probes") or ())]))  # the probes after the sets
    build_missing = cfg.build_missing
    builds_locally = m.get("build") is not None
    return Settings(
        stage=cfg.stage,
        seed=int(cfg.seed),
        upstream_seed=int(cfg.finetune.get("seed", 0)),
        model_name=m.name,
        split=cfg.split.name,
        modality=cfg.modality.name,
        method_name=cfg.method.name,
        run_dir=Path(cfg.run_dir),
        threads=None if threads is None else int(threads),
        precision=f"{m.dtype}/{cfg.trainer.precision}/threads={threads}",
        build_missing=builds_locally if build_missing == "auto" else bool(build_missing),
        parallel_builds=_parallel_builds(cfg),
        metric_mode=cfg.metric_mode,
        eval_sets=eval_sets,
        # the layout of scoring moves numbers by float rounding only: stored evaluations stay valid
        eval_key={
            **{
                k: v
                for k, v in plain(ev).items()
                if k not in ("checkpoint", "gold", "shared_prefix", "probes")
            },
            "sets": list(eval_sets),
        },
        shared_prefix=bool(ev.get("shared_prefix", True)),
        truth_ratio_mean=ev.truth_ratio_mean,
        max_items=ev.max_items,
        generation=ev.generation,
        answer_eos=bool(ev.answer_eos),
        checkpoint=ev.get("checkpoint"),
        gold=ev.get("gold"),
        epochs=int(optim.epochs),
        batch_size=int(optim.batch_size),
        grad_accum=int(optim.grad_accum),
        build_key=plain(m.build) if builds_locally else None,
        pretrain_key=recipe_key(cfg.pretrain),
        finetune_key=recipe_key(cfg.finetune),
        target_run=cfg.get("run"),
        sequence=_sequence(cfg),
        sequence_name=str((cfg.get("sequence") or {}).get("name", "none")),
        resolved=OmegaConf.to_container(cfg, resolve=True),
    )


def _sequence(cfg: DictConfig) -> tuple[str, ...]:
    """`sequence.requests`, checked: nested forget splits in growing order, ending at the run's split."""
    requests = tuple(str(r) for r in ((cfg.get("sequence") or {}).get("requests") or ()))
    if not requests:
        return ()
    order = {split: i for i, split in enumerate(FORGET_SPLITS)}
    unknown = [r for r in requests if r not in order]
    if unknown:
        raise ClearConfigError(
            f"sequence.requests names {unknown}, which are no forget splits",
            f"list cumulative splits from {', '.join(FORGET_SPLITS)}",
        )
    if any(order[a] >= order[b] for a, b in zip(requests, requests[1:], strict=False)):
        raise ClearConfigError(
            f"sequence.requests={list(requests)} is not a chain of growing splits",
            "list cumulative splits, each holding the previous one's persons (forget01, forget05, forget10)",
        )
    if requests[-1] != cfg.split.name:
        raise ClearConfigError(
            f"the sequence ends at {requests[-1]} but split={cfg.split.name}",
            f"set split={requests[-1]} (the run's split is the last request's)",
        )
    if cfg.stage != "unlearn":
        raise ClearConfigError(
            f"sequence={cfg.sequence.name} with stage={cfg.stage}",
            "sequences are unlearning runs: stage=unlearn",
        )
    if cfg.get("attacks"):
        raise ClearConfigError(
            "attacks with a sequence of requests are not supported",
            "drop attacks (attacks=none), or attack a one-shot run",
        )
    if not cfg.method.get("lora", True):
        raise ClearConfigError(
            "sequence: each request's LoRA adapter is merged into the next one's start, but method.lora=false",
            "use a LoRA student (method.lora=true)",
        )
    return requests


def attack_config(cfg: DictConfig) -> DictConfig:
    """`stage=attack run=<dir>`: the attacked run's own resolved config (model, split, method, seed, paths), with
    this command's `attacks` and its own run directory, so the attacks see exactly the run they attack."""
    if not cfg.get("run"):
        raise ClearConfigError(
            "stage=attack needs the run to attack", "pass run=<the directory of a finished stage=unlearn run>"
        )
    target = Path(str(cfg.run))
    if not (target / "config.yaml").exists():
        raise ClearConfigError(
            f"{target} is not a run directory (no config.yaml)",
            "pass run=<the directory of a finished stage=unlearn run>",
        )
    run_cfg = OmegaConf.load(target / "config.yaml")
    if run_cfg.get("stage") != "unlearn" or not (target / "summary.json").exists():
        raise ClearConfigError(
            f"{target} is not a finished unlearning run (stage={run_cfg.get('stage')}, "
            f"summary.json {'present' if (target / 'summary.json').exists() else 'missing'})",
            "attack the directory of a stage=unlearn run that finished",
        )
    run_cfg.stage, run_cfg.run, run_cfg.run_dir = "attack", str(target), cfg.run_dir
    run_cfg.attacks = cfg.get("attacks") or {}
    return run_cfg


def assemble(cfg: DictConfig) -> Pipeline:
    """Validate `cfg` and build the run's objects; nothing here loads or trains a model."""
    s = settings(cfg)
    validate.check(cfg)
    summarizer = _make(cfg.summarizer, "summarizer")  # metric_mode and bootstrap checked here
    loader = _make(cfg.model.loader, "model")
    logger = _make(cfg.logger, "logger", _partial_=True) if cfg.logger else None
    callbacks = {k: plain(v) for k, v in (cfg.get("callbacks") or {}).items()}
    build = cfg.model.get("build")
    return Pipeline(
        settings=s,
        store=ArtifactStore(cfg.paths.artifacts),
        unchecked_source=_make(cfg.data, "data"),
        loader=loader,
        base_spec=_make(build, "model.build", _partial_=True) if build is not None else None,
        encoder=_make(cfg.encoder, "encoder"),
        datamodule=_make(cfg.datamodule, "datamodule"),
        trainer=TrainerFactory(plain(cfg.trainer), logger, callbacks),
        evaluator=_make(cfg.evaluator, "evaluator"),
        method=_make(cfg.method, "method", _partial_=True),
        pretrain=_make(cfg.pretrain, "pretrain"),
        finetune=_make(cfg.finetune, "finetune"),
        summarizer=summarizer,
        attacks={str(k): _make(v, f"attacks.{k}") for k, v in (cfg.get("attacks") or {}).items()},
    )
