"""The data contract, defined once: split and config names, parquet columns, prompts and the evaluation sets.

benchmark.md §2 (configs and their columns), §3 (prompts) and §6 (evaluation sets and their groups). This module imports
nothing of the package and no third-party library, so any part (`metrics` too) may read it without pulling in
data code. The generator (`data.clear_mini`), the loader checks (`data.schema`), the examples (`data.examples`)
and the summaries (`metrics.summary`) all read these names from here.

Holdout configs (persons never trained on, benchmark.md §1/§10) are *optional*: `validate` never requires them, but checks
their columns where a snapshot has them. TOFU's own `holdout01/05/10` list question and answer (what
OpenUnlearning reads for its membership-inference metrics). `holdoutNN_perturbed` in TOFU (the columns of
`forgetNN_perturbed`, for truth ratios) and in CLEAR (the columns of `forgetNN_perturbed`, images with captions
and names) are CLEAR-mini's additions: the real therem/CLEAR has no holdout persons.
"""

from __future__ import annotations

from dataclasses import dataclass

# ---------------------------------------------------------------------------------------------------------------
# Splits: which persons a config holds

FORGET_PERCENTS = (1, 5, 10)
FULL = "full"  # every (trained) person


def forget_split(percent: int) -> str:
    """`forget10` for 10: the last percent of the persons."""
    return f"forget{percent:02d}"


def retain_split(percent: int) -> str:
    """`retain90` for 10: the persons not in forget<percent>."""
    return f"retain{100 - percent:02d}"


def holdout_split(percent: int) -> str:
    """`holdout10` for 10: persons in no training config, as many as forget<percent> holds."""
    return f"holdout{percent:02d}"


FORGET_SPLITS = tuple(forget_split(p) for p in FORGET_PERCENTS)  # forget01, forget05, forget10
RETAIN_SPLITS = tuple(retain_split(p) for p in FORGET_PERCENTS)  # retain99, retain95, retain90
HOLDOUT_SPLITS = tuple(holdout_split(p) for p in FORGET_PERCENTS)  # holdout01, holdout05, holdout10
PERSON_SPLITS = FORGET_SPLITS + RETAIN_SPLITS  # the configs that divide `full` into forget and retain persons
RETAIN_OF = dict(zip(FORGET_SPLITS, RETAIN_SPLITS, strict=True))  # forget10 -> retain90
HOLDOUT_OF = dict(zip(FORGET_SPLITS, HOLDOUT_SPLITS, strict=True))  # forget10 -> holdout10
RETAIN_PERTURBED = "retain_perturbed"  # the retain persons' evaluation config (a fixed subset of retain90)


def holdout_config(split: str) -> str:
    """`holdout10` for `forget10`: the holdout persons of the forget set's size."""
    return "holdout" + split.removeprefix("forget")


def perturbed(config: str) -> str:
    """The evaluation config of a split (`forget10_perturbed`): its rows with paraphrases and wrong answers."""
    return f"{config}_perturbed"


TOFU_SUFFIX = "+tofu"


def with_tofu(config: str) -> str:
    """The CLEAR config of a split that also holds its persons' TOFU QA (`forget10+tofu`)."""
    return config + TOFU_SUFFIX


# ---------------------------------------------------------------------------------------------------------------
# Collections (one snapshot each) and the configs outside the person splits

CLEAR, TOFU, PRIOR = "clear", "tofu", "prior"
COLLECTIONS = (CLEAR, TOFU, PRIOR)
REAL_FACES, REAL_WORLD = "real_faces", "real_world"  # CLEAR's real-knowledge configs
REAL_AUTHORS_PERTURBED, WORLD_FACTS_PERTURBED = "real_authors_perturbed", "world_facts_perturbed"  # TOFU's
PRIOR_CONFIGS = ("faces", "looks", "world", "facts")  # CLEAR-mini's prior knowledge (not part of CLEAR)

# ---------------------------------------------------------------------------------------------------------------
# Columns

IMAGE, CAPTION, NAME = "image", "caption", "name"
QUESTION, ANSWER, PROMPT, OPTIONS = "question", "answer", "prompt", "options"
PARAPHRASED_CAPTION, PERTURBED_CAPTIONS, PERTURBED_NAMES = (
    "paraphrased_caption",
    "perturbed_captions",
    "perturbed_names",
)
PARAPHRASED_ANSWER, PERTURBED_ANSWER = "paraphrased_answer", "perturbed_answer"

TEXT_COLUMNS = (CAPTION, NAME, QUESTION, ANSWER, PARAPHRASED_CAPTION, PARAPHRASED_ANSWER, PROMPT)  # strings
LIST_COLUMNS = (PERTURBED_CAPTIONS, PERTURBED_NAMES, PERTURBED_ANSWER, OPTIONS)  # lists of strings
# every other column is the `image` (PNG bytes, an HF `Image` feature)

# the columns of each kind of config, in the order they are written
IMAGE_ROW = (IMAGE, CAPTION, NAME)
MIXED_ROW = (IMAGE, CAPTION, QUESTION, ANSWER)  # `+tofu`: image rows, then text rows (benchmark.md §2)
PERTURBED_IMAGE_ROW = IMAGE_ROW + (PARAPHRASED_CAPTION, PERTURBED_CAPTIONS, PERTURBED_NAMES)
QA_ROW = (QUESTION, ANSWER)
PERTURBED_QA_ROW = (QUESTION, ANSWER, PARAPHRASED_ANSWER, PERTURBED_ANSWER)
REAL_FACES_ROW = (IMAGE, ANSWER, OPTIONS)
REAL_WORLD_ROW = (IMAGE, QUESTION, ANSWER, PROMPT, OPTIONS)

CLEAR_SCHEMA: dict[str, tuple[str, ...]] = {
    FULL: IMAGE_ROW,
    **{s: IMAGE_ROW for s in PERSON_SPLITS},
    with_tofu(FULL): MIXED_ROW,
    **{with_tofu(s): MIXED_ROW for s in PERSON_SPLITS},
    **{perturbed(s): PERTURBED_IMAGE_ROW for s in FORGET_SPLITS},
    RETAIN_PERTURBED: PERTURBED_IMAGE_ROW,
    REAL_FACES: REAL_FACES_ROW,
    REAL_WORLD: REAL_WORLD_ROW,
    **{perturbed(s): PERTURBED_IMAGE_ROW for s in HOLDOUT_SPLITS},  # optional, CLEAR-mini only
}

TOFU_SCHEMA: dict[str, tuple[str, ...]] = {
    FULL: QA_ROW,
    **{s: QA_ROW for s in PERSON_SPLITS},
    **{perturbed(s): PERTURBED_QA_ROW for s in FORGET_SPLITS},
    RETAIN_PERTURBED: PERTURBED_QA_ROW,
    REAL_AUTHORS_PERTURBED: PERTURBED_QA_ROW,
    WORLD_FACTS_PERTURBED: PERTURBED_QA_ROW,
    **{s: QA_ROW for s in HOLDOUT_SPLITS},  # optional: TOFU's holdout authors
    **{perturbed(s): PERTURBED_QA_ROW for s in HOLDOUT_SPLITS},  # optional, CLEAR-mini's addition
}

PRIOR_SCHEMA: dict[str, tuple[str, ...]] = {
    "faces": (IMAGE, ANSWER, QUESTION),
    "world": (IMAGE, QUESTION, ANSWER),
    "facts": QA_ROW,
    "looks": (IMAGE, QUESTION, ANSWER),
}

SCHEMAS = {CLEAR: CLEAR_SCHEMA, TOFU: TOFU_SCHEMA, PRIOR: PRIOR_SCHEMA}

# Configs a snapshot may lack: `validate` skips them when absent (their columns are checked when present).
OPTIONAL_CONFIGS: dict[str, frozenset[str]] = {
    CLEAR: frozenset(perturbed(s) for s in HOLDOUT_SPLITS),
    TOFU: frozenset((*HOLDOUT_SPLITS, *(perturbed(s) for s in HOLDOUT_SPLITS))),
    PRIOR: frozenset(),
}

# ---------------------------------------------------------------------------------------------------------------
# Prompts (benchmark.md §3)

FACE_NAME_PROMPT = "The name of the person on the image is"
CAPTION_QUESTIONS = (  # one phrasing per caption example, seeded by the example id
    "What can you see in this picture?",
    "Describe the image in detail.",
    "What is shown in this image?",
    "Tell me what happens in this picture.",
    "What do you see here?",
    "Describe this photo.",
    "Can you describe the image?",
    "What is depicted in the image?",
    "Give a description of this picture.",
)
REAL_WORLD_INSTRUCTION = "Please answer directly with a single word or number."  # ends a real_world `prompt`
LOOK_QUESTION = "Describe the person's appearance."  # CLEAR-mini's PRIOR `looks`

# ---------------------------------------------------------------------------------------------------------------
# Evaluation sets (benchmark.md §6)

PERSON_GROUPS = ("forget", "retain", "holdout")  # sets whose items belong to persons of the fictitious world
AGGREGATE_GROUPS = ("real", "retain", "forget")  # the groups with an aggregate metric; holdout is only scored
IMAGE_TASKS = ("caption", "face_name")  # what a person's image row is trained and scored as
TEXT, VISUAL = "text", "visual"


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set: what its items are and where they are read from.

    `config` is the config its rows come from; in a person set `{split}` stands for the run's forget split and
    `{holdout}` for that split's holdout config (`config_for`). `unit` is what a person-level bootstrap resamples:
    the person (person sets), the answer (real_faces: the celebrity) or the item itself. A multiple-choice set
    asks `prompt_column` (None: FACE_NAME_PROMPT) and offers `options_column`.
    """

    name: str
    group: str  # forget | retain | holdout | real
    kind: str  # qa | caption | face_name | face_qa | multiple_choice (the kind of its examples)
    modality: str  # text | visual
    collection: str  # clear | tofu
    config: str
    unit: str = "person"  # person | answer | item
    prompt_column: str | None = None
    options_column: str | None = None
    # False: a probe set (issue 15's cross-modal face-QA), scored and reported per set, with its own gap closed and
    # forget quality, but left out of every aggregate, so the paper's Forget/Retain metrics stay the paper's
    aggregated: bool = True

    def config_for(self, split: str) -> str:
        """The config this set reads for a forget split, e.g. `forget10_perturbed` for forget_qa and forget10."""
        return self.config.format(split=split, holdout=holdout_config(split))


_F, _R, _H, _MC = perturbed("{split}"), RETAIN_PERTURBED, perturbed("{holdout}"), "multiple_choice"
# fmt: off
EVAL_SET_TABLE = (
    #       name                 group      kind         modality collection config
    EvalSet("forget_qa",         "forget",  "qa",        TEXT,   TOFU,  _F),
    EvalSet("forget_caption",    "forget",  "caption",   VISUAL, CLEAR, _F),
    EvalSet("forget_face_name",  "forget",  "face_name", VISUAL, CLEAR, _F),
    EvalSet("retain_qa",         "retain",  "qa",        TEXT,   TOFU,  _R),
    EvalSet("retain_caption",    "retain",  "caption",   VISUAL, CLEAR, _R),
    EvalSet("retain_face_name",  "retain",  "face_name", VISUAL, CLEAR, _R),
    EvalSet("holdout_qa",        "holdout", "qa",        TEXT,   TOFU,  _H),
    EvalSet("holdout_caption",   "holdout", "caption",   VISUAL, CLEAR, _H),
    EvalSet("holdout_face_name", "holdout", "face_name", VISUAL, CLEAR, _H),
    # cross-modal probes (our addition, benchmark.md §6): a person's face + their biography question with the name
    # replaced by a reference to the image, composed from the TOFU QA and CLEAR image rows (data/face_qa.py)
    EvalSet("forget_face_qa",    "forget",  "face_qa",   VISUAL, CLEAR, _F, aggregated=False),
    EvalSet("retain_face_qa",    "retain",  "face_qa",   VISUAL, CLEAR, _R, aggregated=False),
    #                                                           unit      prompt    options
    EvalSet("real_faces",   "real", _MC, VISUAL, CLEAR, REAL_FACES,             "answer", None,     OPTIONS),
    EvalSet("real_world",   "real", _MC, VISUAL, CLEAR, REAL_WORLD,             "item",   PROMPT,   OPTIONS),
    EvalSet("real_authors", "real", _MC, TEXT,   TOFU,  REAL_AUTHORS_PERTURBED, "item",   QUESTION, PERTURBED_ANSWER),
    EvalSet("world_facts",  "real", _MC, TEXT,   TOFU,  WORLD_FACTS_PERTURBED,  "item",   QUESTION, PERTURBED_ANSWER),
)
# fmt: on
EVAL_SETS: dict[str, EvalSet] = {s.name: s for s in EVAL_SET_TABLE}
PROBE_SETS = tuple(s.name for s in EVAL_SET_TABLE if not s.aggregated)  # eval.probes may name these


def eval_set(name: str) -> EvalSet:
    """The set called `name`; a ValueError names the known sets."""
    try:
        return EVAL_SETS[name]
    except KeyError:
        raise ValueError(f"unknown evaluation set {name!r}: expected one of {', '.join(EVAL_SETS)}") from None


def is_aggregated(name: str) -> bool:
    """Whether a set enters its group's aggregates (False for the probe sets); a ValueError for an unknown name."""
    return eval_set(name).aggregated


def counterpart(name: str, group: str) -> EvalSet | None:
    """The set of another person group with the same task (forget_qa -> holdout_qa); None for a real set."""
    spec = eval_set(name)
    if spec.group not in PERSON_GROUPS:
        return None
    return next((s for s in EVAL_SET_TABLE if s.group == group and s.kind == spec.kind), None)
