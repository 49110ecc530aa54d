"""Person-level bootstrap intervals for any statistic of the per-item records.

The items of one person (their QA, captions, face-name questions, in forget and elsewhere) are correlated, so the
resampling unit is the person, not the item: a replicate draws persons with replacement, the same draw for every
set (and for the paired, e.g. gold, records), and keeps every item of each drawn person as often as drawn.
Intervals are percentile intervals over the replicates whose statistic succeeded.

Stratified draws (`strata`): a benchmark fixes by design how many persons each part holds (forget10 of 20 persons
has 2 forget persons, 18 retain persons, celebrities and real-world items besides). Drawing from the pooled persons
would vary that split from replicate to replicate, and leave the forget sets empty whenever no forget person is
drawn (with 2 of ~40 persons, about e^-2 = 14 % of replicates). With `strata` (set name -> stratum, e.g. its group)
each person belongs to the stratum of the sets it has items in, and a replicate draws, within every stratum, as
many persons as it holds, with replacement. A stratum of one person is then drawn identically every time: its
between-person spread is unknown, and the interval shows only the other strata's.

Speed: persons' items are grouped once, so a replicate is a few list concatenations plus one statistic call;
`summary.summarize` on ~1000 pre-scored records takes about 1 ms, so the default 1000 replicates take about a
second. Pass records that already hold their scores (`summary.scored`): otherwise every replicate recomputes ROUGE.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Records = Mapping[str, Sequence[Mapping[str, Any]]]
Statistic = Callable[..., Mapping[str, Any]]

# Replicate failures that mean "this resample cannot be summarised" (e.g. a set left empty), not a bug.
REPLICATE_ERRORS: tuple[type[Exception], ...] = (ValueError, ArithmeticError)


@dataclass(frozen=True)
class BootstrapResult:
    """Intervals plus the bookkeeping needed to judge them (how many replicates, what failed)."""

    intervals: dict[str, tuple[float, float]]
    point: dict[str, float]  # the statistic on the records as given
    n_boot: int  # replicates drawn
    n_used: int  # replicates whose statistic succeeded
    n_persons: int
    level: float
    seed: int
    n_values: dict[str, int] = field(default_factory=dict)  # per name: replicates with a finite value
    failures: dict[str, int] = field(default_factory=dict)  # error message -> count
    strata: dict[str, int] = field(default_factory=dict)  # stratum -> persons (empty: one pooled draw)

    @property
    def n_failed(self) -> int:
        """Replicates skipped because the statistic raised on them."""
        return self.n_boot - self.n_used

    def summary_keys(self) -> dict[str, Any]:
        """Flat keys to merge into a summary: `<name>_ci_lo`, `<name>_ci_hi`, `bootstrap_*` bookkeeping."""
        out: dict[str, Any] = {}
        for name, (lo, hi) in self.intervals.items():
            out[f"{name}_ci_lo"], out[f"{name}_ci_hi"] = lo, hi
        out.update(
            bootstrap_level=self.level,
            bootstrap_n_boot=self.n_boot,
            bootstrap_n_used=self.n_used,
            bootstrap_n_persons=self.n_persons,
            bootstrap_seed=self.seed,
        )
        return out


def _person_sort_key(person: Any) -> tuple[str, str]:
    """Order persons by text, so the draw does not depend on dict order or PYTHONHASHSEED."""
    return (str(person), type(person).__name__)


def _group_by_person(
    records_by_set: Records, person_key: str, label: str
) -> dict[str, dict[Any, list[Mapping[str, Any]]]]:
    """{set: {person: [records in input order]}}; a record without a person is an error naming its set."""
    grouped: dict[str, dict[Any, list[Mapping[str, Any]]]] = {}
    for name, records in records_by_set.items():
        by_person: dict[Any, list[Mapping[str, Any]]] = {}
        for index, record in enumerate(records):
            person = record.get(person_key)
            if person is None:
                raise ValueError(
                    f"{label} set {name!r}: record {record.get('id', f'#{index}')!r} has no {person_key!r}; "
                    "the person-level bootstrap needs the person of every item"
                )
            by_person.setdefault(person, []).append(record)
        grouped[name] = by_person
    return grouped


def _resample(
    grouped: Mapping[str, Mapping[Any, list[Mapping[str, Any]]]], persons: Sequence[Any], draw: np.ndarray
) -> dict[str, list[Mapping[str, Any]]]:
    """Every set rebuilt from the drawn persons (with multiplicity), in draw order; a set may come out empty."""
    out = {}
    for name in sorted(grouped):
        by_person = grouped[name]
        items: list[Mapping[str, Any]] = []
        for index in draw:
            items.extend(by_person.get(persons[index], ()))
        out[name] = items
    return out


def _finite_floats(values: Mapping[str, Any]) -> dict[str, float]:
    """Only the float entries (not ints such as counts, bools or None), finite ones."""
    out = {}
    for name, value in values.items():
        if isinstance(value, float | np.floating) and math.isfinite(float(value)):
            out[name] = float(value)
    return out


def _person_strata(
    grouped: Sequence[Mapping[str, Mapping[Any, Any]]], persons: Sequence[Any], strata: Callable[[str], str]
) -> list[str]:
    """The stratum of each person: that of the sets it has items in; `a+b` for a person found in several."""
    found: dict[Any, set[str]] = {}
    for by_set in grouped:
        for name, by_person in by_set.items():
            label = str(strata(name))
            for person in by_person:
                found.setdefault(person, set()).add(label)
    return ["+".join(sorted(found[p])) for p in persons]


def _draws(
    rng: np.random.Generator, n_boot: int, n_persons: int, stratum_of: Sequence[str] | None
) -> np.ndarray:
    """(n_boot, n_persons) person indices: one pooled draw, or per stratum as many as it holds (sorted strata)."""
    if stratum_of is None:
        return rng.integers(0, n_persons, size=(n_boot, n_persons))
    columns = []
    for label in sorted(set(stratum_of)):
        members = np.asarray([i for i, s in enumerate(stratum_of) if s == label])
        columns.append(members[rng.integers(0, len(members), size=(n_boot, len(members)))])
    return np.concatenate(columns, axis=1)


def bootstrap(
    records_by_set: Records,
    statistic: Statistic,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    person_key: str = "person",
    paired_records_by_set: Records | None = None,
    strata: Callable[[str], str] | None = None,
) -> BootstrapResult:
    """Person-level percentile bootstrap of every float the statistic returns.

    `statistic(records_by_set)` (or `statistic(records_by_set, paired_records_by_set)` when paired records are
    given, e.g. gold's, for forget quality) returns a dict; non-float values, None and non-finite values are
    ignored. Persons are the sorted union over both record sets and are drawn with `Generator(PCG64(seed))`, so a
    fixed seed gives identical intervals. `strata` maps a set name (of either record set) to its stratum: persons
    are then drawn within their stratum (see the module docstring); None draws from all persons at once.
    Replicates on which the statistic raises ValueError/ArithmeticError (e.g. a set left empty) are skipped and
    counted; if all fail, ValueError with the first message.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    grouped = _group_by_person(records_by_set, person_key, "evaluation")
    paired = (
        None
        if paired_records_by_set is None
        else _group_by_person(paired_records_by_set, person_key, "paired")
    )
    universe = {p for by_person in grouped.values() for p in by_person}
    if paired is not None:
        universe |= {p for by_person in paired.values() for p in by_person}
    persons = sorted(universe, key=_person_sort_key)
    if not persons:
        raise ValueError("no records to bootstrap: every set is empty")

    def call(sample: Mapping[str, Any], paired_sample: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return statistic(sample) if paired_sample is None else statistic(sample, paired_sample)

    point = _finite_floats(call(records_by_set, paired_records_by_set))
    stratum_of = None
    if strata is not None:
        stratum_of = _person_strata([grouped] if paired is None else [grouped, paired], persons, strata)
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = _draws(rng, n_boot, len(persons), stratum_of)
    values: dict[str, list[float]] = {}
    failures: Counter[str] = Counter()
    n_used = 0
    for draw in draws:
        sample = _resample(grouped, persons, draw)
        paired_sample = None if paired is None else _resample(paired, persons, draw)
        try:
            result = call(sample, paired_sample)
        except REPLICATE_ERRORS as error:
            failures[f"{type(error).__name__}: {error}"] += 1
            continue
        n_used += 1
        for name, value in _finite_floats(result).items():
            values.setdefault(name, []).append(value)
    if n_used == 0:
        raise ValueError(f"all {n_boot} bootstrap replicates failed; first error: {next(iter(failures))}")
    tail = 100.0 * (1.0 - level) / 2.0
    intervals = {}
    for name in sorted(values):
        lo, hi = np.percentile(np.asarray(values[name]), [tail, 100.0 - tail])
        intervals[name] = (float(lo), float(hi))
    return BootstrapResult(
        intervals=intervals,
        point=point,
        n_boot=n_boot,
        n_used=n_used,
        n_persons=len(persons),
        level=level,
        seed=seed,
        n_values={name: len(v) for name, v in sorted(values.items())},
        failures=dict(failures),
        strata={} if stratum_of is None else dict(sorted(Counter(stratum_of).items())),
    )
