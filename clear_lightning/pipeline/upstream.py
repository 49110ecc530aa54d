"""The upstream models (benchmark.md §4): the base, the original (fine-tuned on everything) and gold (on the retain set),
each an artifact keyed by what determines it, so a repeated run reuses them and a changed recipe rebuilds them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ..artifacts import digest
from ..data.corpus import corpus
from ..data.idk import load_idk_answers
from ..errors import ClearConfigError
from .components import Pipeline
from .evaluation import stored_evaluation
from .fit import fit_and_save, fixed_threads

References = dict[str, tuple[Path, dict[str, Any], Path]]


def base_model(p: Pipeline, build: bool) -> tuple[str, dict[str, Any]]:
    """The starting checkpoint: a hub id/dir, or (tiny model) a config-built, pre-trained artifact."""
    s, loader = p.settings, p.loader
    if p.base_spec is None:
        if not loader.path:
            raise ClearConfigError(
                f"model '{loader.name}' has neither model.path nor model.build", "set model.path"
            )
        return str(loader.path), {"path": str(loader.path), "revision": loader.revision}
    key = {
        "build": s.build_key,
        "data": p.source.identity(),
        "pretrain": s.pretrain_key,
        "seed": s.upstream_seed,
        "precision": s.precision,
    }
    found = p.store.get("base", key)
    if found:
        return str(found / "model"), {"artifact": digest(key)}
    if not build:
        raise ClearConfigError(
            f"the base model of {loader.name} is not built yet", "run stage=pretrain first"
        )
    prior = p.source.has_prior
    p.say(
        f"building the {loader.name} base model (random init + pre-training on prior knowledge)"
        if prior
        else f"building the {loader.name} base model: random init only, since data={p.source.name} has no "
        "prior knowledge to pre-train on (Real metrics will sit at chance)"
    )

    def builder(out: Path) -> None:
        spec = p.base_spec()
        L.seed_everything(s.upstream_seed, verbose=False)
        texts = corpus(p.source, extra=load_idk_answers())
        if prior:
            spec.create(texts, out / "init")
            with fixed_threads(p.pretrain.threads):  # the base builds alone: it may use both cores
                fit_and_save(p, out / "init", out, "prior", p.pretrain)
        else:
            spec.create(texts, out / "model")

    path = p.store.build("base", key, builder, p.provenance(stage="pretrain"))
    return str(path / "model"), {"artifact": digest(key)}


def _train_on(p: Pipeline, which: str) -> str:
    return "full" if which == "original" else p.settings.split


def finetune_key(p: Pipeline, which: str, base_key: dict[str, Any]) -> dict[str, Any]:
    s = p.settings
    return {
        "base": base_key,
        "data": p.source.identity(),
        "finetune": s.finetune_key,
        "seed": s.upstream_seed,
        "precision": s.precision,
        "train_on": _train_on(p, which),
    }


def finetuned_model(p: Pipeline, which: str, build: bool) -> tuple[Path, dict[str, Any]]:
    """`original` (fine-tuned on everything) or `gold` (on the retain set of this split) (benchmark.md §4)."""
    base_path, base_key = base_model(p, build)
    key = finetune_key(p, which, base_key)
    found = p.store.get(which, key)
    if found:
        return found / "model", key
    if not build:
        raise ClearConfigError(
            f"the {which} model for {p.loader.name} ({key['train_on']}) is not built yet",
            f"run stage={'finetune' if which == 'original' else 'gold'} first, or pass build_missing=true "
            "(on a 7B model this costs GPU-hours)",
        )
    split = p.settings.split
    p.say(
        f"building the {which} model: fine-tune on {'full' if which == 'original' else 'retain of ' + split}"
    )
    train_on = "full" if which == "original" else "retain"
    path = p.store.build(
        which,
        key,
        lambda out: fit_and_save(p, base_path, out, train_on, p.finetune),
        p.provenance(stage=which),
    )
    return path / "model", key


def references(p: Pipeline, build: bool) -> References:
    """The original and gold models with their evaluations: {which: (model dir, model key, evaluation dir)}.

    When both must be built on the CPU with one thread per process (the default `threads: 1`) and the machine
    has a second core, gold is built in a second process while this one builds the original: two single-thread
    builds use both cores without the oversubscription of two multi-thread jobs, and each stays bit-identical
    to a build made alone (`parallel_builds: auto|true|false`).
    """
    child = None
    if build and p.settings.parallel_builds:
        _, base_key = base_model(p, build=True)  # shared by both: built first
        missing = [w for w in ("original", "gold") if not p.store.get(w, finetune_key(p, w, base_key))]
        if missing == ["original", "gold"]:
            child = _start_child(p, "gold")
    out = {}
    try:
        for which in ("original", "gold"):
            if which == "gold" and child is not None:
                child.join()
                if child.exitcode != 0:
                    raise RuntimeError(
                        f"building the gold model in a second process failed (exit {child.exitcode})"
                    )
                child = None
            path, key = finetuned_model(p, which, build)
            out[which] = (path, key, stored_evaluation(p, path, key, which, build))
    finally:
        if child is not None and child.is_alive():
            child.terminate()
            child.join()
    return out


def stored_original_evaluation(p: Pipeline) -> tuple[Path | None, str | None]:
    """The stored evaluation of the original model for this config (nothing is built), or None and why."""
    try:
        path, key = finetuned_model(p, "original", build=False)
        return stored_evaluation(p, path, key, "original", build=False), None
    except ClearConfigError as err:
        return None, f"no stored original evaluation ({err.problem})"


def _start_child(p: Pipeline, which: str) -> Any:
    import multiprocessing

    container = {**p.settings.resolved}
    container["trainer"] = {**container["trainer"], "enable_progress_bar": False}  # one bar: the parent's
    p.say(f"building the {which} model in a second process meanwhile")
    process = multiprocessing.get_context("spawn").Process(target=_build_in_child, args=(container, which))
    process.start()
    return process


def _build_in_child(container: dict[str, Any], which: str) -> None:
    """A second entry point: assembles the same run from its resolved config and builds one reference."""
    from omegaconf import OmegaConf

    from ..config import offline_by_default, register_resolvers
    from ..logging_setup import quiet_libraries
    from .compose import assemble
    from .fit import set_threads

    offline_by_default()
    register_resolvers()
    quiet_libraries()
    p = assemble(OmegaConf.create(container))
    set_threads(p.settings.threads)
    path, key = finetuned_model(p, which, build=True)
    stored_evaluation(p, path, key, which, build=True)


def load_checkpoint(p: Pipeline, path: Path) -> tuple[Any, Any]:
    """A full model directory, or a LoRA adapter directory applied on top of the original model."""
    looks_local = str(path).startswith(("/", ".", "~")) or str(path).count("/") != 1
    if looks_local and not path.exists():
        raise ClearConfigError(
            f"checkpoint {path} does not exist", "pass eval.checkpoint=<model or adapter dir>"
        )
    if (path / "adapter_config.json").exists():
        import json

        from peft import PeftModel

        try:
            json.loads((path / "adapter_config.json").read_text())
        except json.JSONDecodeError as err:
            raise ClearConfigError(
                f"{path / 'adapter_config.json'} is not valid JSON ({err})",
                "re-save the adapter (an unlearning run writes <run>/adapter) or pass another eval.checkpoint",
            ) from None

        original, _ = finetuned_model(p, "original", build=False)
        model, processor = p.loader.load(original)
        return PeftModel.from_pretrained(model, str(path)), processor
    return p.loader.load(path)
