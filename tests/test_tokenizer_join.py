"""The tokenizer join (benchmark.md §3): the ids trained and scored on are those of prompt + answer tokenised together.

SentencePiece-style Llama tokenizers add a dummy `▁` prefix to the text they are given. On its own, an answer
thus starts a new `▁` word even where the joint text glues it to the prompt (`[/INST]{answer}`), and with the
Llama-2 / LLaVA-1.5 hub pipeline (normaliser Prepend("▁") + Replace(" ", "▁")) a standalone `" " + answer`
gets a stray `▁` token. These tests train small tokenizers of each kind (and the tiny model's byte-level BPE)
on a local corpus and check every prompt template of conf/model/*.yaml.
"""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import LlamaTokenizer, PreTrainedTokenizerFast

from clear_lightning.config import CONFIG_DIR, options
from clear_lightning.data.encoding import IGNORE_INDEX, ExampleEncoder, PromptTemplate
from clear_lightning.data.examples import Example
from clear_lightning.models.tiny import TinyLlavaSpec, build_processor, train_tokenizer


def _templates() -> dict[str, PromptTemplate]:
    """Every model YAML's prompt template, composed (the leaves inherit `_base`) and instantiated."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return {
            name: instantiate(compose("config", overrides=[f"model={name}"]).model.prompt)
            for name in options("model")
        }


TEMPLATES = _templates()
# Image placeholders and chat markers of the templates above: atomic special tokens, as in the real tokenizers.
CHAT_TOKENS = [
    "<image>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|image_pad|>",
    "<|vision_end|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|image|>",
]
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", *CHAT_TOKENS]
ROWS = [
    ("Where was Basil Mahfouz born?", "Basil Mahfouz was born in Kuwait City."),
    ("Who is he?", "Basil Mahfouz."),
    ("What can you see in this picture?", "A man in a grey suit, smiling."),
    ("How old is she?", "42 years, give or take."),
    ("Describe the image in detail.", "Kuwait City at night: lights, towers and the sea."),
]
# What a tokenizer is trained on, as for the tiny model (data.corpus.corpus): questions, answers and the
# templates' fixed text, each string on its own.
CORPUS = [text for row in ROWS for text in row] + [
    t.template.format(image="", question="") for t in TEMPLATES.values()
]


def _with_specials(tok: Tokenizer) -> PreTrainedTokenizerFast:
    tok.add_special_tokens(SPECIALS)  # atomic, never normalised (a no-op for those a trainer already added)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=CHAT_TOKENS,
        extra_special_tokens={"image_token": "<image>"},
    )


def _llama_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A BPE vocabulary and merges trained SentencePiece-style: words split at `▁`, each with its own `▁`."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=SPECIALS, min_frequency=1, show_progress=False
    )
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    return tok.get_vocab(), [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]


def llama_hub_tokenizer() -> PreTrainedTokenizerFast:
    """The pipeline of the Llama-2 / LLaVA-1.5 hub `tokenizer.json` (SentencePiece's add_dummy_prefix without
    remove_extra_whitespaces): normalizer Prepend("▁") + Replace(" ", "▁"), no pre-tokenizer, byte fallback.
    A standalone `" " + answer` becomes `▁▁answer`, the stray `▁` (id 29871 in Llama-2's vocabulary)."""
    vocab, merges = _llama_bpe()
    tok = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True)
    )
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return _with_specials(tok)


def llama_tokenizer(legacy: bool) -> LlamaTokenizer:
    """transformers' own Llama tokenizer class (BPE + byte fallback + Metaspace) on the trained vocabulary:
    legacy=True prepends `▁` to every text segment ("always"), legacy=False only to the first ("first")."""
    vocab, merges = _llama_bpe()
    llama = LlamaTokenizer(vocab=vocab, merges=merges, legacy=legacy, pad_token="<pad>", add_bos_token=True)
    llama.add_special_tokens({"additional_special_tokens": CHAT_TOKENS})
    llama.image_token = "<image>"
    return llama


def unigram_tokenizer() -> PreTrainedTokenizerFast:
    """A SentencePiece Unigram model with the dummy prefix (Metaspace "always", split on `▁`), T5-style."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=SPECIALS, unk_token="<unk>", show_progress=False
    )
    tok.train_from_iterator(CORPUS * 5, trainer=trainer)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return _with_specials(tok)


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """The tiny model's byte-level BPE (models.tiny.train_tokenizer), plus the chat markers."""
    tok = train_tokenizer(CORPUS * 5, vocab_size=400)
    tok.add_special_tokens({"additional_special_tokens": CHAT_TOKENS})
    return tok


TOKENIZERS = {
    "llama_hub": llama_hub_tokenizer,
    "llama_legacy": lambda: llama_tokenizer(legacy=True),
    "llama": lambda: llama_tokenizer(legacy=False),
    "sp_unigram": unigram_tokenizer,
    "tiny_byte_level": tiny_tokenizer,
}


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def tokenizer(request):
    return TOKENIZERS[request.param]()


def test_templates_come_from_every_model_yaml() -> None:
    assert {"llava_1_5_7b", "llama2_7b", "mistral_7b", "qwen2_vl_2b", "tiny_llama", "tiny_llava"} <= set(
        TEMPLATES
    )


@pytest.mark.parametrize("name", ["llama_hub", "llama_legacy", "llama", "sp_unigram"])
def test_sentencepiece_standalone_answers_differ_from_the_joint_text(name: str) -> None:
    """The premise: the dummy prefix makes a standalone answer start a new `▁` word, which the joint
    `[/INST]Basil` does not; with the hub pipeline a standalone `" Basil"` even gets a stray `▁` token."""
    tok = TOKENIZERS[name]()

    def pieces(text: str) -> list[str]:
        return tok.convert_ids_to_tokens(tok(text, add_special_tokens=False)["input_ids"])

    assert pieces("Basil")[0].startswith("▁")
    assert pieces("[/INST]Basil")[-len(pieces("Basil")) :] != pieces("Basil")
    if name == "llama_hub":
        assert pieces(" Basil") == ["▁", "▁Basil"] and pieces("ASSISTANT: Basil")[-1] == "▁Basil"


def _splits_header_newlines(tokenizer, template: PromptTemplate) -> bool:
    """The one merge across the join these templates and answers have: Llama-3's header ends in `\n\n`, which
    GPT-2's pre-tokenising regex (the byte-level tokenizers here) splits as `\n` + `\n` before a word, but keeps
    whole at the end of the prompt. Llama-3's own regex (models.tiny.LLAMA3_SPLIT, its tokenizer.json's) keeps
    a newline run whole, so the real tokenizer has no merge there (tests/test_model_families.py, tiny_mllama)."""
    pieces = tokenizer.convert_ids_to_tokens(tokenizer("\n\nBasil", add_special_tokens=False)["input_ids"])
    return template.template.endswith("\n\n") and pieces[:2] == ["Ċ", "Ċ"]


@pytest.mark.parametrize("model", sorted(TEMPLATES))
def test_text_rows_are_the_joint_tokenisation(tokenizer, model: str) -> None:
    template = TEMPLATES[model]
    encoder = ExampleEncoder(tokenizer, template)
    eos = encoder.end_id  # the template's answer_end token (a chat turn's end), else EOS
    for i, (question, answer) in enumerate(ROWS):
        row = encoder.encode(Example(f"t/{i}", "s", "qa", question, answer))
        prompt_text = template.prompt(question, has_image=False)
        prompt = tokenizer(prompt_text)["input_ids"]
        joint = tokenizer(prompt_text + template.answer_prefix + answer)["input_ids"]
        if (
            joint[: len(prompt)] != prompt
        ):  # a merge across the join: the joint ids win, only the answer is learnt
            assert _splits_header_newlines(tokenizer, template), (model, question)
            assert row["input_ids"] == joint + [eos], (model, question)
            supervised = [t for t in row["labels"] if t != IGNORE_INDEX]
            assert supervised[-1] == eos and tokenizer.decode(supervised[:-1]).strip() == answer
            continue
        assert row["input_ids"] == joint + [eos], (model, question)
        assert row["labels"] == [IGNORE_INDEX] * len(prompt) + joint[len(prompt) :] + [eos]
        assert encoder.prompt(Example(f"t/{i}", "s", "qa", question, answer))["input_ids"] == prompt
        # The supervised ids read back as the answer (the answer prefix, if any, is its word boundary).
        decoded = tokenizer.decode(joint[len(prompt) :])
        assert decoded.strip() == answer


@pytest.mark.parametrize("model", sorted(TEMPLATES))
def test_answer_ids_after_image_prompt_text(tokenizer, model: str) -> None:
    """The image placeholder kept as text: the answer ids join the prompt text exactly (tokenizer only)."""
    template = TEMPLATES[model]
    encoder = ExampleEncoder(tokenizer, template)
    for question, answer in ROWS:
        prompt_text = template.prompt(question, has_image=True)
        prompt = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        joint = tokenizer(prompt_text + template.answer_prefix + answer, add_special_tokens=False)[
            "input_ids"
        ]
        if joint[: len(prompt)] != prompt:  # a merge across the join: answer_ids refuses, encode handles it
            assert _splits_header_newlines(tokenizer, template), (model, question)
            with pytest.raises(ValueError, match="merge"):
                encoder.answer_ids(answer, prompt_text)
            continue
        ids = encoder.answer_ids(answer, prompt_text)
        assert prompt + ids == joint + [encoder.end_id], (model, question)


@pytest.mark.parametrize("model", ["llava_1_5_7b", "tiny_llava"])
def test_image_rows_through_the_llava_processor(tokenizer, model: str) -> None:
    """`<image>` expanded by the processor; the answer is the joint tokenisation's suffix, appended."""
    spec = TinyLlavaSpec(image_size=32, patch_size=8)
    processor = build_processor(tokenizer, spec)
    template = TEMPLATES[model]
    encoder = ExampleEncoder(processor, template)
    image = Image.new("RGB", (32, 32))
    for i, (question, answer) in enumerate(ROWS):
        ex = Example(f"c/{i}", "s", "caption", question, answer, image=image)
        row = encoder.encode(ex)
        text = template.prompt(question, has_image=True) + template.answer_prefix + answer
        joint = processor(text=[text], images=[image])["input_ids"][0]
        joint = joint.tolist() if hasattr(joint, "tolist") else list(joint)
        n_prompt = len(encoder.prompt(ex)["input_ids"])
        assert row["input_ids"] == joint + [tokenizer.eos_token_id]
        assert row["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
        assert IGNORE_INDEX not in row["labels"][n_prompt:]
        assert row["input_ids"].count(tokenizer.convert_tokens_to_ids("<image>")) == (32 // 8) ** 2


def test_standalone_answer_ids_are_kept_for_other_callers() -> None:
    """Without the prompt text, answer_ids tokenises the answer on its own, as before."""
    tok = TOKENIZERS["tiny_byte_level"]()
    encoder = ExampleEncoder(tok, TEMPLATES["llava_1_5_7b"])
    assert encoder.answer_ids("Basil Mahfouz.") == tok(" Basil Mahfouz.", add_special_tokens=False)[
        "input_ids"
    ] + [tok.eos_token_id]


# --- a merge across the join: the joint ids win, the prompt's re-tokenised tail is not supervised ---------
def _merging_tokenizer() -> LlamaTokenizer:
    """A hand-made Llama BPE whose merges cross the prompt/answer join: "b"+"c" outranks "a"+"b", so the
    prompt "Q ab" ends in `ab` alone, but "Q abcd" tokenises as `a bc d`."""
    chars = ["▁", "Q", "a", "b", "c", "d"]
    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", *chars, "bc", "ab", "▁Q"])}
    merges = [("b", "c"), ("a", "b"), ("▁", "Q")]
    return LlamaTokenizer(vocab=vocab, merges=merges, legacy=False, pad_token="<pad>", add_bos_token=True)


def test_merge_across_the_join_keeps_the_joint_ids() -> None:
    tok = _merging_tokenizer()
    template = PromptTemplate("Q a{question}", "", "")
    encoder = ExampleEncoder(tok, template)
    row = encoder.encode(Example("m/0", "s", "qa", "b", "cd"))
    pieces = tok.convert_ids_to_tokens(row["input_ids"])
    assert tok.convert_ids_to_tokens(encoder.prompt(Example("m/0", "s", "qa", "b", "cd"))["input_ids"]) == [
        "<s>",
        "▁Q",
        "▁",
        "ab",
    ]
    assert pieces == ["<s>", "▁Q", "▁", "a", "bc", "d", "</s>"]  # the joint ids, EOS appended
    supervised = tok.convert_ids_to_tokens([t for t in row["labels"] if t != IGNORE_INDEX])
    assert supervised == ["bc", "d", "</s>"]  # `a` is prompt text only; `bc` carries the answer's first char
    with pytest.raises(ValueError, match="merge"):
        encoder.answer_ids("cd", template.prompt("b", has_image=False))
