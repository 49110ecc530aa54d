"""The five stages (DESIGN.md): pretrain → finetune (original) → gold → unlearn → eval.

Each is a short function over the run's objects (`Pipeline`); `root.run` picks one by `stage=`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L

from ..artifacts import is_main_process
from ..comparison import comparison_table
from ..errors import ClearConfigError
from ..evaluation.records import read_records
from .components import Pipeline
from .evaluation import evaluate, stored_evaluation
from .fit import fit_unlearning
from .results import write_results
from .robustness import run_attacks
from .sequence import run_sequence
from .upstream import base_model, finetuned_model, load_checkpoint, references, stored_original_evaluation


def pretrain(p: Pipeline) -> dict[str, Any]:
    if p.base_spec is None:
        raise ClearConfigError(
            f"stage=pretrain builds a model from a config, but model={p.loader.name} is a pretrained checkpoint",
            "use stage=finetune for pretrained checkpoints; pretrain is for the embedded tiny model",
        )
    path, _ = base_model(p, build=True)
    return {"stage": "pretrain", "model": path}


def finetune(p: Pipeline) -> dict[str, Any]:
    path, _ = finetuned_model(p, "original", build=True)
    return {"stage": "finetune", "model": str(path)}


def gold(p: Pipeline) -> dict[str, Any]:
    path, key = finetuned_model(p, "gold", build=True)
    ev = stored_evaluation(p, path, key, "gold")
    original_eval, why = stored_original_evaluation(p)
    summary = write_results(
        p, read_records(ev / "eval"), ev, "gold", original_dir=original_eval, original_note=why
    )
    return {"stage": "gold", "model": str(path), "gold_eval": str(ev), "summary": summary}


def unlearn(p: Pipeline) -> dict[str, Any]:
    s = p.settings
    if s.sequence:  # sequence=nested: one request after another (pipeline/sequence.py)
        return run_sequence(p)
    p.data(encoder=None).forget_examples()  # an empty forget set fails now, before anything is built
    refs = references(p, p.settings.build_missing)  # original and gold side by side where two cores allow
    (original_dir, _, original_eval), (_, _, gold_eval) = refs["original"], refs["gold"]
    if s.gold:  # eval.gold is honoured: scored against that gold evaluation (load_gold checks it matches)
        gold_eval = Path(s.gold)
        p.say(f"scoring against the gold evaluation at {gold_eval} (eval.gold)")

    p.say(f"unlearning with {s.method_name} on {s.split}, modality={s.modality}")
    L.seed_everything(s.seed, verbose=False)
    model, processor = p.loader.load(original_dir)
    method, trainer, fit_seconds = fit_unlearning(p, model, processor, s.run_dir, s.method_name)
    if is_main_process():
        method.save_student(str(s.run_dir / "adapter"))
    records, eval_seconds = evaluate(p, method.unlearned_model(), processor)
    samples = len(trainer.train_dataloader.dataset) * s.epochs
    cost = {
        "fit_seconds": fit_seconds,
        "train_samples_per_second": samples / max(fit_seconds, 1e-9),
        "eval_seconds": eval_seconds,
    }
    summary = write_results(
        p, records, gold_eval, s.method_name, cost, logger=trainer.logger, original_dir=original_eval
    )
    original, gold_summary = p.summarizer.judged_references(
        read_records(original_eval / "eval"), read_records(gold_eval / "eval")
    )
    table = comparison_table(
        {"original": original, "gold": gold_summary, s.method_name: summary}, list(records)
    )
    if is_main_process():
        (s.run_dir / "comparison.md").write_text(table + "\n")
        print("\n" + table + "\n", flush=True)
    result = {
        "stage": "unlearn",
        "summary": summary,
        "original_eval": str(original_eval),
        "gold_eval": str(gold_eval),
    }
    if p.attacks:  # attacks=standard: did it really forget? (pipeline/robustness.py)
        del model, method
        start = time.perf_counter()
        robustness = run_attacks(p, s.run_dir, records, refs)
        result["robust_forget"] = robustness["robust_forget"]
        result["attack_seconds"] = time.perf_counter() - start
    return result


def attack(p: Pipeline) -> dict[str, Any]:
    """`stage=attack run=<run dir>`: the configured attacks on a finished unlearning run, without retraining.
    The composition root has already taken that run's own config (compose.attack_config)."""
    s = p.settings
    target = Path(str(s.target_run))
    if not p.attacks:
        raise ClearConfigError("stage=attack with attacks=none: nothing to run", "add attacks=standard")
    refs = references(p, build=False)
    records = read_records(target / "eval")
    robustness = run_attacks(p, target, records, refs)
    p.say(f"robustness of {target} written to {target / 'robustness.json'}")
    return {"stage": "attack", "run": str(target), "robust_forget": robustness["robust_forget"]}


def eval(p: Pipeline) -> dict[str, Any]:  # noqa: A001 - the stage's name
    checkpoint = p.settings.checkpoint or p.loader.path
    if checkpoint is None:
        checkpoint, _ = finetuned_model(p, "original", build=p.settings.build_missing)
    model, processor = load_checkpoint(p, Path(str(checkpoint)))
    records, seconds = evaluate(p, model, processor)
    original_eval, why = stored_original_evaluation(p)
    summary = write_results(
        p,
        records,
        _find_gold(p),
        "eval",
        {"eval_seconds": seconds},
        original_dir=original_eval,
        original_note=why,
    )
    return {"stage": "eval", "checkpoint": str(checkpoint), "summary": summary}


def _find_gold(p: Pipeline) -> Path | None:
    if p.settings.gold:
        return Path(p.settings.gold)
    try:
        path, key = finetuned_model(p, "gold", build=False)
        # an evaluation setting that differs from the stored gold's (e.g. metric_mode=reference_compat's
        # generation) evaluates the stored gold model once more, where evaluating is allowed to build
        return stored_evaluation(p, path, key, "gold", build=p.settings.build_missing)
    except ClearConfigError:
        p.say("no gold evaluation for this split: forget quality is not computed")
        return None


STAGES = {
    "pretrain": pretrain,
    "finetune": finetune,
    "gold": gold,
    "unlearn": unlearn,
    "eval": eval,
    "attack": attack,
}
