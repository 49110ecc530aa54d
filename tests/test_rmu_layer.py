"""RMU's layer is the authors' 0-based decoder layer (a hook on `layers[k]`), and which positions it moves."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import LlamaForCausalLM

from clear_lightning.config import CONFIG_DIR
from clear_lightning.data.encoding import IGNORE_INDEX
from clear_lightning.methods import losses
from clear_lightning.methods.rmu import RepresentationMisdirection, position_mask
from clear_lightning.models.tiny import TinyLlavaSpec, build_model, text_config, train_tokenizer

LAYERS = 3  # layers 0, 1 and 2 are valid; hidden_states[3] is the final-normed output, not layers[2]'s
SPEC = TinyLlavaSpec(hidden_size=32, intermediate_size=64, num_layers=LAYERS, vocab_size=300)
LORA = {
    "llama": {"r": 4, "lora_alpha": 8, "target_modules": r".*layers.*\.(q_proj|v_proj)"},
    "llava": {"r": 4, "lora_alpha": 8, "target_modules": r".*language_model.*\.(q_proj|v_proj)"},
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["USER: Where was Ada born? ASSISTANT: In town 1.", "Describe the image."], 300)


def _batch(tokenizer, image: bool) -> dict[str, torch.Tensor]:
    """Two rows: [bos, (16 image tokens), 5 prompt tokens, 3 answer tokens], the second one padded by 1."""
    torch.manual_seed(1)
    n_image = (SPEC.image_size // SPEC.patch_size) ** 2 if image else 0
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    text = torch.randint(5, len(tokenizer), (2, 8))
    ids = torch.cat([torch.full((2, 1), tokenizer.bos_token_id), torch.full((2, n_image), image_id), text], 1)
    attention = torch.ones_like(ids)
    ids[1, -1], attention[1, -1] = tokenizer.pad_token_id, 0
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, -3:] = ids[:, -3:]
    labels[1, -1] = IGNORE_INDEX
    batch = {"input_ids": ids, "attention_mask": attention, "labels": labels}
    if image:
        batch["pixel_values"] = torch.randn(2, 3, SPEC.image_size, SPEC.image_size)
    return batch


def _model(tokenizer, kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = (
        LlamaForCausalLM(text_config(tokenizer, SPEC)) if kind == "llama" else build_model(tokenizer, SPEC)
    )
    return model.eval()


@pytest.mark.parametrize("kind", ["llama", "llava"])
def test_rmu_layer_is_the_output_of_decoder_layer_k(tokenizer, kind: str) -> None:
    batch = _batch(tokenizer, image=kind == "llava")
    for k in range(LAYERS):
        rmu = RepresentationMisdirection(_model(tokenizer, kind), layer=k, lora_config=LORA[kind])
        layers = rmu.model.get_base_model().get_decoder().layers
        seen: dict[int, torch.Tensor] = {}
        hooks = [
            layer.register_forward_hook(
                lambda _m, _i, out, j=j, seen=seen: seen.__setitem__(
                    j, out[0] if isinstance(out, tuple) else out
                )
            )
            for j, layer in enumerate(layers)
        ]
        try:
            for reference in (False, True):
                seen.clear()
                h = rmu.hidden(batch, reference=reference)
                assert torch.equal(h, seen[k])  # the authors' `layers[k]` hook, Li et al.'s layer_id=k
                assert not any(torch.equal(h, seen[j]) for j in seen if j != k)
            if k < LAYERS - 1:  # = transformers' hidden_states[k + 1] (index 0 is the embeddings)
                states = rmu.reference_forward(batch, output_hidden_states=True).hidden_states
                assert torch.equal(rmu.hidden(batch, reference=True), states[k + 1])
        finally:
            for hook in hooks:
                hook.remove()


def test_rmu_layer_range_is_checked(tokenizer) -> None:
    for bad in (-1, LAYERS):
        with pytest.raises(ValueError, match=rf"rmu layer {bad} outside 0..{LAYERS - 1}"):
            RepresentationMisdirection(_model(tokenizer, "llama"), layer=bad, lora_config=LORA["llama"])


def _model_cfg(name: str):
    """A model YAML as composed (the leaves inherit `_base` / `_text`)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=[f"model={name}"]).model


@pytest.mark.parametrize(
    "name",
    [
        "llava_1_5_7b",
        "llama2_7b",
        "mistral_7b",
        "qwen2_vl_2b",
        "qwen2_vl_7b",
        "qwen2_5_vl_3b",
        "qwen2_5_vl_7b",
        "llava_v1_6_mistral_7b",
        "gemma3_4b",
        "llama3_1_8b_instruct",
        "qwen2_5_7b_instruct",
    ],
)
def test_7b_yamls_hook_the_authors_layer_7(name: str) -> None:
    assert _model_cfg(name).rmu_layer == 7  # = their model.layers[7] (inherited from conf/model/_base.yaml)


def test_mllama_hooks_text_layer_7() -> None:
    """Llama-3.2-11B-Vision interleaves cross-attention layers with its Llama-3.1-8B text layers: layers[9] is
    text layer 7, the layer the authors' layers[7] and Li et al.'s layer_id=7 name in a plain decoder."""
    from transformers import MllamaTextConfig

    cross = MllamaTextConfig().cross_attention_layers  # the 11B's: 3, 8, ..., 38 of 40
    text_layers = [i for i in range(MllamaTextConfig().num_hidden_layers) if i not in cross]
    layer = _model_cfg("llama3_2_11b_vision").rmu_layer
    assert layer not in cross and text_layers.index(layer) == 7


@pytest.mark.parametrize(
    "name",
    [
        "tiny_llava",
        "tiny_llama",
        "tiny_llava_next",
        "tiny_qwen2_vl",
        "tiny_qwen2_5_vl",
        "tiny_gemma3",
        "tiny_mllama",
        "tiny_qwen2_5",
    ],
)
def test_tiny_yamls_keep_their_layer(name: str) -> None:
    cfg = _model_cfg(name)
    assert cfg.rmu_layer == 0  # the output of layers[0], hidden_states[1], as before the 0-based convention
    assert cfg.rmu_layer <= cfg.build.num_layers - 2


def test_rmu_yaml_defaults_follow_li_et_al() -> None:
    cfg = OmegaConf.load(CONFIG_DIR / "method" / "rmu.yaml")
    assert cfg.reduction == "mean" and cfg.positions == "answer"


def test_rmu_positions_on_hand_made_labels() -> None:
    # row 0: 2 prompt tokens, answer at 2..3, 1 pad; row 1: 1 prompt token, answer at 1..3, no pad
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 7, 8, IGNORE_INDEX], [IGNORE_INDEX, 5, 6, 9, 3]])
    attention = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert position_mask(labels, attention).tolist() == [  # default: the answer tokens' own positions
        [False, False, True, True, False],
        [False, True, True, True, True],
    ]
    assert position_mask(labels, attention, "predict").tolist() == [  # one to the left
        [False, True, True, False, False],
        [True, True, True, True, False],
    ]
    assert position_mask(labels, attention, "all").tolist() == [
        [True, True, True, True, False],
        [True, True, True, True, True],
    ]
    with pytest.raises(ValueError, match="rmu positions 'prompt'"):
        position_mask(labels, attention, "prompt")


def test_rmu_reduction_on_the_model(tokenizer) -> None:
    """At θ = θ₀ the loss is the forget distance; "sum" is hidden_size × "mean", and c means the same."""
    batch = _batch(tokenizer, image=False)
    values = {}
    for reduction in ("mean", "sum"):
        rmu = RepresentationMisdirection(
            _model(tokenizer, "llama"),
            layer=1,
            steering_coeff=3.0,
            reduction=reduction,
            lora_config=LORA["llama"],
        )
        loss, parts = rmu.compute_loss({"forget": batch, "retain": batch})
        assert parts["retain_distance"].item() == 0.0
        h0 = rmu.hidden(batch, reference=True)
        mask = batch["labels"] != IGNORE_INDEX
        sq = (h0 - 3.0 * rmu.direction).pow(2)[mask]  # [answer positions, d]
        expected = sq.mean() if reduction == "mean" else sq.sum(-1).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        values[reduction] = loss.item()
    assert values["sum"] == pytest.approx(SPEC.hidden_size * values["mean"], rel=1e-5)
    with pytest.raises(ValueError, match="rmu reduction 'max'"):
        RepresentationMisdirection(_model(tokenizer, "llama"), layer=0, reduction="max")
    with pytest.raises(ValueError, match="rmu reduction 'max'"):
        losses.masked_sq_distance(torch.zeros(1, 1, 2), torch.zeros(1, 1, 2), torch.ones(1, 1), "max")
