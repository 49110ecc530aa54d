"""The N-model loop on a tiny config: results are cached, an interrupted run finishes only what is missing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from clear_lightning.artifacts import ArtifactStore
from clear_lightning.config import CONFIG_DIR, register_resolvers
from clear_lightning.cv import shadow
from clear_lightning.cv.run import run
from clear_lightning.errors import ClearConfigError

register_resolvers()
TINY = [
    "protocol.num_models=4",
    "data.image_size=16",
    "data.persons.source.num_persons=10",  # forget10 = 1 person; 9 in the pool
    "data.persons.source.images_per_person=6",
    "data.celebrities.num_identities=4",
    "data.celebrities.images_per_identity=3",
    "pretrain.epochs=1",
    "finetune.epochs=1",
    "model.resnet.embedding_size=4",
    "model.resnet.hidden_sizes=[4,8]",
    "model.resnet.depths=[1,1]",
    "model.embedding_dim=8",
    "table.methods=[gold,scrub_bio]",
    "stage=table",
]


@pytest.fixture()
def make_cv_cfg(tmp_path: Path):
    def _make(*overrides: str):
        with initialize_config_dir(str(CONFIG_DIR / "cv"), version_base="1.3"):
            return compose(
                "config", overrides=[f"paths.root={tmp_path}", f"run_dir={tmp_path}/run", *TINY, *overrides]
            )

    return _make


def _spy_builds(monkeypatch) -> list[str]:
    built: list[str] = []
    original = ArtifactStore.build

    def build(self, kind, key, builder, provenance):
        built.append(f"{kind}:{key.get('plan', {}).get('index', provenance.get('method', ''))}")
        return original(self, kind, key, builder, provenance)

    monkeypatch.setattr(ArtifactStore, "build", build)
    return built


def test_interrupted_loop_resumes_with_only_the_missing_models(make_cv_cfg, monkeypatch, tmp_path):
    cfg = make_cv_cfg()
    real_unlearn = shadow.Protocol.unlearn

    def killed_at_model_2(self, plan, method_cfg, device):
        if plan.index == 2:
            raise KeyboardInterrupt  # as if the process were stopped mid-loop
        return real_unlearn(self, plan, method_cfg, device)

    monkeypatch.setattr(shadow.Protocol, "unlearn", killed_at_model_2)
    with pytest.raises(KeyboardInterrupt):
        run(cfg)
    monkeypatch.setattr(shadow.Protocol, "unlearn", real_unlearn)

    built = _spy_builds(monkeypatch)
    rows = run(cfg)
    # model 2's original survived the interruption; its methods and all of model 3 were missing
    assert sorted(built) == sorted(
        ["cv-unlearned:gold", "cv-unlearned:scrub_bio", "cv-original:3"]
        + ["cv-unlearned:gold", "cv-unlearned:scrub_bio"]
    )
    assert [r["method"] for r in rows] == ["original", "gold", "scrub_bio"]
    assert all(r["models"] == 4 and 0 <= r["u_lira"] <= 1 and 0 <= r["u_mia"] <= 1 for r in rows)

    built.clear()
    run(cfg)
    assert built == []  # a repeated run reuses every finished model

    out = tmp_path / "run"
    for name in ("table.md", "table.csv", "fig6_logits.png", "gold.json", "original.json"):
        assert (out / name).exists(), name
    assert "| gold |" in (out / "table.md").read_text()
    record = json.loads((out / "scrub_bio.json").read_text())
    assert len(record["models"]) == 4 and len(record["forget_logits"]) == len(record["holdout_logits"])


def test_a_larger_n_adds_models_and_reuses_the_first_ones(make_cv_cfg, monkeypatch):
    run(make_cv_cfg("table.methods=[gold]"))
    built = _spy_builds(monkeypatch)
    run(make_cv_cfg("table.methods=[gold]", "protocol.num_models=6"))
    assert sorted(built) == ["cv-original:4", "cv-original:5", "cv-unlearned:gold", "cv-unlearned:gold"]


def test_unknown_method_and_too_few_images_are_config_errors(make_cv_cfg):
    with pytest.raises(ClearConfigError, match="no CV method config"):
        run(make_cv_cfg("table.methods=[nope]"))
    with pytest.raises(ClearConfigError, match="enrolment"):
        run(make_cv_cfg("data.persons.source.images_per_person=4"))


@pytest.mark.slow
def test_worker_processes_build_the_same_results(make_cv_cfg):
    rows = run(make_cv_cfg("workers=2"))
    assert [r["models"] for r in rows] == [4, 4, 4]


def test_paper_experiment_is_resnet18_on_real_clear_with_128_models(tmp_path):
    from hydra.utils import instantiate

    with initialize_config_dir(str(CONFIG_DIR / "cv"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.root={tmp_path}", "run_dir=x", "experiment=paper"])
    assert (cfg.protocol.num_models, cfg.protocol.attacks, cfg.finetune.lr, cfg.finetune.epochs) == (
        128,
        "half",
        0.1,
        20,
    )
    assert cfg.data.persons.source._target_.endswith("SnapshotSource")
    net = instantiate(cfg.model)
    assert net.dim == 512 and 11_000_000 < sum(p.numel() for p in net.parameters()) < 11_300_000
