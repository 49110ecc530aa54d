"""Did it really forget? Run the configured attacks (`attacks=`) on an unlearning run: each attack on the unlearned
model, on gold and on the original with the same seed and data; write `robustness.json`, the per-item records
under `eval/attacks/` and the robust-forget numbers into `summary.json`.

The references' attacked records depend only on the attack, the reference model, the split, the evaluation and
the seed, so they are artifacts: every method of a sweep reuses them (a seed's first run pays for them).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from ..artifacts import digest, is_main_process
from ..attacks.base import LABELS, Attack, AttackContext, Records, Subject, score_variants
from ..contract import is_aggregated
from ..data.batching import EncodedDataset, GroupedBatchSampler, RowCollator
from ..errors import ClearConfigError
from ..evaluation.records import read_records, write_records
from ..methods.finetune import FineTuneModule
from ..metrics.summary import set_group
from .components import Pipeline
from .evaluation import evaluate
from .upstream import References, load_checkpoint

RESULT = "robustness.json"


def _merged(loaded: tuple[torch.nn.Module, Any]) -> tuple[torch.nn.Module, Any]:
    """A plain model: a LoRA student's adapter merged into its weights."""
    from peft import PeftModel

    model, processor = loaded
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    return model, processor


def subjects(p: Pipeline, run_dir: Path, refs: References) -> dict[str, Subject]:
    """The unlearned model (the run's saved student on the original) and the two references."""
    adapter = run_dir / "adapter"
    if not adapter.exists():
        raise ClearConfigError(
            f"{run_dir} has no saved student ({adapter})", "attack a finished stage=unlearn run directory"
        )
    out = {"unlearned": Subject("unlearned", lambda: _merged(load_checkpoint(p, adapter)))}
    for label in ("gold", "original"):
        path, key, _ = refs[label]
        out[label] = Subject(label, lambda path=path: p.loader.load(path), key)
    return out


def _sets(p: Pipeline, group: str) -> tuple[str, ...]:
    """The group's evaluated sets the attacks score: the aggregated ones (the probe sets are not attacked)."""
    skipped = p.data(encoder=None).skipped_sets
    return tuple(
        n for n in p.settings.eval_sets if set_group(n) == group and is_aggregated(n) and n not in skipped
    )


def context(p: Pipeline, original: Subject) -> AttackContext:
    """What the attacks may do, built from the run's objects."""
    s, recipe = p.settings, p.finetune
    modalities = ("text",) if p.loader.text_only else ("text", "visual")

    def evaluate_sets(model: Any, processor: Any, sets: Any, transform: Any = None) -> Records:
        records, _ = evaluate(p, model, processor, sets, transform)
        return records

    def fit(model: Any, processor: Any, rows: list[Any], epochs: int, lr: float, batch_size: int) -> Any:
        L.seed_everything(s.seed, verbose=False)
        if not recipe.lora:  # a full fine-tune, like the references' own (a merged student arrives frozen)
            model.requires_grad_(True)
        module = FineTuneModule(
            model,
            lr=lr,
            weight_decay=recipe.weight_decay,
            warmup_ratio=recipe.warmup_ratio,
            schedule=recipe.schedule,
            lora_config=recipe.lora or None,
        )
        encoder = p.encoder(processor, cache=False)
        loader = DataLoader(
            EncodedDataset(rows, encoder),
            batch_sampler=GroupedBatchSampler([r.modality for r in rows], batch_size, s.seed),
            collate_fn=RowCollator(encoder.pad_id),
        )
        p.trainer(None, max_epochs=epochs, enable_progress_bar=False).fit(module, train_dataloaders=loader)
        return module.trained_model().eval()

    def eval_items(name: str) -> list[Any]:
        dm = p.data(encoder=None, eval_sets=[name])
        return list(dm.evaluation_sets().get(name, []))

    b = p.summarizer.bootstrap
    return AttackContext(
        seed=s.seed,
        evaluate=evaluate_sets,
        fit=fit,
        eval_items=eval_items,
        forget_rows=lambda: p.data(encoder=None, modalities=modalities).forget_examples(),
        holdout_rows=lambda: p.data(encoder=None, modalities=modalities).holdout_examples(),
        forget_sets=_sets(p, "forget"),
        retain_sets=_sets(p, "retain"),
        original=original,
        say=p.say,
        n_boot=int(b.n_boot or 0),
        boot_seed=int(b.seed or 0),
        level=float(b.level or 0.95),
        encode=lambda processor: p.encoder(processor, cache=False),
        load_quantized=lambda path, bits: p.loader.quantized(bits).load(path),
    )


def _safe(variant: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", variant)


def _write(directory: Path, results: dict[str, Records]) -> None:
    for variant, records in results.items():
        write_records(directory / _safe(variant), records)
    (directory / "variants.json").write_text(json.dumps({_safe(v): v for v in results}, indent=2))


def _read(directory: Path) -> dict[str, Records]:
    names = json.loads((directory / "variants.json").read_text())
    return {variant: read_records(directory / safe) for safe, variant in names.items()}


def attacked(
    p: Pipeline, name: str, attack: Attack, ctx: AttackContext, subject: Subject
) -> tuple[dict, float]:
    """One model's records under one attack ({variant: records}) and the seconds spent; a reference's are
    stored as an artifact and reused by every run with the same attack, reference, split, evaluation and seed."""
    s = p.settings
    start = time.perf_counter()
    if subject.key is None:
        return attack.run(ctx, subject), time.perf_counter() - start
    key = {
        "attack": name,
        "kind": attack.kind,
        "spec": attack.spec(),
        "model": digest(subject.key),
        "label": subject.label,
        "split": s.split,
        "eval": s.eval_key,
        "data": p.source.identity(),
        "seed": ctx.seed,
        "precision": s.precision,
    }
    found = p.store.get("attack", key)
    if found:
        return _read(found / "records"), 0.0

    def builder(out: Path) -> None:
        _write(out / "records", attack.run(ctx, subject))

    path = p.store.build(
        "attack", key, builder, p.provenance(stage="attack", attack=name, label=subject.label)
    )
    return _read(path / "records"), time.perf_counter() - start


def no_attack(ctx: AttackContext, records: Records, refs: References) -> dict[str, Any]:
    """The plain evaluation scored like an attack (variant `none`): the residual without any attack."""
    forget = set(ctx.forget_sets)
    by_label = {"unlearned": {n: r for n, r in records.items() if n in forget}}
    for label in ("gold", "original"):
        by_label[label] = {n: r for n, r in read_records(refs[label][2] / "eval").items() if n in forget}
    return score_variants(
        ctx, "none", "the plain evaluation", {lab: {"none": by_label[lab]} for lab in LABELS}
    )


def summary_keys(result: dict[str, Any]) -> dict[str, Any]:
    """The flat robust-forget keys a summary (and the leaderboard) carries."""
    out: dict[str, Any] = {"residual/none": result["no_attack"]["residual_forget"]}
    for name, entry in result["attacks"].items():
        if entry.get("kind") == "mia":
            for score, values in entry.get("scores", {}).items():
                out[f"privacy_leakage/{score}"] = values["privacy_leakage"]
        elif "unavailable" not in entry:
            out[f"residual/{name}"] = entry["residual_forget"]
    worst, gap = result["robust_forget"], result["robust_gap_closed"]
    out["robust_forget"] = worst["value"] if worst else None
    out["robust_forget_attack"] = (
        None
        if not worst
        else worst["attack"] + ("" if worst["variant"] == "default" else f"/{worst['variant']}")
    )
    out["robust_gap_closed"] = gap["value"] if gap else None
    return out


def _extremes(attacks: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    cells = [
        (name, variant, v["residual"]["mean"], v["gap_closed"])
        for name, entry in attacks.items()
        if entry.get("kind") != "mia" and "variants" in entry
        for variant, v in entry["variants"].items()
    ]
    residual = [c for c in cells if c[2] is not None]
    gaps = [c for c in cells if c[3] is not None]
    worst = max(residual, key=lambda c: c[2]) if residual else None
    least = min(gaps, key=lambda c: c[3]) if gaps else None
    return (
        None if worst is None else {"value": worst[2], "attack": worst[0], "variant": worst[1]},
        None if least is None else {"value": least[3], "attack": least[0], "variant": least[1]},
    )


def run_attacks(p: Pipeline, run_dir: Path, records: Records, refs: References) -> dict[str, Any]:
    """Every configured attack on the run at `run_dir` (its plain-evaluation `records`); writes robustness.json,
    eval/attacks/ and the robust keys of summary.json there, and returns robustness.json's content."""
    s = p.settings
    models = subjects(p, run_dir, refs)
    ctx = context(p, models["original"])
    result: dict[str, Any] = {
        "method": s.method_name,
        "split": s.split,
        "modality": s.modality,
        "seed": s.seed,
        "no_attack": no_attack(ctx, records, refs),
        "attacks": {},
    }
    for name, attack in p.attacks.items():
        p.say(f"attack {name}: {attack.description}")
        try:
            results, seconds = {}, {}
            for label in LABELS:
                results[label], seconds[label] = attacked(p, name, attack, ctx, models[label])
        except ClearConfigError as err:  # e.g. no holdout persons in the data: reported, not fatal
            p.say(f"attack {name} unavailable: {err.problem}")
            result["attacks"][name] = {"kind": attack.kind, "unavailable": err.problem, "fix": err.fix}
            continue
        entry = attack.score(ctx, results)
        entry["seconds"] = seconds
        result["attacks"][name] = entry
        if is_main_process():
            for label in LABELS:
                _write(run_dir / "eval" / "attacks" / name / label, results[label])
    result["robust_forget"], result["robust_gap_closed"] = _extremes(result["attacks"])
    if is_main_process():
        (run_dir / RESULT).write_text(json.dumps(result, indent=2, default=str))
        summary_file = run_dir / "summary.json"
        if summary_file.exists():
            summary = json.loads(summary_file.read_text())
            summary.update(summary_keys(result))
            summary_file.write_text(json.dumps(summary, indent=2, default=str))
        _figure(result, run_dir)
    return result


def _figure(result: dict[str, Any], run_dir: Path) -> None:
    try:
        from ..report.robustness import robustness_figure
    except ImportError:  # matplotlib is optional: the numbers are in robustness.json
        return
    title = f"{result['method']} ({result['modality']}, {result['split']}, seed {result['seed']})"
    try:
        robustness_figure(result, run_dir / "robustness.png", title)
    except ValueError as err:  # nothing score-based to draw (e.g. attacks=[mia] only): the json says it all
        print(f"[clear_lightning] no robustness figure: {err}", flush=True)
