"""Every CV method (built from its YAML, as the CLI does) runs briefly on a tiny network and changes it."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from clear_lightning.config import CONFIG_DIR
from clear_lightning.cv.data import FaceSet
from clear_lightning.cv.methods.base import UnlearnTask
from clear_lightning.cv.network import CosineHead, EmbeddingNet
from clear_lightning.cv.training import Recipe, embed, fit, loader

METHODS = sorted(p.stem for p in (CONFIG_DIR / "cv" / "method").glob("*.yaml"))
TINY = {"embedding_size": 4, "hidden_sizes": [4, 8], "depths": [1, 1], "layer_type": "basic"}


def _net() -> EmbeddingNet:
    return EmbeddingNet(resnet=TINY, embedding_dim=8)


@pytest.fixture(scope="module")
def task() -> UnlearnTask:
    torch.manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8)
    labels = torch.arange(4).repeat_interleave(4)  # slots 0-1 retain, 2-3 forget (the head's order)
    faces = FaceSet(images, labels, ["a", "b", "c", "d"])
    return UnlearnTask(
        original=_net(),
        head=CosineHead(8, 4),
        forget=faces.select(labels >= 2),
        retain=faces.select(labels < 2),
        base=_net,
        recipe=Recipe(epochs=1, lr=0.01, batch_size=4),
        seed=0,
    )


def test_every_method_of_the_spec_has_a_config():
    assert set(METHODS) == {
        "gold", "retain_ft", "scrub", "scrub_bio", "twins", "dpo", "llmu", "rmu", "sparsity", "grad_orth"
    }  # fmt: skip


@pytest.mark.parametrize("name", METHODS)
def test_method_runs_briefly_and_changes_the_model(name, task):
    cfg = OmegaConf.load(CONFIG_DIR / "cv" / "method" / f"{name}.yaml")
    assert cfg.name == name
    module = instantiate(cfg.module)(task)
    before = embed(task.original, task.forget)
    fit(module, loader(module.streams, task.forget, task.retain, batch_size=4, seed=0), epochs=1)
    after = embed(module.net, task.forget)
    assert torch.isfinite(after).all()
    assert not torch.allclose(before, after)
    assert torch.equal(embed(task.original, task.forget), before)  # the original is never modified
