"""Table 2 (accuracy per group, U-LIRA, U-MIA per method) in Markdown/CSV, per-method JSON and the Fig. 6 plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from .attacks import ulira_accuracy, umia_accuracy
from .shadow import ModelResult

COLUMNS = ("method", "forget", "holdout", "retain", "u_lira", "u_mia", "models")


def attack_matrix(results: list[ModelResult], forget: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(logits[model, example] of the fixed forget persons' probes, member[model])."""
    keep = np.isin(np.array(results[0].person), forget)
    logits = np.array([np.array(r.logit)[keep] for r in results])
    return logits, np.array([r.member for r in results])


def row(method: str, results: list[ModelResult], forget: list[int], scheme: str, seed: int) -> dict[str, Any]:
    logits, member = attack_matrix(results, forget)
    acc = {g: float(np.mean([r.accuracy[g] for r in results])) for g in ("forget", "holdout", "retain")}
    return {
        "method": method,
        **acc,
        "u_lira": ulira_accuracy(logits, member, scheme, seed),
        "u_mia": umia_accuracy(logits, member, scheme, seed),
        "models": len(results),
    }


def write_table(
    out: Path,
    results: dict[str, list[ModelResult]],
    forget: list[int],
    scheme: str,
    seed: int,
    note: str = "",
) -> list[dict[str, Any]]:
    """table.md, table.csv, <method>.json (per-model accuracies and logits) and fig6_logits.png under out."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row(m, rs, forget, scheme, seed) for m, rs in results.items()]
    with open(out / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| method | forget acc | holdout acc | retain acc | U-LIRA | U-MIA | models |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {100 * r['forget']:.1f} | {100 * r['holdout']:.1f} | {100 * r['retain']:.1f} "
            f"| {r['u_lira']:.2f} | {r['u_mia']:.2f} | {r['models']} |"
        )
    text = "\n".join(lines) + "\n" + (f"\n{note}\n" if note else "")
    (out / "table.md").write_text(text)
    for method, rs in results.items():
        logits, member = attack_matrix(rs, forget)
        record = {
            "method": method,
            "models": [{"index": r.index, "member": r.member, "accuracy": r.accuracy} for r in rs],
            "forget_logits": logits[member].ravel().tolist(),  # trained on, then unlearned
            "holdout_logits": logits[~member].ravel().tolist(),  # never seen
        }
        (out / f"{method}.json").write_text(json.dumps(record))
    plot_logits(out / "fig6_logits.png", {m: attack_matrix(rs, forget) for m, rs in results.items()})
    return rows


def plot_logits(path: Path, matrices: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Fig. 6: per method, histograms of the forget persons' logits in "in" (forgotten) vs "out" (holdout) models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 4
    rows = -(-len(matrices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (method, (logits, member)) in zip(axes.flat, matrices.items(), strict=False):
        lo, hi = np.percentile(logits, [1, 99])  # clipped logits (c = 0) would squash the panel
        lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1e-3 else (lo, hi)
        bins = np.linspace(lo, hi, 30)
        ax.hist(np.clip(logits[member].ravel(), lo, hi), bins=bins, alpha=0.6, density=True, label="Forget")
        ax.hist(np.clip(logits[~member].ravel(), lo, hi), bins=bins, alpha=0.6, density=True, label="Holdout")
        ax.set_title(method, fontsize=10)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.axis("off")
    fig.supxlabel("attack logit  log(c / (1 - c))", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
