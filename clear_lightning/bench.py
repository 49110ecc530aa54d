"""`make bench`: wall time per stage from nothing, throughput and peak memory on the embedded default.

Runs the stages in one process against a fresh artifact root (so nothing is reused), then a second
`method=gd` unlearn with every upstream artifact cached. Writes `<out>/results.json` and `results.md`.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import offline_by_default  # noqa: E402

offline_by_default()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _compose(root: Path, run_dir: Path, overrides: list[str]) -> Any:
    from hydra import compose, initialize_config_dir

    from .config import CONFIG_DIR, register_resolvers

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=[f"paths.root={root}", f"run_dir={run_dir}", *overrides])


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _methods(root: Path, overrides: list[str]) -> dict[str, dict[str, float]]:
    """Each method once on the cached upstream models: training samples/s and wall time of unlearn + eval."""
    from .config import options
    from .pipeline import run

    out = {}
    for method in options("method"):
        cfg = _compose(root, root / "runs" / f"method_{method}", [f"method={method}", *overrides])
        t0 = time.perf_counter()
        cost = run(cfg)["summary"]["cost"]
        out[method] = {
            "train_samples_per_second": cost["train_samples_per_second"],
            "fit_seconds": cost["fit_seconds"],
            "unlearn_and_eval_seconds": time.perf_counter() - t0,
        }
    return out


def bench(out: Path, overrides: list[str], methods: bool = True) -> dict[str, Any]:
    from .logging_setup import quiet_libraries

    quiet_libraries()
    from .pipeline import run

    root = Path(tempfile.mkdtemp(prefix="clear_bench_"))
    results: dict[str, Any] = {"overrides": overrides, "stages": {}}
    t_all = time.perf_counter()
    for stage in ("pretrain", "finetune", "gold"):
        cfg = _compose(root, root / "runs" / stage, [f"stage={stage}", *overrides])
        t0 = time.perf_counter()
        run(cfg)
        results["stages"][stage] = {"seconds": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb()}
    for kind in ("base", "original", "gold"):
        for art in (root / "artifacts" / kind).iterdir():
            results["stages"]["pretrain" if kind == "base" else "finetune" if kind == "original" else "gold"][
                "training"
            ] = _json(art / "train.json")
    cfg = _compose(root, root / "runs" / "unlearn", ["method=gd", *overrides])
    t0 = time.perf_counter()
    first = run(cfg)
    results["stages"]["unlearn (builds original eval)"] = {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": _peak_rss_mb(),
        "cost": first["summary"]["cost"],
    }
    results["pipeline_from_nothing_seconds"] = time.perf_counter() - t_all
    evals = [_json(p) for p in (root / "artifacts" / "eval").glob("*/meta.json")]
    results["evaluation"] = {e["label"]: e.get("cost", {}) for e in evals}
    cfg = _compose(root, root / "runs" / "cached", ["method=gd", *overrides])
    t0 = time.perf_counter()
    cached = run(cfg)
    results["cached_gd_unlearn_eval_seconds"] = time.perf_counter() - t0
    results["cached_gd_cost"] = cached["summary"]["cost"]
    results["science"] = {
        label: {
            k: s.get(k)
            for k in (
                "forget_qa/rougeL_recall",
                "forget_caption/rougeL_recall",
                "forget_metric",
                "retain_metric",
                "real_metric",
                "forget_quality",
            )
        }
        for label, s in (("gd", cached["summary"]),)
    }
    results["attacks"] = _attacks(root, root / "runs" / "cached", overrides)
    results["methods"] = _methods(root, overrides) if methods else {}
    results["peak_rss_mb"] = _peak_rss_mb()
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "results.md").write_text(_markdown(results))
    print(_markdown(results))
    return results


def _attacks(root: Path, target: Path, overrides: list[str]) -> dict[str, Any]:
    """`stage=attack attacks=standard` on the cached gd run: the seconds each attack adds to an unlearning run
    (its unlearned model) and, once per seed, to the first run of a sweep (gold and the original)."""
    from clear_lightning.pipeline import run

    cfg = _compose(
        root, root / "runs" / "attack", ["stage=attack", f"run={target}", "attacks=standard", *overrides]
    )
    t0 = time.perf_counter()
    run(cfg)
    robustness = _json(target / "robustness.json")
    return {
        "seconds": time.perf_counter() - t0,
        "per_attack": {name: e.get("seconds", {}) for name, e in robustness["attacks"].items()},
    }


def _markdown(r: dict[str, Any]) -> str:
    lines = [
        "# clear_lightning benchmark (embedded default, CPU)",
        "",
        "| stage | wall s | peak RSS MB | throughput |",
        "|---|---|---|---|",
    ]
    for name, s in r["stages"].items():
        tr = s.get("training") or {}
        cost = s.get("cost") or {}
        thr = (
            f"{tr['samples_per_second']:.0f} train samples/s"
            if tr
            else f"{cost.get('train_samples_per_second', 0):.0f} unlearn samples/s"
            if cost
            else ""
        )
        lines.append(f"| {name} | {s['seconds']:.1f} | {s['peak_rss_mb']:.0f} | {thr} |")
    lines += [
        "",
        f"- pipeline from nothing (one process, excluding interpreter start): "
        f"{r['pipeline_from_nothing_seconds']:.1f} s",
        f"- cached `method=gd` unlearn + eval: {r['cached_gd_unlearn_eval_seconds']:.1f} s",
    ]
    for label, e in r["evaluation"].items():
        if e:
            share = e.get("generate", 0) / max(e.get("seconds", 1e-9), 1e-9)
            lines.append(
                f"- evaluation ({label}): {e['items']} items, {e['items_per_second']:.1f} items/s, "
                f"{100 * share:.0f}% of the time in generation"
            )
    lines.append(f"- peak RSS: {r['peak_rss_mb']:.0f} MB")
    if r.get("attacks"):
        a = r["attacks"]
        lines += [
            "",
            f"Robustness attacks (`stage=attack attacks=standard` on the cached gd run): {a['seconds']:.1f} s in all.",
            "",
            "| attack | s added to every run (unlearned model) | s once per seed (gold + original, then cached) |",
            "|---|---|---|",
        ]
        for name, sec in a["per_attack"].items():
            refs = sum(sec.get(k, 0.0) for k in ("gold", "original"))
            lines.append(f"| {name} | {sec.get('unlearned', 0.0):.1f} | {refs:.1f} |")
    if r.get("methods"):
        lines += ["", "| method | training samples/s | fit s | unlearn + eval s |", "|---|---|---|---|"]
        for name, m in r["methods"].items():
            lines.append(
                f"| {name} | {m['train_samples_per_second']:.1f} | {m['fit_seconds']:.1f} | "
                f"{m['unlearn_and_eval_seconds']:.1f} |"
            )
    lines += ["", "Science check (gd run): " + json.dumps(r["science"])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench"))
    parser.add_argument("--no-methods", action="store_true", help="skip the per-method training throughput")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. data.num_persons=200")
    args = parser.parse_args()
    bench(args.out, args.overrides, methods=not args.no_methods)


if __name__ == "__main__":
    main()
