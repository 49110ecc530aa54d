"""Stage dispatch: compose → find or build upstream artifacts → fit → test → write results."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
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
from .metrics.bootstrap import bootstrap
from .metrics.diagnostics import DEFAULT_FLOOR, gap_closed_summary, holdout_gap, with_diagnostics
from .metrics.reference_compat import summarize_reference_compat
from .metrics.summary import SET_COMPONENTS, scored, set_group, summarize, summarize_set
from .stages import Context, _plain, set_threads

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
    set_threads(cfg.get("threads"))
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
        # again, now with the digests of every model directory the stage loaded
        (run_dir / "provenance.json").write_text(json.dumps(ctx.provenance(stage=cfg.stage), indent=2))
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
    original_eval, why = _stored_original_eval(ctx)
    summary = _write_results(
        ctx, run_dir, records, gold_dir=ev, label="gold", original_dir=original_eval, original_note=why
    )
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
    original_eval, why = _stored_original_eval(ctx)
    summary = _write_results(
        ctx,
        run_dir,
        records,
        gold_dir=gold_dir,
        label="eval",
        cost={"eval_seconds": seconds},
        original_dir=original_eval,
        original_note=why,
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


def _stored_original_eval(ctx: Context) -> tuple[Path | None, str | None]:
    """The stored evaluation of the original model for this config (nothing is built), or None and why."""
    try:
        path, key = stages.finetuned_model(ctx, "original", build=False)
        return stages.evaluation(ctx, path, key, "original", build=False), None
    except ClearConfigError as err:
        return None, f"no stored original evaluation ({err.problem})"


def _unlearn(ctx: Context, run_dir: Path) -> dict[str, Any]:
    cfg, build = ctx.cfg, ctx.build_missing
    ctx.datamodule(encoder=None).forget_examples()  # an empty forget set fails now, before anything is built
    refs = stages.references(ctx, build)  # original and gold side by side where two cores allow
    (original_dir, _, original_eval), (_, _, gold_eval) = refs["original"], refs["gold"]

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
        ctx,
        run_dir,
        records,
        gold_dir=gold_eval,
        label=cfg.method.name,
        cost=cost,
        logger=trainer.logger,
        original_dir=original_eval,
    )
    gold_records = read_records(gold_eval / "eval")
    original, gold = _reference_summaries(ctx, read_records(original_eval / "eval"), gold_records)
    if cfg.metric_mode == "paper":  # the reference columns carry the same flags and gap closed (0 and 1)
        original, gold = (_judge(ctx, s, original, gold) for s in (original, gold))
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


def _reference_summaries(
    ctx: Context, original_records: dict | None, gold_records: dict | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The original's summary (scored against gold) and gold's (against itself), as `_summarize` makes them."""
    original = _summarize(ctx, original_records, gold_records) if original_records is not None else None
    gold = _summarize(ctx, gold_records, gold_records) if gold_records is not None else None
    return original, gold


def _floor(ctx: Context) -> float:
    value = ctx.cfg.get("degenerate_floor")
    return DEFAULT_FLOOR if value is None else float(value)


def _judge(
    ctx: Context,
    summary: dict[str, Any],
    original: dict[str, Any] | None,
    gold: dict[str, Any] | None,
    original_note: str | None = None,
) -> dict[str, Any]:
    """A paper-mode summary with what it is worth: limiting components, degenerate flags, gap closed.

    Adds `metrics.diagnostics.with_diagnostics`'s keys (the degenerate floor judged against the original's
    components when `original` is given), `gap_closed*` (`metrics.diagnostics.gap_closed_summary`; `gap_closed`
    None when it cannot be computed) and `diagnostics`: the floor and, in words, whether the floor check and the
    gap closed were computed and why not.
    """
    floor = _floor(ctx)
    out = with_diagnostics(summary, original, floor)
    if original is not None:
        floor_check = f"applied: a component the original model scores below {floor:g} flags its aggregate"
    else:
        floor_check = (
            f"not applied: {original_note or 'no original evaluation'}; only zero components are flagged"
        )
    gap: dict[str, Any] = {"gap_closed": None}
    if original is None or gold is None:
        missing = " and ".join(n for n, s in (("original", original), ("gold", gold)) if s is None)
        gap_note = f"not computed: no {missing} evaluation"
    else:
        try:
            gap = gap_closed_summary(summary, original, gold)
            gap_note = (
                "share of the original-to-gold gap closed, per forget set and component, "
                "then averaged: 0 = still the original, 1 = like gold, > 1 = over-forgetting"
            )
        except ValueError as err:
            gap_note = f"not computed: {err}"
    out.update(gap)
    out["diagnostics"] = {"degenerate_floor": floor, "floor_check": floor_check, "gap_closed": gap_note}
    return out


def _numbers(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """The numeric entries of a summary (what a reference section needs), None stays None."""
    if summary is None:
        return None
    return {
        k: v
        for k, v in summary.items()
        if v is None or (isinstance(v, int | float) and not isinstance(v, bool))
    }


def _stratum(name: str) -> str:
    """Bootstrap stratum of a set (`gold:forget_qa` as well): its group."""
    return set_group(name.rsplit(":", 1)[-1])


def _slim(
    records_by_set: dict[str, list[dict[str, Any]]], person_of: dict[tuple[str, Any], Any]
) -> dict[str, list[dict[str, Any]]]:
    """Only what a summary reads (scores computed once here), so a bootstrap replicate copies small dicts; a
    record without a person gets the one `person_of` knows for its (set, id)."""
    out = {}
    for name, records in records_by_set.items():
        rows = []
        for record in records:
            s = scored(record)
            person = record.get("person")
            if person is None:
                person = person_of.get((name, record.get("id")))
            rows.append({"id": record.get("id"), "person": person, **{c: s[c] for c in SET_COMPONENTS}})
        out[name] = rows
    return out


def _no_person(labelled: dict[str, dict[str, list[dict[str, Any]]] | None]) -> str | None:
    """Why the person-level bootstrap cannot run on these records (None when every record has a person)."""
    rows = [(lab, name, r) for lab, sets in labelled.items() if sets for name, rs in sets.items() for r in rs]
    if not any(r.get("person") is not None for _, _, r in rows):
        return "records carry no person ids"
    without = sorted({f"{lab} {name}" for lab, name, r in rows if r.get("person") is None})
    return f"records without a person id in {', '.join(without)}" if without else None


def _bootstrap_summary(
    ctx: Context,
    records: dict[str, list[dict[str, Any]]],
    gold_records: dict | None,
    original_records: dict | None,
    gap: bool,
) -> dict[str, Any]:
    """`intervals` {key: [lo, hi]} of every float aggregate and `bootstrap` (its settings and counts).

    Person-level percentile bootstrap (`metrics.bootstrap`), persons drawn within their stratum (forget, retain,
    holdout, real: the design's number of persons of each part in every replicate). The model's records, gold's
    (forget quality) and, when the gap closed is computed, the original's are resampled JOINTLY with the same
    persons: each replicate recomputes the original's and gold's forget-set scores from the same draw, so the
    gap-closed interval includes the references' own sampling noise, and the original's (gold's) own records give
    exactly 0 (1) in every replicate. Skipped, saying why, when `bootstrap.n_boot` is 0 or a record has no person.
    """
    settings = ctx.cfg.get("bootstrap") or {}
    n_boot, seed = int(settings.get("n_boot") or 0), int(settings.get("seed") or 0)
    level = float(settings.get("level") or 0.95)
    info: dict[str, Any] = {"n_boot": n_boot, "seed": seed, "level": level}
    if n_boot <= 0:
        return {"intervals": {}, "bootstrap": {**info, "skipped": "bootstrap.n_boot=0"}}
    given = {"model": records, "gold": gold_records, "original": original_records if gap else None}
    # an item's person does not depend on the model: a stored evaluation written before records carried
    # `person` takes it from another record of the same (set, id)
    person_of = {
        (name, r.get("id")): r["person"]
        for sets in given.values()
        if sets
        for name, rs in sets.items()
        for r in rs
        if r.get("person") is not None
    }
    slim = {lab: _slim(sets, person_of) for lab, sets in given.items() if sets}
    why = _no_person(slim)
    if why is not None:
        return {"intervals": {}, "bootstrap": {**info, "skipped": why}}
    filled = sum(
        r.get("person") is None for sets in given.values() if sets for rs in sets.values() for r in rs
    )
    if filled:
        info["persons_from_ids"] = (
            f"{filled} records without a person took it from the same item's other records"
        )
    paired = {
        f"{lab}:{name}": rs for lab, sets in slim.items() if lab != "model" for name, rs in sets.items()
    }

    def by_label(sample: dict | None, lab: str) -> dict[str, list]:
        prefix = f"{lab}:"
        return {k[len(prefix) :]: v for k, v in (sample or {}).items() if k.startswith(prefix)}

    def statistic(sample: dict, paired_sample: dict | None = None) -> dict[str, Any]:
        gold_sample = by_label(paired_sample, "gold")
        out = summarize(sample, gold_sample if gold_records is not None else None)
        if gap:
            forget = [n for n in sample if _stratum(n) == "forget"]
            original, gold = (
                {f"{n}/{k}": v for n in forget if refs.get(n) for k, v in summarize_set(refs[n], n).items()}
                for refs in (by_label(paired_sample, "original"), gold_sample)
            )
            out.update(gap_closed_summary(out, original, gold))
        return out

    start = time.perf_counter()
    try:
        result = bootstrap(
            slim["model"],
            statistic,
            n_boot,
            seed,
            level,
            paired_records_by_set=paired or None,
            strata=_stratum,
        )
    except ValueError as err:
        return {"intervals": {}, "bootstrap": {**info, "skipped": str(err)}}
    resampled = "model" + (", gold" if gold_records is not None else "") + (", original" if gap else "")
    info.update(
        n_persons=result.n_persons,
        strata=result.strata,
        n_used=result.n_used,
        n_failed=result.n_failed,
        failures=dict(sorted(result.failures.items(), key=lambda kv: -kv[1])[:3]),
        resampled=f"records of {resampled}, jointly by person, persons drawn within strata",
        interval="percentile",
        seconds=time.perf_counter() - start,
    )
    single = sorted(k for k, n in result.strata.items() if n == 1)
    if single:  # drawn identically in every replicate: the interval does not see that stratum's spread
        info["single_person_strata"] = single
        info["note"] = (
            f"{', '.join(single)}: one person only, drawn in every replicate; the intervals do not include the "
            "between-person spread of that group"
        )
    return {"intervals": {k: [lo, hi] for k, (lo, hi) in result.intervals.items()}, "bootstrap": info}


def _paper_extras(
    ctx: Context,
    summary: dict[str, Any],
    records: dict[str, list[dict[str, Any]]],
    gold_dir: Path | None,
    gold_records: dict | None,
    original_dir: Path | None,
    original_note: str | None,
    label: str,
) -> dict[str, Any]:
    """The paper-mode summary judged (`_judge`), its `references` section and its bootstrap intervals."""
    original_records = read_records(original_dir / "eval") if original_dir is not None else None
    original, gold = _reference_summaries(ctx, original_records, gold_records)
    out = _judge(ctx, summary, original, gold, original_note or "no original evaluation")
    gaps = holdout_gap(gold) if gold is not None else {}
    if label == "gold":
        out.update(gaps)
    out["references"] = {
        "original_eval": None if original_dir is None else str(original_dir),
        "gold_eval": None if gold_dir is None else str(gold_dir),
        "original": _numbers(original),
        "gold": _numbers(gold),
        **gaps,
    }
    out.update(
        _bootstrap_summary(ctx, records, gold_records, original_records, out["gap_closed"] is not None)
    )
    return out


def _write_results(
    ctx: Context,
    run_dir: Path,
    records: dict[str, list[dict[str, Any]]],
    gold_dir: Path | None,
    label: str,
    cost: dict[str, Any] | None = None,
    logger: Any = None,
    original_dir: Path | None = None,
    original_note: str | None = None,
) -> dict[str, Any]:
    """`eval/<set>.jsonl` + `summary.json` (every aggregate, scored against gold, with provenance).

    Paper mode adds the diagnostics (`_judge`: limiting components, degenerate flags against the original
    evaluation at `original_dir`, gap closed), the `references` section (original's and gold's scores, gold's
    `holdout_gap/*`, also top-level in the gold stage's summary) and bootstrap `intervals` (`_bootstrap_summary`).
    """
    gold_records = stages.load_gold(ctx, gold_dir) if gold_dir is not None else None
    summary = _summarize(ctx, records, gold_records)
    if ctx.cfg.metric_mode == "paper":
        summary = _paper_extras(
            ctx, summary, records, gold_dir, gold_records, original_dir, original_note, label
        )
    reasons = ctx.datamodule(encoder=None).skipped_sets  # builds no items, needs no encoder
    skipped = {n: reasons.get(n) or _skip_reason(ctx, n) for n in ctx.cfg.eval.sets if n not in records}
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
