"""Every model family's tiny stand-in through the same code path (issue 16): built from its YAML's spec, loaded by
the YAML's loader with the processor class its real checkpoints use, then encoded, collated, trained and
evaluated by the code every model shares.

Per family: the label mask covers exactly the answer tokens of the real processor's output (image tokens
expanded, at several image shapes: dynamic resolution), generation receives the image inputs, LoRA reaches only
the configured modules, and (slow) a `debug=fast` NPO run writes a summary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from clear_lightning.config import CONFIG_DIR, options
from clear_lightning.data.batching import EvalCollator
from clear_lightning.data.encoding import IGNORE_INDEX, ExampleEncoder, image_inputs, pad_batch
from clear_lightning.data.examples import Example
from clear_lightning.data.idk import load_idk_answers
from clear_lightning.evaluation import shared_prefix
from clear_lightning.evaluation.module import Evaluator
from clear_lightning.methods import losses
from clear_lightning.pipeline.compose import assemble

# the stand-ins and the processor class of their real checkpoints
PROCESSORS = {
    "tiny_llava": "LlavaProcessor",
    "tiny_llava_next": "LlavaNextProcessor",
    "tiny_qwen2_vl": "Qwen2VLProcessor",
    "tiny_qwen2_5_vl": "Qwen2_5_VLProcessor",
}
FAMILIES = list(PROCESSORS)
# image shapes (width, height) of one batch: square, wide, tall; each stand-in but tiny_llava expands them to
# different token counts (anyres tiling, dynamic resolution)
SIZES = [(32, 32), (64, 24), (20, 28)]
QUESTION, ANSWER = "Who is the person in the picture?", "Bafilo Lufilo, a painter from Keravo."

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(n: int = 3) -> list[Example]:
    """Face-name items whose images have different shapes, each with one wrong alternative."""
    wrong = ["Marta Kessel.", "Ion Varga, a singer.", "Nobody I know."]
    return [
        Example(
            f"c/{i}",
            "forget_faces",
            "face_name",
            QUESTION,
            ANSWER,
            Image.new("RGB", size, (60 * i, 90, 160)),
            perturbed=(wrong[i],),
        )
        for i, size in enumerate(SIZES[:n])
    ]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, make_cfg, tmp_path_factory) -> dict[str, Any]:
    """The family's stand-in built by its YAML's spec (small vocabulary) and loaded by its YAML's loader."""
    name = request.param
    cfg = make_cfg(f"model={name}", "method=npo", "model.build.vocab_size=600")
    p = assemble(cfg)
    template = cfg.model.prompt.template.format(image="", question="")
    texts = [QUESTION, ANSWER, "Marta Kessel. Ion Varga, a singer. Nobody I know.", template] * 5
    out = tmp_path_factory.mktemp(name)
    torch.manual_seed(0)
    p.base_spec().create(texts + load_idk_answers(), out)
    model, processor = p.loader.load(out)
    return {
        "name": name,
        "cfg": cfg,
        "p": p,
        "model": model.eval(),
        "encoder": p.encoder(processor),
        "dir": out,
    }


def test_label_mask_is_exactly_the_answer_at_every_image_shape(family) -> None:
    enc: ExampleEncoder = family["encoder"]
    tok, processor = enc.tokenizer, enc.processor
    image_id = processor.image_token_id
    answer = tok(enc.template.answer_prefix + ANSWER, add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    counts = []
    for ex in _rows():
        row = enc.encode(ex)
        ids, labels = torch.tensor(row["input_ids"]), torch.tensor(row["labels"])
        prompt = enc.prompt(ex)["input_ids"]
        assert row["input_ids"][: len(prompt)] == prompt  # the processor's own expanded prompt, untouched
        assert labels[: len(prompt)].eq(IGNORE_INDEX).all()  # no prompt or image token reaches the loss
        assert labels[len(prompt) :].tolist() == answer == row["input_ids"][len(prompt) :]
        n_image = int((ids == image_id).sum())
        assert n_image > 1 and not ((labels != IGNORE_INDEX) & (ids == image_id)).any()
        if "image_grid_thw" in row:  # Qwen2-VL: one token per merged patch of this image's own grid
            merge = processor.image_processor.merge_size
            assert n_image == int(row["image_grid_thw"].prod()) // merge**2
            assert row["mm_token_type_ids"] == (ids == image_id).long().tolist()
        counts.append(n_image)
    if family["name"] != "tiny_llava":  # dynamic resolution: the shapes expand to different counts
        assert len(set(counts)) == len(counts)

    batch = pad_batch([enc.encode(ex) for ex in _rows()], enc.pad_id)
    for r, ex in enumerate(_rows()):  # padding keeps every row's mask, ids and per-token types aligned
        row = enc.encode(ex)
        n = len(row["input_ids"])
        assert batch["labels"][r, :n].tolist() == row["labels"]
        assert batch["labels"][r, n:].eq(IGNORE_INDEX).all()
        if "mm_token_type_ids" in row:
            assert batch["mm_token_type_ids"][r, :n].tolist() == row["mm_token_type_ids"]


def test_text_row_has_no_image_inputs(family) -> None:
    enc: ExampleEncoder = family["encoder"]
    row = enc.encode(Example("t/0", "train", "qa", "Where was Bafilo Lufilo born?", "In Keravo."))
    assert row["pixel_values"] is None and "image_grid_thw" not in row
    assert enc.processor.image_token_id not in row["input_ids"]
    assert not any(row.get("mm_token_type_ids", []))


def test_mixed_shape_batch_scores_each_row_as_alone(family) -> None:
    """The evaluation's scoring batch (full rows) of images that expand to different token counts gives each
    candidate the loss it has in a batch of its own."""
    model, enc = family["model"], family["encoder"]
    collate = EvalCollator(enc, shared_prefix=False)
    items = list(enumerate(_rows()))

    def nll(batch: dict[str, Any]) -> torch.Tensor:
        score = batch["score"]
        logits = model(
            input_ids=score["input_ids"], attention_mask=score["attention_mask"], **image_inputs(score)
        )
        return losses.sequence_nll(logits.logits, score["labels"])

    with torch.no_grad():
        together = nll(collate(items))
        alone = torch.cat([nll(collate([item])) for item in items])
    assert together.shape == (2 * len(items),)
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_shared_prefix_scores_equal_full_rows_where_supported(family) -> None:
    """Where the model allows one prefix pass per item (plain 1-D positions: not Qwen2-VL's M-RoPE), its
    losses on a mixed-shape batch equal the full rows'."""
    model, enc = family["model"], family["encoder"]
    if not shared_prefix.supports(model):
        assert family["cfg"].model.processor_without  # only the Qwen2-VL family falls back, and says so
        pytest.skip(f"{family['name']}: 3-D M-RoPE positions, full rows only")
    items = list(enumerate(_rows()))
    full, shared = EvalCollator(enc)(items), EvalCollator(enc, shared_prefix=True)(items)
    with torch.no_grad():
        score = full["score"]
        out = model(
            input_ids=score["input_ids"], attention_mask=score["attention_mask"], **image_inputs(score)
        )
        expected = losses.sequence_nll(out.logits, score["labels"])
        got = shared_prefix.sequence_nll(model, shared["score"], shared["row_item"])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_generation_receives_the_image_inputs(family, monkeypatch) -> None:
    model, enc = family["model"], family["encoder"]
    prompts = EvalCollator(enc)(list(enumerate(_rows())))["generate"]
    evaluator = Evaluator(model, enc.tokenizer, ["forget_faces"], max_new_tokens=3)
    seen: dict[str, Any] = {}
    generate = model.generate

    def spy(**kwargs: Any) -> torch.Tensor:
        seen.update(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    texts = evaluator.generate(prompts)
    assert len(texts) == len(SIZES)
    assert seen["pixel_values"] is prompts["pixel_values"] and seen["pixel_values"] is not None
    for key in ("image_grid_thw", "mm_token_type_ids"):  # Qwen2-VL's grids and M-RoPE token types
        assert (key in seen) == (key in prompts)
    if "mm_token_type_ids" in prompts:  # left-padded with the ids: the image tokens keep their types
        ids = prompts["input_ids"]
        assert torch.equal(seen["mm_token_type_ids"], (ids == enc.processor.image_token_id).long())
        assert seen["image_grid_thw"].shape == (len(SIZES), 3)


def test_lora_reaches_only_the_configured_modules(family) -> None:
    import copy

    cfg, p = family["cfg"], family["p"]
    method = p.method(model=copy.deepcopy(family["model"]))
    pattern = re.compile(cfg.model.lora_targets)
    wrapped = {n for n, m in method.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped and all(pattern.fullmatch(re.sub(r"^base_model\.model\.", "", n)) for n in wrapped)
    assert all("language_model" in n for n in wrapped)  # never the vision tower, projector/merger or lm_head
    linear = {
        n
        for n, m in family["model"].named_modules()
        if isinstance(m, torch.nn.Linear) and pattern.fullmatch(n)
    }
    assert {re.sub(r"^base_model\.model\.", "", n) for n in wrapped} == linear  # and every configured one
    trainable = {n for n, q in method.model.named_parameters() if q.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_finetune_targets_are_every_linear_layer_but_lm_head(family) -> None:
    """The fine-tunes (original, gold) train the language model, the projector/merger and the vision tower."""
    pattern = re.compile(family["cfg"].model.finetune_targets)
    linear = {n for n, m in family["model"].named_modules() if isinstance(m, torch.nn.Linear)}
    assert {n for n in linear if pattern.fullmatch(n)} == linear - {"lm_head"}
    assert any("vision" in n or "visual" in n for n in linear)


def test_fsdp_units_are_the_models_repeated_blocks(family) -> None:
    from clear_lightning.models.sharding import decoder_layer_classes

    units = decoder_layer_classes(family["cfg"].model.fsdp_units)
    assert units <= {type(m) for m in family["model"].modules()}  # each names a block this model has
    assert type(family["model"].get_decoder().layers[0]) in units


@pytest.mark.parametrize("name", options("model"))
def test_every_model_yaml_names_importable_fsdp_units(name: str) -> None:
    from hydra import compose, initialize_config_dir

    from clear_lightning.models.sharding import decoder_layer_classes

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={name}", "trainer=fsdp"])
    units = decoder_layer_classes(cfg.model.fsdp_units)
    assert units and all(c.__name__.endswith(("DecoderLayer", "EncoderLayer", "Block")) for c in units)
    policy = cfg.trainer.strategy.auto_wrap_policy
    assert list(policy.names) == list(cfg.model.fsdp_units)


def test_processor_is_saved_as_the_real_class_without_video(family) -> None:
    import json

    from clear_lightning.errors import ClearConfigError
    from clear_lightning.models.load import processor_without

    processor = family["encoder"].processor
    assert not hasattr(processor, "video_processor")
    assert type(processor).__name__ == PROCESSORS[family["name"]]
    saved = json.loads((family["dir"] / "processor_config.json").read_text())
    assert saved["processor_class"] == PROCESSORS[family["name"]]  # what AutoProcessor loads with torchvision
    with pytest.raises(ClearConfigError, match="no sub-processor"):
        processor_without(type(processor), ["audio_processor"])
    with pytest.raises(
        ClearConfigError, match="only trailing"
    ):  # would shift the parent's positional hand-on
        processor_without(type(processor), ["image_processor"])


@pytest.mark.slow
@pytest.mark.parametrize("name", FAMILIES[1:])
def test_debug_fast_npo_run_writes_a_summary(make_cfg, name: str) -> None:
    from clear_lightning.pipeline import run

    cfg = make_cfg(f"model={name}", "method=npo")
    run(cfg)
    summary = Path(cfg.run_dir) / "summary.json"
    assert summary.exists(), f"no summary in {cfg.run_dir}"
