"""Metrics of CLEAR (benchmark.md §6, §7): pure per-item formulas, a per-item torchmetrics collector and set summaries.

`functional` holds the formulas, `items.ItemResults` gathers per-item numbers across ranks, `summary` turns
per-item records into the paper-mode summary and leaderboard, `reference_compat` reproduces the authors' code.
`diagnostics` judges a paper-mode summary (the component that sets each aggregate, degenerate flags, the share of
the original-to-gold gap closed, gold's holdout gap) and `bootstrap` gives person-level intervals of any statistic
of the records; `summarizer.Summarizer` (the one summarizer of the pipeline and the report) puts both into every
paper-mode summary.json.
"""
