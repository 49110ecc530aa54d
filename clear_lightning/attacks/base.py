"""What every attack shares: the models it is applied to, the context it runs in, and how its records are scored.

An attack (one class here + one YAML under `conf/attack/`) is applied to three models with the same seed and
data: the **unlearned** model, **gold** (never saw the forget persons) and the **original**. What gold gains
under the attack is learning from the attack's own data; what the unlearned model shows *beyond gold* under the
same attack is knowledge that was never removed. That difference is the attack's **residual knowledge**.

`robustness.json` (written by `pipeline/robustness.py`) has this shape:

    {"method", "split", "modality", "seed",
     "no_attack": Entry of the plain evaluation (variant "none"),
     "attacks": {<attack name>: Entry},
     "robust_forget": {"value": worst residual (mean component), "attack": name, "variant": v} | null,
     "robust_gap_closed": {"value": smallest gap closed, "attack": name, "variant": v} | null}

    Entry (score-based attacks) = {
      "attack", "kind", "description",
      "variants": {<variant>: {
          "scores": {"unlearned" | "gold" | "original": flat summary (forget_metric, forget_mean = mean of the
                     forget sets' components, <set>/<component>, ...)},
          "residual": {"mean": mean over forget sets x components of unlearned - gold (the headline),
                       "forget_metric": unlearned - gold, "<forget set>/<component>": unlearned - gold, ...},
          "gap_closed": share of the original-to-gold gap the unlearned model closed UNDER the attack,
          "intervals": {"residual/mean": [lo, hi], "residual/forget_metric": [lo, hi], "gap_closed": [lo, hi]}}},
      "worst": the variant with the largest residual (mean component),
      "residual_forget": its residual, "interval": its interval, "gap_closed": its gap closed,
      "seconds": {label: seconds}}

    Entry (membership inference, kind "mia") = {
      "attack", "kind", "description",
      "scores": {<score>: {"auc": {label: AUC of forget (members) vs holdout (non-members)},
                            "privacy_leakage": (AUC_unlearned - AUC_gold) / AUC_gold}},
      "residual_forget": null, "seconds": {...}}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..data.examples import Example
from ..metrics.bootstrap import bootstrap
from ..metrics.diagnostics import gap_closed_summary, set_names
from ..metrics.summary import SET_COMPONENTS, set_group, summarize

LABELS = ("unlearned", "gold", "original")
Records = dict[str, list[dict[str, Any]]]
Transform = Callable[[str, list[Example]], list[Example]]  # (set name, its items) -> the items to score


@dataclass
class Subject:
    """A model an attack is applied to: how to load a fresh, plain (adapter merged) copy, and its identity."""

    label: str  # unlearned | gold | original
    load: Callable[[], tuple[torch.nn.Module, Any]]
    key: dict[str, Any] | None = (
        None  # what determines the model (references are cached by it); None: not cached
    )


@dataclass
class AttackContext:
    """What an attack may do, without seeing the config: evaluate a model on (transformed) sets, fine-tune it on
    given rows, read the evaluation items and training rows, and print what it does."""

    seed: int
    evaluate: Callable[..., Records]  # (model, processor, sets, transform=None) -> records per set
    fit: Callable[
        ..., torch.nn.Module
    ]  # (model, processor, examples, epochs, lr, batch_size) -> trained model
    eval_items: Callable[[str], list[Example]]  # the items of one evaluation set, as evaluation scores them
    forget_rows: Callable[[], list[Example]]  # forget persons' training rows (members), every modality
    holdout_rows: Callable[[], list[Example]]  # holdout persons' rows (never trained on: non-members)
    forget_sets: tuple[str, ...]  # the forget evaluation sets this run scores
    retain_sets: tuple[str, ...]
    original: Subject  # the anchor of attacks that move a model relative to the original
    say: Callable[[str], None] = print
    n_boot: int = 200
    boot_seed: int = 0
    level: float = 0.95
    encode: Callable[[Any], Any] | None = None  # processor -> ExampleEncoder (membership inference's rows)
    load_quantized: Callable[[Any, str], tuple[torch.nn.Module, Any]] | None = (
        None  # (model dir, "8bit"|"4bit")
    )


class Attack:
    """One attack: `run` gives one model's records per variant; `score` turns the three models' records into an
    Entry (see the module docstring). Subclasses set `kind` and implement `run` (and `variants`)."""

    kind: ClassVar[str] = "attack"
    description: ClassVar[str] = ""

    def spec(self) -> dict[str, Any]:
        """The attack's settings (part of the cache key of the references' attacked records)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def variants(self) -> list[str]:
        return ["default"]

    def run(self, ctx: AttackContext, subject: Subject) -> dict[str, Records]:
        raise NotImplementedError

    def score(self, ctx: AttackContext, results: Mapping[str, Mapping[str, Records]]) -> dict[str, Any]:
        """Residual knowledge per variant, the worst variant, and person-level intervals."""
        return score_variants(ctx, self.kind, self.description, results)


def residuals(unlearned: Mapping[str, Any], gold: Mapping[str, Any]) -> dict[str, float | None]:
    """unlearned − gold for every forget set's components, their mean (`mean`: the headline residual), the
    forget metric and the retain metric.

    The headline is the mean component residual, not the forget metric's: the forget metric is a harmonic mean,
    so one zero component of gold (a face it never names) sets gold's to 0 and the residual to the unlearned
    model's own score; the component mean keeps every set's evidence."""
    cells = [f"{name}/{c}" for name in set_names(unlearned, ("forget",)) for c in SET_COMPONENTS]
    out: dict[str, float | None] = {}
    for key in ["forget_metric", "retain_metric", *cells]:
        u, g = unlearned.get(key), gold.get(key)
        out[key] = None if u is None or g is None else float(u) - float(g)
    defined = [out[k] for k in cells if out[k] is not None]
    out["mean"] = sum(defined) / len(defined) if defined else None
    return out


def forget_mean(summary: Mapping[str, Any]) -> float | None:
    """Mean of every forget set's (ROUGE-L, probability, truth ratio): a forget score no zero component can
    pin to 0 (the harmonic-mean forget metric can), so it is the one the robustness figures draw."""
    cells = (summary.get(f"{name}/{c}") for name in set_names(summary, ("forget",)) for c in SET_COMPONENTS)
    values = [float(v) for v in cells if v is not None]
    return sum(values) / len(values) if values else None


def _with_forget_mean(summary: dict[str, Any]) -> dict[str, Any]:
    return {**summary, "forget_mean": forget_mean(summary)}


def _stratum(name: str) -> str:
    """Bootstrap stratum of a (`gold:`-prefixed) evaluation set: its group."""
    return set_group(name.rsplit(":", 1)[-1])


def variant_intervals(ctx: AttackContext, by_label: Mapping[str, Records]) -> dict[str, list[float]]:
    """Person-level bootstrap of the residual forget metric and the gap closed under one variant: the three
    models' records are resampled jointly, persons drawn within their group."""
    if ctx.n_boot <= 0:
        return {}
    model = by_label["unlearned"]
    paired = {f"{lab}:{name}": rs for lab in ("gold", "original") for name, rs in by_label[lab].items()}

    def statistic(sample: Mapping[str, Any], paired_sample: Mapping[str, Any]) -> dict[str, Any]:
        refs = {
            lab: {k.split(":", 1)[1]: v for k, v in paired_sample.items() if k.startswith(f"{lab}:")}
            for lab in ("gold", "original")
        }
        u, g, o = summarize(sample), summarize(refs["gold"]), summarize(refs["original"])
        r = residuals(u, g)
        out = {"residual/mean": r["mean"], "residual/forget_metric": r["forget_metric"]}
        out["gap_closed"] = gap_closed_summary(u, o, g)["gap_closed"]
        return out

    try:
        result = bootstrap(
            model,
            statistic,
            ctx.n_boot,
            ctx.boot_seed,
            ctx.level,
            paired_records_by_set=paired,
            strata=_stratum,
        )
    except ValueError:
        return {}
    return {k: [lo, hi] for k, (lo, hi) in result.intervals.items()}


def score_variants(
    ctx: AttackContext, kind: str, description: str, results: Mapping[str, Mapping[str, Records]]
) -> dict[str, Any]:
    """The Entry of a score-based attack from {label: {variant: records}}."""
    variants: dict[str, Any] = {}
    for variant in results["unlearned"]:
        by_label = {lab: results[lab][variant] for lab in LABELS}
        scores = {lab: _with_forget_mean(summarize(records)) for lab, records in by_label.items()}
        try:
            gap = gap_closed_summary(scores["unlearned"], scores["original"], scores["gold"])["gap_closed"]
        except ValueError:
            gap = None
        variants[variant] = {
            "scores": scores,
            "residual": residuals(scores["unlearned"], scores["gold"]),
            "gap_closed": gap,
            "intervals": variant_intervals(ctx, by_label),
        }
    scored = [v for v in variants if variants[v]["residual"]["mean"] is not None]
    worst = max(scored, key=lambda v: variants[v]["residual"]["mean"]) if scored else None
    chosen = variants.get(worst, {}) if worst else {}
    return {
        "kind": kind,
        "description": description,
        "variants": variants,
        "worst": worst,
        "residual_forget": chosen.get("residual", {}).get("mean"),
        "interval": chosen.get("intervals", {}).get("residual/mean"),
        "gap_closed": chosen.get("gap_closed"),
    }


def only_sets(records: Records, sets: Sequence[str]) -> Records:
    return {name: rows for name, rows in records.items() if name in sets}
