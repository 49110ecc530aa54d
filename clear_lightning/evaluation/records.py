"""Per-item records on disk: `eval/<set>.jsonl`, the source of truth every aggregate is computed from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_records(directory: Path, records_by_set: dict[str, list[dict[str, Any]]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, records in records_by_set.items():
        with open(directory / f"{name}.jsonl", "w") as f:
            for r in records:
                f.write(json.dumps(r) + "\n")


def read_records(directory: Path) -> dict[str, list[dict[str, Any]]]:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no evaluation records at {directory}")
    return {
        p.stem: [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
        for p in sorted(directory.glob("*.jsonl"))
    }
