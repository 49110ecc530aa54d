"""The transfer matrix (issue 15) from synthetic summaries: the right cell, its interval, the collapse marks and the
plain-words verdicts of docs/transfer-embedded.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clear_lightning import transfer_doc
from clear_lightning.report.cli import build_report
from clear_lightning.report.runs import Group, Run
from clear_lightning.report.transfer import (
    PROBES,
    cell,
    collapsed,
    has_transfer,
    markdown_table,
    transfer_matrix,
)

ORIGINAL = {
    "retain_metric": 0.6,
    **{f"{p}/{c}": 0.8 for p in PROBES for c in ("rougeL_recall", "probability", "truth_ratio")},
}
GOLD = {
    "retain_metric": 0.6,
    **{f"{p}/{c}": 0.2 for p in PROBES for c in ("rougeL_recall", "probability", "truth_ratio")},
}


def _summary(method: str, modality: str, seed: int, gaps: dict[str, float], retain: float = 0.6) -> dict:
    s = {
        "method": method,
        "model": "tiny_llava",
        "split": "forget10",
        "modality": modality,
        "retain_metric": retain,
        "forget_metric": 0.3,
        "references": {"original": ORIGINAL, "gold": GOLD},
        "provenance": {"seed": seed, "stage": "unlearn"},
        "intervals": {},
    }
    for probe, gap in gaps.items():
        s[f"gap_closed/{probe}"] = gap
        s[f"gap_closed/{probe}/probability"] = gap / 2
        s["intervals"][f"gap_closed/{probe}"] = [gap - 0.1, gap + 0.3]
    return s


def _run(summary: dict) -> Run:
    group = Group(summary["model"], summary["split"], summary["modality"], "paper", summary["method"], False)
    return Run(
        Path(f"/x/{summary['method']}/{summary['modality']}"),
        summary,
        group,
        summary["provenance"]["seed"],
        None,
        None,
    )


def _runs() -> list[Run]:
    out = []
    for seed, text_gap in enumerate((0.9, 1.1)):
        out.append(
            _run(
                _summary(
                    "npo",
                    "text",
                    seed,
                    {
                        "forget_qa": text_gap,
                        "forget_caption": 0.2,
                        "forget_face_name": 0.1,
                        "forget_face_qa": 0.5,
                    },
                )
            )
        )
        out.append(
            _run(
                _summary(
                    "npo",
                    "visual",
                    seed,
                    {"forget_qa": 0.4, "forget_caption": 0.9, "forget_face_name": 0.9, "forget_face_qa": 0.3},
                )
            )
        )
        out.append(_run(_summary("ga", "text", seed, {p: 1.3 for p in PROBES}, retain=0.1)))
    return out


def test_cell_is_the_seed_mean_with_std_and_mean_interval() -> None:
    matrix = transfer_matrix(_runs())
    qa = matrix["npo"][("text", "forget_qa")]
    assert qa.mean == pytest.approx(1.0) and qa.std == pytest.approx(0.1414213, abs=1e-6) and qa.n == 2
    assert (qa.lo, qa.hi) == (pytest.approx(0.9), pytest.approx(1.3))  # mean of [0.8, 1.2] and [1.0, 1.4]
    assert matrix["npo"][("visual", "forget_face_qa")].mean == pytest.approx(0.3)
    assert transfer_matrix(_runs(), "probability")["npo"][("text", "forget_qa")].mean == pytest.approx(0.5)
    assert ("both", "forget_qa") not in matrix["npo"]
    assert cell([{"gap_closed/forget_qa": None}], "gap_closed/forget_qa") is None
    table = markdown_table(matrix)
    assert "| npo | text | 1.00 ± 0.14 [0.90, 1.30] | 0.20 ± 0.00 [0.10, 0.50] |" in table


def test_verdicts_skip_collapsed_methods_and_compute_the_transfer_ratio() -> None:
    runs = _runs()
    matrix = transfer_matrix(runs)
    broken = collapsed(runs)
    assert broken[("ga", "text")] and not broken[("npo", "text")]
    rows, words = transfer_doc.direction(matrix, broken, "text")
    assert [r[0] for r in rows] == ["npo"]  # ga collapsed: its closed gaps say nothing
    _, own, cross, face = rows[0]
    assert (own, cross, face) == (pytest.approx(1.0), pytest.approx(0.15), pytest.approx(0.5))
    assert "0 transfer fully" in words and "1 barely" in words
    rows, words = transfer_doc.direction(matrix, broken, "visual")
    assert rows[0][2] == pytest.approx(0.4) and "1 partly" in words  # 0.4 / 0.9 = 0.44 of its own


def test_report_writes_the_matrix_and_heatmaps(tmp_path: Path) -> None:
    runs = _runs()
    assert has_transfer(runs)
    for run in runs:
        directory = tmp_path / run.summary["method"] / run.summary["modality"] / f"seed{run.seed}"
        directory.mkdir(parents=True)
        (directory / "summary.json").write_text(json.dumps(run.summary))
        (directory / "stage.json").write_text(json.dumps({"stage": "unlearn"}))
    report = build_report(tmp_path, tmp_path / "report")
    names = {p.name for p in report.files}
    assert {"transfer_tiny_llava_forget10.md", "transfer_tiny_llava_forget10_npo.png"} <= names
    assert "transfer_tiny_llava_forget10_matrix.png" in names
    text = (tmp_path / "report" / "transfer_tiny_llava_forget10.md").read_text()
    assert "| npo | visual |" in text and "| ga † | text |" in text


def _chain(gaps: dict[tuple[int, str], float], retain: float) -> dict:
    """A synthetic sequence.json: gaps[(request index, scored split)] = gap closed."""
    requests = ["forget01", "forget05", "forget10"]
    steps = []
    for k, split in enumerate(requests):
        on = {s: {"gap_closed": gaps[(k, s)]} for s in requests[: k + 1]}
        on[split]["retain_metric"] = retain
        steps.append({"request": k + 1, "split": split, "on": on})
    return {"requests": requests, "steps": steps}


def test_sequence_rows_catch_knowledge_that_comes_back_and_compare_with_one_shot() -> None:
    from clear_lightning import sequential_doc

    back = {(0, "forget01"): 0.9, (1, "forget01"): 0.7, (1, "forget05"): 0.8}
    back |= {(2, "forget01"): 0.5, (2, "forget05"): 0.85, (2, "forget10"): 0.9}
    held = {k: 1.0 for k in back}
    rows = sequential_doc.sequence_rows(
        {"a": [_chain(back, 0.5)], "b": [_chain(held, 0.6), _chain(held, 0.6)]}
    )
    assert rows["a"]["on/0/2"] == (pytest.approx(0.5), None) and rows["b"]["own/2"] == (1.0, 0.0)
    assert sequential_doc.returns(rows) == [
        ("a", "forget01", 0.9, pytest.approx(0.5))
    ]  # forget05: 0.8 → 0.85
    one_shot = {("a", "forget10"): {"gap_closed": (0.95, None), "retain": (0.52, None)}}
    one_shot[("b", "forget10")] = {"gap_closed": (0.5, None), "retain": (0.6, None)}
    compared = {c["method"]: c["same"] for c in sequential_doc.compare_final(rows, one_shot)}
    assert compared == {"a": True, "b": False}  # a: 0.9 vs 0.95, Retain 0.50 vs 0.52; b: 1.0 vs 0.5
