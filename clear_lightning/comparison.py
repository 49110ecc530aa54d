"""The before/after table a researcher reads first: original vs gold vs unlearned, per evaluation set."""

from __future__ import annotations

from typing import Any

AGGREGATES = (
    "forget_metric",
    "retain_metric",
    "real_metric",
    "model_utility",
    "forget_quality",
    "gap_closed",
)
DAGGER = "†"


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _aggregate_cell(summary: dict[str, Any], aggregate: str) -> str:
    """Value, its bootstrap interval when the summary has one, and † when the aggregate is degenerate."""
    cell = _fmt(summary.get(aggregate))
    interval = (summary.get("intervals") or {}).get(aggregate)
    if summary.get(aggregate) is not None and interval:
        cell += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return cell + (f" {DAGGER}" if summary.get(f"{aggregate}_degenerate") else "")


def short_reason(reason: str) -> tuple[str, str]:
    """`"forget_metric: forget_qa/probability = 0: the harmonic mean ..."` -> ("forget_metric", "forget_qa/probability
    = 0"): the aggregate and the cause without its explanation (the table's footnote header explains both kinds)."""
    aggregate, _, rest = reason.partition(": ")
    return aggregate, rest.split(": ", 1)[0]


def _footnotes(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """One line per distinct cause: which models it concerns and which of their aggregates it flags."""
    causes: dict[str, dict[str, list[str]]] = {}
    for label, summary in summaries.items():
        for reason in summary.get("degenerate_reasons") or []:
            aggregate, cause = short_reason(reason)
            aggregates = causes.setdefault(cause, {}).setdefault(label, [])
            if aggregate not in aggregates:
                aggregates.append(aggregate)
    lines = []
    for cause, by_label in causes.items():
        groups: dict[tuple[str, ...], list[str]] = {}
        for label, aggregates in by_label.items():
            groups.setdefault(tuple(aggregates), []).append(label)
        for aggregates, labels in groups.items():
            lines.append(f"- {cause} — {', '.join(labels)}: {', '.join(aggregates)}")
    notes = []
    if lines:
        notes += [
            "",
            f"{DAGGER} degenerate (says nothing about unlearning; do not rank on it): a component at 0 fixes the "
            "harmonic mean at 0, and a component the original model scores below the floor was never known:",
            *lines,
        ]
    levels = {s.get("bootstrap", {}).get("level") for s in summaries.values() if s.get("intervals")}
    if levels:
        level = ", ".join(f"{100 * v:g} %" for v in sorted(x for x in levels if x is not None))
        notes += ["", f"[lo, hi]: person-level bootstrap {level} interval."]
    if any(s.get("gap_closed") is not None for s in summaries.values()):
        notes += [
            "gap_closed: share of the original-to-gold gap closed on the forget sets (0 = original, 1 = gold, "
            "> 1 = over-forgetting)."
        ]
    return notes


def comparison_table(summaries: dict[str, dict[str, Any]], sets: list[str]) -> str:
    """Markdown: one row per set (ROUGE-L recall / probability / truth ratio per model), then aggregates.

    Aggregates carry their bootstrap interval when the summary has one and † when flagged degenerate; the reasons
    follow the table as footnotes.
    """
    labels = list(summaries)
    head = "| set | " + " | ".join(f"{lab} RL / P / TR" for lab in labels) + " |"
    lines = [head, "|" + "---|" * (len(labels) + 1)]
    for name in sets:
        cells = []
        for lab in labels:
            s = summaries[lab]
            cells.append(
                " / ".join(
                    _fmt(s.get(f"{name}/{m}")) for m in ("rougeL_recall", "probability", "truth_ratio")
                )
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for agg in AGGREGATES:
        cells = [_aggregate_cell(summaries[lab], agg) for lab in labels]
        lines.append(f"| **{agg}** | " + " | ".join(cells) + " |")
    return "\n".join(lines + _footnotes(summaries))
