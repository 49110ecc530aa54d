"""Evaluation: `trainer.test` of the Evaluator over every evaluation set, and stored evaluations of upstream
models (artifacts), with the identity a gold evaluation must share to be scored against."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..artifacts import digest
from ..errors import ClearConfigError
from ..evaluation.records import read_records, write_records
from ..evaluation.shared_prefix import supports
from .components import Pipeline

Records = dict[str, list[dict[str, Any]]]


def evaluate(
    p: Pipeline,
    model: Any,
    processor: Any,
    sets: Sequence[str] | None = None,
    transform: Callable[[str, list[Any]], list[Any]] | None = None,
) -> tuple[Records, dict[str, float]]:
    """`trainer.test` over every evaluation set (or `sets`, their items passed through `transform`: the
    robustness attacks); returns the per-item records and time spent (scoring, generating, and the share of the
    evaluation spent generating)."""
    shared = p.settings.shared_prefix and supports(model)
    if p.settings.shared_prefix and not shared:
        p.say(
            f"eval.shared_prefix: {type(model).__name__} has 3-D (M-RoPE) positions; scoring full rows instead"
        )
    chosen = {} if sets is None else {"eval_sets": list(sets), "item_transform": transform}
    dm = p.data(
        p.encoder(processor, cache=False, add_eos=p.settings.answer_eos), shared_prefix=shared, **chosen
    )
    names = list(dm.evaluation_sets())
    tokenizer = getattr(processor, "tokenizer", processor)
    evaluator = p.evaluator(model=model, tokenizer=tokenizer, set_names=names)
    p.trainer.quiet().test(evaluator, datamodule=dm, verbose=False)
    seconds = dict(evaluator.seconds)
    total = sum(seconds.values())
    seconds["generate_share"] = seconds["generate"] / total if total else None
    seconds["shared_prefix"] = shared
    return evaluator.records, seconds


def eval_identity(p: Pipeline, label: str) -> dict[str, Any]:
    """What a gold evaluation must match for its scores to be comparable."""
    s = p.settings
    return {
        "label": label,
        "model": s.model_name,
        "split": s.split,
        "data_revision": p.source.revision,
        "eval_sets": list(s.eval_sets),
        "truth_ratio_mean": s.truth_ratio_mean,
        "max_items": s.max_items,
    }


def stored_evaluation(
    p: Pipeline, model_dir: Path, model_key: dict[str, Any], label: str, build: bool = True
) -> Path:
    """Per-item records of a stored model on this split's evaluation sets, cached as an artifact."""
    s = p.settings
    key = {
        "model": digest(model_key),
        "split": s.split,
        "eval": s.eval_key,
        "label": label,
        "quantization": p.loader.quantization,
    }
    found = p.store.get("eval", key)
    if found:
        return found
    if not build:
        raise ClearConfigError(f"no stored evaluation of the {label} model", f"run stage={label} first")
    p.say(f"evaluating the {label} model on {s.split}")

    def builder(out: Path) -> None:
        model, processor = p.loader.load(model_dir)
        start = time.perf_counter()
        records, seconds = evaluate(p, model, processor)
        total = time.perf_counter() - start
        write_records(out / "eval", records)
        items = sum(len(r) for r in records.values())
        cost = {"items": items, "seconds": total, "items_per_second": items / total, **seconds}
        (out / "meta.json").write_text(json.dumps({**eval_identity(p, label), "cost": cost}, indent=2))

    return p.store.build("eval", key, builder, p.provenance(stage="eval", label=label))


def load_gold(p: Pipeline, path: Path) -> Records:
    """Gold records, refusing a gold evaluation of another split, model, data revision, truth-ratio mean or item
    cap (benchmark.md §6): its per-item R or its item set would not be comparable."""
    meta_file = Path(path) / "meta.json"
    if not meta_file.exists():
        raise ClearConfigError(
            f"no gold evaluation metadata at {path}", "point eval.gold at a gold evaluation directory"
        )
    meta = json.loads(meta_file.read_text())
    want = eval_identity(p, "gold")
    defaults = {"truth_ratio_mean": "arithmetic", "max_items": None}  # metadata written before these were
    for key in ("model", "split", "data_revision", "truth_ratio_mean", "max_items"):
        if meta.get(key, defaults.get(key)) != want[key]:
            raise ClearConfigError(
                f"the gold evaluation at {path} is for {key}={meta.get(key, defaults.get(key))!r}, "
                f"this run has {want[key]!r}",
                "score against a gold evaluation with the same model, split, data revision, eval.truth_ratio_mean "
                "and eval.max_items (stage=gold with the same overrides)",
            )
    return read_records(Path(path) / "eval")
