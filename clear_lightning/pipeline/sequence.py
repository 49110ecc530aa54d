"""Sequential deletion requests (issue 15, `sequence=nested`): unlearn request after request, each from the last.

`sequence.requests` lists cumulative forget splits (`[forget01, forget05, forget10]`). Request k unlearns the
persons of split_k that no earlier request held (split_k ∖ split_{k−1}), starting from request k−1's weights
(the original with the LoRA adapters of requests 1..k−1 merged in, in order), with the retain set of split_k. The
method's frozen reference is that starting model: what the model was when the request arrived.

After each request the model is scored on split_k against gold_k (the gold model of the cumulative split, never
trained on any forgotten person) and on every earlier split_j against gold_j, so knowledge of earlier requests that
comes back shows as a falling gap closed on split_j. Each request is an artifact (`artifacts/sequence/<key>`:
its adapter, the digests of its start and end weights, its records and summaries), keyed by the chain up to it:
a killed chain resumes at the first missing request, and another chunking is another key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..artifacts import digest, is_main_process
from ..errors import ClearConfigError
from ..evaluation.records import read_records, write_records
from ..metrics.summary import set_group
from .components import Pipeline
from .evaluation import evaluate
from .fit import fit_unlearning
from .results import write_results
from .upstream import references

SUMMARY_KEYS = (
    "forget_metric",
    "retain_metric",
    "real_metric",
    "model_utility",
    "forget_quality",
    "log_forget_quality",
    "gap_closed",
)


def on_split(p: Pipeline, split: str) -> Pipeline:
    """The same run's objects on another (cumulative) forget split; the validated source is shared."""
    moved = dataclasses.replace(p, settings=dataclasses.replace(p.settings, split=split))
    moved.__dict__["source"] = p.source
    return moved


def weights_digest(model: torch.nn.Module) -> str:
    """A digest of every parameter and buffer, in name order: which weights a request started from."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def start_model(p: Pipeline, original_dir: Path, adapters: list[Path]) -> tuple[Any, Any]:
    """The original with each earlier request's LoRA adapter merged in, in request order."""
    from peft import PeftModel

    model, processor = p.loader.load(original_dir)
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    return model, processor


def check_requests(p: Pipeline) -> list[int]:
    """Forget rows per request, before anything is built: an empty request (two splits with the same persons,
    e.g. forget01 and forget05 of a 20-person CLEAR-mini) is refused with the fix."""
    requests, counts = p.settings.sequence, []
    for k, split in enumerate(requests):
        done = requests[k - 1] if k else None
        try:
            counts.append(len(on_split(p, split).data(encoder=None, forget_done=done).forget_examples()))
        except ClearConfigError as err:
            raise ClearConfigError(
                f"request {k + 1} of the sequence ({split}"
                + (f" without {done}" if done else "")
                + f") has nothing to unlearn: {err.problem}",
                "use cumulative splits that each add persons (sequence.requests), or more persons "
                "(data.num_persons: CLEAR-mini's 40 give forget01/05/10 = 1/2/4 persons)",
            ) from None
    return counts


def run_sequence(p: Pipeline) -> dict[str, Any]:
    """The chain of `sequence.requests`; writes sequence.json, steps/<k>_<split>/ and the last request's results
    as the run's own (summary.json, eval/), so a report reads the run like a one-shot run on the last split."""
    s = p.settings
    rows = check_requests(p)
    refs = {split: references(on_split(p, split), s.build_missing) for split in s.sequence}
    original_dir = refs[s.sequence[0]]["original"][0]
    steps: list[dict[str, Any]] = []
    adapters: list[Path] = []
    for k, split in enumerate(s.sequence):
        key = step_key(p, k, refs[split]["original"][1])
        found = p.store.get("sequence", key)
        reused = found is not None
        if reused:
            p.say(f"request {k + 1}/{len(s.sequence)} ({split}): reusing {found}")
        else:
            p.say(f"request {k + 1}/{len(s.sequence)}: unlearning {split} with {s.method_name}")
            found = p.store.build(
                "sequence",
                key,
                lambda out, k=k, split=split: _request(p, k, split, refs, original_dir, list(adapters), out),
                p.provenance(stage="sequence", request=k + 1, split=split),
            )
        meta = json.loads((found / "request.json").read_text())
        if steps and meta["start_digest"] != steps[-1]["end_digest"]:
            raise RuntimeError(
                f"request {k + 1} started from weights {meta['start_digest']}, not from request {k}'s "
                f"{steps[-1]['end_digest']}: the chain is inconsistent; delete {found} and rerun"
            )
        adapters.append(found / "adapter")
        steps.append({**meta, "rows": rows[k], "artifact": str(found), "reused": reused})
    return _write_run(p, steps, refs)


def _request(
    p: Pipeline,
    k: int,
    split: str,
    refs: dict[str, Any],
    original_dir: Path,
    adapters: list[Path],
    out: Path,
) -> None:
    """Build request k into `out`: unlearn split_k ∖ split_{k−1} from request k−1's weights, then score."""
    pk = on_split(p, split)
    s = pk.settings
    L.seed_everything(s.seed, verbose=False)
    model, processor = start_model(pk, original_dir, adapters)
    start_digest = weights_digest(model)
    method, trainer, fit_seconds = fit_unlearning(
        pk,
        model,
        processor,
        out / "train",
        f"request {k + 1} ({split}) of {s.method_name}",
        forget_done=s.sequence[k - 1] if k else None,
    )
    if is_main_process():
        method.save_student(str(out / "adapter"))
    unlearned = method.unlearned_model()
    start = time.perf_counter()
    scored = {split: evaluate(pk, unlearned, processor)[0]}
    forget_sets = [n for n in s.eval_sets if set_group(n) == "forget"]
    for earlier in s.sequence[:k]:  # the persons of earlier requests: does their knowledge come back?
        scored[earlier] = evaluate(on_split(p, earlier), unlearned, processor, sets=forget_sets)[0]
    eval_seconds = time.perf_counter() - start
    # the end weights are the trained adapter merged into the start, in memory (no second load of the original);
    # the next request rebuilds them from the saved adapters and must arrive at this digest
    end_digest = weights_digest(unlearned.merge_and_unload())
    del method, unlearned, model
    for on, records in scored.items():
        (_, _, original_eval), (_, _, gold_eval) = refs[on]["original"], refs[on]["gold"]
        summary = pk.summarizer.summarize(
            records, read_records(gold_eval / "eval"), read_records(original_eval / "eval")
        )
        summary.update(split=on, request=k + 1, gold_eval=str(gold_eval), original_eval=str(original_eval))
        write_records(out / "on" / on / "eval", records)
        (out / "on" / on / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    meta = {
        "request": k + 1,
        "split": split,
        "forget_done": s.sequence[k - 1] if k else None,
        "start_digest": start_digest,
        "end_digest": end_digest,
        "fit_seconds": fit_seconds,
        "eval_seconds": eval_seconds,
        "steps": trainer.global_step,
    }
    (out / "request.json").write_text(json.dumps(meta, indent=2))


def _write_run(p: Pipeline, steps: list[dict[str, Any]], refs: dict[str, Any]) -> dict[str, Any]:
    """sequence.json (per request: digests, and the scores on its own split and every earlier one), the steps'
    records under steps/, and the last request's as the run's own summary.json and eval/."""
    s = p.settings
    for step in steps:
        step["on"] = {}
        for on_dir in sorted(Path(step["artifact"], "on").iterdir()):
            summary = json.loads((on_dir / "summary.json").read_text())
            step["on"][on_dir.name] = {
                k: v
                for k, v in summary.items()
                if k in SUMMARY_KEYS or k.startswith(("gap_closed/", "forget_quality/"))
            }
            if is_main_process():
                target = s.run_dir / "steps" / f"{step['request']}_{step['split']}" / on_dir.name
                shutil.copytree(on_dir, target, dirs_exist_ok=True)
    last = steps[-1]
    records = read_records(Path(last["artifact"], "on", last["split"], "eval"))
    (_, _, original_eval), (_, _, gold_eval) = refs[last["split"]]["original"], refs[last["split"]]["gold"]
    cost = {
        "fit_seconds": sum(st["fit_seconds"] for st in steps),
        "eval_seconds": sum(st["eval_seconds"] for st in steps),
    }
    summary = write_results(p, records, gold_eval, s.method_name, cost, original_dir=original_eval)
    chain = {"name": s.sequence_name, "requests": list(s.sequence), "steps": steps}
    summary["sequence"] = {"name": chain["name"], "requests": chain["requests"]}
    if is_main_process():
        (s.run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        (s.run_dir / "sequence.json").write_text(json.dumps(chain, indent=2, default=str))
    for step in steps:
        reuse = "reused" if step["reused"] else "built"
        p.say(
            f"request {step['request']} ({step['split']}, {reuse}): "
            + ", ".join(f"gap closed on {on} {_f(v.get('gap_closed'))}" for on, v in step["on"].items())
            + f"; Retain {_f(step['on'][step['split']].get('retain_metric'))}"
        )
    return {"stage": "unlearn", "summary": summary, "sequence": chain}


def _f(value: Any) -> str:
    return "—" if value is None else f"{float(value):.3f}"


def step_key(p: Pipeline, k: int, original_key: dict[str, Any]) -> dict[str, Any]:
    """What determines request k: the original, the method and its optimisation, the seed, the data, the
    evaluation and the chain of requests up to and including k."""
    s, r = p.settings, p.settings.resolved
    return {
        "original": digest(original_key),
        "data": p.source.identity(),
        "method": r.get("method"),
        "optim": r.get("optim"),
        "modality": r.get("modality"),
        "seed": s.seed,
        "prompt_seed": r.get("prompt_seed"),
        "precision": s.precision,
        "requests": list(s.sequence[: k + 1]),
        "eval": s.eval_key,
        "metric_mode": s.metric_mode,
        "bootstrap": r.get("bootstrap"),
        "degenerate_floor": r.get("degenerate_floor"),
    }
