"""Nothing lost, nothing silently wrong: run directories, early validation, failed sweep jobs, messages.

(Artifact integrity: test_artifact_integrity.py; snapshot integrity: test_data_integrity.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clear_lightning.config import PROJECT_ROOT
from clear_lightning.errors import ClearConfigError, run_or_exit
from clear_lightning.pipeline import run
from clear_lightning.pipeline.root import claim

CLI = [sys.executable, "-m", "clear_lightning"]
TINY = ["debug=fast", "stage=pretrain"]  # seconds: a 1-epoch tiny base, the cheapest stage that writes a run


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


# --- run directories -------------------------------------------------------------------------------------------
def test_a_claimed_run_directory_is_refused(tmp_path: Path) -> None:
    claim(tmp_path / "run")
    with pytest.raises(
        ClearConfigError, match=r"(?s)already holds another run.*fix: give this run a directory"
    ):
        claim(tmp_path / "run")


def test_two_seeds_started_together_get_two_directories(tmp_path: Path) -> None:
    """What a job scheduler does: the same command with seed 0 and 1 started in the same second."""
    runs = tmp_path / "runs"
    procs = [
        subprocess.Popen(
            [*CLI, *TINY, f"paths.root={tmp_path}", f"paths.runs={runs}", f"seed={seed}"],
            cwd=PROJECT_ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for seed in (0, 1)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    configs = sorted(c for c in runs.rglob("config.yaml") if c.parent.name != ".hydra")  # ours, not Hydra's
    assert len({c.parent for c in configs}) == 2
    seeds = sorted(
        int(next(line for line in c.read_text().splitlines() if line.startswith("seed:")).split()[1])
        for c in configs
    )
    assert seeds == [0, 1]  # each directory holds its own run's config, next to its own results
    assert all((c.parent / "stage.json").is_file() for c in configs)


# --- validation before anything is built -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("optim.lr=0", r"optim.lr=0.*must be > 0.*no optimiser step.*fix: set optim.lr > 0"),
        ("optim.epochs=0", r"optim.epochs=0.*must be >= 1.*no optimiser step"),
        ("optim.lr=-1", r"optim.lr=-1 must be > 0.0\n"),
        ("optim.batch_size=0", r"optim.batch_size=0.*must be >= 1"),
        ("method.l1_lambda=-0.1", r"method.l1_lambda=-0.1.*must be >= 0"),
        ("method.retain_weight=-1", r"method.retain_weight=-1.*weight"),
        ("degenerate_floor=1.5", r"degenerate_floor=1.5.*probability"),
        ("bootstrap.level=1", r"bootstrap.level=1.*\(0, 1\)"),
        ("finetune.warmup_ratio=2", r"finetune.warmup_ratio=2.*probability"),
    ],
)
def test_bad_numbers_are_refused_before_anything_is_built(make_cfg, override: str, pattern: str) -> None:
    cfg = make_cfg(override)
    before = sorted(Path(cfg.paths.artifacts).glob("*/*")) if Path(cfg.paths.artifacts).exists() else []
    with pytest.raises(ClearConfigError, match=f"(?s){pattern}"):
        run(cfg)
    after = sorted(Path(cfg.paths.artifacts).glob("*/*")) if Path(cfg.paths.artifacts).exists() else []
    assert after == before and not (Path(cfg.run_dir) / "config.yaml").exists()


def test_eval_gold_is_honoured_or_refused(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ClearConfigError, match=r"(?s)eval.gold=.*not a gold evaluation directory.*fix:"):
        run(make_cfg(f"eval.gold={tmp_path}/missing"))
    with pytest.raises(ClearConfigError, match=r"(?s)eval.gold is set, but stage=finetune"):
        run(make_cfg("stage=finetune", f"eval.gold={tmp_path}"))


def test_a_checkpoint_that_is_a_file_is_named_as_such(make_cfg, tmp_path: Path) -> None:
    file = tmp_path / "model.safetensors"
    file.write_bytes(b"x")
    with pytest.raises(
        ClearConfigError, match=r"(?s)is a file, not a checkpoint directory.*adapter_config.json"
    ):
        run(make_cfg("stage=eval", f"eval.checkpoint={file}"))


def test_a_broken_adapter_config_is_named(unlearn_result, make_cfg, tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{not json")
    with pytest.raises(ClearConfigError, match=r"(?s)adapter_config.json is not valid JSON.*fix: re-save"):
        run(make_cfg("stage=eval", f"eval.checkpoint={adapter}"))


# --- messages ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [KeyboardInterrupt, lambda: SystemExit(1)])  # the latter: Lightning's Ctrl-C
def test_sigint_says_what_was_interrupted_and_kept(make_cfg, monkeypatch, capsys, how) -> None:
    from clear_lightning.pipeline import stages

    def interrupted(p):
        raise how()

    monkeypatch.setitem(stages.STAGES, "pretrain", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        run_or_exit(run, make_cfg("stage=pretrain"))
    assert exit_info.value.code == 130
    out = capsys.readouterr().out
    assert "interrupted during stage=pretrain" in out and "Kept: every artifact published before" in out


def test_wandb_mode_online_turns_wandb_online(make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "online")
    assert make_cfg("logger=wandb").logger.offline is False
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert make_cfg("logger=wandb").logger.offline is True


# --- sweeps --------------------------------------------------------------------------------------------------------
def test_a_failed_job_does_not_end_the_sweep(tmp_path: Path) -> None:
    """pretrain.epochs=0 fails (refused), pretrain.epochs=1 still runs after it; the sweep lists the failure
    and exits non-zero; the failed job's directory holds failure.json with its fix and overrides."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [*CLI, "-m", *TINY, f"paths.root={tmp_path}", f"hydra.sweep.dir={sweep}", "pretrain.epochs=0,1"],
        cwd=PROJECT_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0
    failures = list(sweep.rglob("failure.json"))
    assert len(failures) == 1
    failure = json.loads(failures[0].read_text())
    assert "pretrain.epochs=0" in failure["overrides"] and "fix" in failure and failure["fix"]
    assert "1 job(s) of the sweep failed" in proc.stderr and "pretrain.epochs=0" in proc.stderr
    done = [p for p in sweep.rglob("stage.json")]
    assert len(done) == 1  # the second job ran after the first failed


def test_report_lists_failed_and_incomplete_runs_and_never_averages_them(tmp_path: Path) -> None:
    from clear_lightning.report.runs import find_runs, unfinished_runs

    failed, incomplete, done = tmp_path / "failed", tmp_path / "incomplete", tmp_path / "done"
    for d in (failed, incomplete, done):
        d.mkdir()
        (d / ".clear_lightning_run").write_text("pid 1\n")
        (d / "summary.json").write_text(
            json.dumps({"method": "gd", "model": "m", "split": "s", "modality": "x"})
        )
    (failed / "failure.json").write_text(
        json.dumps({"problem": "optim.lr=0 must be > 0", "fix": "set optim.lr > 0"})
    )
    (done / "stage.json").write_text(json.dumps({"stage": "unlearn"}))
    listed = {Path(u["dir"]).name: u for u in unfinished_runs(tmp_path, lambda m: None)}
    assert listed["failed"]["status"] == "failed" and "optim.lr=0" in listed["failed"]["why"]
    assert listed["incomplete"]["status"] == "incomplete" and "done" not in listed
    assert [r.directory.name for r in find_runs(tmp_path, lambda m: None)] == ["done"]
