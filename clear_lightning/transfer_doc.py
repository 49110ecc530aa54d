"""Write `docs/transfer-embedded.md` from the transfer sweep: does unlearning one modality remove the other?

    python -m clear_lightning.transfer_doc runs/multirun/transfer --out docs/transfer-embedded.md

Every number comes from the runs' `summary.json` (`report.transfer`); the plain-words answers are computed from
the same cells with the rules written next to them, so rerunning the sweep and this command regenerates the whole
document.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean

from clear_lightning.errors import ClearConfigError
from clear_lightning.report.runs import Run, find_runs, stderr_warning
from clear_lightning.report.transfer import (
    MODALITIES,
    PROBES,
    Matrix,
    collapsed,
    markdown_table,
    reference_gaps,
    transfer_matrix,
    write_heatmaps,
)

SWEEP_COMMAND = "python -m clear_lightning --config-dir sweeps --config-name transfer -m"
COLLAPSE = 0.8  # Retain below this × the original's: collapsed (benchmark.md §6), its closed gaps say nothing
OWN = 0.5  # gap closed on the unlearned modality's own probes at least this: the method did unlearn it
FULL, PARTLY = 0.8, 0.3  # cross-modal gap closed ≥ FULL × own: transfers; ≥ PARTLY × own: partly; else barely
TEXT_PROBES, FACE_PROBES = ("forget_qa",), ("forget_caption", "forget_face_name")
LIMITS = (
    "These are numbers of a ~1.5 M-parameter model on synthetic CLEAR-mini persons (4 forget persons), three "
    "unlearning seeds on one original/gold pair. The face-QA probe has little to forget on this testbed: the "
    "original answers it mostly by naming the person from the face and then reciting a memorised answer, so its "
    "original-to-gold gap is small in ROUGE-L and its gap closed is noisy (wide intervals); its probability "
    "component carries the signal and is shown separately. A tiny model that never learnt to compose face → name → "
    "fact cannot show the transfer a 7B LLaVA might"
)


def _cells(matrix: Matrix, method: str, modality: str, probes: Sequence[str]) -> float | None:
    values = [matrix[method][(modality, p)].mean for p in probes if (modality, p) in matrix[method]]
    return fmean(values) if values else None


def direction(
    matrix: Matrix, broken: Mapping[tuple[str, str], bool], modality: str
) -> tuple[list[tuple[str, float, float, float | None]], str]:
    """For forget modality text (visual): per method that kept retain and closed ≥ OWN of its own modality's gap,
    (method, own gap closed, the other modality's, face-QA's), and the verdict in words."""
    own_probes, cross_probes = (
        (TEXT_PROBES, FACE_PROBES) if modality == "text" else (FACE_PROBES, TEXT_PROBES)
    )
    rows = []
    for method in matrix:
        if broken.get((method, modality)):
            continue
        own, cross = (
            _cells(matrix, method, modality, own_probes),
            _cells(matrix, method, modality, cross_probes),
        )
        if own is None or cross is None or own < OWN:
            continue
        rows.append((method, own, cross, _cells(matrix, method, modality, ("forget_face_qa",))))
    if not rows:
        return (
            rows,
            f"no method that keeps retain closes ≥ {OWN:.1f} of the {modality} gap, so transfer cannot be judged",
        )
    ratios = [cross / own for _, own, cross, _ in rows]
    full = sum(r >= FULL for r in ratios)
    partly = sum(PARTLY <= r < FULL for r in ratios)
    barely = len(ratios) - full - partly
    words = (
        f"of {len(rows)} method(s) that keep retain and close ≥ {OWN:.1f} of the {modality} gap, {full} transfer "
        f"fully (the other modality's gap closed ≥ {FULL:.0%} of their own), {partly} partly "
        f"(≥ {PARTLY:.0%}), {barely} barely (< {PARTLY:.0%}); mean ratio {fmean(ratios):.2f}"
    )
    return rows, words


def _direction_table(rows: Sequence[tuple[str, float, float, float | None]], own: str, cross: str) -> str:
    lines = [
        f"| method | gap closed on {own} (own) | on {cross} (other) | ratio | on face-QA |",
        "|---|---|---|---|---|",
    ]
    for method, o, c, fq in rows:
        face = "—" if fq is None else f"{fq:.2f}"
        lines.append(f"| {method} | {o:.2f} | {c:.2f} | {c / o:.2f} | {face} |")
    return "\n".join(lines)


def face_qa_answer(
    text_rows: Sequence[tuple[str, float, float, float | None]],
    face_rows: Sequence[tuple[str, float, float, float | None]],
    matrix: Matrix,
    broken: Mapping[tuple[str, str], bool],
    probability: Matrix,
) -> str:
    """Does the face-QA probe follow the text or the face? The methods that unlearned one modality (the
    direction tables' rows), then the probability component over every method that keeps retain in all three."""
    parts = []
    for rows, what in ((text_rows, "only the text"), (face_rows, "only the images")):
        faces = [fq for *_, fq in rows if fq is not None]
        if faces:
            own = fmean(o for _, o, _, _ in rows)
            parts.append(
                f"methods that forget {what} ({', '.join(r[0] for r in rows)}) close {own:.2f} of their own "
                f"modality's gap and {fmean(faces):.2f} of the face-QA gap"
            )
    kept = [m for m in matrix if not any(broken.get((m, mod)) for mod in MODALITIES)]
    means = {}
    for modality in MODALITIES:
        values = [
            probability[m][(modality, "forget_face_qa")].mean
            for m in kept
            if m in probability and (modality, "forget_face_qa") in probability[m]
        ]
        if values:
            means[modality] = fmean(values)
    if means:
        best = max(means, key=lambda k: means[k])
        listed = ", ".join(f"{k} {v:.2f}" for k, v in sorted(means.items(), key=lambda kv: -kv[1]))
        parts.append(
            f"over the {len(kept)} method(s) that keep retain in every modality ({', '.join(kept)}), its "
            f"probability gap closes most when they forget **{best}** ({listed})"
        )
    return "; ".join(parts) if parts else "the face-QA probe was not scored"


def both_answer(matrix: Matrix, broken: Mapping[tuple[str, str], bool]) -> str:
    """Methods that forget only when both modalities are unlearned: each single modality closes < PARTLY of its
    own gap, both closes ≥ FULL of every non-probe set's gap."""
    only_both, better = [], []
    for method, cells in matrix.items():
        if broken.get((method, "both")):
            continue
        sets = [p for p in PROBES if p != "forget_face_qa"]
        both = [cells[("both", p)].mean for p in sets if ("both", p) in cells]
        text = _cells(matrix, method, "text", TEXT_PROBES)
        face = _cells(matrix, method, "visual", FACE_PROBES)
        if len(both) != len(sets) or text is None or face is None:
            continue
        singles = [max(cells[(m, p)].mean for m in ("text", "visual") if (m, p) in cells) for p in sets]
        if all(b >= s - 0.05 for b, s in zip(both, singles, strict=True)):
            better.append(method)
        if text < PARTLY and face < PARTLY and min(both) >= FULL:
            only_both.append(method)
    words = (
        f"for {len(better)} of the methods that keep retain with modality both ({', '.join(better) or 'none'}), "
        "unlearning both closes at least as much of every probe's gap as the better single modality (within 0.05)"
    )
    if only_both:
        words += (
            f"; {', '.join(only_both)} forget(s) almost nothing from one modality alone (< {PARTLY} of its own gap) "
            f"but ≥ {FULL} of every probe's gap from both"
        )
    return words


def render(runs: Sequence[Run], root: Path, out: Path) -> str:
    if not any("gap_closed/forget_face_qa" in r.summary for r in runs):
        raise ClearConfigError(
            f"no run under {root} scored the face-QA probe (gap_closed/forget_face_qa)",
            f"run the transfer sweep first: {SWEEP_COMMAND}",
        )
    matrix = transfer_matrix(runs)
    probability = transfer_matrix(runs, "probability")
    broken = collapsed(runs, COLLAPSE)
    images = write_heatmaps(out.with_suffix(""), matrix)
    seeds = sorted({r.seed for r in runs if r.seed is not None})
    gaps = reference_gaps(runs)
    summary = runs[0].summary
    model, split = summary.get("model"), summary.get("split")
    text_rows, text_words = direction(matrix, broken, "text")
    face_rows, face_words = direction(matrix, broken, "visual")
    doc = [
        "# Cross-modal transfer on the embedded default: does forgetting one modality forget the other?",
        "",
        f"Generated by `python -m clear_lightning.transfer_doc {shlex.quote(str(root))} --out {out}` from the "
        f"sweep `{SWEEP_COMMAND}`; do not edit by hand.",
        "",
        f"Setup: `{model}` on CLEAR-mini ({split}: 4 of 40 persons), every method unlearning one forget modality "
        f"(text = the persons' TOFU QA, visual = their images' captions and face → name, both), {len(runs)} runs, "
        f"seeds {', '.join(map(str, seeds))} ({len(seeds)} seeds) varying the unlearning only, `eval=transfer`.",
        "",
        "**The probes.** Every run is scored on four forget probes: text QA (`forget_qa`), caption "
        "(`forget_caption`), face → name (`forget_face_name`) and the cross-modal **face-QA** probe "
        "(`forget_face_qa`, our addition to CLEAR): the person's face with one of their biography questions asked "
        'about "the person in this image" ("Where was the person in this image born?"), answered with their own '
        "TOFU answer and scored like the QA sets (ROUGE-L, probability, truth ratio against the perturbed answers). "
        "It is composed at load time from rows every snapshot has (`clear_lightning/data/face_qa.py`): the same "
        "code builds it from CLEAR-mini and from therem/CLEAR, where a question that would still name the person "
        "is dropped. Probe sets are scored per set and kept out of every aggregate, so Forget, Retain and forget "
        "quality are the paper's.",
        "",
        "**A cell** is the share of the original-to-gold gap the method closed on that probe (mean over ROUGE-L, "
        "probability and truth ratio; 1 = like gold, 0 = still the original, > 1 = past gold), as mean ± std over "
        "seeds [mean of the seeds' person-level 95 % bootstrap intervals, which resample the original's and gold's "
        "records jointly with the model's]. † = the method collapsed in that modality (Retain < "
        f"{COLLAPSE} × the original's): its closed gaps come from destroying the model, not from forgetting.",
        "",
        "## How much there is to forget on each probe (original − gold)",
        "",
        "| probe | ROUGE-L | probability | truth ratio |",
        "|---|---|---|---|",
        *(
            f"| {PROBES[p]} | "
            + " | ".join(
                f"{gaps[p].get(c, float('nan')):+.3f}"
                for c in ("rougeL_recall", "probability", "truth_ratio")
            )
            + " |"
            for p in PROBES
            if p in gaps
        ),
        "",
        "## The answers",
        "",
        f"**Does text unlearning transfer to the face?** Forget modality text: {text_words}.",
        "",
        _direction_table(text_rows, "text QA", "caption + face → name") if text_rows else "",
        "",
        f"**And the other way around?** Forget modality visual: {face_words}.",
        "",
        _direction_table(face_rows, "caption + face → name", "text QA") if face_rows else "",
        "",
        f"**The face-QA probe** (face in, biography out): "
        f"{face_qa_answer(text_rows, face_rows, matrix, broken, probability)}.",
        "",
        f"**Unlearning both modalities:** {both_answer(matrix, broken)}.",
        "",
        f"Where the testbed cannot answer: {LIMITS}.",
        "",
        "## The matrix",
        "",
        f"![every method's transfer matrix]({out.with_suffix('').name}/{images[-1].name})" if images else "",
        "",
        markdown_table(matrix, collapsed=broken),
        "",
        "### Face-QA and the other probes by their probability component alone",
        "",
        "The probability gap closed (the answer's normalised probability given the image and prompt): the component "
        "with the largest original-to-gold gap on the face-QA probe.",
        "",
        markdown_table(probability, with_interval=False, collapsed=broken),
        "",
        "Per-method heatmaps: "
        + ", ".join(f"[{p.stem}]({out.with_suffix('').name}/{p.name})" for p in images[:-1]),
        "",
    ]
    return "\n".join(doc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clear_lightning.transfer_doc", description=__doc__)
    parser.add_argument("dir", type=Path, help="the transfer sweep's directory (runs/multirun/transfer)")
    parser.add_argument("--out", type=Path, default=Path("docs/transfer-embedded.md"))
    args = parser.parse_args(argv)
    try:
        runs = find_runs(args.dir, stderr_warning)
        if not runs:
            raise ClearConfigError(f"no unlearning runs under {args.dir}", f"run {SWEEP_COMMAND} first")
        text = render(runs, args.dir, args.out)
    except ClearConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.write_text(text)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
