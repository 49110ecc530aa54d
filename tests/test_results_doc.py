"""The results document's findings are computed from the leaderboard rows, verdicts included."""

from __future__ import annotations

from clear_lightning.report import Table
from clear_lightning.results_doc import findings


def _row(method: str, l1: bool, retain: float, gap: float, collapsed: bool) -> dict:
    return {
        "method": method,
        "l1": l1,
        "label": method + ("+l1" if l1 else ""),
        "retain_metric": retain,
        "forget_metric": 0.1,
        "gap_closed": gap,
        "collapsed": collapsed,
        "forget_metric_degenerate": False,
    }


def _tables() -> list[Table]:
    refs = [
        {"kind": "original", "retain_metric": 0.6, "forget_metric": 0.5},
        {"kind": "gold", "retain_metric": 0.5, "forget_metric": 0.0},
    ]
    gaps = {"text": 0.3, "visual": 0.6, "both": 0.9}
    tables = []
    for mod, gap in gaps.items():
        rows = [
            _row("ga", False, 0.1, 0.5 if mod == "both" else 1.2, True),
            _row("ga", True, 0.55, 0.1, False),  # rescued by l1, but stops unlearning
            _row("idk", False, 0.58, gap, False),
            _row("idk", True, 0.59, gap, False),
        ]
        tables.append(Table(("tiny", "forget10", mod, "paper"), rows, refs, 0.6, 0.48))
    return tables


def test_findings_verdicts_follow_the_rows() -> None:
    text = "\n".join(findings(_tables()))
    assert (
        "drive forget *and* retain toward zero** (collapsed = Retain below 0.8 × the original's): **holds** (1 of 1)"
        in text
    )
    assert "keep retain**: **holds** (1 of 1); idk (Retain 0.580" in text
    assert "limits the collapse**: **holds** (3 of 3)" in text and "ga/text, ga/visual, ga/both" in text
    assert "more than halves the gap closed" in text and "3 of 6 pairs" in text
    assert (
        "either one alone** (gap closed, within 0.05): **holds partly** (1 of 2); exceptions: ga (both"
        in text
    )
