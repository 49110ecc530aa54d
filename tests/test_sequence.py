"""Sequential deletion requests (issue 15, `sequence=nested`): each request unlearns only its own persons, starts
from the previous request's weights (by digest), is an artifact, and a killed chain resumes at the missing one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clear_lightning.contract import CLEAR, FORGET_SPLITS
from clear_lightning.errors import ClearConfigError
from clear_lightning.pipeline import run, sequence
from clear_lightning.pipeline.compose import assemble
from clear_lightning.pipeline.upstream import finetuned_model

pytestmark = pytest.mark.usefixtures("one_thread")

# 21 persons: forget01 / forget05 / forget10 = 1 / 2 / 3 persons, so every request adds one
PERSONS = "data.num_persons=21"


def _names(p, split: str) -> set[str]:
    return set(p.source.load(CLEAR, split)["name"])


def test_each_request_trains_only_on_its_own_persons(make_cfg) -> None:
    p = assemble(make_cfg(PERSONS, "sequence=nested"))
    everyone = _names(p, "full")
    earlier: set[str] = set()
    for k, split in enumerate(FORGET_SPLITS):
        mine = _names(p, split) - earlier
        assert mine, split
        done = FORGET_SPLITS[k - 1] if k else None
        rows = sequence.on_split(p, split).data(encoder=None, forget_done=done).forget_examples()
        named = {n for n in everyone if any(n in f"{r.question} {r.answer}" for r in rows)}
        assert named == mine, (split, named, mine)
        # the images: face → name rows answer with the request's persons only
        assert {r.answer for r in rows if r.kind == "face_name"} == mine
        earlier |= mine


def test_chain_starts_each_request_from_the_last_and_resumes_after_a_kill(make_cfg, monkeypatch) -> None:
    built: list[int] = []
    real = sequence._request

    def killed_at_request_2(p, k, *args, **kwargs):
        if k == 1:
            raise KeyboardInterrupt  # the chain is killed during request 2
        built.append(k)
        return real(p, k, *args, **kwargs)

    monkeypatch.setattr(sequence, "_request", killed_at_request_2)
    with pytest.raises(KeyboardInterrupt):
        run(make_cfg(PERSONS, "sequence=nested", "method=npo"))
    assert built == [0]

    def counted(p, k, *args, **kwargs):
        built.append(k)
        return real(p, k, *args, **kwargs)

    monkeypatch.setattr(sequence, "_request", counted)
    cfg = make_cfg(PERSONS, "sequence=nested", "method=npo")
    result = run(cfg)
    assert built == [0, 1, 2]  # request 1 was not built again
    steps = result["sequence"]["steps"]
    assert [s["reused"] for s in steps] == [True, False, False]
    assert [s["split"] for s in steps] == list(FORGET_SPLITS)
    # request 1 starts from the original's weights, request k from request k−1's, by digest
    p = assemble(cfg)
    original, _ = finetuned_model(p, "original", build=False)
    model, _ = p.loader.load(original)
    assert steps[0]["start_digest"] == sequence.weights_digest(model)
    for before, after in zip(steps, steps[1:], strict=False):
        assert after["start_digest"] == before["end_digest"] != before["start_digest"]
    # scored on its own split and every earlier one; the run's summary is the last request's
    run_dir = Path(cfg.run_dir)
    chain = json.loads((run_dir / "sequence.json").read_text())
    assert [sorted(s["on"]) for s in chain["steps"]] == [
        ["forget01"],
        ["forget01", "forget05"],
        ["forget01", "forget05", "forget10"],
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["split"] == "forget10" and summary["sequence"]["requests"] == list(FORGET_SPLITS)
    assert (run_dir / "steps" / "3_forget10" / "forget01" / "summary.json").is_file()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("sequence.requests=[forget05,forget01]", "split=forget01"), "is not a chain of growing splits"),
        (("sequence=nested", "split=forget05"), "the sequence ends at forget10 but split=forget05"),
        (("sequence.requests=[forget01,forget11]",), "which are no forget splits"),
        (("sequence=nested", "attacks=standard"), "attacks with a sequence"),
        (("sequence=nested", "method.lora=false"), "method.lora=false"),
    ],
)
def test_bad_sequences_are_refused_before_anything_is_built(make_cfg, overrides, message) -> None:
    with pytest.raises(ClearConfigError, match=message):
        assemble(make_cfg(*overrides))


def test_a_request_without_new_persons_is_refused_with_the_fix(make_cfg) -> None:
    """The fast config's 4 persons: forget01 and forget05 hold the same person."""
    p = assemble(make_cfg("sequence=nested"))
    with pytest.raises(ClearConfigError, match="request 2 of the sequence .* has nothing to unlearn"):
        sequence.check_requests(p)
