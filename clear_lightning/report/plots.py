"""The report's figures: forget-set truth-ratio distributions vs gold (paper Fig. 6) and the forget/retain trade-off."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clear_lightning.metrics.summary import forget_truth_ratios

from .runs import Run, has_eval, records_of
from .tables import Table

R_CLIP = (
    1e-6,
    1e6,
)  # raw R spans orders of magnitude (0 and inf when exp over/underflows): plot on a log axis
MODALITY_COLOURS = {"text": "tab:blue", "visual": "tab:orange", "both": "tab:green"}
SEED_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9._+-]+", "-", p) for p in parts if p)


def _fmt(mean: float | None, std: float | None, fmt: str) -> str:
    if mean is None:
        return "—"
    return f"{mean:{fmt}}" + ("" if std is None else f" ± {std:{fmt}}")


def _panel(row: dict[str, Any], runs: Sequence[Run], missing: dict[str, int]) -> dict[str, Any] | None:
    """Per-seed forget R of one method's runs, its gold's and its original's; None if no run has gold records."""
    seeds, gold, original = [], None, None
    for run in runs:
        if not has_eval(run.gold) or not (run.directory / "eval").is_dir():
            where = str(run.gold if not has_eval(run.gold) else run.directory)
            missing[where] = missing.get(where, 0) + 1
            continue
        gold_records = records_of(run.gold)
        model_r, gold_r = forget_truth_ratios(records_of(run.directory), gold_records)
        seeds.append((run.seed, model_r))
        gold = gold if gold is not None else gold_r
        if original is None and has_eval(run.original):
            original = forget_truth_ratios(records_of(run.original), gold_records)[0]
    if not seeds or not gold:
        return None
    fq = _fmt(row["forget_quality"], row["forget_quality_std"], ".2g")
    title = f"{row['label']}: FQ = {fq}\n(log FQ = {_fmt(row['log_forget_quality'], None, '.2f')})"
    return {"title": title, "seeds": seeds, "gold": gold, "original": original}


def _ecdf(ax: Any, values: Sequence[float], **style: Any) -> None:
    x = np.sort(np.clip(np.asarray(values, dtype=float), *R_CLIP))
    ax.step(np.concatenate([[x[0]], x]), np.arange(len(x) + 1) / len(x), where="post", **style)


def _log_axis(ax: Any, low: float, high: float) -> None:
    """Log x axis with plain tick labels (0.2, 1, 5) or powers of ten, and no overlapping minor labels."""
    from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(low, high)
    decades = math.log10(high / low)
    subs = (1.0, 2.0, 5.0) if decades < 1.5 else (1.0, 3.0) if decades < 2.5 else (1.0,)
    ax.xaxis.set_major_locator(LogLocator(subs=subs, numticks=6))
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.xaxis.set_major_formatter(plain if decades < 4 else LogFormatterSciNotation())
    ax.xaxis.set_minor_formatter(NullFormatter())


def truth_ratio_figure(path: Path, panels: Sequence[dict[str, Any]], title: str) -> None:
    """Histogram (pooled seeds) over ECDFs (per seed) of forget-set raw R, model vs gold, one column per method."""
    plt = _pyplot()
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(3.6 * ncols, 5.4 * nrows), squeeze=False)
    every = [
        v
        for p in panels
        for vals in [p["gold"], p["original"] or [], *(s[1] for s in p["seeds"])]
        for v in vals
    ]
    low, high = np.clip([min(every), max(every)], *R_CLIP)
    bins = np.logspace(math.log10(low) - 0.1, math.log10(high) + 0.1, 25)
    for i, panel in enumerate(panels):
        hist, ecdf = axes[2 * (i // ncols), i % ncols], axes[2 * (i // ncols) + 1, i % ncols]
        pooled = [v for _, vals in panel["seeds"] for v in vals]
        for vals, style in ((pooled, dict(alpha=0.5, color="tab:red", label="model")),
                            (panel["gold"], dict(histtype="step", lw=2, color="k", label="gold"))):  # fmt: skip
            hist.hist(np.clip(vals, *R_CLIP), bins=bins, weights=np.full(len(vals), 1 / len(vals)), **style)
        _ecdf(ecdf, panel["gold"], color="k", lw=2, label="gold")
        if panel["original"]:
            _ecdf(ecdf, panel["original"], color="0.5", ls="--", label="original")
        for j, (seed, vals) in enumerate(panel["seeds"]):
            _ecdf(ecdf, vals, color=SEED_COLOURS[j % len(SEED_COLOURS)], lw=1.2, label=f"model, seed {seed}")
        hist.set_title(panel["title"], fontsize=9)
        for ax in (hist, ecdf):
            _log_axis(ax, bins[0], bins[-1])
        hist.set_ylabel("fraction (seeds pooled)")
        ecdf.set(xlabel="truth ratio R (forget sets)", ylabel="ECDF", ylim=(0, 1.02))
        hist.legend(fontsize=7)
        ecdf.legend(fontsize=7, loc="best")
    for i in range(len(panels), nrows * ncols):
        axes[2 * (i // ncols), i % ncols].set_visible(False)
        axes[2 * (i // ncols) + 1, i % ncols].set_visible(False)
    fig.suptitle(textwrap.fill(title, width=max(40, 55 * ncols)), fontsize=10)  # one narrow panel: wrap
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def tradeoff_figure(path: Path, tables: Sequence[Table], title: str) -> None:
    """Forget vs Retain metric per method (mean ± std over seeds): one panel per modality, collapsed hollow,
    gold and original as references, labels placed so they do not overlap."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    tables = sorted(
        tables, key=lambda t: list(MODALITY_COLOURS).index(t.key[2]) if t.key[2] in MODALITY_COLOURS else 9
    )
    fig, axes = plt.subplots(
        1, len(tables), figsize=(5.2 * len(tables), 5.2), sharex=True, sharey=True, squeeze=False
    )
    styles = {
        "gold": dict(marker="*", ms=15, color="gold", mec="k"),
        "original": dict(marker="D", ms=9, color="0.4"),
    }
    labels_per_axis, refs_seen, thresholds_seen = [], set(), False
    for ax, table in zip(axes[0], tables, strict=True):
        modality = table.key[2]
        colour = MODALITY_COLOURS.get(modality, "C3")
        points = []
        for row in table.rows:
            if row["retain_metric"] is None or row["forget_metric"] is None:
                continue
            hollow = bool(row.get("collapsed"))
            ax.errorbar(
                row["retain_metric"], row["forget_metric"], xerr=row["retain_metric_std"],
                yerr=row["forget_metric_std"], fmt="o", ms=7, color=colour, capsize=2, elinewidth=0.8,
                mfc="white" if hollow else colour,
            )  # fmt: skip
            text = row["label"] + (" †" if row.get("forget_metric_degenerate") else "")  # see the leaderboard
            points.append((row["retain_metric"], row["forget_metric"], text, colour, hollow))
        for ref in table.references:
            x, y = ref["retain_metric"], ref["forget_metric"]
            if x is not None and y is not None:
                ax.plot(x, y, ls="", zorder=5, **styles[ref["kind"]])
                points.append((x, y, ref["kind"], "k", False))
                refs_seen.add(ref["kind"])
        if table.threshold is not None:
            ax.axvline(table.threshold, color="0.6", ls=":", lw=1)
            thresholds_seen = True
        ax.set(title=f"modality: {modality}", xlabel="Retain metric (higher is better →)")
        ax.grid(alpha=0.3)
        labels_per_axis.append((ax, points))
    axes[0][0].set_ylabel("Forget metric (lower is better ↓)")
    legend = [Line2D([], [], ls="", label=kind, **styles[kind]) for kind in sorted(refs_seen)]
    legend.append(Line2D([], [], color="k", marker="o", mfc="white", ls="", label="collapsed (not ranked)"))
    if thresholds_seen:
        legend.append(Line2D([], [], color="0.6", ls=":", label="collapse threshold"))
    axes[0][0].legend(handles=legend, fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    for ax, points in labels_per_axis:
        _place_labels(ax, points)
    fig.savefig(path, dpi=120)
    plt.close(fig)


_LABEL_OFFSETS = [
    (6, 3),
    (6, -11),
    (-6, 3),
    (-6, -11),
    (6, 15),
    (-6, 15),
    (6, -23),
    (-6, -23),
    (6, 27),
    (-6, 27),
]


def _place_labels(ax: Any, points: Sequence[tuple[float, float, str, str, bool]], fontsize: int = 7) -> None:
    """Annotate each point at the first offset whose label box overlaps no label placed before; ranked runs
    and references go first, so when a crowded spot has no free slot it is a collapsed run's label that is
    left out (every run is in the leaderboard anyway)."""
    to_px = ax.transData.transform
    scale = ax.figure.dpi / 72
    char_w, height = 0.55 * fontsize * scale, 1.25 * fontsize * scale
    placed: list[tuple[float, float, float, float]] = []
    for x, y, text, colour, collapsed in sorted(points, key=lambda p: p[4]):
        px, py = to_px((x, y))
        width = char_w * len(text)
        for dx, dy in _LABEL_OFFSETS:
            x0 = px + dx * scale - (width if dx < 0 else 0)
            box = (x0, py + dy * scale, x0 + width, py + dy * scale + height)
            if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                continue
            placed.append(box)
            ax.annotate(
                text, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize, color=colour,
                ha="left" if dx > 0 else "right", alpha=0.6 if collapsed else 1.0,
                arrowprops=dict(arrowstyle="-", lw=0.4, color=colour, alpha=0.6) if abs(dy) > 11 else None,
            )  # fmt: skip
            break


def write_plots(
    out: Path, tables: Sequence[Table], runs: Sequence[Run], warn: Callable[[str], None]
) -> list[Path]:
    """One truth-ratio figure per leaderboard table, one trade-off figure per model and split."""
    by_dir = {str(r.directory): r for r in runs}
    written, by_split, missing = [], {}, {}
    for table in tables:
        model, split, modality, mode = table.key
        by_split.setdefault((model, split, mode), []).append(table)
        panels = [p for row in table.rows if (p := _panel(row, [by_dir[d] for d in row["runs"]], missing))]
        if not panels:
            continue
        path = out / f"truth_ratio_{_slug(model, split, modality, '' if mode == 'paper' else mode)}.png"
        title = f"Forget-set truth ratio R, model vs gold (KS test = forget quality) — {model}, {split}, {modality}"
        truth_ratio_figure(path, panels, title)
        written.append(path)
    for where, n in missing.items():
        warn(f"no eval/ records at {where}: the truth-ratio panels of {n} run(s) needing it are skipped")
    for (model, split, mode), group in by_split.items():
        path = out / f"tradeoff_{_slug(model, split, '' if mode == 'paper' else mode)}.png"
        tradeoff_figure(path, group, f"Forget vs retain trade-off — {model}, {split} (mean ± std over seeds)")
        written.append(path)
    return written
