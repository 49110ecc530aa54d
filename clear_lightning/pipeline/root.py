"""`run(cfg)`: assemble the run's objects from the config (the one place that reads it), then run one stage."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..artifacts import is_main_process
from ..errors import ClearConfigError
from ..rundir import CLAIM, DONE
from .compose import assemble, attack_config
from .fit import set_threads
from .stages import STAGES


def claim(run_dir: Path) -> None:
    """Own `run_dir` or refuse: two runs never write into one directory (seed 0's config beside seed 1's
    summary), whatever their start times."""
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(run_dir / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        raise ClearConfigError(
            f"run directory {run_dir} already holds another run",
            "give this run a directory of its own (the default hydra.run.dir is unique per process; for a "
            "fixed hydra.run.dir or sweep dir, pick a new one or delete the old run)",
        ) from None
    os.write(fd, f"pid {os.getpid()}\n".encode())
    os.close(fd)


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run `cfg.stage`; returns its result (also written under `cfg.run_dir`). Config errors are raised by
    `compose.assemble`, before anything is built or written."""
    if cfg.stage == "attack":
        cfg = attack_config(cfg)
    p = assemble(cfg)
    s = p.settings
    set_threads(s.threads)
    if is_main_process():
        claim(s.run_dir)
        (s.run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        (s.run_dir / "provenance.json").write_text(json.dumps(p.provenance(stage=s.stage), indent=2))
    start = time.perf_counter()
    try:
        result = STAGES[s.stage](p)
    except (KeyboardInterrupt, SystemExit) as err:  # Lightning turns Ctrl-C during fit into sys.exit(1)
        if isinstance(err, SystemExit) and err.code in (0, None):
            raise
        p.say(
            f"interrupted during stage={s.stage} after {time.perf_counter() - start:.0f} s. Kept: every artifact "
            "published before (an unfinished build is never reused) and this run's config.yaml; not written: "
            f"its results. Rerun the same command to resume from the stored artifacts ({s.run_dir})"
        )
        raise KeyboardInterrupt from None  # the entry point exits 130, without a traceback
    result["seconds"] = time.perf_counter() - start
    if is_main_process():
        (s.run_dir / DONE).write_text(json.dumps(result, indent=2, default=str))
        # again, now with the digests of every model directory the stage loaded
        (s.run_dir / "provenance.json").write_text(json.dumps(p.provenance(stage=s.stage), indent=2))
    p.say(f"{s.stage} finished in {result['seconds']:.1f} s; results in {s.run_dir}")
    return result
