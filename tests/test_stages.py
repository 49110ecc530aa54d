"""Each stage on the fast config writes its artifacts; a second run reuses them; results are files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clear_lightning.artifacts import ArtifactStore
from clear_lightning.evaluation.records import read_records
from clear_lightning.pipeline import run
from clear_lightning.pipeline.compose import assemble
from clear_lightning.pipeline.upstream import finetuned_model

SUMMARY_KEYS = (
    "forget_metric",
    "retain_metric",
    "real_metric",
    "model_utility",
    "forget_quality",
    "log_forget_quality",
)


def _artifacts(cfg) -> dict[str, list[str]]:
    root = Path(cfg.paths.artifacts)
    return {
        kind: sorted(p.name for p in (root / kind).iterdir()) for kind in ("base", "original", "gold", "eval")
    }


def test_unlearn_builds_upstream_and_writes_results(unlearn_result) -> None:
    cfg, result = unlearn_result
    run_dir = Path(cfg.run_dir)
    arts = _artifacts(cfg)  # the session's shared root: other tests add artifacts of other settings to it
    p = assemble(cfg)
    for which in ("original", "gold"):  # found without building: this run built them
        path, _ = finetuned_model(p, which, build=False)
        assert path.parent.name in arts[which]
        assert Path(result[f"{which}_eval"]).name in arts["eval"]
    assert len(arts["base"]) >= 1
    for name in ("config.yaml", "provenance.json", "summary.json", "comparison.md", "stage.json"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in SUMMARY_KEYS:
        assert key in summary
    assert summary["provenance"]["seed"] == 0 and summary["provenance"]["data_revision"]
    assert summary["provenance"]["packages"]["torch"].startswith("2.13.0")
    sets = {p.stem for p in (run_dir / "eval").glob("*.jsonl")}
    assert sets == set(cfg.eval.sets)
    record = json.loads((run_dir / "eval" / "forget_qa.jsonl").read_text().splitlines()[0])
    for field in (
        "id",
        "set",
        "modality",
        "question",
        "answer",
        "generation",
        "loss",
        "loss_paraphrased",
        "losses_perturbed",
        "rougeL_recall",
        "probability",
        "truth_ratio",
    ):
        assert field in record
    assert (run_dir / "logs" / "metrics.csv").is_file()


def test_second_run_reuses_every_upstream_artifact(unlearn_result, make_cfg, capsys) -> None:
    cfg, _ = unlearn_result
    before = _artifacts(cfg)
    mtimes = {p: p.stat().st_mtime for p in Path(cfg.paths.artifacts).glob("*/*/artifact.json")}
    run(make_cfg("method=ga", "seed=1"))  # another unlearning seed starts from the same original and gold
    out = capsys.readouterr().out
    assert "building" not in out and "evaluating the" not in out
    assert _artifacts(cfg) == before
    assert {p: p.stat().st_mtime for p in mtimes} == mtimes


def test_changed_recipe_rebuilds_only_what_depends_on_it(unlearn_result, make_cfg) -> None:
    cfg, _ = unlearn_result
    before = _artifacts(cfg)
    run(make_cfg("stage=finetune", "finetune.lr=0.002"))
    after = _artifacts(cfg)
    assert after["base"] == before["base"]
    assert len(after["original"]) == len(before["original"]) + 1


def test_gold_stage_scores_itself_perfectly(unlearn_result, make_cfg) -> None:
    result = run(make_cfg("stage=gold"))
    assert result["summary"]["forget_quality"] == pytest.approx(1.0)
    assert result["summary"]["log_forget_quality"] == pytest.approx(0.0)


def test_eval_stage_scores_a_checkpoint_against_stored_gold(tiny_checkpoint, make_cfg) -> None:
    cfg = make_cfg("stage=eval", f"eval.checkpoint={tiny_checkpoint}")
    result = run(cfg)
    assert result["summary"]["gold"] is not None
    assert (Path(cfg.run_dir) / "eval" / "real_world.jsonl").is_file()


def test_eval_stage_loads_an_unlearned_adapter(unlearn_result, make_cfg) -> None:
    cfg, _ = unlearn_result
    adapter = Path(cfg.run_dir) / "adapter"
    eval_cfg = make_cfg("stage=eval", f"eval.checkpoint={adapter}")
    result = run(eval_cfg)
    assert result["checkpoint"] == str(adapter)
    # the saved adapter on the original model reproduces the unlearning run's own evaluation, item by item
    own, again = read_records(Path(cfg.run_dir) / "eval"), read_records(Path(eval_cfg.run_dir) / "eval")
    assert sorted(own) == sorted(again)
    for name in own:
        for a, b in zip(own[name], again[name], strict=True):
            assert (a["id"], a["generation"]) == (b["id"], b["generation"]), name
            for key in ("loss", "loss_paraphrased", "rougeL_recall", "probability", "truth_ratio"):
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-6), (name, a["id"], key)


def test_artifact_store_publishes_atomically(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)

    def broken(out: Path) -> None:
        (out / "half").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        store.build("original", {"a": 1}, broken, {})
    assert store.get("original", {"a": 1}) is None
    assert not list((tmp_path / "original").iterdir())  # no half-written artifact left behind
    path = store.build("original", {"a": 1}, lambda out: (out / "w").write_text("ok"), {"seed": 0})
    assert store.get("original", {"a": 1}) == path and (path / "w").read_text() == "ok"
    assert store.get("original", {"a": 2}) is None


def test_wandb_logger_works_offline_without_login(unlearn_result, make_cfg, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = make_cfg("logger=wandb", "method=ga")
    run(cfg)
    offline_runs = list((Path(cfg.run_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    assert offline_runs and offline_runs[0].stat().st_size > 0
