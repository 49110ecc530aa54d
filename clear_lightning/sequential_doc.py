"""Write `docs/sequential-embedded.md` from the forget-size and sequential sweeps: how methods scale with the
share of persons forgotten, and what happens when deletion requests arrive one after another.

    python -m clear_lightning.sequential_doc runs/multirun/forget_size runs/multirun/sequential \\
        --out docs/sequential-embedded.md

Every number comes from the runs' `summary.json` and `sequence.json`; the plain-words answers are computed from
them with the rules written next to them, so rerunning the sweeps and this command regenerates the document.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean, stdev
from typing import Any

from clear_lightning.contract import FORGET_PERCENTS, FORGET_SPLITS
from clear_lightning.data.mini_config import split_sizes
from clear_lightning.errors import ClearConfigError
from clear_lightning.report.runs import Run, find_runs, stderr_warning

SIZE_COMMAND = "python -m clear_lightning --config-dir sweeps --config-name forget_size -m"
SEQUENCE_COMMAND = "python -m clear_lightning --config-dir sweeps --config-name sequential -m"
COLLAPSE = 0.8  # Retain below this × the original's: collapsed (benchmark.md §6)
SAME = 0.1  # |final − one-shot| gap closed (or Retain) within this: the sequence ends where one-shot ends
BACK = 0.1  # gap closed on an earlier request's split falls by at least this: its knowledge came back
LIMITS = (
    "CLEAR-mini has 40 persons, so forget01/05/10 are 1, 2 and 4 persons and each request of the chain adds 1, 1 "
    "and 2 persons: the sizes are tiny, and a single person's items decide forget01. The numbers come from a "
    "~1.5 M-parameter model, three unlearning seeds on one original and one gold per split; they show what the "
    "framework measures, not how a 7B model behaves"
)

Key = tuple[str, str]  # (method, split)


def _ms(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    return fmean(vals), (stdev(vals) if len(vals) > 1 else None)


def _fmt(mean: float | None, std: float | None = None, fmt: str = ".2f") -> str:
    if mean is None:
        return "—"
    return format(mean, fmt) + ("" if std is None else f" ± {std:{fmt}}")


def _original(run: Run, key: str) -> float | None:
    value = ((run.summary.get("references") or {}).get("original") or {}).get(key)
    return None if value is None else float(value)


def _gold(run: Run, key: str) -> float | None:
    value = ((run.summary.get("references") or {}).get("gold") or {}).get(key)
    return None if value is None else float(value)


# --- forget-set size ---------------------------------------------------------------------------------------------
def size_cells(runs: Sequence[Run]) -> dict[Key, dict[str, Any]]:
    """{(method, split): {gap_closed, retain, retain_ratio, forget, log_fq (mean, std), original_retain, n}}."""
    grouped: dict[Key, list[Run]] = {}
    for run in runs:
        if run.group.l1 or "[" in run.group.method:
            continue
        grouped.setdefault((run.group.method, run.group.split), []).append(run)
    out = {}
    for key, members in grouped.items():
        ratios = [
            float(r.summary["retain_metric"]) / o
            for r in members
            if r.summary.get("retain_metric") is not None and (o := _original(r, "retain_metric"))
        ]
        out[key] = {
            "gap_closed": _ms([r.summary.get("gap_closed") for r in members]),
            "retain": _ms([r.summary.get("retain_metric") for r in members]),
            "retain_ratio": _ms(ratios),
            "forget": _ms([r.summary.get("forget_metric") for r in members]),
            "log_fq": _ms([r.summary.get("log_forget_quality") for r in members]),
            "original_retain": _original(members[0], "retain_metric"),
            "gold_retain": _gold(members[0], "retain_metric"),
            "n": len(members),
        }
    return out


def _style(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One colour and marker per method (tab20's strong colours first: up to ten stay clearly apart)."""
    import matplotlib.pyplot as plt

    tab20 = plt.get_cmap("tab20").colors
    colours = tab20[::2] + tab20[1::2]  # the ten strong colours first, their light twins after
    markers = "osD^v<>ph*Xd"
    return {
        m: {"color": colours[i % 20], "marker": markers[i % len(markers)]}
        for i, m in enumerate(sorted(methods))
    }


def size_figure(cells: Mapping[Key, Mapping[str, Any]], shares: Mapping[str, float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({m for m, _ in cells})
    style = _style(methods)
    splits = [s for s in FORGET_SPLITS if any((m, s) in cells for m in methods)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method in methods:
        xs = [shares[s] for s in splits if (method, s) in cells]
        for ax, key in zip(axes, ("gap_closed", "retain_ratio"), strict=True):
            ys = [cells[(method, s)][key][0] for s in splits if (method, s) in cells]
            ax.plot(xs, ys, label=method, **style[method])
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="share of persons forgotten (%)", ylabel="gap closed (1 = gold)", title="Forgetting")
    axes[1].axhline(COLLAPSE, color="red", lw=0.8, ls="--")
    axes[1].set(xlabel="share of persons forgotten (%)", ylabel="Retain / original's", title="Keeping")
    for ax in axes:
        ax.set_xticks([shares[s] for s in splits])
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --- sequential requests -----------------------------------------------------------------------------------------
def chains(runs: Sequence[Run]) -> dict[str, list[dict[str, Any]]]:
    """{method: [sequence.json of each seed's chain]}."""
    out: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        path = run.directory / "sequence.json"
        if not path.exists():
            continue
        out.setdefault(run.group.method.split("[")[0], []).append(
            {**json.loads(path.read_text()), "seed": run.seed, "run": run}
        )
    return out


def step_value(chain: Mapping[str, Any], k: int, on: str, key: str) -> float | None:
    steps = chain["steps"]
    if k >= len(steps):
        return None
    value = (steps[k].get("on") or {}).get(on, {}).get(key)
    return None if value is None else float(value)


def sequence_rows(chained: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method, mean ± std over seeds of: `on/<j>/<k>` the gap closed on request j's cumulative split after
    request k (j ≤ k), `own/<k>` = `on/<k>/<k>`, `first/<k>` = `on/0/<k>`, and `retain/<k>` Retain after request k."""
    out = {}
    for method, members in sorted(chained.items()):
        requests = members[0]["requests"]
        row: dict[str, Any] = {"requests": requests, "n": len(members)}
        for k, split in enumerate(requests):
            for j in range(k + 1):
                row[f"on/{j}/{k}"] = _ms([step_value(c, k, requests[j], "gap_closed") for c in members])
            row[f"own/{k}"], row[f"first/{k}"] = row[f"on/{k}/{k}"], row[f"on/0/{k}"]
            row[f"retain/{k}"] = _ms([step_value(c, k, split, "retain_metric") for c in members])
        out[method] = row
    return out


def sequence_figure(
    rows: Mapping[str, Mapping[str, Any]], one_shot: Mapping[Key, Mapping[str, Any]], path: Path
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    style = _style(list(rows))
    titles = (
        ("own", "gap closed on all persons forgotten so far"),
        ("first", "gap closed on request 1's persons"),
        ("retain", "Retain"),
    )
    for method, row in rows.items():
        n = len(row["requests"])
        xs = list(range(1, n + 1))
        for ax, (key, title) in zip(axes, titles, strict=True):
            line = ax.plot(xs, [row[f"{key}/{k}"][0] for k in range(n)], label=method, **style[method])[0]
            ax.set_title(title, fontsize=10)
            last = row["requests"][-1]
            shot = one_shot.get((method, last))
            if shot and key in ("own", "retain"):
                value = shot["gap_closed" if key == "own" else "retain"][0]
                if value is not None:
                    ax.scatter([n + 0.15], [value], marker="*", s=90, color=line.get_color())
    for ax in axes:
        ax.set_xlabel("request")
        ax.set_xticks(range(1, 4))
    axes[0].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[1].axhline(1.0, color="grey", lw=0.8, ls="--")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        "Deletion requests one after another (★ = one-shot unlearning of the final split)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def compare_final(
    rows: Mapping[str, Mapping[str, Any]], one_shot: Mapping[Key, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for method, row in rows.items():
        last = len(row["requests"]) - 1
        shot = one_shot.get((method, row["requests"][-1]))
        if not shot:
            continue
        final_gap, final_retain = row[f"own/{last}"][0], row[f"retain/{last}"][0]
        shot_gap, shot_retain = shot["gap_closed"][0], shot["retain"][0]
        if None in (final_gap, final_retain, shot_gap, shot_retain):
            continue
        out.append(
            {
                "method": method,
                "final_gap": final_gap,
                "shot_gap": shot_gap,
                "final_retain": final_retain,
                "shot_retain": shot_retain,
                "same": abs(final_gap - shot_gap) <= SAME and abs(final_retain - shot_retain) <= SAME,
            }
        )
    return out


def returns(rows: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(method, split, gap closed on that earlier request's split right after it, after the last request) where
    it fell by ≥ BACK: knowledge of an earlier request's persons came back."""
    out = []
    for method, row in rows.items():
        last = len(row["requests"]) - 1
        for j in range(last):
            start, end = row[f"on/{j}/{j}"][0], row[f"on/{j}/{last}"][0]
            if start is not None and end is not None and start - end >= BACK:
                out.append((method, row["requests"][j], start, end))
    return out


def render(size_runs: Sequence[Run], seq_runs: Sequence[Run], dirs: Sequence[Path], out: Path) -> str:
    cells = size_cells(size_runs)
    if not cells:
        raise ClearConfigError(f"no forget-size runs under {dirs[0]}", f"run {SIZE_COMMAND} first")
    chained = chains(seq_runs)
    if not chained:
        raise ClearConfigError(
            f"no sequence runs (sequence.json) under {dirs[1]}", f"run {SEQUENCE_COMMAND} first"
        )
    config = size_runs[0].summary.get("config") or {}
    persons = int((config.get("data") or {}).get("num_persons") or 0)
    sizes = split_sizes(persons) if persons else {}
    shares = {
        FORGET_SPLITS[i]: 100 * sizes.get(p, p) / (persons or 100) for i, p in enumerate(FORGET_PERCENTS)
    }
    figures = out.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    size_png = size_figure(cells, shares, figures / "forget_size.png")
    rows = sequence_rows(chained)
    requests = next(iter(rows.values()))["requests"]
    seq_png = sequence_figure(rows, cells, figures / "sequence.png")
    methods = sorted({m for m, _ in cells})
    splits = [s for s in FORGET_SPLITS if any((m, s) in cells for m in methods)]
    seeds = sorted({r.seed for r in size_runs if r.seed is not None})
    compared = compare_final(rows, cells)
    back = returns(rows)
    same = [c["method"] for c in compared if c["same"]]
    final_words = (
        f"for {len(same)} of {len(compared)} method(s) ({', '.join(same) or 'none'}) the chain ends within "
        f"{SAME} of one-shot forget10 in both gap closed and Retain"
    )
    differ = [c for c in compared if not c["same"]]
    if differ:
        final_words += "; the others end elsewhere: " + "; ".join(
            f"{c['method']} gap closed {c['final_gap']:.2f} vs {c['shot_gap']:.2f} one-shot, Retain "
            f"{c['final_retain']:.3f} vs {c['shot_retain']:.3f}"
            for c in differ
        )
    small = [c for c in differ if c["final_gap"] < 0.5 * c["shot_gap"]]
    first_split = splits[0]
    if small:  # a method that barely forgets in small chunks: how it does on the smallest one-shot split
        final_words += (
            f". {', '.join(c['method'] for c in small)} forget(s) less than half as much in small requests as "
            f"in one: one-shot on {first_split} alone they close "
            + ", ".join(
                f"{c['method']} {_fmt(cells.get((c['method'], first_split), {}).get('gap_closed', (None,))[0])}"
                for c in small
            )
            + " of the gap, so a request of one or two persons is too small for them to act on"
        )
    back_words = (
        f"yes, for {len({m for m, *_ in back})} of {len(rows)} method(s): "
        + "; ".join(
            f"{m} closed {a:.2f} of {split}'s gap right after that request and {b:.2f} after the last one"
            for m, split, a, b in back
        )
        if back
        else "no: for every method the gap closed on each earlier request's split after the last request is "
        f"within {BACK} of (or above) its value right after that request"
    )
    collapsing = sorted(
        {
            m
            for (m, s), c in cells.items()
            if c["retain_ratio"][0] is not None and c["retain_ratio"][0] < COLLAPSE
        }
    )
    doc = [
        "# Forget-set size and sequential deletion requests on the embedded default",
        "",
        f"Generated by `python -m clear_lightning.sequential_doc {' '.join(shlex.quote(str(d)) for d in dirs)} "
        f"--out {out}` from the sweeps `{SIZE_COMMAND}` and `{SEQUENCE_COMMAND}`; do not edit by hand.",
        "",
        f"Setup: `{size_runs[0].summary.get('model')}` on CLEAR-mini with {persons} persons, so "
        + ", ".join(
            f"{s} = {sizes.get(p, '?')} person(s) ({shares[s]:.1f} %)"
            for s, p in zip(FORGET_SPLITS, FORGET_PERCENTS, strict=True)
        )
        + f"; modality both; seeds {', '.join(map(str, seeds))} ({len(seeds)} seeds) varying the unlearning only; "
        "each split scored against its own gold model (fine-tuned on that split's retain persons). "
        "Gap closed = the share of the original-to-gold gap closed on the forget sets (1 = like gold).",
        "",
        "## The answers",
        "",
        f"**How do methods scale from 1 % to 10 % of the persons?** {_scaling_words(cells, splits)}",
        "",
        f"**Does a sequence of requests end where one-shot unlearning ends?** {final_words}.",
        "",
        f"**Does earlier-forgotten knowledge return?** {back_words} (rule: a fall of ≥ {BACK}). Each request is "
        "scored on every earlier request's split against that split's gold; a gap closed that falls after later "
        "requests is knowledge of the earlier persons coming back.",
        "",
        f"Where the testbed cannot answer: {LIMITS}.",
        "",
        "## Forget-set size",
        "",
        f"![forgetting and keeping against the share of persons]({figures.name}/{size_png.name})",
        "",
        "| method | "
        + " | ".join(f"{s}: gap closed" for s in splits)
        + " | "
        + " | ".join(f"{s}: Retain / original's" for s in splits)
        + " |",
        "|---|" + "---|" * (2 * len(splits)),
        *(
            f"| {m}{' †' if m in collapsing else ''} | "
            + " | ".join(_fmt(*cells[(m, s)]["gap_closed"]) if (m, s) in cells else "—" for s in splits)
            + " | "
            + " | ".join(_fmt(*cells[(m, s)]["retain_ratio"]) if (m, s) in cells else "—" for s in splits)
            + " |"
            for m in methods
        ),
        "",
        f"† = Retain below {COLLAPSE} × the original's at some size (collapsed). Original / gold Retain per split: "
        + ", ".join(
            f"{s} {_fmt(next(c['original_retain'] for (m, sp), c in cells.items() if sp == s), None, '.3f')} / "
            f"{_fmt(next(c['gold_retain'] for (m, sp), c in cells.items() if sp == s), None, '.3f')}"
            for s in splits
        )
        + ".",
        "",
        "## Sequential requests (`sequence=nested`)",
        "",
        "Request 1 unlearns forget01's persons, request 2 forget05 ∖ forget01, request 3 forget10 ∖ forget05; each "
        "starts from the previous request's weights (the original with the earlier LoRA adapters merged in, checked "
        "by digest), with the retain set of its cumulative split, and the method's frozen reference is the model as "
        "the request found it. Every method that keeps retain on one-shot forget10 (modality both, "
        "docs/results-embedded.md) is run.",
        "",
        f"![one line per method over the requests]({figures.name}/{seq_png.name})",
        "",
        "Gap closed on each cumulative split after each request (— before the request that adds it), and Retain:",
        "",
        "| method | after request | " + " | ".join(f"on {split}" for split in requests) + " | Retain |",
        "|---|---|" + "---|" * (len(requests) + 1),
        *(
            f"| {m} | {k + 1} ({split}) | "
            + " | ".join(_fmt(*row[f"on/{j}/{k}"]) if j <= k else "—" for j in range(len(requests)))
            + f" | {_fmt(*row[f'retain/{k}'], fmt='.3f')} |"
            for m, row in rows.items()
            for k, split in enumerate(row["requests"])
        ),
        "",
        "### The final state against one-shot forget10 and gold",
        "",
        "| method | gap closed: chain / one-shot / gold | Retain: chain / one-shot / gold |",
        "|---|---|---|",
        *(
            f"| {c['method']} | {c['final_gap']:.2f} / {c['shot_gap']:.2f} / 1.00 | {c['final_retain']:.3f} / "
            f"{c['shot_retain']:.3f} / {_fmt(cells[(c['method'], rows[c['method']]['requests'][-1])]['gold_retain'], None, '.3f')} |"
            for c in compared
        ),
        "",
    ]
    return "\n".join(doc)


def _scaling_words(cells: Mapping[Key, Mapping[str, Any]], splits: Sequence[str]) -> str:
    if len(splits) < 2:
        return "only one split was run"
    first, last = splits[0], splits[-1]
    methods = sorted({m for m, _ in cells})
    easier, harder, steady, collapse_at = [], [], [], {}
    for m in methods:
        a, b = cells.get((m, first)), cells.get((m, last))
        if not a or not b or a["gap_closed"][0] is None or b["gap_closed"][0] is None:
            continue
        delta = b["gap_closed"][0] - a["gap_closed"][0]
        (harder if delta <= -0.1 else easier if delta >= 0.1 else steady).append(f"{m} ({delta:+.2f})")
        for s in splits:
            ratio = cells.get((m, s), {}).get("retain_ratio", (None,))[0]
            if ratio is not None and ratio < COLLAPSE:
                collapse_at[m] = s
                break
    parts = [
        f"from {first} to {last}, the gap closed rises by ≥ 0.1 for {', '.join(easier) or 'none'}, falls by ≥ 0.1 "
        f"for {', '.join(harder) or 'none'} and stays within 0.1 for {', '.join(steady) or 'none'}"
    ]
    if collapse_at:
        parts.append(
            "collapse (Retain < 0.8 × original) starts at "
            + ", ".join(f"{m}: {s}" for m, s in sorted(collapse_at.items()))
        )
    return "; ".join(parts) + "."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clear_lightning.sequential_doc", description=__doc__)
    parser.add_argument("size_dir", type=Path, help="the forget-size sweep (runs/multirun/forget_size)")
    parser.add_argument("sequence_dir", type=Path, help="the sequential sweep (runs/multirun/sequential)")
    parser.add_argument("--out", type=Path, default=Path("docs/sequential-embedded.md"))
    args = parser.parse_args(argv)
    try:
        text = render(
            find_runs(args.size_dir, stderr_warning),
            find_runs(args.sequence_dir, stderr_warning),
            [args.size_dir, args.sequence_dir],
            args.out,
        )
    except ClearConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
