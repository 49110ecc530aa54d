"""`python -m clear_lightning.report runs/` — the leaderboard over seeds (SPEC §6) from stored summaries only.

Reads every unlearning run's `summary.json` (and, for reference rows and plots, JSONL records); never loads a
model or imports torch. Writes `leaderboard.md`, `leaderboard.csv` and PNG plots (see `plots`).

Beside mean ± std over seeds, each cell shows `[±h]`: h = the mean over seeds of the half-width of each run's
person-level bootstrap interval (`intervals` in summary.json), i.e. the typical evaluation-sampling uncertainty of
one run, not an interval of the seed mean (the replicates are not stored). Two adjacent ranked methods whose Forget
ranges mean ± h overlap are reported as not separable. Degenerate aggregates (summary.json `<aggregate>_degenerate`,
see `metrics.diagnostics`) are marked † with their reasons, rank ties =, and neither is ranked on silently.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from statistics import fmean, stdev
from typing import Any, NamedTuple

from clear_lightning.comparison import short_reason
from clear_lightning.errors import ClearConfigError
from clear_lightning.evaluation.records import read_records
from clear_lightning.metrics.diagnostics import DEFAULT_FLOOR, gap_closed_summary, with_diagnostics
from clear_lightning.metrics.summary import leaderboard, summarize

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
DAGGER, TIE, OVERLAP = "†", "=", "≈"
NON_METHODS = frozenset({"gold", "eval", "original"})  # `method` of the summaries of the other stages
CSV_COLUMNS = (
    *("kind", "model", "split", "modality", "metric_mode", "method", "l1", "label", "n_seeds", "seeds"),
    *(c for m in METRICS for c in (m, f"{m}_std", f"{m}_ci")),
    "ci_level",
    *(f"{m}_degenerate" for m in FLAGGED),
    *("collapse_threshold", "collapsed", "rank", "top", "tie", "separable_from_above", "runs"),
)


class Group(NamedTuple):
    model: str
    split: str
    modality: str
    metric_mode: str
    method: str
    l1: bool


@dataclass(frozen=True)
class Run:
    directory: Path
    summary: dict[str, Any]
    group: Group
    seed: int | None
    gold: Path | None
    original: Path | None


@dataclass
class Table:
    """One leaderboard: the runs of one model, split, modality (and metric mode)."""

    key: tuple[str, str, str, str]
    rows: list[dict[str, Any]]
    references: list[dict[str, Any]]
    original_retain: float | None
    threshold: float | None


@dataclass
class Report:
    tables: list[Table]
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read_json(path: Path, warn: Callable[[str], None]) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError) as err:
        warn(f"cannot read {path} ({err}); skipped")
        return {}


def _path(value: Any) -> Path | None:
    return Path(str(value)) if value else None


def find_runs(root: Path, warn: Callable[[str], None] = _stderr) -> list[Run]:
    """Every unlearning run under root: stage "unlearn" in stage.json/provenance, else a real method name."""
    runs = []
    for path in sorted(Path(root).rglob("summary.json")):
        summary, stage_info = _read_json(path, warn), _read_json(path.parent / "stage.json", warn)
        stage = stage_info.get("stage") or (summary.get("provenance") or {}).get("stage")
        if stage != "unlearn" and (stage is not None or summary.get("method") in NON_METHODS | {None}):
            continue
        config = summary.get("config") or {}
        l1 = float((config.get("method") or {}).get("l1_lambda") or 0.0) > 0.0
        group = Group(
            *(str(summary.get(k, "?")) for k in ("model", "split", "modality")),
            str(summary.get("metric_mode", "paper")),
            str(summary.get("method", "?")),
            l1,
        )
        seed = (summary.get("provenance") or {}).get("seed", config.get("seed"))
        gold = _path(summary.get("gold") or stage_info.get("gold_eval"))
        runs.append(Run(path.parent, summary, group, seed, gold, _path(stage_info.get("original_eval"))))
    return runs


def label(group: Group) -> str:
    return group.method + ("+l1" if group.l1 else "")


def mean_std(values: Iterable[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (n−1) of the present values; std is None for fewer than two."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    return fmean(vals), (stdev(vals) if len(vals) > 1 else None)


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
        # SPEC §6 leaderboard uncertainty: mean over the seeds' person-level bootstrap half-widths
        halves = [h for s in summaries if (h := _half_width(s, metric)) is not None]
        out[f"{metric}_ci"] = fmean(halves) if halves else None
    levels = sorted({float(lv) for s in summaries if (lv := (s.get("bootstrap") or {}).get("level"))})
    out["ci_level"] = levels[0] if len(levels) == 1 else None if not levels else "mixed"
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


@cache
def records_of(directory: Path) -> dict[str, list[dict[str, Any]]]:
    return read_records(directory / "eval")


def summarize_mode(records: Mapping, gold: Mapping | None, mode: str) -> dict[str, Any]:
    """The reference rows are scored like the runs they sit beside (SPEC §6, or §7 when asked)."""
    if mode == "reference_compat":
        from clear_lightning.metrics.reference_compat import summarize_reference_compat

        return summarize_reference_compat(records, gold)
    return summarize(records, gold)


def has_eval(directory: Path | None) -> bool:
    return directory is not None and (directory / "eval").is_dir()


def _floor(runs: Sequence[Run]) -> float:
    """The degenerate floor the runs were judged with (their summaries' `diagnostics`), for the reference rows."""
    for run in runs:
        floor = (run.summary.get("diagnostics") or {}).get("degenerate_floor")
        if floor is not None:
            return float(floor)
    return DEFAULT_FLOOR


def _judged(
    summary: dict[str, Any], original: dict | None, gold: dict | None, floor: float
) -> dict[str, Any]:
    """A paper-mode reference summary with the runs' diagnostics: degenerate flags and gap closed (0 / 1)."""
    out = with_diagnostics(summary, original, floor)
    out["gap_closed"] = None
    if original is not None and gold is not None:
        try:
            out.update(gap_closed_summary(summary, original, gold))
        except ValueError:
            pass
    return out


def _references(runs: Sequence[Run], mode: str, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """Gold and original rows, one evaluation per distinct directory the runs point at."""
    golds = sorted({r.gold for r in runs if r.gold is not None})
    pairs = sorted({(r.original, r.gold) for r in runs if r.original is not None}, key=str)
    for missing in sorted({str(p) for p in [*golds, *(o for o, _ in pairs)] if not has_eval(p)}):
        warn(f"evaluation directory {missing} has no eval/ records: no reference row is computed from it")
    golds, pairs = [g for g in golds if has_eval(g)], [(o, g) for o, g in pairs if has_eval(o)]
    gold_of = {g: summarize_mode(records_of(g), records_of(g), mode) for g in golds}
    originals = [
        (summarize_mode(records_of(o), records_of(g) if has_eval(g) else None, mode), g) for o, g in pairs
    ]
    summaries = {"gold": list(gold_of.values()), "original": [s for s, _ in originals]}
    if mode == "paper":
        floor = _floor(runs)
        original_of = {g: s for s, g in originals if g in gold_of}
        summaries = {
            "gold": [_judged(s, original_of.get(g), s, floor) for g, s in gold_of.items()],
            "original": [_judged(s, s, gold_of.get(g), floor) for s, g in originals],
        }
    dirs = {"gold": golds, "original": [o for o, _ in pairs]}
    return [
        {
            "kind": kind,
            "label": f"{kind} (reference)",
            "seeds": [],
            "runs": [str(d) for d in dirs[kind]],
            **aggregate(rows),
        }
        for kind, rows in summaries.items()
        if rows
    ]


def _group_row(group: Group, runs: Sequence[Run]) -> dict[str, Any]:
    return {
        "kind": "run",
        **group._asdict(),
        "label": label(group),
        "seeds": [r.seed for r in runs],
        "runs": [str(r.directory) for r in runs],
        **aggregate([r.summary for r in runs]),
    }


def build_tables(
    runs: Sequence[Run], collapse_ratio: float, top: int, warn: Callable[[str], None]
) -> list[Table]:
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
        # SPEC §6 leaderboard: drop rows whose retain metric < collapse_ratio × original's; rank by forget metric
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
    names = {
        "real_metric": "Real",
        "retain_metric": "Retain",
        "forget_metric": "Forget",
        "model_utility": "MU",
    }
    notes = []
    flagged = []
    for row in t.references + t.rows:
        causes: dict[str, list[str]] = {}  # one line per cause, naming the aggregates it flags
        for m in FLAGGED:
            for cause in (row.get("degenerate_reasons") or {}).get(m, []):
                causes.setdefault(cause, []).append(names[m])
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


def markdown(
    tables: Sequence[Table], root: Path, collapse_ratio: float, top: int, images: Sequence[str]
) -> str:
    n_runs = sum(len(r["runs"]) for t in tables for r in t.rows)
    lines = [
        "# CLEAR leaderboard",
        "",
        f"Produced by `python -m clear_lightning.report {root}` from the `summary.json` of {n_runs} unlearning "
        "runs; values are mean ± sample std (n−1) over seeds, then [±h]: h = the mean over seeds of the half-width "
        "of each run's person-level bootstrap interval (one run's evaluation-sampling uncertainty; not an interval "
        "of the seed mean). Gold and original rows are computed from their per-item records and are not ranked.",
        f"Collapse rule (SPEC §6): a method whose Retain metric (mean over seeds) is below {collapse_ratio:g} × the original "
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
        lines += [f"Collapse threshold: {rule}.", "", head, "|" + "---|" * 10]
        for row in t.references + t.rows:
            name = f"**{row['label']}**" if row.get("top") else row["label"]
            cells = [_rank_cell(row), name]
            cells += [
                _cell(row[m], row[f"{m}_std"], ".3f", row[f"{m}_ci"], row.get(f"{m}_degenerate"))
                for m in METRICS[:3]
            ]
            fq = row["forget_quality"]
            fmt = ".3f" if fq is None or fq >= 1e-3 else ".2e"
            cells += [_cell(fq, row["forget_quality_std"], fmt, row["forget_quality_ci"])]
            cells += [
                _cell(
                    row["log_forget_quality"],
                    row["log_forget_quality_std"],
                    ".2f",
                    row["log_forget_quality_ci"],
                ),
                _cell(row["gap_closed"], row["gap_closed_std"], ".2f", row["gap_closed_ci"]),
                str(row["n_seeds"]),
            ]
            cells.append({True: "yes", False: "no", None: "—"}[row.get("collapsed")])
            lines.append("| " + " | ".join(cells) + " |")
        lines += _table_notes(t)
    lines += [""] + [f"![{Path(name).stem}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, tables: Sequence[Table]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for t in tables:
            model, split, modality, mode = t.key
            for row in t.references + t.rows:
                out = {"model": model, "split": split, "modality": modality, "metric_mode": mode, **row}
                out["collapse_threshold"] = t.threshold
                out["seeds"] = " ".join(str(s) for s in row["seeds"] if s is not None)
                out["runs"] = ";".join(row["runs"])
                writer.writerow({k: "" if out.get(k) is None else out.get(k) for k in CSV_COLUMNS})


def build_report(root: Path, out: Path | None = None, collapse_ratio: float = 0.8, top: int = 3) -> Report:
    """Find the runs under root, write the leaderboard (md + csv) and the plots to out (default root/report)."""
    root = Path(root)
    if not root.is_dir():
        raise ClearConfigError(f"{root} is not a directory", "pass the runs directory, e.g. `runs/`")
    report = Report([])

    def warn(message: str) -> None:
        if message in report.warnings:
            return
        report.warnings.append(message)
        _stderr(message)

    runs = find_runs(root, warn)
    if not runs:
        raise ClearConfigError(
            f"no unlearning run summaries (summary.json of stage=unlearn) under {root}",
            "run an unlearning stage first, e.g. `python -m clear_lightning -m method=gd,ga seed=0,1`, "
            "then `python -m clear_lightning.report runs/`",
        )
    report.tables = build_tables(runs, collapse_ratio, top, warn)
    out = Path(out) if out is not None else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    from clear_lightning.plots import write_plots

    images = write_plots(out, report.tables, runs, warn)
    (out / "leaderboard.md").write_text(
        markdown(report.tables, root, collapse_ratio, top, [p.name for p in images])
    )
    write_csv(out / "leaderboard.csv", report.tables)
    report.files = [out / "leaderboard.md", out / "leaderboard.csv", *images]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clear_lightning.report", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "dir", type=Path, help="directory searched recursively for run summaries (e.g. runs/)"
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory (default: <dir>/report)")
    parser.add_argument(
        "--collapse-ratio", type=float, default=0.8, help="collapsed: Retain < ratio × original"
    )
    parser.add_argument("--top", type=int, default=3, help="how many ranked methods to mark")
    args = parser.parse_args(argv)
    try:
        report = build_report(args.dir, args.out, args.collapse_ratio, args.top)
    except ClearConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in report.files:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
