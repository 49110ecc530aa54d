"""Did it really forget? (issue 14): the robustness attacks' seed aggregates and figures, from stored JSON.

A run whose attacks ran has a `robustness.json` (schema: `clear_lightning.attacks.base`) and flat keys in its
`summary.json`: `robust_forget`, `robust_forget_attack`, `robust_gap_closed`, `residual/<attack>` (the
attack's worst-variant residual forget metric, `residual/none` = the plain evaluation) and
`privacy_leakage/<score>`. Residual knowledge = unlearned − gold under the same attack: what gold gains is
learning from the attack's own data, what the unlearned model shows beyond it was never removed (> 0).

- `robust_rows(runs)`: per method (the leaderboard's grouping: model, split, modality, metric mode, method,
  ℓ1), the seed means and stds of those keys, the mean person-level interval bounds and the MIA AUCs (the
  last two from each run's `robustness.json`);
- `robustness_figure(robustness, path, title)`: one run — the forget metric of unlearned, gold and original
  with no attack and under each score-based attack's worst variant, annotated with the residual;
- `residual_figure(rows, path, title)`: one sweep — a heatmap of mean residual knowledge, method × attack;
- `write_robustness_plots(out, runs)`: what `python -m clear_lightning.report` writes, both in its output
  directory (a report never writes into run directories): `residual.png` (embedded in leaderboard.md) and
  one `robustness_<model>_<split>_<modality>_<method>[_<mode>]_seed<k>.png` per run with a
  `robustness.json` (linked under "Per-run figures").

This module is the public entry point; the code lives in `tables` (the rows) and `plots` (the figures),
because the report's modules import only downwards (runs → tables → markdown → plots → cli) and the CLI
writes these figures. Like the rest of the report it reads JSON only and never imports torch.
"""

from __future__ import annotations

from .plots import residual_figure, robustness_figure, write_robustness_plots
from .tables import (
    LABELS,
    MIA_SCORES,
    NONE,
    ROBUSTNESS,
    attack_names,
    has_robustness,
    read_robustness,
    robust_rows,
    row_name,
)

__all__ = [
    "LABELS",
    "MIA_SCORES",
    "NONE",
    "ROBUSTNESS",
    "attack_names",
    "has_robustness",
    "read_robustness",
    "residual_figure",
    "robust_rows",
    "robustness_figure",
    "row_name",
    "write_robustness_plots",
]
