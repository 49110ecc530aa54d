"""Hydra multiruns that survive a failed job: the job writes `failure.json` (the exception, its fix, the
overrides) into its directory and the sweep goes on; at the end the failed jobs are listed and the sweep exits
non-zero. `report` lists failed and incomplete runs and never averages them in."""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from .errors import ClearConfigError
from .rundir import FAILURE


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def record_failure(run_dir: Path, err: BaseException) -> Path:
    """`failure.json` in the job's directory: what failed, why, the fix (for our own errors) and the overrides."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / FAILURE
    path.write_text(
        json.dumps(
            {
                "overrides": overrides,
                "exception": type(err).__name__,
                "problem": getattr(err, "problem", str(err)),
                "fix": getattr(err, "fix", None),
                "traceback": "".join(traceback.format_exception(err)),
            },
            indent=2,
        )
    )
    return path


def run_job(run: Callable[[Any], Any], cfg: Any) -> None:
    """One job of a multirun: a failure is recorded and printed, and the sweep goes on."""
    try:
        run(cfg)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - every failure of a job is recorded, the sweep continues
        path = record_failure(Path(cfg.run_dir), err)
        kind = "" if isinstance(err, ClearConfigError) else f"{type(err).__name__}: "
        print(f"error (job continues the sweep): {kind}{err}\n  recorded in {path}", file=sys.stderr)


def failures(sweep_dir: Path) -> list[dict[str, Any]]:
    """Every recorded failure under a sweep directory, with the job directory."""
    out = []
    for path in sorted(Path(sweep_dir).rglob(FAILURE)):
        try:
            out.append({"dir": str(path.parent), **json.loads(path.read_text())})
        except (OSError, json.JSONDecodeError):
            out.append({"dir": str(path.parent), "problem": "unreadable failure.json"})
    return out


class FailureReport(Callback):
    """At the end of a multirun: list the failed jobs and exit non-zero (`hydra.callbacks` in conf/config.yaml)."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        failed = failures(Path(config.hydra.sweep.dir))
        if not failed:
            return
        print(f"\n{len(failed)} job(s) of the sweep failed:", file=sys.stderr)
        for f in failed:
            fix = f"\n      fix: {f['fix']}" if f.get("fix") else ""
            print(
                f"  - {' '.join(f.get('overrides', []))}: {f.get('problem')}{fix}\n    ({f['dir']})",
                file=sys.stderr,
            )
        sys.exit(1)
