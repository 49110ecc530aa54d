"""The cross-modal face-QA probe (issue 15): a person's face with their biography question about "the person in
this image". It never names the person, its image is the person's whose answer it scores, it shares that person's
id with the other sets, and it stays out of every aggregate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mini_sizes import generated_source, small_clear_mini
from real_snapshot import FORGET, PERSONS, QA_PER_PERSON, RETAIN, write_real_like

from clear_lightning.contract import PROBE_SETS, is_aggregated
from clear_lightning.data.datamodule import CLEARDataModule
from clear_lightning.data.face_qa import POSSESSIVE, REFERENCE, anonymise, names_person
from clear_lightning.data.source import SnapshotSource
from clear_lightning.errors import ClearConfigError
from clear_lightning.metrics.diagnostics import gap_closed_summary
from clear_lightning.metrics.summary import summarize
from clear_lightning.pipeline.compose import assemble

CFG = small_clear_mini(num_persons=30, qa_per_person=4, images_per_celebrity=2, num_prior_looks=4)
SETS = ["forget_qa", "forget_face_name", "forget_face_qa", "retain_qa", "retain_face_name", "retain_face_qa"]


class _Encoder:
    pad_id, supports_images = 0, True


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnapshotSource]:
    with generated_source(tmp_path_factory.mktemp("mini_face_qa"), CFG) as source:
        yield source


def _images_of(source: SnapshotSource, config: str) -> dict[str, set[bytes]]:
    out: dict[str, set[bytes]] = {}
    for row in source.load("clear", config):
        out.setdefault(row["name"], set()).add(row["image"].tobytes())
    return out


@pytest.mark.parametrize("group", ["forget", "retain"])
def test_probe_never_names_the_person_and_shows_their_own_face(mini: SnapshotSource, group: str) -> None:
    sets = CLEARDataModule(mini, _Encoder(), split="forget10", eval_sets=SETS).evaluation_sets()
    probe, qa, faces = sets[f"{group}_face_qa"], sets[f"{group}_qa"], sets[f"{group}_face_name"]
    config = "forget10_perturbed" if group == "forget" else "retain_perturbed"
    images = _images_of(mini, config)
    everyone = set(mini.load("clear", "full")["name"])
    assert len(probe) == len(qa)  # every CLEAR-mini question names the person: every row composes
    person_of_name = {e.answer: e.person for e in faces}
    for item, text in zip(probe, qa, strict=True):
        assert not any(names_person(item.question, name) for name in everyone), item.question
        assert REFERENCE in item.question or POSSESSIVE in item.question.lower()
        (name,) = [n for n in images if n in item.answer]  # CLEAR-mini answers name the person
        assert item.image.tobytes() in images[name]
        assert item.person == person_of_name[name] == text.person
        assert (item.answer, item.paraphrased, item.perturbed) == (
            text.answer,
            text.paraphrased,
            text.perturbed,
        )
        assert item.kind == "face_qa" and item.image is not None


def test_probe_on_the_real_layout_composes_by_name(tmp_path) -> None:
    """therem/CLEAR + TOFU clones (tests/real_snapshot.py, not our generator): the same code, by name."""
    clear, tofu = write_real_like(tmp_path)
    source = SnapshotSource("clear", str(clear), str(tofu), qa_per_person=QA_PER_PERSON)
    sets = CLEARDataModule(source, _Encoder(), eval_sets=SETS).evaluation_sets()
    for group, persons in (("forget", FORGET["forget10"]), ("retain", RETAIN["retain90"])):
        probe = sets[f"{group}_face_qa"]
        assert len(probe) == QA_PER_PERSON * len(persons)
        images = _images_of(source, "forget10_perturbed" if group == "forget" else "retain_perturbed")
        for item in probe:
            assert not any(names_person(item.question, n) for n in PERSONS), item.question
            (name,) = [n for n in persons if n in item.answer]
            assert item.image.tobytes() in images[name]


@pytest.mark.parametrize(
    ("question", "name", "expected"),
    [
        ("Where was Ada Lovelace born?", "Ada Lovelace", f"Where was {REFERENCE} born?"),
        (
            "What is Ada Lovelace's most famous book?",
            "Ada Lovelace",
            f"What is {POSSESSIVE} most famous book?",
        ),
        ("Jaime Vasquez's father was a chef?", "Jaime Vasquez", "This person's father was a chef?"),
        (
            "How did Al-Kuwaiti's upbringing shape him?",
            "Basil Mahfouz Al-Kuwaiti",
            f"How did {POSSESSIVE} upbringing shape him?",
        ),
        ("What genre is HSIAO Yun-Hwa known for?", "Hsiao Yun-Hwa", f"What genre is {REFERENCE} known for?"),
        ("Which city was the author born in?", "Hina Ameen", "Which city was the author born in?"),
    ],
)
def test_anonymise_replaces_every_run_of_name_parts(question: str, name: str, expected: str) -> None:
    assert anonymise(question, name) == expected
    assert not names_person(expected, name)


def _records(values: dict[str, float]) -> dict[str, list[dict]]:
    """One record per set whose three scores are the given value (truth_ratio via a raw R of 1 − value)."""
    return {
        name: [
            {
                "id": f"{name}/0",
                "person": f"{name.split('_')[0]}/0",
                "rougeL_recall": v,
                "probability": v,
                "truth_ratio_raw": 1 - v,
                "truth_ratio": 1 - v,
            }
        ]
        for name, v in values.items()
    }


def test_probe_sets_stay_out_of_every_aggregate() -> None:
    assert set(PROBE_SETS) == {"forget_face_qa", "retain_face_qa"}
    assert not any(is_aggregated(n) for n in PROBE_SETS) and is_aggregated("forget_qa")
    plain = {"forget_qa": 0.5, "retain_qa": 0.8, "real_faces": 0.6}
    gold = {"forget_qa": 0.1, "retain_qa": 0.8, "real_faces": 0.6}
    with_probe, gold_probe = (
        {**plain, "forget_face_qa": 0.05, "retain_face_qa": 0.01},
        {**gold, "forget_face_qa": 0.2},
    )
    a = summarize(_records(plain), _records(gold))
    b = summarize(_records(with_probe), _records(gold_probe))
    for key in ("forget_metric", "retain_metric", "real_metric", "model_utility", "forget_quality"):
        assert a[key] == b[key], key
    assert "forget_quality/forget_face_qa" in b and b["forget_face_qa/probability"] == 0.05
    original = {
        k: 0.9
        for k in b
        if k.count("/") == 1 and k.split("/")[1] in ("rougeL_recall", "probability", "truth_ratio")
    }
    gaps = gap_closed_summary(
        b, original, {**original, **{k: 0.1 for k in original if k.startswith("forget")}}
    )
    assert gaps["gap_closed/forget_face_qa"] is not None
    assert gaps["gap_closed"] == gaps["gap_closed/forget_qa"]  # the probe's own gap is not in the overall one


def test_eval_probes_compose_into_the_sets_and_the_key(make_cfg) -> None:
    default = assemble(make_cfg()).settings
    probed = assemble(make_cfg("eval=transfer")).settings
    assert probed.eval_sets == (*default.eval_sets, "forget_face_qa", "retain_face_qa")
    assert "probes" not in default.eval_key and default.eval_key["sets"] == list(default.eval_sets)
    assert probed.eval_key["sets"] == list(probed.eval_sets)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.probes=[forget_qa]", "not a probe set"),
        ("eval.probes=[forget_face_qb]", "no evaluation set"),
        ("eval.sets=[forget_qa,nonsense]", "eval.sets names 'nonsense'"),
    ],
)
def test_bad_probe_lists_are_refused(make_cfg, override: str, message: str) -> None:
    with pytest.raises(ClearConfigError, match=message):
        assemble(make_cfg(override))
