"""`python -m clear_lightning.report runs/`: find the runs, write the leaderboard (md + csv) and the plots."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clear_lightning.errors import ClearConfigError

from .markdown import markdown, write_csv
from .plots import write_plots, write_robustness_plots
from .runs import Run, find_runs, stderr_warning, unfinished_runs
from .tables import Table, build_tables
from .transfer import collapsed, has_transfer, markdown_table, transfer_matrix, write_heatmaps

DESCRIPTION = "`python -m clear_lightning.report runs/` — the leaderboard over seeds (benchmark.md §6) from stored summaries only."


@dataclass
class Report:
    tables: list[Table]
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unfinished: list[dict[str, str]] = field(default_factory=list)  # failed / incomplete runs, not averaged


def build_report(root: Path, out: Path | None = None, collapse_ratio: float = 0.8, top: int = 3) -> Report:
    """Find the runs under root, write the leaderboard (md + csv) and the plots to out (default root/report).

    Runs attacked for robustness (issue 14) add `residual.png` (embedded) and one `robustness_*.png` per run
    with a `robustness.json` (linked), all in out; run directories are never written to."""
    root = Path(root)
    if not root.is_dir():
        raise ClearConfigError(f"{root} is not a directory", "pass the runs directory, e.g. `runs/`")
    report = Report([])

    def warn(message: str) -> None:
        if message in report.warnings:
            return
        report.warnings.append(message)
        stderr_warning(message)

    report.unfinished = unfinished_runs(root, warn)
    for u in report.unfinished:
        warn(f"{u['status']} run {u['dir']} ({u['why']}): not averaged in")
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
    images = write_plots(out, report.tables, runs, warn)
    robust_sweep, robust_runs = write_robustness_plots(out, runs, warn)  # ([], []) without robustness
    images += robust_sweep
    transfer = write_transfer(
        out, runs
    )  # the cross-modal matrix where the face-QA probe was scored (issue 15)
    (out / "leaderboard.md").write_text(
        markdown(
            report.tables,
            root,
            collapse_ratio,
            top,
            [p.name for p in images],
            report.unfinished,
            [p.name for p in robust_runs],
        )
    )
    write_csv(out / "leaderboard.csv", report.tables)
    report.files = [out / "leaderboard.md", out / "leaderboard.csv", *images, *robust_runs, *transfer]
    return report


def write_transfer(out: Path, runs: list[Run], collapse_ratio: float = 0.8) -> list[Path]:
    """Per model and split whose runs scored the face-QA probe in two or more forget modalities: the transfer
    matrix (`transfer_<model>_<split>.md`) and its heatmaps (one per method, and all side by side)."""
    files: list[Path] = []
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.group.model, run.group.split), []).append(run)
    for (model, split), members in sorted(groups.items()):
        if not has_transfer(members):
            continue
        matrix = transfer_matrix(members)
        prefix = f"transfer_{model}_{split}"
        images = write_heatmaps(out, matrix, prefix)
        text = (
            f"# Cross-modal transfer: {model}, {split}\n\nShare of the original-to-gold gap closed per forget "
            "modality and probe (mean ± seed std [mean of the seeds' person-level 95 % bootstrap intervals]); † = "
            f"collapsed (Retain < {collapse_ratio} × the original's).\n\n"
            + markdown_table(matrix, collapsed=collapsed(members, collapse_ratio))
            + "\n\n"
            + "".join(f"![{p.stem}]({p.name})\n" for p in images[-1:])
        )
        (out / f"{prefix}.md").write_text(text)
        files += [out / f"{prefix}.md", *images]
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clear_lightning.report", description=DESCRIPTION)
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
