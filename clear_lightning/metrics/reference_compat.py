"""The authors' released metric code (benchmark.md §7), only to compare with the project-page table; paper mode is the default.

Our per-item records are first written in the authors' raw-log layout (`authors_eval_logs`: one dict per task with
`avg_gt_loss`, `avg_paraphrased_loss`, `average_perturb_loss`, `generated_text`, `rougeL_recall`, keyed by item
index, as `mm/eval.py` writes them), and the summary is computed from that layout the way `mm/calculate_metrics.py`
and `mm/build_vllm_table.py` compute it:
- the six multimodal tasks only (forget/retain captions, forget/retain face-name, real faces, real world); the
  text-QA sets were never evaluated by the authors' multimodal pipeline and are listed as `compat_excluded_sets`;
- only the first `max_rows` (their `ds_size`, 300) items of every task;
- multiple-choice tasks (face-name, real faces, real world) score every entry of the dataset's options, the correct
  answer included when the dataset lists it (`answer_in_options` of the record): Prob. = P(y)/(P(y) + Σ_options P);
- truth ratio with ONE global mean per task: L̄' = mean of all perturbed/option losses of the task; per item
  t_i = exp(L̄' − loss_ŷ_i); Truth Ratio = mean min(t, 1/t) on forget tasks and mean max(0, 1 − 1/t) elsewhere;
- Real / Retain / Forget metric = harmonic mean of Prob. and Truth Ratio of the group's two tasks (no ROUGE);
  `model_utility` = harmonic mean of the 14 columns of `build_vllm_table.py` (Prob./TR of all six tasks and ROUGE of
  the retain and forget captions; the forget columns are included, as in their table);
- `forget_quality` = 1 − `scipy.spatial.distance.jensenshannon(t_model, t_gold)` on the FORGET CAPTIONS only, items
  aligned by index (natural log: the distance lies in [0, sqrt(ln 2)]); `ks_pvalue` / `log_forget_quality` = the KS
  test on the same vectors (their "KS test p-value").
ROUGE-L recall is the record's, i.e. of the generation the evaluation made: with `eval.generation=text_only_legacy`
(the compat default) that is the authors' text-only generation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon

from clear_lightning.contract import AGGREGATE_GROUPS, eval_set
from clear_lightning.metrics.functional import forget_quality, harmonic_mean, rouge_l_recall

Records = Sequence[Mapping[str, Any]]
AuthorsTask = dict[str, dict[str, Any]]

# our set name -> (the authors' eval file, their column label); caption files are "eval_log*" (plain probability)
AUTHORS_TASKS = {
    "real_faces": ("eval_real_faces_wo_options.json", "Real Faces"),
    "real_world": ("eval_real_world_wo_options.json", "Real World"),
    "retain_caption": ("eval_log.json", "Retain"),
    "retain_face_name": ("eval_retain_facerec.json", "Retain FaceRec"),
    "forget_caption": ("eval_log_forget.json", "Forget"),
    "forget_face_name": ("eval_forget_facerec.json", "Forget FaceRec"),
}
# the authors' sets per group (real: real_faces, real_world; retain and forget: caption, face_name)
GROUP_TASKS = {g: tuple(n for n in AUTHORS_TASKS if eval_set(n).group == g) for g in AGGREGATE_GROUPS}
# build_vllm_table.py's util_metrics: 14 columns (no ROUGE of real world, real faces or face-name)
UTILITY_COLUMNS = (
    *(f"{c} Real Faces" for c in ("Prob.", "Truth Ratio")),
    *(f"{c} Real World" for c in ("Prob.", "Truth Ratio")),
    *(f"{c} Retain" for c in ("ROUGE", "Prob.", "Truth Ratio")),
    *(f"{c} Retain FaceRec" for c in ("Prob.", "Truth Ratio")),
    *(f"{c} Forget" for c in ("ROUGE", "Prob.", "Truth Ratio")),
    *(f"{c} Forget FaceRec" for c in ("Prob.", "Truth Ratio")),
)
FORGET_QUALITY_TASK = "forget_caption"


def _option_losses(record: Mapping[str, Any]) -> list[float]:
    """The losses of every listed option: the wrong ones, plus the answer's own when the dataset lists it."""
    losses = [float(v) for v in record["losses_perturbed"]]
    return losses + [float(record["loss"])] if record.get("answer_in_options") else losses


def _rouge(record: Mapping[str, Any]) -> float:
    if "rougeL_recall" in record:
        return float(record["rougeL_recall"])
    return rouge_l_recall(str(record["generation"]), str(record["answer"]))


def authors_eval_logs(records_by_set: Mapping[str, Records], max_rows: int = 300) -> dict[str, AuthorsTask]:
    """Our records in the authors' raw-log layout (`eval_log_aggregated.json`), keyed by their file names."""
    logs: dict[str, AuthorsTask] = {}
    for name, (file, _) in AUTHORS_TASKS.items():
        records = list(records_by_set.get(name) or [])[:max_rows]
        if not records:
            continue
        keys = [
            str(r.get("index", r.get("id", i))) for i, r in enumerate(records)
        ]  # the item, as they key it
        logs[file] = {
            "avg_gt_loss": {k: float(r["loss"]) for k, r in zip(keys, records, strict=True)},
            "avg_paraphrased_loss": {
                k: float(r["loss_paraphrased"]) for k, r in zip(keys, records, strict=True)
            },
            "average_perturb_loss": {k: _option_losses(r) for k, r in zip(keys, records, strict=True)},
            "generated_text": {
                k: [str(r.get("question", "")), str(r.get("generation", "")), str(r["answer"])]
                for k, r in zip(keys, records, strict=True)
            },
            "rougeL_recall": {k: _rouge(r) for k, r in zip(keys, records, strict=True)},
        }
    return logs


def _values(d: Mapping[str, Any]) -> list[Any]:
    return list(d.values())


def task_truth_ratios(task: AuthorsTask) -> np.ndarray:
    """Per-item t = exp(L̄' − loss_ŷ) with one global mean L̄' of every perturbed loss of the task."""
    pooled = [float(v) for losses in _values(task["average_perturb_loss"]) for v in losses]
    if not pooled:
        raise ValueError("reference_compat truth ratio needs perturbed losses, found none")
    mean_perturbed = float(np.mean(pooled))
    return np.exp(mean_perturbed - np.asarray(_values(task["avg_paraphrased_loss"]), dtype=float))


def task_columns(file: str, task: AuthorsTask) -> dict[str, float]:
    """ROUGE, Prob. and Truth Ratio of one task, as `compute_model_utility` computes them."""
    label = dict(AUTHORS_TASKS.values())[file]
    true_probs = np.exp(-np.asarray(_values(task["avg_gt_loss"]), dtype=float))
    if file.startswith("eval_log"):  # captions: plain token-normalised probability
        prob = float(np.mean(true_probs))
    else:  # multiple choice: the answer's share among itself and every listed option
        option_sums = np.asarray(
            [np.exp(-np.asarray(v, dtype=float)).sum() for v in _values(task["average_perturb_loss"])]
        )
        prob = float(np.mean(true_probs / (true_probs + option_sums)))
    t = task_truth_ratios(task)
    with np.errstate(divide="ignore", over="ignore"):
        if "forget" in file:
            tr = float(np.mean(np.minimum(t, 1.0 / t)))
        else:
            tr = float(np.mean(np.maximum(0.0, 1.0 - 1.0 / t)))
    return {
        f"ROUGE {label}": float(np.mean(_values(task["rougeL_recall"]))),
        f"Prob. {label}": prob,
        f"Truth Ratio {label}": tr,
    }


def _hmean(values: Sequence[float]) -> float:
    return harmonic_mean([max(0.0, float(v)) for v in values])


def summarize_reference_compat(
    records_by_set: Mapping[str, Records],
    gold_records_by_set: Mapping[str, Records] | None,
    max_rows: int = 300,
) -> dict[str, Any]:
    """Summary computed the authors' way (module docstring), with the paper-mode key names, tagged as such."""
    logs = authors_eval_logs(records_by_set, max_rows)
    columns: dict[str, float] = {}
    out: dict[str, Any] = {}
    for name, (file, label) in AUTHORS_TASKS.items():
        if file not in logs:
            continue
        task = task_columns(file, logs[file])
        columns.update(task)
        out[f"{name}/rougeL_recall"] = task[f"ROUGE {label}"]
        out[f"{name}/probability"] = task[f"Prob. {label}"]
        out[f"{name}/truth_ratio"] = task[f"Truth Ratio {label}"]
        out[f"{name}/n"] = len(logs[file]["avg_gt_loss"])
    for group, tasks in GROUP_TASKS.items():
        labels = [AUTHORS_TASKS[t][1] for t in tasks]
        keys = [f"{c} {label}" for label in labels for c in ("Prob.", "Truth Ratio")]
        # build_vllm_table.py: Real/Retain/Forget metric = hmean of Prob. and Truth Ratio of the two tasks
        out[f"{group}_metric"] = (
            _hmean([columns[k] for k in keys]) if all(k in columns for k in keys) else None
        )
    have_all = all(c in columns for c in UTILITY_COLUMNS)
    out["model_utility"] = _hmean([columns[c] for c in UTILITY_COLUMNS]) if have_all else None
    out["forget_quality"] = out["log_forget_quality"] = out["ks_pvalue"] = None
    if gold_records_by_set is not None:
        model_t, gold_t = forget_caption_truth_ratios(records_by_set, gold_records_by_set, max_rows)
        if model_t.size:
            out["forget_quality"] = 1.0 - float(jensenshannon(model_t, gold_t))  # their "Forget Quality"
            out["ks_pvalue"], out["log_forget_quality"] = forget_quality(model_t, gold_t)
    out["authors_columns"] = columns
    out["compat_excluded_sets"] = sorted(set(records_by_set) - set(AUTHORS_TASKS))
    out["metric_mode"] = "reference_compat"
    return out


def forget_caption_truth_ratios(
    model: Mapping[str, Records], gold: Mapping[str, Records], max_rows: int = 300
) -> tuple[np.ndarray, np.ndarray]:
    """t of model and gold on the forget captions, aligned item by item (by index, kept in both, model order)."""
    file = AUTHORS_TASKS[FORGET_QUALITY_TASK][0]
    model_task = authors_eval_logs(model, max_rows).get(file)
    gold_task = authors_eval_logs(gold, max_rows).get(file)
    if model_task is None or gold_task is None:
        return np.asarray([]), np.asarray([])
    model_t = dict(zip(model_task["avg_gt_loss"], task_truth_ratios(model_task), strict=True))
    gold_t = dict(zip(gold_task["avg_gt_loss"], task_truth_ratios(gold_task), strict=True))
    common = [k for k in model_t if k in gold_t]
    if not all(math.isfinite(model_t[k]) and math.isfinite(gold_t[k]) for k in common):
        raise ValueError("reference_compat forget quality: non-finite truth ratios on the forget captions")
    return np.asarray([model_t[k] for k in common]), np.asarray([gold_t[k] for k in common])


def export_authors_layout(run_dir: str, out_dir: str, max_rows: int = 300) -> list[str]:
    """Write a run's `eval/*.jsonl` as the authors' `eval_log_aggregated.json` (plus one file per task), so their
    `mm/calculate_metrics.py` can be run on exactly our per-item losses."""
    import json
    from pathlib import Path

    from clear_lightning.evaluation.records import read_records

    logs = authors_eval_logs(read_records(Path(run_dir) / "eval"), max_rows)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval_log_aggregated.json").write_text(json.dumps(logs, indent=1))
    for file, task in logs.items():
        (out / file).write_text(json.dumps(task, indent=1))
    return sorted(logs)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="export a run's records in the authors' raw-log layout")
    parser.add_argument("run_dir", help="a run directory (with eval/*.jsonl) or a stored evaluation artifact")
    parser.add_argument("out_dir", help="where eval_log_aggregated.json and the per-task files go")
    args = parser.parse_args()
    print("\n".join(export_authors_layout(args.run_dir, args.out_dir)))
