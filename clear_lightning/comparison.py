"""The before/after table a researcher reads first: original vs gold vs unlearned, per evaluation set."""

from __future__ import annotations

from typing import Any

AGGREGATES = ("forget_metric", "retain_metric", "real_metric", "model_utility", "forget_quality")


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def comparison_table(summaries: dict[str, dict[str, Any]], sets: list[str]) -> str:
    """Markdown: one row per set (ROUGE-L recall / probability / truth ratio per model), then aggregates."""
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
        lines.append(f"| **{agg}** | " + " | ".join(_fmt(summaries[lab].get(agg)) for lab in labels) + " |")
    return "\n".join(lines)
