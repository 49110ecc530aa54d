"""The models of the N-model protocol: pre-train once, then per model index fine-tune, unlearn, probe.

Every trained model is an artifact keyed by what determines it (network, data revision, recipe, plan, method),
so a re-run reuses finished models and a killed run resumes where it stopped (`loop.py` drives the indices).
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ..artifacts import ArtifactStore, digest
from .data import ClearFaces, FaceSet
from .identification import Probes, probe
from .methods.base import UnlearnTask
from .network import CosineHead, EmbeddingNet
from .protocol import ModelPlan, plan_models
from .training import IdentificationModule, Recipe, embed, fit, loader

log = logging.getLogger(__name__)
ORIGINAL = "original"  # the no-unlearning row


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class ModelResult:
    """One (model index, method): membership, the group accuracies and every probe's attack logit."""

    index: int
    member: bool
    accuracy: dict[str, float]
    person: list[int]
    correct: list[bool]
    logit: list[float]

    def save(self, path: Path) -> None:
        (path / "result.json").write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> ModelResult:
        return cls(**json.loads((path / "result.json").read_text()))


class Protocol:
    """Everything the N-model loop needs, built from the composed config (cheap: data loads are cached)."""

    def __init__(self, cfg: DictConfig | dict[str, Any]) -> None:
        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.store = ArtifactStore(self.cfg.paths.artifacts)
        self.seed = int(self.cfg.seed)
        self.enrol_n = int(self.cfg.protocol.enrol_images)

    @cached_property
    def clear(self) -> ClearFaces:
        return instantiate(self.cfg.data.persons)

    @cached_property
    def faces(self) -> FaceSet:
        return self.clear.faces(int(self.cfg.data.image_size), min_images=self.enrol_n + 1)

    @cached_property
    def forget(self) -> list[int]:
        return self.clear.forget_persons(self.faces)

    @cached_property
    def plans(self) -> list[ModelPlan]:
        return plan_models(len(self.faces.names), self.forget, int(self.cfg.protocol.num_models), self.seed)

    def recipe(self, group: str) -> Recipe:
        return Recipe(**OmegaConf.to_container(self.cfg[group], resolve=True))

    def new_net(self) -> EmbeddingNet:
        return instantiate(self.cfg.model)

    # --- keys -------------------------------------------------------------------------------------------
    @cached_property
    def base_key(self) -> dict[str, Any]:
        celebrities = instantiate(self.cfg.data.celebrities)
        return {
            "model": OmegaConf.to_container(self.cfg.model, resolve=True),
            "celebrities": celebrities.revision,
            "image_size": int(self.cfg.data.image_size),
            "pretrain": asdict(self.recipe("pretrain")),
            "seed": self.seed,
        }

    def original_key(self, plan: ModelPlan) -> dict[str, Any]:
        return {
            "base": digest(self.base_key),
            "clear": self.clear.revision,
            "forget_split": self.clear.forget_split,
            "plan": plan.key(),
            "finetune": asdict(self.recipe("finetune")),
            "enrol": self.enrol_n,
        }

    def unlearned_key(self, plan: ModelPlan, method: dict[str, Any]) -> dict[str, Any]:
        return {"original": digest(self.original_key(plan)), "method": method, "enrol": self.enrol_n}

    def result_path(self, plan: ModelPlan, method: str, method_cfg: dict[str, Any] | None) -> Path | None:
        if method == ORIGINAL:
            return self.store.get("cv-original", self.original_key(plan))
        return self.store.get("cv-unlearned", self.unlearned_key(plan, method_cfg or {}))

    # --- building -----------------------------------------------------------------------------------------
    def base(self, device: str = "cpu") -> EmbeddingNet:
        """The network pre-trained on the celebrity identities (built once, then loaded)."""
        path = self.store.get("cv-base", self.base_key)
        if path is None:
            log.info("pre-training the embedding network on the celebrity identities")
            path = self.store.build("cv-base", self.base_key, lambda tmp: self._pretrain(tmp, device), {})
        net = self.new_net()
        net.load_state_dict(torch.load(path / "net.pt", weights_only=True))
        return net

    def _pretrain(self, tmp: Path, device: str) -> None:
        seed_all(self.seed)
        celebrities = instantiate(self.cfg.data.celebrities).faces(int(self.cfg.data.image_size))
        n = len(celebrities.names)
        test = list(range(n - max(1, n // 5), n))  # held-out identities: does identification generalise?
        train = celebrities.subset(list(range(test[0])))
        net = self.new_net()
        recipe = self.recipe("pretrain")
        head = CosineHead(net.dim, len(train.names))
        fit(
            IdentificationModule(net, head, recipe),
            loader(("retain",), None, train, recipe.batch_size, self.seed),
            recipe.epochs,
            device,
        )
        torch.save(net.state_dict(), tmp / "net.pt")
        held_out = celebrities.subset(test)
        accuracy = {
            "train_identities": self._accuracy(net, train, device),
            "test_identities": self._accuracy(net, held_out, device),
        }
        (tmp / "accuracy.json").write_text(json.dumps(accuracy))
        log.info("celebrity identification accuracy: %s", accuracy)

    def _accuracy(self, net: EmbeddingNet, faces: FaceSet, device: str) -> float:
        p = probe(embed(net, faces, device=device), faces.labels, len(faces.names), self.enrol_n)
        return float(p.correct.float().mean())

    def result(self, net: EmbeddingNet, plan: ModelPlan, device: str) -> ModelResult:
        """Probe every CLEAR person with this model: accuracy per group and all attack logits."""
        p: Probes = probe(
            embed(net, self.faces, device=device), self.faces.labels, len(self.faces.names), self.enrol_n
        )
        accuracy = {g: p.accuracy(getattr(plan, g)) for g in ("forget", "holdout", "retain")}
        return ModelResult(
            plan.index, plan.member, accuracy, p.person.tolist(), p.correct.tolist(), p.logit.tolist()
        )

    def original(self, plan: ModelPlan, device: str) -> tuple[EmbeddingNet, CosineHead]:
        """Model i: the base fine-tuned on its retain + forget persons (built once, then loaded)."""
        key = self.original_key(plan)
        path = self.store.get("cv-original", key)
        if path is None:
            path = self.store.build("cv-original", key, lambda tmp: self._finetune(tmp, plan, device), {})
        net = self.new_net()
        head = CosineHead(net.dim, len(plan.train))
        state = torch.load(path / "net.pt", weights_only=True)
        net.load_state_dict(state["net"])
        head.load_state_dict(state["head"])
        return net, head

    def _finetune(self, tmp: Path, plan: ModelPlan, device: str) -> None:
        seed_all(self.seed * 100_003 + plan.index)
        net = self.base(device)
        head = CosineHead(net.dim, len(plan.train))
        recipe = self.recipe("finetune")
        train = self.faces.subset(plan.train)
        fit(
            IdentificationModule(net, head, recipe),
            loader(("retain",), None, train, recipe.batch_size, plan.index),
            recipe.epochs,
            device,
        )
        torch.save({"net": net.state_dict(), "head": head.state_dict()}, tmp / "net.pt")
        self.result(net, plan, device).save(tmp)

    def unlearn(self, plan: ModelPlan, method_cfg: dict[str, Any], device: str) -> Path:
        """Run one method on model i and store its probe result."""
        key = self.unlearned_key(plan, method_cfg)
        path = self.store.get("cv-unlearned", key)
        if path is not None:
            return path
        net, head = self.original(plan, device)
        train = self.faces.subset(plan.train)
        is_forget = train.labels >= len(plan.retain)
        seed = self.seed * 100_003 + plan.index
        task = UnlearnTask(
            net,
            head,
            train.select(is_forget),
            train.select(~is_forget),
            lambda: self.base(device),
            self.recipe("finetune"),
            seed,
        )

        def build(tmp: Path) -> None:
            seed_all(seed)
            module = instantiate(method_cfg["module"])(task)
            epochs = method_cfg.get("epochs") or task.recipe.epochs
            batch_size = method_cfg.get("batch_size") or task.recipe.batch_size
            fit(module, loader(module.streams, task.forget, task.retain, batch_size, seed), epochs, device)
            self.result(module.net, plan, device).save(tmp)

        return self.store.build("cv-unlearned", key, build, {"method": method_cfg.get("name")})
