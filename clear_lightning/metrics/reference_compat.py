"""The authors' released metric code (SPEC §7), only to compare with the project-page table; paper mode is the default.

What differs from paper mode (mirrors `mm/calculate_metrics.py` of the authors' repository):
- only the first `max_rows` records of every set count (in the order given);
- truth ratio with ONE global mean per set and model: L̄' = arithmetic mean of all perturbed losses (mean token
  NLL) of all kept items of the set, pooled over items and perturbations; then per item
  R_i = exp(loss_paraphrased_i − L̄'), i.e. P(ŷ_i) compared with exp(−L̄'), not with item i's own wrong answers;
- a set's TR is mean min(R, 1/R) for forget sets and mean max(0, 1 − R) for the others;
- Real/Retain/Forget metric = harmonic mean of Probability and TR only (no ROUGE-L), over the group's sets;
  model_utility = the same over the retain and real sets;
- forget_quality = 1 − scipy.spatial.distance.jensenshannon(t_model, t_gold) with t = 1/R = exp(L̄' − loss_ŷ)
  (the authors' orientation), items of each forget set paired by id (model order, ids kept in both), forget sets
  concatenated in name order. jensenshannon normalises each vector to sum to 1 (a distribution over items) and
  uses the natural log (its default), so the distance lies in [0, sqrt(ln 2)] and forget_quality in [0.17, 1];
- log_forget_quality = ln of the KS p-value between the same t vectors (the authors' "KS test p-value").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon

from clear_lightning.metrics.functional import (
    forget_quality,
    harmonic_mean,
    item_probability,
    knowledge_truth_ratio,
    rouge_l_recall,
    safe_exp,
    tofu_forget_truth_ratio,
)
from clear_lightning.metrics.summary import GROUPS, set_group

_COMPAT_COMPONENTS = ("probability", "truth_ratio")
Records = Sequence[Mapping[str, Any]]


def global_mean_log_ratios(records: Records) -> list[float]:
    """Per-item ln R against one set-wide mean perturbed loss, as the authors' code computes it."""
    pooled = [float(v) for r in records for v in r["losses_perturbed"]]
    if not pooled:
        raise ValueError("reference_compat truth ratio needs perturbed losses, found none")
    mean_perturbed = fmean(pooled)
    # SPEC §7: ln R_i = loss_ŷ_i - L̄', L̄' the mean of all perturbed losses of the set (not of item i)
    return [float(r["loss_paraphrased"]) - mean_perturbed for r in records]


def _rouge(record: Mapping[str, Any]) -> float:
    """The stored ROUGE-L recall, or computed from the generation when the record has none."""
    if "rougeL_recall" in record:
        return float(record["rougeL_recall"])
    return rouge_l_recall(str(record["generation"]), str(record["answer"]))


def summarize_set_compat(records: Records, name: str) -> dict[str, Any]:
    """Per-set scores as the authors computed them (global-mean R; min(R, 1/R) on forget sets)."""
    if not records:
        raise ValueError(f"evaluation set {name!r} has no records: cannot summarise an empty set")
    ratios = [safe_exp(log_r) for log_r in global_mean_log_ratios(records)]
    tofu = fmean(tofu_forget_truth_ratio(r) for r in ratios)
    knowledge = fmean(knowledge_truth_ratio(r) for r in ratios)
    return {
        "rougeL_recall": fmean(_rouge(r) for r in records),
        "probability": fmean(item_probability(r["kind"], r["loss"], r["losses_perturbed"]) for r in records),
        "truth_ratio": tofu if set_group(name) == "forget" else knowledge,
        "truth_ratio_tofu": tofu,
        "n": len(records),
    }


def _group_metric(per_set: Mapping[str, Mapping[str, Any]], groups: Sequence[str]) -> float | None:
    """Harmonic mean of probability and TR over the groups' sets (no ROUGE-L), None if there is none."""
    values = [s[c] for name, s in per_set.items() if set_group(name) in groups for c in _COMPAT_COMPONENTS]
    # SPEC §7: Real/Retain/Forget = harmonic mean of Probability and TR only
    return harmonic_mean(values) if values else None


def paired_forget_ratios(
    model: Mapping[str, Records], gold: Mapping[str, Records]
) -> tuple[np.ndarray, np.ndarray]:
    """t = 1/R of model and gold on the forget sets both have, aligned item by item through the record id."""
    model_t: list[float] = []
    gold_t: list[float] = []
    for name in sorted(n for n in model if set_group(n) == "forget" and gold.get(n)):
        gold_log_r = dict(zip((r["id"] for r in gold[name]), global_mean_log_ratios(gold[name]), strict=True))
        for record, log_r in zip(model[name], global_mean_log_ratios(model[name]), strict=True):
            if record["id"] in gold_log_r:
                model_t.append(safe_exp(-log_r))
                gold_t.append(safe_exp(-gold_log_r[record["id"]]))
    return np.asarray(model_t), np.asarray(gold_t)


def summarize_reference_compat(
    records_by_set: Mapping[str, Records],
    gold_records_by_set: Mapping[str, Records] | None,
    max_rows: int = 300,
) -> dict[str, Any]:
    """Summary with the paper-mode key names, computed the authors' way (module docstring), tagged as such."""
    model = {name: list(records)[:max_rows] for name, records in sorted(records_by_set.items())}
    per_set = {name: summarize_set_compat(records, name) for name, records in model.items()}
    out: dict[str, Any] = {f"{name}/{key}": value for name, s in per_set.items() for key, value in s.items()}
    for group in GROUPS:
        out[f"{group}_metric"] = _group_metric(per_set, (group,))
    out["model_utility"] = _group_metric(per_set, ("retain", "real"))
    out["forget_quality"] = out["log_forget_quality"] = None
    if gold_records_by_set is not None:
        gold = {name: list(records)[:max_rows] for name, records in gold_records_by_set.items()}
        model_t, gold_t = paired_forget_ratios(model, gold)
        if model_t.size:
            # SPEC §7: "Forget Quality" = 1 - Jensen-Shannon distance of the index-aligned TR vectors
            out["forget_quality"] = 1.0 - float(jensenshannon(model_t, gold_t))
            out["log_forget_quality"] = forget_quality(model_t, gold_t)[1]
    out["metric_mode"] = "reference_compat"
    return out
