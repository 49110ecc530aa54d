"""Every model family's tiny stand-in through the same code path (issue 16): built from its YAML's spec, loaded by
the YAML's loader with the processor class its real checkpoints use, then encoded, collated, trained and
evaluated by the code every model shares.

Per family: the label mask covers exactly the answer tokens of the real processor's output (image tokens
expanded, at several image shapes: dynamic resolution; Mllama: the one `<|image|>` token and the cross-attention
mask over the image's tiles), generation receives the image inputs, LoRA reaches only the configured modules, and
(slow) a `debug=fast` NPO run writes a summary. The text track's stand-ins (`TEXT_FAMILIES`): the label mask under
their chat template and LoRA's reach.
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
from clear_lightning.data.encoding import (
    IGNORE_INDEX,
    IMAGE_INPUTS,
    TOKEN_INPUTS,
    ExampleEncoder,
    image_inputs,
    pad_batch,
)
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
    "tiny_gemma3": "Gemma3Processor",
    "tiny_mllama": "MllamaProcessor",
}
FAMILIES = list(PROCESSORS)
# the text track's stand-ins and their model classes
TEXT_FAMILIES = {"tiny_llama": "LlamaForCausalLM", "tiny_qwen2_5": "Qwen2ForCausalLM"}
# image shapes (width, height) of one batch: square, wide, tall; the stand-ins with anyres tiling or dynamic
# resolution expand them to different token counts; tiny_mllama tiles them into different tile counts
SIZES = [(32, 32), (64, 24), (20, 28)]
SQUARE_RESIZE = {"tiny_llava", "tiny_gemma3"}  # every image resized to one square: one token count
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


def _image_id(family) -> int:
    """The id the image occupies in the prompt (LLaVA's <image>, Qwen's <|image_pad|>, Gemma-3's soft token,
    Mllama's <|image|>): the model config's, not the processor's (Gemma3Processor's is <start_of_image>)."""
    return family["model"].config.image_token_id


def test_label_mask_is_exactly_the_answer_at_every_image_shape(family) -> None:
    enc: ExampleEncoder = family["encoder"]
    tok, processor = enc.tokenizer, enc.processor
    image_id = _image_id(family)
    answer = tok(enc.template.answer_prefix + ANSWER, add_special_tokens=False)["input_ids"] + [enc.end_id]
    if enc.template.answer_end is not None:  # a chat turn's end, not the tokenizer's EOS
        assert tok.convert_ids_to_tokens(answer[-1]) == enc.template.answer_end
    counts = []
    for ex in _rows():
        row = enc.encode(ex)
        ids, labels = torch.tensor(row["input_ids"]), torch.tensor(row["labels"])
        prompt = enc.prompt(ex)["input_ids"]
        assert row["input_ids"][: len(prompt)] == prompt  # the processor's own expanded prompt, untouched
        assert labels[: len(prompt)].eq(IGNORE_INDEX).all()  # no prompt or image token reaches the loss
        assert labels[len(prompt) :].tolist() == answer == row["input_ids"][len(prompt) :]
        n_image = int((ids == image_id).sum())
        assert not ((labels != IGNORE_INDEX) & (ids == image_id)).any()
        if "cross_attention_mask" in row:  # Mllama: one <|image|>; every token from it on sees the real tiles
            assert n_image == 1
            cross, first = torch.tensor(row["cross_attention_mask"]), row["input_ids"].index(image_id)
            tiles = int(row["aspect_ratio_mask"].sum())
            assert cross.shape == (len(ids), 1, processor.image_processor.max_image_tiles)
            assert cross[:first].eq(0).all() and cross[first:, 0, :tiles].eq(1).all()  # the answer included
            assert cross[first:, 0, tiles:].eq(0).all()  # the padded tiles never
            counts.append(tiles)
            continue
        assert n_image > 1
        if "image_grid_thw" in row:  # Qwen2-VL: one token per merged patch of this image's own grid
            merge = processor.image_processor.merge_size
            assert n_image == int(row["image_grid_thw"].prod()) // merge**2
        for key in ("mm_token_type_ids", "token_type_ids"):  # 1 on the image tokens, 0 over the answer
            if key in row:
                assert row[key] == (ids == image_id).long().tolist()
        counts.append(n_image)
    if family["name"] in SQUARE_RESIZE:
        assert len(set(counts)) == 1
    elif family["name"] == "tiny_mllama":  # the shapes are tiled differently (2x2 and 1x3 here)
        assert len(set(counts)) > 1
    else:  # dynamic resolution: the shapes expand to different counts
        assert len(set(counts)) == len(counts)

    batch = pad_batch([enc.encode(ex) for ex in _rows()], enc.pad_id)
    for r, ex in enumerate(_rows()):  # padding keeps every row's mask, ids and per-token types aligned
        row = enc.encode(ex)
        n = len(row["input_ids"])
        assert batch["labels"][r, :n].tolist() == row["labels"]
        assert batch["labels"][r, n:].eq(IGNORE_INDEX).all()
        for key in TOKEN_INPUTS:
            if key in row:
                assert batch[key][r, :n].tolist() == row[key]
                assert batch[key][r, n:].eq(0).all()


def test_text_row_has_no_image_inputs(family) -> None:
    enc: ExampleEncoder = family["encoder"]
    row = enc.encode(Example("t/0", "train", "qa", "Where was Bafilo Lufilo born?", "In Keravo."))
    assert row["pixel_values"] is None and not any(k in row for k in IMAGE_INPUTS if k != "pixel_values")
    assert _image_id(family) not in row["input_ids"]
    assert all(not torch.tensor(row[k]).any() for k in TOKEN_INPUTS if k in row)


def test_declared_token_inputs_are_read_by_the_model(family) -> None:
    """What `model.token_inputs` names travels to the model and changes its output: Gemma-3's token_type_ids
    (attention within an image both ways), Mllama's cross-attention mask; and a batch that mixes text and image
    rows is refused where the image inputs are per row (Mllama)."""
    model, enc = family["model"], family["encoder"]
    if not {"token_type_ids", "cross_attention_mask"} & set(enc.token_inputs):
        pytest.skip(f"{family['name']}: no token input of this kind")
    batch = pad_batch([enc.encode(ex) for ex in _rows()], enc.pad_id)
    inputs = image_inputs(batch)
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **inputs).logits
        for key in enc.token_inputs:
            if key == "cross_attention_mask":  # every token sees the image's first tile only
                changed = {**inputs, key: inputs[key].clone()}
                changed[key][..., 1:] = 0
            else:
                changed = {k: v for k, v in inputs.items() if k != key}
            out = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **changed
            ).logits
            assert not torch.allclose(out, full, atol=1e-5), key
    text = enc.encode(Example("t/0", "train", "qa", "Where was Bafilo Lufilo born?", "In Keravo."))
    if family["cfg"].model.batch_by_modality:
        with pytest.raises(ValueError, match="mixes text and image rows"):
            pad_batch([enc.encode(_rows(1)[0]), text], enc.pad_id)
    else:
        pad_batch([enc.encode(_rows(1)[0]), text], enc.pad_id)


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
    for key in (*IMAGE_INPUTS, *TOKEN_INPUTS):  # grids, tile ratios, token types, cross-attention mask
        assert (key in seen) == (prompts.get(key) is not None), key
    ids = prompts["input_ids"]
    for key in (
        "mm_token_type_ids",
        "token_type_ids",
    ):  # left-padded with the ids: image tokens keep their types
        if key in prompts:
            assert torch.equal(seen[key], (ids == _image_id(family)).long())
    if "image_grid_thw" in prompts:
        assert seen["image_grid_thw"].shape == (len(SIZES), 3)
    if "cross_attention_mask" in prompts:  # left-padded: every row sees its image from its <|image|> on
        cross = seen["cross_attention_mask"]
        assert cross.shape[:2] == ids.shape and seen["aspect_ratio_ids"].shape == (len(SIZES), 1)
        for r in range(len(SIZES)):
            first = ids[r].tolist().index(_image_id(family))
            assert cross[r, :first].eq(0).all() and cross[r, first:, 0, 0].eq(1).all()


def test_lora_reaches_only_the_configured_modules(family) -> None:
    import copy

    cfg, p = family["cfg"], family["p"]
    method = p.method(model=copy.deepcopy(family["model"]))
    pattern = re.compile(cfg.model.lora_targets)
    wrapped = {n for n, m in method.model.named_modules() if hasattr(m, "lora_A")}
    assert wrapped and all(pattern.fullmatch(re.sub(r"^base_model\.model\.", "", n)) for n in wrapped)
    assert all("language_model" in n for n in wrapped)  # never the vision tower, projector/merger or lm_head
    if (
        family["name"] == "tiny_mllama"
    ):  # the cross-attention layers included (llama3_2_11b_vision.yaml says why)
        assert any(".cross_attn." in n for n in wrapped) and any(".self_attn." in n for n in wrapped)
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


@pytest.fixture(scope="module", params=list(TEXT_FAMILIES))
def text_family(request, make_cfg, tmp_path_factory) -> dict[str, Any]:
    """A text track's stand-in built by its YAML's spec and loaded by its YAML's loader (a tokenizer, no
    processor)."""
    name = request.param
    cfg = make_cfg(f"model={name}", "method=npo", "modality=text", "model.build.vocab_size=600")
    p = assemble(cfg)
    template = cfg.model.prompt.template.format(image="", question="")
    out = tmp_path_factory.mktemp(name)
    torch.manual_seed(0)
    p.base_spec().create([QUESTION, ANSWER, template] * 5 + load_idk_answers(), out)
    model, tokenizer = p.loader.load(out)
    return {"name": name, "cfg": cfg, "p": p, "model": model.eval(), "encoder": p.encoder(tokenizer)}


def test_text_label_mask_is_exactly_the_answer_under_the_chat_template(text_family) -> None:
    enc: ExampleEncoder = text_family["encoder"]
    tok, template = enc.tokenizer, enc.template
    assert type(text_family["model"]).__name__ == TEXT_FAMILIES[text_family["name"]]
    row = enc.encode(Example("t/0", "train", "qa", QUESTION, ANSWER))
    prompt_text = template.prompt(QUESTION, has_image=False)
    prompt = tok(prompt_text)["input_ids"]  # the tokenizer's own specials (Llama: BOS; Qwen: none)
    assert row["input_ids"][: len(prompt)] == prompt and set(row["labels"][: len(prompt)]) == {IGNORE_INDEX}
    answer = tok(template.answer_prefix + ANSWER, add_special_tokens=False)["input_ids"] + [enc.end_id]
    assert row["labels"][len(prompt) :] == answer == row["input_ids"][len(prompt) :]
    assert tok.decode(answer[:-1]).strip() == ANSWER
    if template.answer_end is not None:  # Qwen2.5: the answer ends its turn with <|im_end|>
        assert tok.convert_ids_to_tokens(answer[-1]) == template.answer_end
    assert "pixel_values" not in {k for k, v in row.items() if v is not None}


def test_text_lora_reaches_only_the_configured_modules(text_family) -> None:
    import copy

    cfg, p, model = text_family["cfg"], text_family["p"], text_family["model"]
    method = p.method(model=copy.deepcopy(model))
    pattern = re.compile(cfg.model.lora_targets)
    wrapped = {
        re.sub(r"^base_model\.model\.", "", n)
        for n, m in method.model.named_modules()
        if hasattr(m, "lora_A")
    }
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and pattern.fullmatch(n)}
    assert (
        wrapped and wrapped == linear and "lm_head" not in wrapped
    )  # every decoder projection, nothing else
    assert {n.rsplit(".", 1)[-1] for n in wrapped} == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    trainable = {n for n, q in method.model.named_parameters() if q.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    from clear_lightning.models.sharding import decoder_layer_classes

    assert type(model.get_decoder().layers[0]) in decoder_layer_classes(cfg.model.fsdp_units)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*FAMILIES[1:], "tiny_qwen2_5"])
def test_debug_fast_npo_run_writes_a_summary(make_cfg, name: str) -> None:
    from clear_lightning.pipeline import run

    text = name in TEXT_FAMILIES  # the text track: text forgetting, visual sets skipped
    cfg = make_cfg(f"model={name}", "method=npo", *(["modality=text"] if text else []))
    run(cfg)
    summary = Path(cfg.run_dir) / "summary.json"
    assert summary.exists(), f"no summary in {cfg.run_dir}"
