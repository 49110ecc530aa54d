"""What a stage leaves behind: `eval/<set>.jsonl` per item, `summary.json` (every aggregate, judged and with
intervals in paper mode, with provenance) and the same numbers in every logger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..artifacts import is_main_process
from ..data.examples import is_visual_set
from ..evaluation.records import read_records, write_records
from .components import Pipeline
from .evaluation import Records, load_gold


def write_results(
    p: Pipeline,
    records: Records,
    gold_dir: Path | None,
    label: str,
    cost: dict[str, Any] | None = None,
    logger: Any = None,
    original_dir: Path | None = None,
    original_note: str | None = None,
) -> dict[str, Any]:
    """Score `records` with the pipeline's summarizer against the gold evaluation at `gold_dir` (and, for the
    diagnostics, the original's at `original_dir`), then write the per-item records and `summary.json`."""
    s = p.settings
    gold_records = load_gold(p, gold_dir) if gold_dir is not None else None
    # the original's records judge a paper-mode summary; reference_compat reads none
    judged = p.summarizer.paper and original_dir is not None
    original_records = read_records(original_dir / "eval") if judged else None
    summary = p.summarizer.summarize(
        records, gold_records, original_records, original_note, is_gold=label == "gold"
    )
    if "references" in summary:
        summary["references"] = {
            "original_eval": None if original_dir is None else str(original_dir),
            "gold_eval": None if gold_dir is None else str(gold_dir),
            **summary["references"],
        }
    reasons = p.data(encoder=None).skipped_sets  # builds no items, needs no encoder
    skipped = {n: reasons.get(n) or _skip_reason(p, n) for n in s.eval_sets if n not in records}
    if skipped:
        p.say(f"not evaluated: {', '.join(f'{n} ({why})' for n, why in skipped.items())}")
    summary.update(
        skipped_sets=skipped,
        label=label,
        truth_ratio_mean=s.truth_ratio_mean,
        generation=s.generation,
        answer_eos=s.answer_eos,
        gold=str(gold_dir) if gold_dir is not None else None,
        model=s.model_name,
        method=s.method_name if s.stage == "unlearn" else label,
        split=s.split,
        modality=s.modality,
        cost=cost or {},
        provenance=p.provenance(stage=s.stage),
        config=s.resolved,
    )
    if is_main_process():  # every rank holds the same gathered records; one writes them
        write_records(s.run_dir / "eval", records)
        (s.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if logger:
        log_results(logger, summary, records)
    return summary


def _skip_reason(p: Pipeline, name: str) -> str:
    if p.loader.text_only and is_visual_set(name):
        return "visual set: the model is text-only"
    return "no items"


def log_results(logger: Any, summary: dict[str, Any], records: Records) -> None:
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
