"""The leaderboard tables (benchmark.md §6): runs grouped by method, mean ± std over seeds, reference rows, the collapse
rule, ranks, ties and overlaps. Plain data (`Table`) for `report.markdown` and `report.plots`.

Beside mean ± std over seeds, each aggregate has `_ci`: the mean over seeds of the half-width of each run's
person-level bootstrap interval (`intervals` in summary.json). Reference rows (gold, original) are scored from
their per-item records by the one `metrics.summarizer.Summarizer`, in the runs' metric mode and with the
degenerate floor the runs were judged with. Rows of runs attacked for robustness (issue 14) also
carry the seed mean ± std of `robust_forget` and `robust_gap_closed` and the most frequent
`robust_forget_attack`; other rows do not have these keys. `robust_rows` (public through `report.robustness`)
aggregates the attacked runs' robustness keys per method.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from clear_lightning.comparison import short_reason
from clear_lightning.metrics.diagnostics import DEFAULT_FLOOR, with_diagnostics
from clear_lightning.metrics.summarizer import METRIC_MODES, Summarizer
from clear_lightning.metrics.summary import leaderboard

from .runs import Group, Run, Warn, _read_json, has_eval, label, records_of, stderr_warning

METRICS = (
    "real_metric",
    "retain_metric",
    "forget_metric",
    "forget_quality",
    "log_forget_quality",
    "model_utility",
    "gap_closed",
)
FLAGGED = (
    "real_metric",
    "retain_metric",
    "forget_metric",
    "model_utility",
)  # aggregates with a degenerate flag
ROBUST_METRICS = ("robust_forget", "robust_gap_closed")  # issue 14: only in the summaries of attacked runs


@dataclass
class Table:
    """One leaderboard: the runs of one model, split, modality (and metric mode)."""

    key: tuple[str, str, str, str]
    rows: list[dict[str, Any]]
    references: list[dict[str, Any]]
    original_retain: float | None
    threshold: float | None


def mean_std(values: Iterable[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n−1) of the present values; std is None for fewer than two."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    return fmean(vals), (stdev(vals) if len(vals) > 1 else None)


def most_frequent(values: Iterable[Any]) -> tuple[Any, int, int]:
    """(the most frequent present value, how many have it, how many are present); ties: the first seen."""
    present = [v for v in values if v is not None]
    if not present:
        return None, 0, 0
    value, count = Counter(present).most_common(1)[0]
    return value, count, len(present)


def _flags(summary: Mapping[str, Any]) -> dict[str, tuple[bool | None, list[str]]]:
    """{aggregate: (degenerate, reasons)} as stored in the summary; a summary written before the flags existed
    is judged here on its stored components (zero components only: it has no original to compare with)."""
    if (
        summary.get("metric_mode", "paper") != "paper"
    ):  # reference_compat: the authors' aggregates, not judged
        return {a: (None, []) for a in FLAGGED}
    if not any(f"{a}_degenerate" in summary for a in FLAGGED):
        try:
            summary = with_diagnostics(summary)
        except (TypeError, ValueError):
            return {a: (None, []) for a in FLAGGED}
    causes = [short_reason(r) for r in summary.get("degenerate_reasons") or []]
    return {a: (summary.get(f"{a}_degenerate"), [c for agg, c in causes if agg == a]) for a in FLAGGED}


def _half_width(summary: Mapping[str, Any], metric: str) -> float | None:
    interval = (summary.get("intervals") or {}).get(metric)
    if summary.get(metric) is None or not interval or None in interval:
        return None
    return (float(interval[1]) - float(interval[0])) / 2


def aggregate(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean ± std over seeds, the mean bootstrap half-width (`_ci`) and the degenerate flags of every aggregate."""
    out: dict[str, Any] = {"n_seeds": len(summaries)}
    for metric in METRICS:
        out[metric], out[f"{metric}_std"] = mean_std(s.get(metric) for s in summaries)
        # leaderboard uncertainty (benchmark.md, Diagnostics): mean over the seeds' person-level bootstrap half-widths
        halves = [h for s in summaries if (h := _half_width(s, metric)) is not None]
        out[f"{metric}_ci"] = fmean(halves) if halves else None
    levels = sorted({float(lv) for s in summaries if (lv := (s.get("bootstrap") or {}).get("level"))})
    out["ci_level"] = levels[0] if len(levels) == 1 else None if not levels else "mixed"
    if any(s.get("robust_forget") is not None for s in summaries):  # robustness attacks ran (issue 14)
        for metric in ROBUST_METRICS:
            out[metric], out[f"{metric}_std"] = mean_std(s.get(metric) for s in summaries)
        attack, count, of = most_frequent(s.get("robust_forget_attack") for s in summaries)
        out.update(robust_forget_attack=attack, robust_forget_attack_count=count, robust_forget_attack_of=of)
    flags = [_flags(s) for s in summaries]
    out["degenerate_reasons"] = {}
    for metric in FLAGGED:
        values = [f[metric][0] for f in flags]
        out[f"{metric}_degenerate"] = (
            True if any(values) else False if values and None not in values else None
        )
        counts: dict[str, int] = {}
        for f in flags:
            for reason in dict.fromkeys(f[metric][1]):
                counts[reason] = counts.get(reason, 0) + 1
        if counts:
            n = len(summaries)
            out["degenerate_reasons"][metric] = [
                f"{r} ({k} of {n} seeds)" if n > 1 else r for r, k in counts.items()
            ]
    return out


def _floor(runs: Sequence[Run]) -> float:
    """The degenerate floor the runs were judged with (their summaries' `diagnostics`), for the reference rows."""
    for run in runs:
        floor = (run.summary.get("diagnostics") or {}).get("degenerate_floor")
        if floor is not None:
            return float(floor)
    return DEFAULT_FLOOR


def _references(runs: Sequence[Run], mode: str, warn: Warn) -> list[dict[str, Any]]:
    """Gold and original rows, one evaluation per distinct directory the runs point at, scored (and in paper mode
    judged: flags, gap closed 1 and 0) like the runs they sit beside (benchmark.md §6, or §7 when asked)."""
    golds = sorted({r.gold for r in runs if r.gold is not None})
    pairs = sorted({(r.original, r.gold) for r in runs if r.original is not None}, key=str)
    for missing in sorted({str(p) for p in [*golds, *(o for o, _ in pairs)] if not has_eval(p)}):
        warn(f"evaluation directory {missing} has no eval/ records: no reference row is computed from it")
    if mode not in METRIC_MODES:
        warn(f"unknown metric_mode '{mode}' in the run summaries: no reference row is computed for them")
        return []
    golds, pairs = [g for g in golds if has_eval(g)], [(o, g) for o, g in pairs if has_eval(o)]
    summarizer = Summarizer(mode, degenerate_floor=_floor(runs))
    gold_of = {g: summarizer.score(records_of(g), records_of(g)) for g in golds}
    originals = [
        (summarizer.score(records_of(o), records_of(g) if has_eval(g) else None), g) for o, g in pairs
    ]
    summaries = {"gold": list(gold_of.values()), "original": [s for s, _ in originals]}
    if summarizer.paper:
        original_of = {g: s for s, g in originals if g in gold_of}
        summaries = {
            "gold": [summarizer.judge(s, original_of.get(g), s) for g, s in gold_of.items()],
            "original": [summarizer.judge(s, s, gold_of.get(g)) for s, g in originals],
        }
    dirs = {"gold": golds, "original": [o for o, _ in pairs]}
    return [
        {"kind": kind, "label": f"{kind} (reference)", "seeds": [], "runs": [str(d) for d in dirs[kind]],
         **aggregate(rows)}
        for kind, rows in summaries.items()
        if rows
    ]  # fmt: skip


def _group_row(group: Group, runs: Sequence[Run]) -> dict[str, Any]:
    return {
        "kind": "run",
        **group._asdict(),
        "label": label(group),
        "seeds": [r.seed for r in runs],
        "runs": [str(r.directory) for r in runs],
        **aggregate([r.summary for r in runs]),
    }


def build_tables(runs: Sequence[Run], collapse_ratio: float, top: int, warn: Warn) -> list[Table]:
    """One table per (model, split, modality, metric mode): reference rows, then the ranked rows, then the rest."""
    by_group: dict[Group, list[Run]] = {}
    for run in runs:
        by_group.setdefault(run.group, []).append(run)
    by_table: dict[tuple[str, str, str, str], list[Group]] = {}
    for group in sorted(by_group, key=lambda g: (g.model, g.split, g.metric_mode, g.modality, label(g))):
        by_table.setdefault((group.model, group.split, group.modality, group.metric_mode), []).append(group)
    tables = []
    for key, groups in by_table.items():
        for group in groups:
            seeds = [r.seed for r in by_group[group]]
            if len(set(seeds)) < len(seeds):
                warn(
                    f"{label(group)} ({', '.join(key)}): several runs share a seed ({seeds}); all are averaged"
                )
        table_runs = [r for g in groups for r in by_group[g]]
        references = _references(table_runs, key[3], warn)
        original = next((r["retain_metric"] for r in references if r["kind"] == "original"), None)
        rows = [_group_row(g, by_group[g]) for g in groups]
        complete = [r for r in rows if r["retain_metric"] is not None and r["forget_metric"] is not None]
        # benchmark.md §6 leaderboard: drop rows whose retain metric < collapse_ratio × original's; rank by forget metric
        ranked = leaderboard(complete, original if original is not None else 0.0, collapse_ratio, top)
        incomplete = [{**r, "collapsed": None, "rank": None, "top": False} for r in rows if r not in complete]
        threshold = None if original is None else collapse_ratio * original
        if original is None:
            warn(f"no original evaluation for {', '.join(key)}: the collapse rule is not applied")
            ranked = [{**r, "collapsed": None} for r in ranked]
        for row in ranked + incomplete:
            row["collapse_threshold"] = threshold
        _mark_ties_and_overlaps([r for r in ranked if r.get("rank") is not None])
        tables.append(Table(key, ranked + incomplete, references, original, threshold))
    return tables


def _forget_range(row: Mapping[str, Any]) -> tuple[float, float] | None:
    if row.get("forget_metric") is None or row.get("forget_metric_ci") is None:
        return None
    return row["forget_metric"] - row["forget_metric_ci"], row["forget_metric"] + row["forget_metric_ci"]


def _mark_ties_and_overlaps(ranked: list[dict[str, Any]]) -> None:
    """`tie`: equal Forget metric as a neighbour; `separable_from_above`: False when this row's Forget range
    (mean ± mean bootstrap half-width) overlaps the row ranked just above, None when either has no interval."""
    for row in ranked:
        row["tie"], row["separable_from_above"] = False, None
    for above, row in zip(ranked, ranked[1:], strict=False):
        if math.isclose(
            float(above["forget_metric"]), float(row["forget_metric"]), rel_tol=1e-9, abs_tol=1e-12
        ):
            above["tie"] = row["tie"] = True
        a, b = _forget_range(above), _forget_range(row)
        if a is not None and b is not None:
            row["separable_from_above"] = a[1] < b[0] or b[1] < a[0]


# ----------------------------------------------------------------------------------------------------------
# Robustness (issue 14): per-method seed aggregates of the attacked runs, public via `report.robustness`

ROBUSTNESS = "robustness.json"
NONE = "none"  # the plain evaluation's column: `residual/none`, robustness.json `no_attack`
LABELS = ("unlearned", "gold", "original")  # = attacks.base.LABELS (not imported: it imports torch)
MIA_SCORES = ("loss", "zlib", "min_k", "min_k_plus_plus")


def read_robustness(directory: Path, warn: Callable[[str], None] = stderr_warning) -> dict[str, Any]:
    """The run's `robustness.json`, {} when it has none (attacks not run) or it cannot be read (warned)."""
    return _read_json(Path(directory) / ROBUSTNESS, warn)


def has_robustness(summary: Mapping[str, Any]) -> bool:
    """Whether the run's attacks ran: its summary carries a robust key (even a None one)."""
    return "robust_forget" in summary or any(k.startswith("residual/") for k in summary)


def attack_names(summaries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The `residual/<attack>` names with a value in some summary: "none" first, then in first-seen order.
    Membership inference has no residual forget metric, so it is not among them."""
    names: dict[str, None] = {}
    for summary in summaries:
        for key, value in summary.items():
            if key.startswith("residual/") and value is not None:
                names.setdefault(key.split("/", 1)[1], None)
    return sorted(names, key=lambda a: a != NONE)  # stable: keeps first-seen order after "none"


def _entry(robustness: Mapping[str, Any], attack: str) -> Mapping[str, Any]:
    if attack == NONE:
        return robustness.get("no_attack") or {}
    return (robustness.get("attacks") or {}).get(attack) or {}


def _interval(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    interval = entry.get("interval")
    if not interval or len(interval) != 2 or None in interval:
        return None
    return float(interval[0]), float(interval[1])


def _mia(robustness: Mapping[str, Any]) -> Mapping[str, Any]:
    return next((e for e in (robustness.get("attacks") or {}).values() if (e or {}).get("kind") == "mia"), {})


def _group_key(group: Group) -> tuple[str, ...]:
    return (group.model, group.split, group.metric_mode, group.modality, label(group))


def robust_rows(runs: Sequence[Run], warn: Callable[[str], None] = stderr_warning) -> list[dict[str, Any]]:
    """One row per method (the leaderboard's grouping: model, split, modality, metric mode, method, ℓ1)
    whose runs have robustness keys, from their `summary.json`s; runs without them are left out of the row.

    Keys: mean and sample std over seeds (`<key>`, `<key>_std`) of `robust_forget`, `robust_gap_closed`,
    `gap_closed`, `residual/<attack>` for every attack of the sweep (`attacks`, "none" first) and
    `privacy_leakage/<score>`; `robust_forget_attack` (the most frequent over seeds, `_count` of `_of`
    seeds); `residual/<attack>_variant` (the most frequent worst variant); `residual/<attack>_interval`:
    [mean over seeds of the lower bounds of each run's person-level interval, mean of the upper bounds] —
    an average run's evaluation-sampling interval, NOT an interval of the seed mean (the bootstrap
    replicates are not stored); `auc/<score>/<label>`: the mean membership-inference AUC (the last three
    read from `robustness.json`); `ci_level`: the runs' bootstrap level (most frequent)."""
    by_group: dict[Group, list[Run]] = {}
    for run in runs:
        if has_robustness(run.summary):
            by_group.setdefault(run.group, []).append(run)
    attacks = attack_names(r.summary for g in by_group.values() for r in g)
    rows = []
    for group in sorted(by_group, key=_group_key):
        group_runs = by_group[group]
        summaries = [r.summary for r in group_runs]
        stored = [read_robustness(r.directory, warn) for r in group_runs]
        row: dict[str, Any] = {
            **group._asdict(),
            "label": label(group),
            "seeds": [r.seed for r in group_runs],
            "runs": [str(r.directory) for r in group_runs],
            "n_seeds": len(group_runs),
            "n_robustness_json": sum(1 for s in stored if s),
            "attacks": attacks,
            "ci_level": most_frequent((s.get("bootstrap") or {}).get("level") for s in summaries)[0],
        }
        for key in ("robust_forget", "robust_gap_closed", "gap_closed", "forget_metric"):
            row[key], row[f"{key}_std"] = mean_std(s.get(key) for s in summaries)
        attack, count, of = most_frequent(s.get("robust_forget_attack") for s in summaries)
        row.update(robust_forget_attack=attack, robust_forget_attack_count=count, robust_forget_attack_of=of)
        for a in attacks:
            key = f"residual/{a}"
            row[key], row[f"{key}_std"] = mean_std(s.get(key) for s in summaries)
            row[f"{key}_variant"] = most_frequent(_entry(r, a).get("worst") for r in stored)[0]
            bounds = [b for r in stored if (b := _interval(_entry(r, a))) is not None]
            row[f"{key}_interval"] = (
                [fmean(b[0] for b in bounds), fmean(b[1] for b in bounds)] if bounds else None
            )
            row[f"{key}_n_intervals"] = len(bounds)
        for score in MIA_SCORES:
            key = f"privacy_leakage/{score}"
            row[key], row[f"{key}_std"] = mean_std(s.get(key) for s in summaries)
            for lab in LABELS:
                aucs = [
                    (((_mia(r).get("scores") or {}).get(score) or {}).get("auc") or {}).get(lab)
                    for r in stored
                ]
                row[f"auc/{score}/{lab}"] = mean_std(aucs)[0]
        rows.append(row)
    return rows


def row_name(row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    """The method's label, plus the modality / split / model / metric mode where the rows differ in it."""
    parts = [
        str(row[k])
        for k in ("modality", "split", "model", "metric_mode")
        if len({str(r[k]) for r in rows}) > 1
    ]
    return row["label"] + (f" ({', '.join(parts)})" if parts else "")
