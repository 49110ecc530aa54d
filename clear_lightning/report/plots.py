"""The report's figures: forget-set truth-ratio distributions vs gold (paper Fig. 6), the forget/retain
trade-off and, for runs attacked for robustness (issue 14, `report.robustness`), residual knowledge per run
and per sweep."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from clear_lightning.metrics.summary import forget_truth_ratios

from .runs import Run, has_eval, label, records_of, stderr_warning
from .tables import LABELS, NONE, ROBUSTNESS, Table, read_robustness, robust_rows, row_name

R_CLIP = (
    1e-6,
    1e6,
)  # raw R spans orders of magnitude (0 and inf when exp over/underflows): plot on a log axis
MODALITY_COLOURS = {"text": "tab:blue", "visual": "tab:orange", "both": "tab:green"}
SEED_COLOURS = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
BAR_STYLES = {  # robustness_figure
    "unlearned": dict(color="tab:red", label="unlearned"),
    "gold": dict(color="#e3b505", edgecolor="k", linewidth=0.6, label="gold (same attack)"),
    "original": dict(color="0.55", alpha=0.3, label="original (same attack)"),
}


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


# ----------------------------------------------------------------------------------------------------------
# Robustness (issue 14): one run's attacks, one sweep's residual knowledge, public via `report.robustness`


def _finite(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _bar_groups(robustness: Mapping[str, Any]) -> list[dict[str, Any]]:
    """No attack, then each score-based attack at its worst variant: the three models' forget score (mean of the
    forget sets' components, `forget_mean`, which no zero component pins to 0), the residual and its interval."""
    entries = [(NONE, robustness.get("no_attack"))] + list((robustness.get("attacks") or {}).items())
    groups = []
    for name, entry in entries:
        if not entry or entry.get("kind") == "mia":
            continue
        variants = entry.get("variants") or {}
        variant = entry.get("worst") or (next(iter(variants)) if len(variants) == 1 else None)
        chosen = variants.get(variant) or {}
        forget = {lab: ((chosen.get("scores") or {}).get(lab) or {}).get("forget_mean") for lab in LABELS}
        if forget["unlearned"] is None:
            continue
        residual = (chosen.get("residual") or {}).get("mean", entry.get("residual_forget"))
        interval = (chosen.get("intervals") or {}).get("residual/mean") or entry.get("interval")
        if name == NONE:
            title = "no attack"
        else:
            title = name if variant in (None, "default", NONE) else f"{name} ({variant})"
        groups.append({"title": title, "forget": forget, "residual": residual, "interval": interval})
    return groups


def robustness_figure(robustness: Mapping[str, Any], path: Path, title: str) -> Path:
    """One run: grouped bars of the forget score (mean component) with no attack and under each score-based attack (its
    worst variant) — unlearned, gold under the same attack beside it, the original faint — annotated with the
    residual (unlearned − gold) and its person-level interval: a bar above gold's shows what came back."""
    groups = _bar_groups(robustness)
    if not groups:
        raise ValueError("robustness.json has no score-based entry with an unlearned forget metric to plot")
    plt = _pyplot()
    n = len(groups)
    width_in = max(7.0, 1.6 * n + 2.0)
    fig, ax = plt.subplots(figsize=(width_in, 5.2))
    x, width = np.arange(n), 0.27
    for i, lab in enumerate(LABELS):
        values = [_finite(g["forget"][lab]) for g in groups]
        ax.bar(x + (i - 1) * width, values, width, zorder=2, **BAR_STYLES[lab])
    tops = [max((v for v in g["forget"].values() if v is not None), default=0.0) for g in groups]
    span = max([*tops, 1e-3])
    for xi, top, group in zip(x, tops, groups, strict=True):
        residual = group["residual"]
        if residual is None:
            continue
        text = f"residual {residual:+.3f}"
        if group["interval"] and None not in group["interval"]:
            text += f"\n[{group['interval'][0]:+.3f}, {group['interval'][1]:+.3f}]"
        colour = "tab:red" if residual > 0 else "0.25"
        ax.annotate(text, (xi, top), xytext=(0, 4), textcoords="offset points", ha="center", va="bottom",
                    fontsize=8, color=colour)  # fmt: skip
    ax.set_ylim(0, span * 1.35)
    ax.set_xticks(
        x, [g["title"] for g in groups], rotation=20 if n > 4 else 0, ha="right" if n > 4 else "center"
    )
    ax.set_ylabel("Forget score: mean of forget ROUGE-L, prob., TR (lower = less known)")
    ax.grid(axis="y", alpha=0.3, zorder=0)
    fig.legend(fontsize=8, loc="lower center", ncols=3, frameon=False)
    note = (
        "Worst variant per attack. Residual = unlearned − gold under the same attack (> 0: knowledge never "
        "removed), [its person-level interval]."
    )
    ax.set_title(textwrap.fill(note, width=int(14 * width_in)), fontsize=8)
    fig.suptitle(textwrap.fill(title, width=int(10 * width_in)), fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return Path(path)


def residual_figure(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """One sweep: mean residual knowledge over seeds, method (rows) × attack (columns, "no attack" first),
    each cell annotated; diverging colours centred on 0 (red: knowledge back beyond gold, blue: below)."""
    if not rows:
        raise ValueError("no robustness rows to plot")
    attacks = list(dict.fromkeys(a for r in rows for a in r["attacks"]))
    data = np.array([[_finite(r.get(f"residual/{a}")) for a in attacks] for r in rows], dtype=float)
    finite = data[np.isfinite(data)]
    limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 1e-3)
    plt = _pyplot()
    from matplotlib.colors import Normalize

    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.9")
    width_in = max(6.5, 1.15 * len(attacks) + 3.5)
    fig, ax = plt.subplots(figsize=(width_in, max(2.8, 0.45 * len(rows) + 2.0)))
    image = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=Normalize(-limit, limit), aspect="auto")
    for (i, j), value in np.ndenumerate(data):
        text, colour = ("—", "0.4") if math.isnan(value) else (f"{value:+.2f}", "k")
        if not math.isnan(value) and abs(value) > 0.6 * limit:
            colour = "w"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    columns = ["no attack" if a == NONE else a for a in attacks]
    ax.set_xticks(range(len(attacks)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [row_name(r, rows) for r in rows])
    bar = fig.colorbar(image, ax=ax, fraction=0.04)
    bar.set_label(
        "residual = unlearned − gold (mean forget component)\n> 0: knowledge never removed", fontsize=8
    )
    ax.set_title(textwrap.fill(title, width=int(11 * width_in)), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return Path(path)


def write_robustness_plots(
    out: Path, runs: Sequence[Run], warn: Callable[[str], None] = stderr_warning
) -> tuple[list[Path], list[Path]]:
    """(sweep figures, per-run figures) written to out: `residual.png` when some run has robustness keys, and
    `robustness_<model>_<split>_<modality>_<method>[_<mode>]_seed<k>.png` per run with a `robustness.json`.
    Nothing at all for runs without robustness, so their report is unchanged."""
    rows = robust_rows(runs, warn)
    sweep: list[Path] = []
    if rows and any(r["attacks"] for r in rows):
        title = "Residual knowledge under attack: unlearned − gold (mean forget component), worst variant, mean over seeds"
        sweep.append(residual_figure(rows, out / "residual.png", title))
    per_run, used = [], set()
    for run in runs:
        stored = read_robustness(run.directory, warn) if (run.directory / ROBUSTNESS).exists() else {}
        if not stored:
            continue
        g = run.group
        name = _slug("robustness", g.model, g.split, g.modality, label(g),
                     "" if g.metric_mode == "paper" else g.metric_mode, f"seed{run.seed}")  # fmt: skip
        k = 1
        while name in used:  # several runs share a seed (the leaderboard warns): keep every figure
            k += 1
            name = f"{name.rsplit('__', 1)[0]}__{k}"
        used.add(name)
        title = f"Did it really forget? {label(g)} — {g.modality}, {g.split}, {g.model}, seed {run.seed}"
        try:
            per_run.append(robustness_figure(stored, out / f"{name}.png", title))
        except ValueError as err:
            warn(f"{run.directory / ROBUSTNESS}: {err}; no robustness figure for this run")
    return sweep, per_run
