"""`python -m clear_lightning.cv.bench --out bench`: wall time of the full CV table, fresh and cached.

Fresh = an empty artifact root (data generation, pre-training, all N models, every method); cached = the same
command again, which must reuse every model. Each run is a subprocess, exactly the command a user types.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _table(root: Path, run_dir: Path, extra: list[str]) -> float:
    cmd = [
        sys.executable,
        "-m",
        "clear_lightning.cv",
        "stage=table",
        f"paths.root={root}",
        f"run_dir={run_dir}",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both runs, e.g. workers=2")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cv-bench-") as tmp:
        root = Path(tmp)
        fresh = _table(root, root / "run-fresh", args.overrides)
        cached = _table(root, root / "run-cached", args.overrides)
        table = (root / "run-fresh" / "table.md").read_text()
    result = {
        "command": " ".join(["python -m clear_lightning.cv stage=table", *args.overrides]),
        "fresh_seconds": round(fresh, 1),
        "cached_seconds": round(cached, 1),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load_before, 2),
        "torch": torch.__version__,
        "machine": platform.platform(),
    }
    (out / "cv.json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        "# CV track benchmark",
        "",
        f"`{result['command']}` on {result['cpus']} CPUs (load average {result['load_average_at_start']} at start).",
        "",
        "| run | wall time |",
        "|---|---:|",
        f"| fresh (data, pre-training, every model and method) | {fresh / 60:.1f} min ({fresh:.0f} s) |",
        f"| cached re-run (every model reused) | {cached:.0f} s |",
        "",
        "Table of the fresh run:",
        "",
        table,
    ]
    (out / "cv.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
