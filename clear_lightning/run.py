"""Stage dispatch: compose → find or build upstream artifacts → fit → test → write results."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from . import stages
from .artifacts import is_main_process
from .comparison import comparison_table
from .data.clear_mini import load_idk_answers
from .data.examples import is_visual_set
from .errors import ClearConfigError
from .evaluation.records import read_records, write_records
from .metrics.reference_compat import summarize_reference_compat
from .metrics.summary import summarize
from .stages import Context, _plain

log = logging.getLogger(__name__)
STAGES = ("pretrain", "finetune", "gold", "unlearn", "eval")
METRIC_MODES = ("paper", "reference_compat")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run one stage; returns its summary (also written under `cfg.run_dir`)."""
    if cfg.stage not in STAGES:
        raise ClearConfigError(f"unknown stage '{cfg.stage}'", f"use stage= one of {', '.join(STAGES)}")
    if cfg.metric_mode not in METRIC_MODES:  # before anything is built: a typo must not cost a whole run
        raise ClearConfigError(
            f"unknown metric_mode '{cfg.metric_mode}'", f"use metric_mode= one of {', '.join(METRIC_MODES)}"
        )
    torch.set_num_threads(max(1, min(torch.get_num_threads(), cfg.get("max_threads") or 1_000)))
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(cfg)
    if is_main_process():
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (run_dir / "provenance.json").write_text(json.dumps(ctx.provenance(stage=cfg.stage), indent=2))
    start = time.perf_counter()
    result = {
        "pretrain": _pretrain,
        "finetune": _finetune,
        "gold": _gold,
        "unlearn": _unlearn,
        "eval": _eval,
    }[cfg.stage](ctx, run_dir)
    result["seconds"] = time.perf_counter() - start
    if is_main_process():
        (run_dir / "stage.json").write_text(json.dumps(result, indent=2, default=str))
    ctx.say(f"{cfg.stage} finished in {result['seconds']:.1f} s; results in {run_dir}")
    return result


def _pretrain(ctx: Context, run_dir: Path) -> dict[str, Any]:
    if not ctx.builds_locally:
        raise ClearConfigError(
            f"stage=pretrain builds a model from a config, but model={ctx.model_cfg.name} is a pretrained checkpoint",
            "use stage=finetune for pretrained checkpoints; pretrain is for the embedded tiny model",
        )
    path, _ = stages.base_model(ctx, build=True)
    return {"stage": "pretrain", "model": path}


def _finetune(ctx: Context, run_dir: Path) -> dict[str, Any]:
    path, _ = stages.finetuned_model(ctx, "original", build=True)
    return {"stage": "finetune", "model": str(path)}


def _gold(ctx: Context, run_dir: Path) -> dict[str, Any]:
    path, key = stages.finetuned_model(ctx, "gold", build=True)
    ev = stages.evaluation(ctx, path, key, "gold")
    records = read_records(ev / "eval")
    summary = _write_results(ctx, run_dir, records, gold_dir=ev, label="gold")
    return {"stage": "gold", "model": str(path), "gold_eval": str(ev), "summary": summary}


def _eval(ctx: Context, run_dir: Path) -> dict[str, Any]:
    checkpoint = ctx.cfg.eval.get("checkpoint") or ctx.model_cfg.get("path")
    if checkpoint is None:
        checkpoint, _ = stages.finetuned_model(ctx, "original", build=ctx.build_missing)
    looks_local = str(checkpoint).startswith(("/", ".", "~")) or str(checkpoint).count("/") != 1
    if looks_local and not Path(str(checkpoint)).exists():
        raise ClearConfigError(
            f"checkpoint {checkpoint} does not exist", "pass eval.checkpoint=<model or adapter dir>"
        )
    model, processor = _load_checkpoint(ctx, Path(str(checkpoint)))
    records, seconds = stages.evaluate(ctx, model, processor)
    gold_dir = _find_gold(ctx)
    summary = _write_results(
        ctx, run_dir, records, gold_dir=gold_dir, label="eval", cost={"eval_seconds": seconds}
    )
    return {"stage": "eval", "checkpoint": str(checkpoint), "summary": summary}


def _load_checkpoint(ctx: Context, path: Path) -> tuple[Any, Any]:
    """A full model directory, or a LoRA adapter directory applied on top of the original model."""
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        original, _ = stages.finetuned_model(ctx, "original", build=False)
        model, processor = ctx.load(original)
        return PeftModel.from_pretrained(model, str(path)), processor
    return ctx.load(path)


def _find_gold(ctx: Context) -> Path | None:
    explicit = ctx.cfg.eval.get("gold")
    if explicit:
        return Path(explicit)
    try:
        path, key = stages.finetuned_model(ctx, "gold", build=False)
        # an evaluation setting that differs from the stored gold's (e.g. metric_mode=reference_compat's
        # generation) evaluates the stored gold model once more, where evaluating is allowed to build
        return stages.evaluation(ctx, path, key, "gold", build=ctx.build_missing)
    except ClearConfigError:
        log.warning("no gold evaluation for this split: forget quality is not computed")
        return None


def _unlearn(ctx: Context, run_dir: Path) -> dict[str, Any]:
    cfg, build = ctx.cfg, ctx.build_missing
    ctx.datamodule(encoder=None).forget_examples()  # an empty forget set fails now, before anything is built
    original_dir, original_key = stages.finetuned_model(ctx, "original", build)
    gold_dir, gold_key = stages.finetuned_model(ctx, "gold", build)
    gold_eval = stages.evaluation(ctx, gold_dir, gold_key, "gold", build)
    original_eval = stages.evaluation(ctx, original_dir, original_key, "original", build)

    ctx.say(f"unlearning with {cfg.method.name} on {cfg.split.name}, modality={cfg.modality.name}")
    L.seed_everything(cfg.seed, verbose=False)
    model, processor = ctx.load(original_dir)
    try:
        method = instantiate(
            cfg.method,
            model=model,
            lora_config=_plain(cfg.model.lora),
            lr=cfg.optim.lr,
            weight_decay=cfg.optim.weight_decay,
            warmup_epochs=cfg.optim.warmup_epochs,
        )
    except InstantiationException as err:  # surface our own config errors, not Hydra's wrapper
        if isinstance(err.__cause__, ClearConfigError):
            raise err.__cause__ from None
        raise
    dm = ctx.datamodule(
        ctx.encoder(processor),
        streams=type(method).streams,
        batch_size=cfg.optim.batch_size,
        idk_answers=load_idk_answers(),
    )
    # manual-optimisation methods (SCRUB) accumulate gradients themselves; Lightning must not
    accumulate = method.trainer_accumulation(cfg.optim.grad_accum)
    trainer = ctx.trainer(run_dir, max_epochs=cfg.optim.epochs, accumulate_grad_batches=accumulate)
    start = time.perf_counter()
    trainer.fit(method, datamodule=dm)
    fit_seconds = time.perf_counter() - start
    if is_main_process():
        method.save_student(str(run_dir / "adapter"))
    records, eval_seconds = stages.evaluate(ctx, method.unlearned_model(), processor)
    cost = {
        "fit_seconds": fit_seconds,
        "train_samples_per_second": len(trainer.train_dataloader.dataset)
        * cfg.optim.epochs
        / max(fit_seconds, 1e-9),
        "eval_seconds": eval_seconds,
    }
    summary = _write_results(
        ctx, run_dir, records, gold_dir=gold_eval, label=cfg.method.name, cost=cost, logger=trainer.logger
    )
    gold_records = read_records(gold_eval / "eval")
    original = _summarize(ctx, read_records(original_eval / "eval"), gold_records)
    gold = _summarize(ctx, gold_records, gold_records)
    table = comparison_table({"original": original, "gold": gold, cfg.method.name: summary}, list(records))
    if is_main_process():
        (run_dir / "comparison.md").write_text(table + "\n")
        print("\n" + table + "\n", flush=True)
    return {
        "stage": "unlearn",
        "summary": summary,
        "original_eval": str(original_eval),
        "gold_eval": str(gold_eval),
    }


def _summarize(ctx: Context, records: dict, gold: dict | None) -> dict[str, Any]:
    """Paper mode (SPEC §6, default) or the authors'-code mode (SPEC §7) used only to compare with their table."""
    mode = ctx.cfg.metric_mode
    if mode == "paper":
        return {**summarize(records, gold), "metric_mode": "paper"}
    if mode == "reference_compat":
        return summarize_reference_compat(records, gold)
    raise ClearConfigError(
        f"unknown metric_mode '{mode}'", "use metric_mode=paper or metric_mode=reference_compat"
    )


def _write_results(
    ctx: Context,
    run_dir: Path,
    records: dict[str, list[dict[str, Any]]],
    gold_dir: Path | None,
    label: str,
    cost: dict[str, Any] | None = None,
    logger: Any = None,
) -> dict[str, Any]:
    """`eval/<set>.jsonl` + `summary.json` (every aggregate, scored against gold, with provenance)."""
    gold_records = stages.load_gold(ctx, gold_dir) if gold_dir is not None else None
    summary = _summarize(ctx, records, gold_records)
    skipped = {name: _skip_reason(ctx, name) for name in ctx.cfg.eval.sets if name not in records}
    if skipped:
        ctx.say(f"not evaluated: {', '.join(f'{n} ({why})' for n, why in skipped.items())}")
    summary.update(
        skipped_sets=skipped,
        label=label,
        truth_ratio_mean=ctx.cfg.eval.truth_ratio_mean,
        generation=ctx.cfg.eval.generation,
        answer_eos=ctx.cfg.eval.answer_eos,
        gold=str(gold_dir) if gold_dir is not None else None,
        model=ctx.model_cfg.name,
        method=ctx.cfg.method.name if ctx.cfg.stage == "unlearn" else label,
        split=ctx.cfg.split.name,
        modality=ctx.cfg.modality.name,
        cost=cost or {},
        provenance=ctx.provenance(stage=ctx.cfg.stage),
        config=OmegaConf.to_container(ctx.cfg, resolve=True),
    )
    if is_main_process():  # every rank holds the same gathered records; one writes them
        write_records(run_dir / "eval", records)
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if logger:
        _log_results(logger, summary, records)
    return summary


def _skip_reason(ctx: Context, name: str) -> str:
    if ctx.text_only and is_visual_set(name):
        return "visual set: the model is text-only"
    return "no items"


def _log_results(logger: Any, summary: dict[str, Any], records: dict[str, list[dict[str, Any]]]) -> None:
    """The same numbers to every logger; per-item generations as a table where the logger has tables (W&B)."""
    numbers = {
        f"eval/{k}": v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    logger.log_metrics(numbers)
    if hasattr(logger, "log_table"):
        columns = ["id", "question", "answer", "generation", "rougeL_recall", "probability", "truth_ratio"]
        for name, rows in records.items():
            logger.log_table(
                key=f"generations/{name}", columns=columns, data=[[r[c] for c in columns] for r in rows]
            )
    logger.save()
