"""Diagnostics on paper-mode summaries: which component fixes an aggregate, when it is degenerate, gap closed.

Every function is pure over the flat summaries of `metrics.summary.summarize` (keys `<set>/<component>` and
`<group>_metric` / `model_utility`); none re-reads records.

Keys that `with_diagnostics` adds to a summary, for each aggregate key A in `AGGREGATES` (`real_metric`,
`retain_metric`, `forget_metric`, `model_utility`):

- `A_limit`: `"<set>/<component>"` of the smallest component, the one that sets the harmonic mean (None when the
  summary has no set of that aggregate).
- `A_limit_value`: that component's value (float, or None as above).
- `A_degenerate`: True when the aggregate says nothing about unlearning (see `degenerate_flags`), False when it is
  usable, None when the aggregate was not computed.
- `degenerate_reasons`: a list of readable strings, each prefixed with `A: `, for every aggregate at once.

`gap_closed_summary` returns `gap_closed/<forget_set>/<component>`, `gap_closed/<forget_set>` and `gap_closed`.
`holdout_gap` returns `holdout_gap/<task>/<component>` of a gold summary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any

from clear_lightning.contract import EVAL_SET_TABLE, counterpart, is_aggregated
from clear_lightning.metrics.summary import SET_COMPONENTS, set_group

# Aggregate key -> the set groups whose components it takes the harmonic mean of (as summary.summarize does).
AGGREGATES: dict[str, tuple[str, ...]] = {
    "real_metric": ("real",),
    "retain_metric": ("retain",),
    "forget_metric": ("forget",),
    "model_utility": ("retain", "real"),
}
DEFAULT_FLOOR = 0.10
GAP_EPSILON = 1e-6


def _aggregate_key(group: str) -> str:
    """Accept a group (`forget`), its aggregate key (`forget_metric`) or `model_utility`, for convenience."""
    if group in AGGREGATES:
        return group
    if f"{group}_metric" in AGGREGATES:
        return f"{group}_metric"
    raise ValueError(f"unknown group {group!r}: expected one of {sorted(AGGREGATES)} or real/retain/forget")


def _group_of(name: str) -> str | None:
    """The set's group, or None for prefixes that are not evaluation sets (e.g. `forget_quality/<set>`)."""
    try:
        return set_group(name)
    except ValueError:
        return None


def set_names(summary: Mapping[str, Any], groups: Sequence[str] | None = None) -> list[str]:
    """Sorted evaluation sets with a `<set>/<component>` entry, optionally only those of the given groups.

    Keys such as `forget_quality/forget_qa` or `gap_closed/forget_qa/probability` are not sets: only keys of the
    form `<set>/<one of SET_COMPONENTS>` whose prefix maps to a group count.
    """
    names = set()
    for key in summary:
        parts = key.split("/")
        if len(parts) != 2 or parts[1] not in SET_COMPONENTS:
            continue
        group = _group_of(parts[0])
        if group is not None and (groups is None or group in groups):
            names.add(parts[0])
    return sorted(names)


def _components(summary: Mapping[str, Any], aggregate: str) -> list[tuple[str, str, float]]:
    """(set, component, value) of every component the aggregate's harmonic mean is taken over, in a fixed order."""
    out = []
    for name in (n for n in set_names(summary, AGGREGATES[aggregate]) if is_aggregated(n)):
        for component in SET_COMPONENTS:
            value = summary.get(f"{name}/{component}")
            if value is not None:
                out.append((name, component, float(value)))
    return out


def limiting_component(summary: Mapping[str, Any], group: str) -> dict[str, Any] | None:
    """The component that sets the group's harmonic mean: the smallest one (a 0 makes the aggregate 0 outright).

    `group` is real/retain/forget, an aggregate key (`forget_metric`) or `model_utility`. Returns
    {"set", "component", "value"}, or None when the summary has no set of that group. A NaN component is returned
    first, since it leaves the aggregate undefined. Ties go to the first in (set name, SET_COMPONENTS) order.
    """
    components = _components(summary, _aggregate_key(group))
    if not components:
        return None
    nan = [c for c in components if math.isnan(c[2])]
    name, component, value = nan[0] if nan else min(components, key=lambda c: c[2])
    return {"set": name, "component": component, "value": value}


def degenerate_reasons(
    summary: Mapping[str, Any],
    group: str,
    original_summary: Mapping[str, Any] | None = None,
    floor: float = DEFAULT_FLOOR,
) -> list[str]:
    """Why one aggregate is degenerate (empty list when it is usable); see `degenerate_flags`."""
    aggregate = _aggregate_key(group)
    reasons = []
    for name, component, value in _components(summary, aggregate):
        if math.isnan(value):
            reasons.append(f"{name}/{component} is NaN: the harmonic mean is undefined")
        elif value == 0.0:
            reasons.append(
                f"{name}/{component} = 0: the harmonic mean is 0 whatever the other components are"
            )
    if original_summary is not None:
        for name, component, _ in _components(summary, aggregate):
            original = original_summary.get(f"{name}/{component}")
            if original is not None and float(original) < floor:
                reasons.append(
                    f"{name}/{component} of the original model is {float(original):.4g} < floor {floor:g}: "
                    "the original never knew it, so the score on it says nothing about unlearning"
                )
    return reasons


def degenerate_flags(
    summary: Mapping[str, Any],
    original_summary: Mapping[str, Any] | None = None,
    floor: float = DEFAULT_FLOOR,
) -> dict[str, dict[str, Any]]:
    """Flag aggregates that do not measure what they claim, so a table does not rank on them.

    An aggregate is degenerate when (a) one of its components is exactly 0 (or NaN): the harmonic mean is then 0
    (undefined) whatever the other components, so it reflects one collapsed score; or (b) with `original_summary`,
    it is computed on a set/component whose ORIGINAL model value is below `floor`: the original never knew it,
    so a low score there is not forgetting. Components the original summary lacks are not judged by (b).
    Returns {group: {"degenerate": bool, "reasons": [str, ...]}} for each of real, retain, forget and
    model_utility that has at least one set in the summary.
    """
    out = {}
    for aggregate in AGGREGATES:
        if not _components(summary, aggregate):
            continue
        reasons = degenerate_reasons(summary, aggregate, original_summary, floor)
        group = aggregate.removesuffix("_metric")
        out[group] = {"degenerate": bool(reasons), "reasons": reasons}
    return out


def with_diagnostics(
    summary: Mapping[str, Any],
    original_summary: Mapping[str, Any] | None = None,
    floor: float = DEFAULT_FLOOR,
) -> dict[str, Any]:
    """A copy of the summary with `<aggregate>_limit`, `_limit_value`, `_degenerate` and `degenerate_reasons`.

    Values are flat scalars (strings, floats, bools) so the summary stays loggable as one row; see the module
    docstring for the key names. The input is not modified.
    """
    out = dict(summary)
    flags = degenerate_flags(summary, original_summary, floor)
    reasons: list[str] = []
    for aggregate in AGGREGATES:
        limit = limiting_component(summary, aggregate)
        flag = flags.get(aggregate.removesuffix("_metric"))
        out[f"{aggregate}_limit"] = None if limit is None else f"{limit['set']}/{limit['component']}"
        out[f"{aggregate}_limit_value"] = None if limit is None else limit["value"]
        out[f"{aggregate}_degenerate"] = None if flag is None else flag["degenerate"]
        if flag is not None:
            reasons.extend(f"{aggregate}: {reason}" for reason in flag["reasons"])
    out["degenerate_reasons"] = reasons
    return out


def gap_closed(
    model: float | None, original: float | None, gold: float | None, eps: float = GAP_EPSILON
) -> float | None:
    """Share of the original→gold gap the model closed: (original − model) / (original − gold).

    0 = still the original, 1 = like gold (never saw the forget persons), > 1 = went past gold (over-forgetting),
    < 0 = moved away from gold (learned more). None, not NaN, when |original − gold| < eps: there is no gap to
    close, so the ratio means nothing (also None when any input is None or NaN).
    """
    if model is None or original is None or gold is None:
        return None
    model, original, gold = float(model), float(original), float(gold)
    if any(math.isnan(v) for v in (model, original, gold)) or abs(original - gold) < eps:
        return None
    return (original - model) / (original - gold)


def gap_closed_summary(
    summary: Mapping[str, Any],
    original_summary: Mapping[str, Any],
    gold_summary: Mapping[str, Any],
    eps: float = GAP_EPSILON,
) -> dict[str, float | None]:
    """Gap closed for every forget set and component, per set and overall, to compare methods on one scale.

    Keys: `gap_closed/<forget_set>/<component>` for each forget set of `summary` and each of SET_COMPONENTS
    (None where there is no gap, see `gap_closed`), `gap_closed/<forget_set>` = mean of that set's defined cells,
    `gap_closed` = mean over all defined cells of the aggregated sets, probe sets left out (None when no cell is
    defined). Raises ValueError when the original
    or gold summary lacks a forget set of the model's: they would not be comparable evaluations.
    """
    out: dict[str, float | None] = {}
    defined: list[float] = []
    for name in set_names(summary, ("forget",)):
        for label, reference in (("original", original_summary), ("gold", gold_summary)):
            if not any(f"{name}/{c}" in reference for c in SET_COMPONENTS):
                raise ValueError(
                    f"the {label} summary has no forget set {name!r}: cannot compute its gap closed"
                )
        cells = []
        for component in SET_COMPONENTS:
            key = f"{name}/{component}"
            value = gap_closed(summary.get(key), original_summary.get(key), gold_summary.get(key), eps)
            out[f"gap_closed/{key}"] = value
            if value is not None:
                cells.append(value)
        out[f"gap_closed/{name}"] = fmean(cells) if cells else None
        if is_aggregated(name):  # a probe set has its own gap closed, outside the overall one
            defined.extend(cells)
    out["gap_closed"] = fmean(defined) if defined else None
    return out


# forget set -> the holdout set of the same task (forget_qa -> holdout_qa)
_HOLDOUT_TWINS = {
    s.name: twin
    for s in EVAL_SET_TABLE
    if s.group == "forget" and (twin := counterpart(s.name, "holdout")) is not None
}


def holdout_gap(gold_summary: Mapping[str, Any]) -> dict[str, float | None]:
    """How far gold's forget scores are from its holdout scores: is gold a correct reference for forgetting?

    For each task with both a `forget_<task>` and a `holdout_<task>` set in the gold summary and each of
    SET_COMPONENTS: `holdout_gap/<task>/<component>` = gold's forget_<task> component − gold's holdout_<task>
    component. Gold never saw either group's persons, so a correct testbed gives about 0; a positive gap means gold
    knows the forget persons better than unseen ones (it was trained on some of their facts). None where either
    value is missing or NaN. A forget set's holdout counterpart is the contract's holdout set of the same task.
    """
    values: dict[str, dict[str, Any]] = {}
    for key, value in gold_summary.items():
        parts = key.split("/")
        if len(parts) == 2 and parts[1] in SET_COMPONENTS:
            values.setdefault(parts[0], {})[parts[1]] = value
    out: dict[str, float | None] = {}
    for name, twin in sorted(_HOLDOUT_TWINS.items()):
        if name not in values or twin.name not in values:
            continue
        task = twin.kind
        for component in SET_COMPONENTS:
            forget, holdout = values[name].get(component), values[twin.name].get(component)
            ok = forget is not None and holdout is not None
            gap = float(forget) - float(holdout) if ok else None
            out[f"holdout_gap/{task}/{component}"] = None if gap is None or math.isnan(gap) else gap
    return out
