"""`python -m clear_lightning.report runs/` — the leaderboard over seeds (benchmark.md §6) from stored summaries only.

Reads every unlearning run's `summary.json` (and, for reference rows and plots, JSONL records); never loads a
model or imports torch. Writes `leaderboard.md`, `leaderboard.csv` and PNG plots.

Beside mean ± std over seeds, each cell shows `[±h]`: h = the mean over seeds of the half-width of each run's
person-level bootstrap interval (`intervals` in summary.json), i.e. the typical evaluation-sampling uncertainty of
one run, not an interval of the seed mean (the replicates are not stored). Two adjacent ranked methods whose Forget
ranges mean ± h overlap are reported as not separable. Degenerate aggregates (summary.json `<aggregate>_degenerate`,
see `metrics.diagnostics`) are marked † with their reasons, rank ties =, and neither is ranked on silently.

Modules, each importing only those above it:

- `runs`: the run reader (`find_runs`, `Run`, `Group`, `records_of`, `has_eval`);
- `tables`: the leaderboard tables (`Table`, `aggregate`, `build_tables`), reference rows scored by
  `metrics.summarizer.Summarizer`;
- `markdown`: `leaderboard.md` and `leaderboard.csv`;
- `plots`: the figures (truth-ratio distributions, forget/retain trade-off; robustness: one run's forget score under
  each attack beside gold's, one sweep's residual-knowledge heatmap);
- `cli`: `build_report` and `main` (`python -m clear_lightning.report`);
- `robustness`: the robustness rows and figures' public names (`robust_rows`, `robustness_figure`,
  `residual_figure`), for `robustness_doc` and `pipeline/robustness.py`.
"""

from .cli import Report, build_report, main
from .markdown import CSV_COLUMNS, DAGGER, OVERLAP, TIE, markdown, write_csv
from .runs import Group, Run, find_runs, has_eval, label, records_of
from .tables import FLAGGED, METRICS, Table, aggregate, build_tables, mean_std

__all__ = [
    "CSV_COLUMNS",
    "DAGGER",
    "FLAGGED",
    "METRICS",
    "OVERLAP",
    "TIE",
    "Group",
    "Report",
    "Run",
    "Table",
    "aggregate",
    "build_report",
    "build_tables",
    "find_runs",
    "has_eval",
    "label",
    "main",
    "markdown",
    "mean_std",
    "records_of",
    "write_csv",
]
