"""The whole program under 2-process DDP on CPU (gloo): every rank runs it, artifacts publish once, and the
evaluation records equal the single-process ones. Slow (three interpreters), so out of `make test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(home: Path, run_dir: Path, *overrides: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
    cmd = [
        sys.executable,
        "-m",
        "clear_lightning",
        "debug=fast",
        f"paths.root={home}",
        f"hydra.run.dir={run_dir}",
    ]
    subprocess.run([*cmd, *overrides], cwd=ROOT, env=env, check=True, capture_output=True, timeout=900)


def _records(run_dir: Path) -> dict[str, list[dict]]:
    return {
        f.stem: [json.loads(line) for line in f.open()] for f in sorted((run_dir / "eval").glob("*.jsonl"))
    }


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.precision=32-true"]
    _run(tmp_path, tmp_path / "single", "stage=eval")  # builds base + original in one process
    _run(tmp_path, tmp_path / "ddp", "stage=eval", *ddp)
    single, multi = _records(tmp_path / "single"), _records(tmp_path / "ddp")
    assert single.keys() == multi.keys()
    for name in single:
        assert [r["id"] for r in multi[name]] == [r["id"] for r in single[name]]  # no item lost or doubled
        for a, b in zip(single[name], multi[name], strict=True):
            assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
            assert b["generation"] == a["generation"]
    # fit under DDP too: gold is built by both ranks, published once, then unlearning and scoring
    _run(tmp_path, tmp_path / "unlearn", "method=npo", *ddp)
    summary = json.loads((tmp_path / "unlearn" / "summary.json").read_text())
    assert summary["forget_quality"] is not None
    assert len(list((tmp_path / "artifacts" / "gold").iterdir())) == 1
