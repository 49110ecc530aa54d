"""The run reader: every unlearning run under a directory, from its stored `summary.json` and `stage.json`.

Shared by the leaderboard (`report.tables`) and the plots (`report.plots`); reads JSON and JSONL records only,
never a model or torch.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from clear_lightning.evaluation.records import read_records
from clear_lightning.rundir import CLAIM, DONE, FAILURE

NON_METHODS = frozenset({"gold", "eval", "original"})  # `method` of the summaries of the other stages

Warn = Callable[[str], None]


class Group(NamedTuple):
    """The runs averaged into one leaderboard row (one per seed)."""

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


def stderr_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read_json(path: Path, warn: Warn) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError) as err:
        warn(f"cannot read {path} ({err}); skipped")
        return {}


def _path(value: Any) -> Path | None:
    return Path(str(value)) if value else None


def unfinished_runs(root: Path, warn: Warn = stderr_warning) -> list[dict[str, str]]:
    """Runs under root that failed (`failure.json`) or never finished (claimed, no `stage.json`): listed by the
    report, never averaged in. {dir, status, why}."""
    out = []
    for path in sorted(Path(root).rglob(FAILURE)):
        failure = _read_json(path, warn)
        why = failure.get("problem") or failure.get("exception") or "unreadable failure.json"
        out.append({"dir": str(path.parent), "status": "failed", "why": str(why).splitlines()[0]})
    failed = {Path(f["dir"]) for f in out}
    for path in sorted(Path(root).rglob(CLAIM)):
        run_dir = path.parent
        if run_dir not in failed and not (run_dir / DONE).exists():
            why = "started, never finished (killed, or still running): no stage.json"
            out.append({"dir": str(run_dir), "status": "incomplete", "why": why})
    return out


def find_runs(root: Path, warn: Warn = stderr_warning) -> list[Run]:
    """Every finished unlearning run under root: stage "unlearn" in stage.json/provenance, else a real method
    name. Failed and unfinished runs (`unfinished_runs`) are left out."""
    runs = []
    unfinished = {Path(u["dir"]) for u in unfinished_runs(root, warn)}
    for path in sorted(Path(root).rglob("summary.json")):
        if path.parent in unfinished:
            continue
        summary, stage_info = _read_json(path, warn), _read_json(path.parent / DONE, warn)
        stage = stage_info.get("stage") or (summary.get("provenance") or {}).get("stage")
        if stage != "unlearn" and (stage is not None or summary.get("method") in NON_METHODS | {None}):
            continue
        config = summary.get("config") or {}
        l1 = float((config.get("method") or {}).get("l1_lambda") or 0.0) > 0.0
        group = Group(
            *(str(summary.get(k, "?")) for k in ("model", "split", "modality")),
            str(summary.get("metric_mode", "paper")),
            # a chain of deletion requests (sequence=nested) is its own row, never averaged with one-shot runs
            str(summary.get("method", "?"))
            + (f"[{seq['name']}]" if (seq := summary.get("sequence")) else ""),
            l1,
        )
        seed = (summary.get("provenance") or {}).get("seed", config.get("seed"))
        gold = _path(summary.get("gold") or stage_info.get("gold_eval"))
        runs.append(Run(path.parent, summary, group, seed, gold, _path(stage_info.get("original_eval"))))
    return runs


def label(group: Group) -> str:
    return group.method + ("+l1" if group.l1 else "")


@cache
def records_of(directory: Path) -> dict[str, list[dict[str, Any]]]:
    """The per-item records of an evaluation directory (`<directory>/eval/*.jsonl`), read once."""
    return read_records(directory / "eval")


def has_eval(directory: Path | None) -> bool:
    return directory is not None and (directory / "eval").is_dir()
