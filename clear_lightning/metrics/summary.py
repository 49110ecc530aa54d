"""Paper-mode summary (benchmark.md §6): per-set scores, Real/Retain/Forget metrics, forget quality and the leaderboard."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean
from typing import Any

from clear_lightning.contract import AGGREGATE_GROUPS, eval_set, is_aggregated
from clear_lightning.metrics.functional import (
    forget_quality,
    harmonic_mean,
    knowledge_truth_ratio,
    score_record,
    tofu_forget_truth_ratio,
)

GROUPS = AGGREGATE_GROUPS  # the groups with an aggregate metric (holdout sets are scored, never aggregated)
SET_COMPONENTS = ("rougeL_recall", "probability", "truth_ratio")
_SCORED_FIELDS = ("rougeL_recall", "probability", "truth_ratio")


def set_group(name: str) -> str:
    """The group of an evaluation set (forget, retain, holdout or real), from the contract's table, because every
    aggregate is defined per group; a ValueError for a name that is no evaluation set."""
    return eval_set(name).group


def scored(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with its derived scores, computed (arithmetic TR) only where the record lacks them."""
    if all(field in record for field in _SCORED_FIELDS):
        return dict(record)
    return score_record(dict(record))


def raw_truth_ratios(records: Iterable[Mapping[str, Any]]) -> list[float]:
    """Per-item raw R, the distribution that forget quality compares."""
    return [float(scored(r)["truth_ratio"]) for r in records]


def summarize_set(records: Sequence[Mapping[str, Any]], name: str = "<unnamed>") -> dict[str, Any]:
    """Mean scores of one evaluation set, every one in the knowledge direction except truth_ratio_tofu."""
    if not records:
        raise ValueError(f"evaluation set {name!r} has no records: cannot summarise an empty set")
    items = [scored(r) for r in records]
    ratios = [float(r["truth_ratio"]) for r in items]
    return {
        "rougeL_recall": fmean(float(r["rougeL_recall"]) for r in items),
        "probability": fmean(float(r["probability"]) for r in items),
        # benchmark.md §6 TR (knowledge direction): mean max(0, 1 - R)
        "truth_ratio": fmean(knowledge_truth_ratio(r) for r in ratios),
        # benchmark.md §6 TOFU forget convention: mean min(R, 1/R)
        "truth_ratio_tofu": fmean(tofu_forget_truth_ratio(r) for r in ratios),
        "n": len(items),
    }


def _group_metric(per_set: Mapping[str, Mapping[str, Any]], groups: Sequence[str]) -> float | None:
    """Harmonic mean of every (ROUGE-L, probability, TR) of the sets in the groups; None if there is none."""
    values = [
        s[c]
        for name, s in per_set.items()
        if set_group(name) in groups and is_aggregated(name)  # probe sets stay out (contract.EvalSet)
        for c in SET_COMPONENTS
    ]
    # benchmark.md §6 Real/Retain/Forget metric: harmonic mean of ROUGE-L, Probability, TR over the group's sets
    return harmonic_mean(values) if values else None


def forget_truth_ratios(
    records_by_set: Mapping[str, Sequence[Mapping[str, Any]]],
    gold_records_by_set: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[list[float], list[float]]:
    """Raw R of the (aggregated) forget sets that both the model and gold were evaluated on, in set-name order:
    the pooled forget quality, which the probe sets stay out of (each still gets its own per-set one)."""
    common = sorted(
        n
        for n in records_by_set
        if set_group(n) == "forget" and is_aggregated(n) and gold_records_by_set.get(n)
    )
    model = [r for n in common for r in raw_truth_ratios(records_by_set[n])]
    gold = [r for n in common for r in raw_truth_ratios(gold_records_by_set[n])]
    return model, gold


def summarize(
    records_by_set: Mapping[str, Sequence[Mapping[str, Any]]],
    gold_records_by_set: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    retain_collapse: float = 0.8,
) -> dict[str, Any]:
    """Every paper-mode aggregate as a flat dict, a pure function of the per-item records.

    retain_collapse is accepted for config symmetry; the collapse rule is applied by `leaderboard`.
    """
    per_set = {name: summarize_set(records, name) for name, records in sorted(records_by_set.items())}
    out: dict[str, Any] = {f"{name}/{key}": value for name, s in per_set.items() for key, value in s.items()}
    for group in GROUPS:
        out[f"{group}_metric"] = _group_metric(per_set, (group,))
    out["model_utility"] = _group_metric(per_set, ("retain", "real"))
    out["forget_quality"] = out["log_forget_quality"] = None
    if gold_records_by_set is not None:
        model_r, gold_r = forget_truth_ratios(records_by_set, gold_records_by_set)
        if model_r and gold_r:
            # benchmark.md §6: the pooled KS test over every forget set (what the leaderboard reports) ...
            out["forget_quality"], out["log_forget_quality"] = forget_quality(model_r, gold_r)
        for name in sorted(
            n for n in records_by_set if set_group(n) == "forget" and gold_records_by_set.get(n)
        ):
            # ... and one per forget set: the pooled p-value depends on the mix of set sizes
            fq, log_fq = forget_quality(
                raw_truth_ratios(records_by_set[name]), raw_truth_ratios(gold_records_by_set[name])
            )
            out[f"forget_quality/{name}"], out[f"log_forget_quality/{name}"] = fq, log_fq
    return out


def leaderboard(
    rows: Sequence[Mapping[str, Any]], original_retain: float, collapse_ratio: float = 0.8, top: int = 3
) -> list[dict[str, Any]]:
    """Rank methods by forget metric (lower first) after dropping those whose retain metric collapsed.

    Rows are summaries with a `method` key; an optional `modality` key ranks each modality separately (benchmark.md §6).
    Each returned row gains `collapsed`, `rank` (None when collapsed) and `top` (rank <= top). Ranked rows come
    first per modality, collapsed rows after them, in input order.
    """
    threshold = collapse_ratio * original_retain
    annotated = []
    for row in rows:
        for key in ("retain_metric", "forget_metric"):
            if row.get(key) is None or math.isnan(float(row[key])):
                raise ValueError(f"leaderboard row {row.get('method')!r} has no {key}")
        annotated.append({**row, "collapsed": float(row["retain_metric"]) < threshold})
    modalities = list(dict.fromkeys(row.get("modality") for row in annotated))
    result = []
    for modality in modalities:
        group = [row for row in annotated if row.get("modality") == modality]
        ranked = sorted((r for r in group if not r["collapsed"]), key=lambda r: float(r["forget_metric"]))
        for rank, row in enumerate(ranked, start=1):
            result.append({**row, "rank": rank, "top": rank <= top})
        result.extend({**row, "rank": None, "top": False} for row in group if row["collapsed"])
    return result
