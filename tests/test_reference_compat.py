"""reference_compat (benchmark.md §7) against hand-computed values and against the authors' formulas applied to their
raw-log layout (`eval_log_aggregated.json`), re-derived here from their code's description, not imported."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import hmean, ks_2samp

from clear_lightning.metrics.reference_compat import (
    AUTHORS_TASKS,
    UTILITY_COLUMNS,
    authors_eval_logs,
    summarize_reference_compat,
)

LN2, LN4, LN8 = math.log(2), math.log(4), math.log(8)
KIND = {
    "forget_caption": "caption",
    "retain_caption": "caption",
    "forget_face_name": "face_name",
    "retain_face_name": "face_name",
    "real_faces": "multiple_choice",
    "real_world": "multiple_choice",
    "forget_qa": "qa",
    "retain_qa": "qa",
}


def _rec(name: str, i: int, loss: float, para: float, perturbed: list[float], **extra) -> dict:
    return {
        "id": f"{name}/{i}",
        "index": i,
        "set": name,
        "kind": KIND[name],
        "question": "q?",
        "answer": "a b",
        "generation": "a",
        "loss": loss,
        "loss_paraphrased": para,
        "losses_perturbed": perturbed,
        "rougeL_recall": 0.5,
        **extra,
    }


def test_options_scored_with_the_listed_answer_and_global_mean_truth_ratio():
    # one real_faces item: P(answer) = 1/2, one wrong option at 1/4, and the dataset lists the answer too
    listed = {"real_faces": [_rec("real_faces", 0, LN2, LN2, [LN4], answer_in_options=True)]}
    compat = summarize_reference_compat(listed, None)
    # their Prob.: 1/2 / (1/2 + (1/4 + 1/2)) = 0.4 (paper mode: 1/2 / (1/2 + 1/4) = 2/3)
    assert compat["real_faces/probability"] == pytest.approx(0.4)
    # their TR: L̄' = mean(ln4, ln2) = 1.5 ln2, t = exp(1.5 ln2 - ln2) = sqrt(2); max(0, 1 - 1/t)
    assert compat["real_faces/truth_ratio"] == pytest.approx(1 - 2**-0.5)
    unlisted = {"real_faces": [_rec("real_faces", 0, LN2, LN2, [LN4], answer_in_options=False)]}
    assert summarize_reference_compat(unlisted, None)["real_faces/probability"] == pytest.approx(2 / 3)


def _table_records(seed: int, shift: float = 0.0) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in KIND:
        n = 7
        rows = []
        for i in range(n):
            loss = float(rng.uniform(0.2, 3.0)) + (shift if name.startswith("forget") else 0.0)
            width = 5 if KIND[name] in ("caption", "qa") else 3
            perturbed = [float(v) for v in rng.uniform(0.5, 4.0, size=width)]
            para = (
                loss
                if KIND[name] != "caption"
                else float(rng.uniform(0.2, 3.0)) + shift * name.startswith("f")
            )
            extra = (
                {"answer_in_options": bool(i % 2)} if KIND[name] != "caption" and KIND[name] != "qa" else {}
            )
            rows.append(_rec(name, i, loss, para, perturbed, rougeL_recall=float(rng.uniform()), **extra))
        out[name] = rows
    return out


def _authors(logs: dict, gold_logs: dict) -> dict[str, float]:
    """The authors' calculate_metrics.py + build_vllm_table.py, re-derived on their raw-log layout."""
    cols = {}
    for file, task in logs.items():
        label = dict(AUTHORS_TASKS.values())[file]
        gt = np.exp(-np.array(list(task["avg_gt_loss"].values())))
        if "eval_log" in file:
            prob = gt.mean()
        else:
            wrong = [np.exp(-np.asarray(v)) for v in task["average_perturb_loss"].values()]
            prob = np.mean([g / (g + np.sum(w)) for g, w in zip(gt, wrong, strict=True)])
        pooled = np.concatenate([np.asarray(v) for v in task["average_perturb_loss"].values()]).mean()
        t = np.exp(pooled - np.array(list(task["avg_paraphrased_loss"].values())))
        tr = np.mean(np.minimum(t, 1 / t)) if "forget" in file else np.mean(np.maximum(0, 1 - 1 / t))
        cols[f"Prob. {label}"], cols[f"Truth Ratio {label}"] = prob, tr
        cols[f"ROUGE {label}"] = np.mean(list(task["rougeL_recall"].values()))

    def truth(task):
        pooled = np.concatenate([np.asarray(v) for v in task["average_perturb_loss"].values()]).mean()
        return np.exp(pooled - np.array(list(task["avg_paraphrased_loss"].values())))

    u, g = truth(logs["eval_log_forget.json"]), truth(gold_logs["eval_log_forget.json"])

    def h(*labels):
        return hmean([cols[f"{c} {lab}"] for lab in labels for c in ("Prob.", "Truth Ratio")])

    return {
        "real_metric": h("Real Faces", "Real World"),
        "retain_metric": h("Retain", "Retain FaceRec"),
        "forget_metric": h("Forget", "Forget FaceRec"),
        "model_utility": hmean([cols[c] for c in UTILITY_COLUMNS]),
        "forget_quality": 1 - jensenshannon(u, g),
        "ks_pvalue": ks_2samp(u, g).pvalue,
    }


def test_summary_equals_the_authors_formulas_on_their_layout():
    model, gold = _table_records(0, shift=0.7), _table_records(1)
    logs = authors_eval_logs(model)
    assert set(logs) == {file for file, _ in AUTHORS_TASKS.values()}  # the six tasks, no text QA
    item = logs["eval_real_faces_wo_options.json"]["average_perturb_loss"]
    assert [len(v) for v in item.values()] == [3, 4, 3, 4, 3, 4, 3]  # the listed answer is one more option
    compat = summarize_reference_compat(model, gold)
    expected = _authors(logs, authors_eval_logs(gold))
    for key, value in expected.items():
        assert compat[key] == pytest.approx(value, rel=1e-12), key
    assert compat["log_forget_quality"] == pytest.approx(math.log(expected["ks_pvalue"]))
    assert compat["compat_excluded_sets"] == ["forget_qa", "retain_qa"]
    assert len(UTILITY_COLUMNS) == 14


def test_forget_quality_uses_the_forget_captions_only():
    model, gold = _table_records(0, shift=0.7), _table_records(1)
    base = summarize_reference_compat(model, gold)
    other = {k: v for k, v in model.items()}
    other["forget_face_name"] = _table_records(5, shift=3.0)["forget_face_name"]
    other["forget_qa"] = _table_records(6, shift=3.0)["forget_qa"]
    changed = summarize_reference_compat(other, gold)
    assert changed["forget_quality"] == base["forget_quality"]
    assert changed["ks_pvalue"] == base["ks_pvalue"]
    assert summarize_reference_compat(gold, gold)["forget_quality"] == pytest.approx(1.0)


def test_first_300_rows_and_alignment_by_index():
    rows = [_rec("forget_caption", i, LN2, LN2 + 0.01 * i, [LN4, LN8]) for i in range(305)]
    compat = summarize_reference_compat({"forget_caption": rows}, {"forget_caption": rows[::-1]})
    assert compat["forget_caption/n"] == 300
    assert compat["forget_quality"] == pytest.approx(1.0)  # gold in reverse order is aligned by index


def test_export_writes_the_authors_files(tmp_path):
    import json

    from clear_lightning.evaluation.records import write_records
    from clear_lightning.metrics.reference_compat import export_authors_layout

    write_records(tmp_path / "run" / "eval", _table_records(0))
    files = export_authors_layout(str(tmp_path / "run"), str(tmp_path / "out"))
    aggregated = json.loads((tmp_path / "out" / "eval_log_aggregated.json").read_text())
    assert files == sorted(aggregated) == sorted(file for file, _ in AUTHORS_TASKS.values())
    task = aggregated["eval_log_forget.json"]
    assert set(task) == {
        "avg_gt_loss",
        "avg_paraphrased_loss",
        "average_perturb_loss",
        "generated_text",
        "rougeL_recall",
    }
    assert list(task["avg_gt_loss"]) == [str(i) for i in range(7)]
