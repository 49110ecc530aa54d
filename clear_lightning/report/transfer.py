"""The cross-modal transfer matrix (issue 15): for each method, forget modality {text, visual, both} × forget probe
{text QA, caption, face → name, face-QA}, each cell the share of the original-to-gold gap the runs closed on that
probe (`gap_closed/<set>` of summary.json; 1 = like gold, 0 = still the original).

A cell holds the mean over seeds, the seeds' standard deviation and the mean of the seeds' person-level bootstrap
intervals (the original's and gold's records resampled jointly with the model's, `metrics.summarizer`). Reads
summaries only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from clear_lightning.metrics.summary import SET_COMPONENTS

from .runs import Run, label

PROBES: dict[str, str] = {  # forget set -> what it asks
    "forget_qa": "text QA",
    "forget_caption": "caption",
    "forget_face_name": "face → name",
    "forget_face_qa": "face-QA",
}
MODALITIES = ("text", "visual", "both")
PROBE_MODALITY = {
    "forget_qa": "text",
    "forget_caption": "visual",
    "forget_face_name": "visual",
}  # face-QA: both


@dataclass(frozen=True)
class Cell:
    """One (forget modality, probe) cell of one method, over its seeds."""

    mean: float
    std: float | None
    lo: float | None  # mean over seeds of the bootstrap interval's bounds
    hi: float | None
    n: int

    def text(self, with_interval: bool = True) -> str:
        out = f"{self.mean:.2f}" + ("" if self.std is None else f" ± {self.std:.2f}")
        if with_interval and self.lo is not None and self.hi is not None:
            out += f" [{self.lo:.2f}, {self.hi:.2f}]"
        return out


Matrix = dict[str, dict[tuple[str, str], Cell]]  # method -> (modality, probe) -> cell


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def cell(summaries: Sequence[Mapping[str, Any]], key: str) -> Cell | None:
    """The cell of `key` (e.g. `gap_closed/forget_face_qa`) over the summaries that have it; None if none has."""
    values, los, his = [], [], []
    for summary in summaries:
        value = _finite(summary.get(key))
        if value is None:
            continue
        values.append(value)
        interval = (summary.get("intervals") or {}).get(key)
        if interval and None not in interval:
            los.append(float(interval[0]))
            his.append(float(interval[1]))
    if not values:
        return None
    both = len(los) == len(values)
    return Cell(
        fmean(values),
        stdev(values) if len(values) > 1 else None,
        fmean(los) if both else None,
        fmean(his) if both else None,
        len(values),
    )


def transfer_matrix(runs: Iterable[Run], component: str | None = None) -> Matrix:
    """{method: {(forget modality, probe): Cell}} from the runs' summaries; `component` (e.g. `probability`)
    takes that component's gap closed instead of the set's mean over ROUGE-L, probability and truth ratio."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for run in runs:
        grouped.setdefault((label(run.group), run.group.modality), []).append(run.summary)
    out: Matrix = {}
    for (method, modality), summaries in sorted(grouped.items()):
        for probe in PROBES:
            key = f"gap_closed/{probe}" + (f"/{component}" if component else "")
            found = cell(summaries, key)
            if found is not None:
                out.setdefault(method, {})[(modality, probe)] = found
    return out


def reference_gaps(runs: Iterable[Run]) -> dict[str, dict[str, float]]:
    """{probe: {component: original − gold}} from the first run's `references` that has the probe: how much
    there is to forget on each probe (a small gap makes its gap closed noisy)."""
    for run in runs:
        refs = run.summary.get("references") or {}
        original, gold = refs.get("original") or {}, refs.get("gold") or {}
        if "forget_face_qa/probability" not in original:
            continue
        return {
            probe: {
                c: float(original[f"{probe}/{c}"]) - float(gold[f"{probe}/{c}"])
                for c in SET_COMPONENTS
                if original.get(f"{probe}/{c}") is not None and gold.get(f"{probe}/{c}") is not None
            }
            for probe in PROBES
        }
    return {}


def collapsed(runs: Iterable[Run], ratio: float = 0.8) -> dict[tuple[str, str], bool]:
    """{(method, modality): Retain < ratio × the original's Retain in most seeds} from the runs' references: a
    collapsed model closes every gap by being destroyed, not by forgetting (benchmark.md §6)."""
    out: dict[tuple[str, str], list[bool]] = {}
    for run in runs:
        original = ((run.summary.get("references") or {}).get("original") or {}).get("retain_metric")
        retain = run.summary.get("retain_metric")
        if original is None or retain is None:
            continue
        key = (label(run.group), run.group.modality)
        out.setdefault(key, []).append(float(retain) < ratio * float(original))
    return {k: fmean(v) > 0.5 for k, v in out.items()}


def markdown_table(
    matrix: Matrix, with_interval: bool = True, collapsed: Mapping[tuple[str, str], bool] | None = None
) -> str:
    """One row per method × forget modality, one column per probe; † marks a collapsed (method, modality)."""
    lines = [
        "| method | forget modality | " + " | ".join(PROBES.values()) + " |",
        "|---|---|" + "---|" * len(PROBES),
    ]
    for method, cells in matrix.items():
        for modality in MODALITIES:
            if not any((modality, p) in cells for p in PROBES):
                continue
            row = [
                cells[(modality, p)].text(with_interval) if (modality, p) in cells else "—" for p in PROBES
            ]
            mark = " †" if (collapsed or {}).get((method, modality)) else ""
            lines.append(f"| {method}{mark} | {modality} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _colours() -> Any:
    """Red at the original (0), yellow halfway, green at gold (1), blue past gold (over-forgetting)."""
    from matplotlib.colors import LinearSegmentedColormap

    stops = [(0.0, "#7f0000"), (0.25, "#d7301f"), (0.5, "#fee08b"), (0.75, "#1a9850"), (1.0, "#2c7fb8")]
    return LinearSegmentedColormap.from_list("gap_closed", stops)


def heatmap(ax: Any, cells: Mapping[tuple[str, str], Cell], title: str) -> Any:
    """One method's matrix on `ax`: rows = forget modality, columns = probe, colour = gap closed (0 → 1)."""
    import numpy as np

    grid = np.full((len(MODALITIES), len(PROBES)), np.nan)
    for i, modality in enumerate(MODALITIES):
        for j, probe in enumerate(PROBES):
            if (modality, probe) in cells:
                grid[i, j] = cells[(modality, probe)].mean
    image = ax.imshow(np.clip(grid, -0.5, 1.5), cmap=_colours(), vmin=-0.5, vmax=1.5, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(PROBES)), list(PROBES.values()), fontsize=7, rotation=20)
    ax.set_yticks(range(len(MODALITIES)), [f"forget {m}" for m in MODALITIES], fontsize=7)
    ax.set_title(title, fontsize=9)
    return image


def write_heatmaps(out: Path, matrix: Matrix, prefix: str = "transfer") -> list[Path]:
    """`<prefix>_<method>.png` per method and `<prefix>_matrix.png` with every method's matrix side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    files = []
    for method, cells in matrix.items():
        fig, ax = plt.subplots(figsize=(5.5, 2.8), layout="constrained")
        image = heatmap(ax, cells, f"{method}: share of the original-to-gold gap closed")
        fig.colorbar(image, ax=ax, fraction=0.05, label="gap closed")
        files.append(out / f"{prefix}_{method}.png")
        fig.savefig(files[-1], dpi=110)
        plt.close(fig)
    if matrix:
        cols = min(4, len(matrix))
        rows = -(-len(matrix) // cols)
        fig, axes = plt.subplots(
            rows, cols, figsize=(4.4 * cols, 2.6 * rows), squeeze=False, layout="constrained"
        )
        image = None
        for ax, (method, cells) in zip(axes.flat, matrix.items(), strict=False):
            image = heatmap(ax, cells, method)
        for ax in list(axes.flat)[len(matrix) :]:
            ax.axis("off")
        fig.suptitle(
            "Gap closed per forget modality (rows) and probe (columns): 0 = original, 1 = gold, > 1 = past gold"
        )
        if image is not None:
            fig.colorbar(image, ax=axes, fraction=0.02, label="gap closed")
        files.append(out / f"{prefix}_matrix.png")
        fig.savefig(files[-1], dpi=100, bbox_inches="tight")
        plt.close(fig)
    return files


def has_transfer(runs: Sequence[Run]) -> bool:
    """Whether the runs make a matrix: the face-QA probe was scored, in at least two forget modalities."""
    probed = [r for r in runs if "gap_closed/forget_face_qa" in r.summary]
    return len({r.group.modality for r in probed}) >= 2
