"""The leaderboard as `leaderboard.md` (tables, marks and their footnotes) and `leaderboard.csv`.

A table whose runs were attacked for robustness (issue 14: a `robust_forget` in their summaries) gains two
columns, "Robust forget (worst residual)" and "worst attack", and the csv the `ROBUST_CSV_COLUMNS`; without
robustness both files are exactly as before.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .tables import FLAGGED, METRICS, ROBUST_METRICS, Table

DAGGER, TIE, OVERLAP = "†", "=", "≈"
CSV_COLUMNS = (
    *("kind", "model", "split", "modality", "metric_mode", "method", "l1", "label", "n_seeds", "seeds"),
    *(c for m in METRICS for c in (m, f"{m}_std", f"{m}_ci")),
    "ci_level",
    *(f"{m}_degenerate" for m in FLAGGED),
    *("collapse_threshold", "collapsed", "rank", "top", "tie", "separable_from_above", "runs"),
)
ROBUST_CSV_COLUMNS = (*(c for m in ROBUST_METRICS for c in (m, f"{m}_std")), "robust_forget_attack")
ROBUST_HEAD = " Robust forget (worst residual) ↓ | worst attack |"
ROBUST_NOTE = (
    "Robust forget (worst residual): per run, the largest residual (unlearned − gold under the same attack, "
    "mean over the forget sets' ROUGE-L, probability and truth ratio; > 0 = knowledge that was never removed) "
    "over its score-based attacks, at each attack's "
    "worst variant; mean ± std over seeds. Worst attack: the attack (/variant) giving it, most frequent over "
    "seeds (k of n)."
)
NAMES = {"real_metric": "Real", "retain_metric": "Retain", "forget_metric": "Forget", "model_utility": "MU"}


def _cell(mean: float | None, std: float | None, fmt: str, ci: float | None = None, flag: Any = False) -> str:
    """`mean ± std [±h]` (h: mean bootstrap half-width) with † when the aggregate is degenerate."""
    if mean is None:
        return "—"
    cell = f"{mean:{fmt}}" + ("" if std is None else f" ± {std:{fmt}}")
    cell += "" if ci is None else f" [±{ci:{fmt}}]"
    return cell + (f" {DAGGER}" if flag else "")


def _level(rows: Sequence[Mapping[str, Any]]) -> str:
    levels = {r.get("ci_level") for r in rows if r.get("ci_level") is not None}
    if len(levels) == 1 and isinstance(next(iter(levels)), float):
        return f"{100 * next(iter(levels)):g} %"
    return "95 %" if not levels else "the runs' (mixed) level"


def _table_notes(t: Table) -> list[str]:
    """Footnotes of one table: degenerate aggregates and their reasons, ranks on them, ties, overlaps."""
    notes = []
    flagged = []
    for row in t.references + t.rows:
        causes: dict[str, list[str]] = {}  # one line per cause, naming the aggregates it flags
        for m in FLAGGED:
            for cause in (row.get("degenerate_reasons") or {}).get(m, []):
                causes.setdefault(cause, []).append(NAMES[m])
        flagged += [f"  - {row['label']}: {cause} — {', '.join(aggs)}" for cause, aggs in causes.items()]
    if flagged:
        notes += [
            f"{DAGGER} degenerate aggregate (it says nothing about unlearning): a component at 0 fixes the harmonic "
            "mean at 0; a component the original model scores below the floor was never known:",
            *flagged,
        ]
    ranked = [r for r in t.rows if r.get("rank") is not None]
    on_degenerate = [f"{r['label']} (rank {r['rank']})" for r in ranked if r.get("forget_metric_degenerate")]
    if on_degenerate:
        notes.append(
            f"Ranked on a degenerate Forget metric {DAGGER}: {', '.join(on_degenerate)}; "
            "these ranks do not measure forgetting."
        )
    ties = [f"{r['label']} (rank {r['rank']})" for r in ranked if r.get("tie")]
    if ties:
        notes.append(
            f"{TIE} rank tie: {', '.join(ties)} have the same Forget metric; their order is arbitrary."
        )
    level = _level(ranked)
    for above, row in zip(ranked, ranked[1:], strict=False):
        if row.get("separable_from_above") is False:
            notes.append(
                f"{OVERLAP} not separable at {level}: {above['label']} (rank {above['rank']}) and {row['label']} "
                f"(rank {row['rank']}): their Forget ranges (mean ± mean bootstrap half-width) overlap."
            )
    unjudged = [r["label"] for r in ranked if r.get("forget_metric_ci") is None]
    if len(ranked) > 1 and unjudged:
        notes.append(
            f"Separability not judged for {', '.join(unjudged)}: no bootstrap intervals in their summaries."
        )
    out = []
    for note in notes:  # each note its own paragraph; list items stay under their header
        out += [note] if note.startswith("  - ") else ["", note]
    return out


def _rank_cell(row: Mapping[str, Any]) -> str:
    if row["kind"] != "run":
        return "ref"
    if row.get("rank") is None:
        return "—"
    cell = str(row["rank"]) + (TIE if row.get("tie") else "")
    cell += f" {OVERLAP}" if row.get("separable_from_above") is False else ""
    cell += f" {DAGGER}" if row.get("forget_metric_degenerate") else ""
    return cell + (" ★" if row.get("top") else "")


def _robust(rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(r.get("robust_forget") is not None for r in rows)


def _robust_cells(row: Mapping[str, Any]) -> list[str]:
    attack, of = row.get("robust_forget_attack"), row.get("robust_forget_attack_of") or 0
    if attack is not None and of > 1:
        attack = f"{attack} ({row['robust_forget_attack_count']} of {of})"
    return [_cell(row.get("robust_forget"), row.get("robust_forget_std"), ".3f"), attack or "—"]


def _row_cells(row: Mapping[str, Any], robust: bool = False) -> list[str]:
    name = f"**{row['label']}**" if row.get("top") else row["label"]
    cells = [_rank_cell(row), name]
    cells += [
        _cell(row[m], row[f"{m}_std"], ".3f", row[f"{m}_ci"], row.get(f"{m}_degenerate")) for m in METRICS[:3]
    ]
    fq = row["forget_quality"]
    fmt = ".3f" if fq is None or fq >= 1e-3 else ".2e"
    cells += [
        _cell(fq, row["forget_quality_std"], fmt, row["forget_quality_ci"]),
        _cell(row["log_forget_quality"], row["log_forget_quality_std"], ".2f", row["log_forget_quality_ci"]),
        _cell(row["gap_closed"], row["gap_closed_std"], ".2f", row["gap_closed_ci"]),
        str(row["n_seeds"]),
        {True: "yes", False: "no", None: "—"}[row.get("collapsed")],
    ]
    return cells + (_robust_cells(row) if robust else [])


def markdown(
    tables: Sequence[Table],
    root: Path,
    collapse_ratio: float,
    top: int,
    images: Sequence[str],
    unfinished: Sequence[Mapping[str, str]] = (),
    run_figures: Sequence[str] = (),
) -> str:
    """The leaderboard document: `images` embedded, `run_figures` (one per run, e.g. robustness) linked."""
    n_runs = sum(len(r["runs"]) for t in tables for r in t.rows)
    lines = [
        "# CLEAR leaderboard",
        "",
        f"Produced by `python -m clear_lightning.report {root}` from the `summary.json` of {n_runs} unlearning "
        "runs; values are mean ± sample std (n−1) over seeds, then [±h]: h = the mean over seeds of the half-width "
        "of each run's person-level bootstrap interval (one run's evaluation-sampling uncertainty; not an interval "
        "of the seed mean). Gold and original rows are computed from their per-item records and are not ranked.",
        f"Collapse rule (benchmark.md §6): a method whose Retain metric (mean over seeds) is below {collapse_ratio:g} × the original "
        "model's is marked collapsed and excluded from the ranking; the others are ranked by Forget metric "
        f"(lower is better); the top {top} are marked ★.",
        f"Marks: {DAGGER} degenerate aggregate (reasons below each table; a rank marked {DAGGER} is on a degenerate "
        f"Forget metric), {TIE} rank tie, {OVERLAP} not separable from the method ranked just above (Forget ranges "
        "mean ± h overlap). Gap closed: share of the original-to-gold gap closed on the forget sets, mean over "
        "forget sets and components (0 = original, 1 = gold, > 1 = over-forgetting).",
    ]
    head = "| rank | method | Real ↑ | Retain ↑ | Forget ↓ | FQ ↑ | log FQ ↑ | gap closed (1 = gold) | n seeds | collapsed |"
    for t in tables:
        model, split, modality, mode = t.key
        rule = (
            "not applied (no original evaluation)" if t.threshold is None else f"Retain < {t.threshold:.3f}"
        )
        lines += ["", f"## {modality} — {model}, {split}" + ("" if mode == "paper" else f" ({mode})"), ""]
        robust = _robust(t.rows)
        lines += [
            f"Collapse threshold: {rule}.",
            "",
            head + (ROBUST_HEAD if robust else ""),
            "|" + "---|" * (12 if robust else 10),
        ]
        lines += ["| " + " | ".join(_row_cells(row, robust)) + " |" for row in t.references + t.rows]
        lines += _table_notes(t) + (["", ROBUST_NOTE] if robust else [])
    if unfinished:
        lines += ["", "## Failed and incomplete runs (not averaged in)", ""]
        lines += [f"- {u['status']}: `{u['dir']}` — {u['why']}" for u in unfinished]
    lines += [""] + [f"![{Path(name).stem}]({name})" for name in images]
    if run_figures:
        lines += ["", "## Per-run figures", ""] + [f"- [{Path(name).stem}]({name})" for name in run_figures]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, tables: Sequence[Table]) -> None:
    """`CSV_COLUMNS`, then `ROBUST_CSV_COLUMNS` when some run was attacked for robustness."""
    columns = CSV_COLUMNS + (ROBUST_CSV_COLUMNS if any(_robust(t.rows) for t in tables) else ())
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for t in tables:
            model, split, modality, mode = t.key
            for row in t.references + t.rows:
                out = {"model": model, "split": split, "modality": modality, "metric_mode": mode, **row}
                out["collapse_threshold"] = t.threshold
                out["seeds"] = " ".join(str(s) for s in row["seeds"] if s is not None)
                out["runs"] = ";".join(row["runs"])
                writer.writerow({k: "" if out.get(k) is None else out.get(k) for k in columns})
