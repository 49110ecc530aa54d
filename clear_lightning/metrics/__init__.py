"""Metrics of CLEAR (SPEC §6, §7): pure per-item formulas, a per-item torchmetrics collector and set summaries.

`functional` holds the formulas, `items.ItemResults` gathers per-item numbers across ranks, `summary` turns
per-item records into the paper-mode summary and leaderboard, `reference_compat` reproduces the authors' code.
"""
