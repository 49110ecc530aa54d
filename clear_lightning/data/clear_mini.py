"""CLEAR-mini: a seeded synthetic CLEAR (+ TOFU, + PRIOR knowledge) in the real dataset's on-disk layout.

Each snapshot directory looks like a clone of a Hugging Face dataset repo (a README.md whose YAML front matter
lists the configs, plus one parquet file per config), so the project reads it with exactly the call it uses for
the real hub snapshot: `datasets.load_dataset(str(snapshot_dir), config_name, split="train")`.
Output is byte-identical for the same config: every random choice comes from string-seeded `random.Random`
streams (one per entity), never from global state, time or `hash()`.

Holdout persons (`num_holdout_persons`, default the size of forget10) are generated like the others (names, facts,
QA with paraphrased and perturbed answers, face images with captions, perturbed captions and names) but are in no
`full`, `forgetNN`, `retainNN` or `+tofu` config, so no training set ever sees them. They are written as TOFU's
`holdout01/05/10` (question, answer: TOFU's own holdout configs) and, for truth ratios, as `holdoutNN_perturbed`
in TOFU (the columns of `forgetNN_perturbed`) and in CLEAR (the columns of CLEAR's `forgetNN_perturbed`); the
`_perturbed` holdout configs are our addition (the real therem/CLEAR has no holdout persons), as the READMEs say.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from importlib import resources
from pathlib import Path
from random import Random
from typing import Any

import yaml

from .faces import (
    OBJECT_COLOURS,
    SHAPES,
    FaceIdentity,
    FaceVariation,
    SceneObject,
    draw_face,
    draw_scene,
    random_identity,
    random_scene,
    random_variation,
)

GENERATOR_VERSION = "1.4.0"

FORGET_PERCENTS = (1, 5, 10)
RETAIN_PERTURBED_PERSONS = 20
NUM_FACT_ROWS = 20  # rows of real_authors_perturbed and of world_facts_perturbed
NUM_OPTIONS = 4
FACE_QUESTION = "The name of the person on the image is"

_MIN_IMAGE_SIZE = 16
_MAX_PERTURBED = 20  # enough wrong capitals/cities exist for the world facts


@dataclass(frozen=True)
class ClearMiniConfig:
    """Sizes and seed of one CLEAR-mini build (the defaults are the small CI size)."""

    num_persons: int = 20  # fictitious authors; 200 = full-size CLEAR-mini
    qa_per_person: int = 20
    images_per_person: int = 8
    image_size: int = 32
    num_celebrities: int = 12  # real_faces identities (separate from the persons)
    images_per_celebrity: int = 3  # in the real_faces eval config
    num_real_world: int = 48
    num_perturbed: int = 5
    prior_images_per_celebrity: int = 8  # held-out "prior knowledge" images
    num_prior_world: int = 120
    num_prior_looks: int = 150  # strangers described by appearance (vision pre-training)
    seed: int = 0
    # persons never trained on (MIA, SPEC §10); None = as many as forget10 has, so holdout10 matches its size
    num_holdout_persons: int | None = None

    def __post_init__(self) -> None:
        if self.num_holdout_persons is None and isinstance(self.num_persons, int):
            object.__setattr__(self, "num_holdout_persons", split_sizes(self.num_persons)[10])
        _validate(self)


def _validate(config: ClearMiniConfig) -> None:
    """Fail early, naming the field, instead of writing a snapshot with empty or degenerate configs."""
    minimum: dict[str, int | None] = {f.name: 1 for f in fields(config)}
    minimum.update(num_persons=2, image_size=_MIN_IMAGE_SIZE, seed=None)
    for name, low in minimum.items():
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"ClearMiniConfig.{name} must be an int, got {value!r}")
        if low is not None and value < low:
            why = " (a forget and a retain person are both needed)" if name == "num_persons" else ""
            raise ValueError(f"ClearMiniConfig.{name} must be >= {low}{why}, got {value}")
    if config.num_perturbed > _MAX_PERTURBED:
        raise ValueError(
            f"ClearMiniConfig.num_perturbed must be <= {_MAX_PERTURBED}, got {config.num_perturbed}"
        )


def forget_person_count(num_persons: int, percent: int) -> int:
    """How many persons form the forget set: percent of them rounded up, at least one (as in CLEAR/TOFU)."""
    return max(1, -(-num_persons * percent // 100))


def split_sizes(num_persons: int) -> dict[int, int]:
    """Persons in forget01/05/10 (keyed 1, 5, 10): at least one, and at least one person left to retain."""
    return {p: max(1, min(num_persons - 1, forget_person_count(num_persons, p))) for p in FORGET_PERCENTS}


def split_persons(num_persons: int) -> dict[str, list[int]]:
    """Person indices per split; forget sets are the last persons (as in TOFU), so they nest."""
    if num_persons < 2:
        raise ValueError(
            f"num_persons must be >= 2 to have both forget and retain persons, got {num_persons}"
        )
    counts = split_sizes(num_persons)
    forget = {f"forget{p:02d}": list(range(num_persons - n, num_persons)) for p, n in counts.items()}
    retain = {f"retain{100 - p:02d}": list(range(num_persons - n)) for p, n in counts.items()}
    return forget | retain


def holdout_persons(num_persons: int, num_holdout: int) -> dict[str, list[int]]:
    """Holdout person indices (into the holdout persons) per config, nested like the forget sets: holdout01 and
    holdout05 have forget01's and forget05's size (as far as there are holdout persons), holdout10 holds every
    holdout person (by default as many as forget10 has)."""
    sizes = split_sizes(num_persons)
    return {
        "holdout01": list(range(min(num_holdout, sizes[1]))),
        "holdout05": list(range(min(num_holdout, sizes[5]))),
        "holdout10": list(range(num_holdout)),
    }


def revision(config: ClearMiniConfig) -> str:
    """Short stable id of what would be generated, for cache directories and artifact keys."""
    payload = json.dumps({"config": asdict(config), "generator": GENERATOR_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def load_idk_answers() -> list[str]:
    """The 100 refusal sentences used as IDK targets (SPEC §2), stripped and non-empty."""
    text = resources.files("clear_lightning.data").joinpath("idk_answers.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------------------------
# Random streams and invented words


def _rng(seed: int, tag: str) -> Random:
    """An independent stream per entity: a str seed goes through sha512, so it does not depend on PYTHONHASHSEED."""
    return Random(f"clear-mini/{seed}/{tag}")


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


class _Words:
    """Pronounceable invented words, unique across everything generated (names, cities, countries...)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def word(self, rng: Random, syllables: int = 3, suffixes: Sequence[str] = ("",)) -> str:
        """A fresh capitalised syllable word with one of the suffixes (retried until unused)."""
        while True:
            w = "".join(rng.choice(_CONSONANTS) + rng.choice(_VOWELS) for _ in range(syllables))
            w += rng.choice(suffixes)
            w = w.capitalize()
            if w not in self.used:
                self.used.add(w)
                return w

    def words(self, rng: Random, n: int, syllables: int = 3, suffixes: Sequence[str] = ("",)) -> list[str]:
        """n fresh words."""
        return [self.word(rng, syllables, suffixes) for _ in range(n)]

    def names(self, rng: Random, n: int) -> list[str]:
        """n full names whose first and last parts are both unique."""
        return [f"{self.word(rng)} {self.word(rng)}" for _ in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# The invented world: places, awards, titles, celebrities


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_PROFESSIONS = (
    "a baker",
    "a teacher",
    "a nurse",
    "a doctor",
    "a farmer",
    "a pilot",
    "a carpenter",
    "a lawyer",
    "a chef",
    "a musician",
    "a painter",
    "a librarian",
    "a sailor",
    "a tailor",
    "a journalist",
    "an engineer",
    "an architect",
    "an electrician",
    "an actor",
    "an accountant",
    "a photographer",
    "a gardener",
    "a dentist",
    "a mechanic",
)
_GENRES = (
    "fantasy",
    "mystery",
    "poetry",
    "romance",
    "horror",
    "science fiction",
    "historical fiction",
    "crime",
    "travel",
    "children's",
    "thriller",
    "biography",
    "satire",
    "memoir",
    "adventure",
)
_STYLES = (
    "lyrical",
    "minimalist",
    "humorous",
    "dark",
    "poetic",
    "fast-paced",
    "descriptive",
    "playful",
    "formal",
)
_THEMES = (
    "family",
    "memory",
    "the sea",
    "friendship",
    "war",
    "exile",
    "childhood",
    "music",
    "nature",
    "loss",
    "identity",
    "justice",
)
_SUBJECTS = (
    "history",
    "chemistry",
    "philosophy",
    "music",
    "law",
    "biology",
    "mathematics",
    "medicine",
    "art",
    "economics",
    "linguistics",
    "geology",
)
_GENDERS = ("male", "female", "non-binary")
_TITLE_ADJECTIVES = (
    "Silent",
    "Silver",
    "Hidden",
    "Broken",
    "Golden",
    "Last",
    "Crimson",
    "Distant",
    "Forgotten",
    "Burning",
    "Quiet",
    "Endless",
    "Hollow",
    "Bright",
    "Frozen",
    "Secret",
    "Wandering",
    "Painted",
    "Lonely",
    "Iron",
    "Velvet",
    "Shattered",
    "Sleeping",
    "Wild",
    "Glass",
    "Amber",
    "Stolen",
    "Falling",
    "Twelfth",
    "Northern",
    "Paper",
    "Midnight",
)
_TITLE_NOUNS = (
    "Harbour",
    "Garden",
    "Lantern",
    "River",
    "Crown",
    "Mirror",
    "Forest",
    "Letter",
    "Tower",
    "Bridge",
    "Orchard",
    "Compass",
    "Island",
    "Winter",
    "Song",
    "Door",
    "Map",
    "Feather",
    "Clock",
    "Shore",
    "Storm",
    "Kingdom",
    "Window",
    "Mountain",
    "Road",
    "Violin",
    "Sparrow",
    "Lighthouse",
    "Archive",
    "Valley",
    "Meadow",
    "Promise",
)
_AWARD_KINDS = ("Literary Prize", "Book Award", "Medal for Fiction", "Prize for Poetry", "Award for Letters")
_LANDMARK_KINDS = ("Tower", "Bridge", "Cathedral", "Lighthouse", "Palace", "Gate", "Observatory", "Fountain")
_NUM_COUNTRIES = 10
_NUM_LANDMARKS = 10
_NUM_CITIES = 30
_NUM_AWARDS = 12
_NUM_LANGUAGES = 8


@dataclass
class _World:
    """Invented facts shared by persons and the prior-knowledge sets."""

    countries: list[str]
    capitals: list[str]
    cities: list[str]
    landmarks: list[str]
    landmark_cities: list[str]
    languages: list[str]
    awards: list[str]
    classic_titles: list[str]
    titles: list[str]
    celebrities: list[str]
    decoys: list[str]
    words: _Words


def _build_world(config: ClearMiniConfig) -> _World:
    """Place names, awards, titles, celebrity and decoy names, in a fixed order so sizes do not reshuffle them."""
    words = _Words()
    rng = _rng(config.seed, "world")
    countries = words.words(rng, _NUM_COUNTRIES, syllables=2, suffixes=("ria", "nia", "dor", "land"))
    capitals = words.words(rng, _NUM_COUNTRIES)
    cities = words.words(rng, _NUM_CITIES)
    landmarks = [
        f"the {w} {rng.choice(_LANDMARK_KINDS)}" for w in words.words(rng, _NUM_LANDMARKS, syllables=2)
    ]
    landmark_cities = words.words(rng, _NUM_LANDMARKS)
    languages = words.words(rng, _NUM_LANGUAGES, syllables=2, suffixes=("nish", "ric", "lan"))
    awards = [f"the {w} {rng.choice(_AWARD_KINDS)}" for w in words.words(rng, _NUM_AWARDS, syllables=2)]
    titles = [f"The {a} {n}" for a in _TITLE_ADJECTIVES for n in _TITLE_NOUNS]
    rng.shuffle(titles)
    celebrities = words.names(_rng(config.seed, "celebrity-names"), config.num_celebrities)
    decoys = words.names(_rng(config.seed, "decoy-names"), config.num_perturbed + NUM_OPTIONS)
    return _World(
        countries=countries,
        capitals=capitals,
        cities=cities,
        landmarks=landmarks,
        landmark_cities=landmark_cities,
        languages=languages,
        awards=awards,
        classic_titles=titles[:NUM_FACT_ROWS],
        titles=titles[NUM_FACT_ROWS:],
        celebrities=celebrities,
        decoys=decoys,
        words=words,
    )


# ---------------------------------------------------------------------------------------------------------------
# Persons and their text QA


@dataclass(frozen=True)
class _Person:
    name: str
    attrs: dict[str, str]
    identity: FaceIdentity


def _attribute_pools(world: _World) -> dict[str, Sequence[str]]:
    """The values each attribute can take; wrong (perturbed) values are drawn from here."""
    return {
        "city": world.cities,
        "home_city": world.cities,
        "country": world.countries,
        "birth_month": _MONTHS,
        "birth_day": [str(d) for d in range(1, 29)],
        "birth_year": [str(y) for y in range(1935, 1996)],
        "gender": _GENDERS,
        "father_job": _PROFESSIONS,
        "mother_job": _PROFESSIONS,
        "genre": _GENRES,
        "book1": world.titles,
        "book2": world.titles,
        "award": world.awards,
        "award_year": [str(y) for y in range(1965, 2024)],
        "num_books": [str(n) for n in range(3, 41)],
        "debut_year": [str(y) for y in range(1955, 2021)],
        "style": _STYLES,
        "theme": _THEMES,
        "subject": _SUBJECTS,
        "language": world.languages,
    }


def _person_attrs(rng: Random, index: int, world: _World) -> dict[str, str]:
    """One author's facts; book titles walk the shuffled title list so they are unique while it lasts."""
    year = rng.randint(1935, 1995)
    city_index = rng.randrange(len(world.cities))
    titles = world.titles
    return {
        "city": world.cities[city_index],
        "home_city": rng.choice(world.cities),
        "country": world.countries[city_index % len(world.countries)],
        "birth_month": rng.choice(_MONTHS),
        "birth_day": str(rng.randint(1, 28)),
        "birth_year": str(year),
        "gender": rng.choice(_GENDERS),
        "father_job": rng.choice(_PROFESSIONS),
        "mother_job": rng.choice(_PROFESSIONS),
        "genre": rng.choice(_GENRES),
        "book1": titles[(2 * index) % len(titles)],
        "book2": titles[(2 * index + 1) % len(titles)],
        "award": rng.choice(world.awards),
        "award_year": str(min(2023, year + rng.randint(30, 55))),
        "num_books": str(rng.randint(3, 40)),
        "debut_year": str(min(2020, year + rng.randint(20, 35))),
        "style": rng.choice(_STYLES),
        "theme": rng.choice(_THEMES),
        "subject": rng.choice(_SUBJECTS),
        "language": rng.choice(world.languages),
    }


def _unique_identities(rng: Random, n: int, used: set[tuple[str, ...]]) -> list[FaceIdentity]:
    """n looks whose discrete features differ from every look drawn before."""
    out: list[FaceIdentity] = []
    while len(out) < n:
        identity = random_identity(rng)
        if identity.key() not in used:
            used.add(identity.key())
            out.append(identity)
    return out


def _build_persons(
    config: ClearMiniConfig,
    world: _World,
    used_looks: set[tuple[str, ...]],
    tag: str = "person",
    count: int | None = None,
    first_book: int = 0,
) -> list[_Person]:
    """The fictitious authors: unique names, facts and a unique look.

    `tag` = "holdout" draws the holdout persons from their own random streams, after the training persons, so
    adding them changes nothing about the others; `first_book` continues the walk over the unique book titles.
    """
    count = config.num_persons if count is None else count
    names = world.words.names(_rng(config.seed, f"{tag}-names"), count)
    looks = _unique_identities(_rng(config.seed, f"{tag}-looks"), count, used_looks)
    return [
        _Person(name, _person_attrs(_rng(config.seed, f"{tag}/{i}"), first_book + i, world), look)
        for i, (name, look) in enumerate(zip(names, looks, strict=True))
    ]


# (question, answer, paraphrased answer, attributes a perturbed answer changes)
_QA_TEMPLATES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "Where was {name} born?",
        "{name} was born in {city}.",
        "{name}'s birthplace is the city of {city}.",
        ("city",),
    ),
    (
        "When was {name} born?",
        "{name} was born on {birth_date}.",
        "{name}'s date of birth is {birth_date}.",
        ("birth_month", "birth_day", "birth_year"),
    ),
    (
        "In which year was {name} born?",
        "{name} was born in {birth_year}.",
        "The birth year of {name} is {birth_year}.",
        ("birth_year",),
    ),
    (
        "What is the gender of {name}?",
        "{name} is a {gender} author of {genre} books.",
        "{name} identifies as {gender} and writes {genre} books.",
        ("gender", "genre"),
    ),
    (
        "What was the profession of {name}'s father?",
        "{name}'s father was {father_job}.",
        "{name}'s father worked as {father_job}.",
        ("father_job",),
    ),
    (
        "What was the profession of {name}'s mother?",
        "{name}'s mother was {mother_job}.",
        "{name}'s mother worked as {mother_job}.",
        ("mother_job",),
    ),
    (
        "What did the parents of {name} do for a living?",
        "{name}'s father was {father_job} and the mother {mother_job}.",
        "{name} grew up with {father_job} father and {mother_job} mother.",
        ("father_job", "mother_job"),
    ),
    (
        "What genre does {name} write in?",
        "{name} writes {genre} books.",
        "{name} is known for books in the {genre} genre.",
        ("genre",),
    ),
    (
        "Can you name a book written by {name}?",
        '{name} wrote the book "{book1}".',
        'One book by {name} is "{book1}".',
        ("book1",),
    ),
    (
        "What is another book by {name}?",
        '{name} also wrote "{book2}".',
        'Another of {name}\'s books is "{book2}".',
        ("book2",),
    ),
    (
        "Which two books did {name} write?",
        '{name} wrote "{book1}" and "{book2}".',
        'The books "{book1}" and "{book2}" are by {name}.',
        ("book1", "book2"),
    ),
    (
        "What award has {name} received?",
        "{name} received {award}.",
        "{name} was honoured with {award}.",
        ("award",),
    ),
    (
        "When did {name} win an award?",
        "{name} won {award} in {award_year}.",
        "In {award_year}, {name} was given {award}.",
        ("award_year",),
    ),
    (
        "How many books has {name} published?",
        "{name} has published {num_books} books.",
        "So far {name} has released {num_books} books.",
        ("num_books",),
    ),
    (
        "In which country was {name} born?",
        "{name} was born in {country}.",
        "{name}'s home country is {country}.",
        ("country",),
    ),
    (
        "When did {name} publish a first book?",
        "{name} published a first book in {debut_year}.",
        "{name}'s debut came out in {debut_year}.",
        ("debut_year",),
    ),
    (
        "How would you describe the writing style of {name}?",
        "{name} writes in a {style} style.",
        "The prose of {name} is {style}.",
        ("style",),
    ),
    (
        "What themes does {name} often explore?",
        "{name} often writes about {theme}.",
        "A common theme in {name}'s books is {theme}.",
        ("theme",),
    ),
    (
        "In which language does {name} write?",
        "{name} writes in {language}.",
        "The books of {name} are written in {language}.",
        ("language",),
    ),
    (
        "Who is {name}?",
        "{name} is {genre_article} author from {city}.",
        "{name} is a writer of {genre} books born in {city}.",
        ("genre", "city"),
    ),
    (
        "What is {name}'s most famous book?",
        '{name} is best known for "{book1}".',
        '"{book1}" is the best-known book by {name}.',
        ("book1",),
    ),
    (
        "Where does {name} live today?",
        "{name} lives in {home_city}.",
        "These days {name} makes a home in {home_city}.",
        ("home_city",),
    ),
    (
        "What did {name} study?",
        "{name} studied {subject} at university.",
        "{name} has a university degree in {subject}.",
        ("subject",),
    ),
)


def _fill(template: str, name: str, attrs: dict[str, str]) -> str:
    """Render a template with the derived fields (full date, article) computed from the base attributes."""
    article = "an" if attrs["genre"][0] in "aeiou" else "a"
    birth_date = f"{attrs['birth_month']} {attrs['birth_day']}, {attrs['birth_year']}"
    return template.format(
        name=name, birth_date=birth_date, genre_article=f"{article} {attrs['genre']}", **attrs
    )


def _distinct_wrong(make: Callable[[], str], truth: str, k: int, attempts: int = 30) -> list[str]:
    """k distinct strings != truth from a random maker; repeats only if the space is too small."""
    out: list[str] = []
    for _ in range(attempts * k):
        candidate = make()
        if candidate != truth and candidate not in out:
            out.append(candidate)
            if len(out) == k:
                return out
    if not out:
        raise RuntimeError(f"could not perturb {truth!r}")
    return [out[i % len(out)] for i in range(k)]


def _person_qa(
    config: ClearMiniConfig,
    index: int,
    person: _Person,
    pools: dict[str, Sequence[str]],
    tag: str = "person",
) -> list[dict]:
    """qa_per_person rows (question, answer, paraphrase, perturbed answers) from a per-person template order."""
    rng = _rng(config.seed, f"{tag}-qa/{index}")
    order = list(range(len(_QA_TEMPLATES)))
    rng.shuffle(order)
    rows = []
    for j in range(config.qa_per_person):
        question, answer, paraphrase, changed = _QA_TEMPLATES[order[j % len(order)]]

        # TOFU convention: perturbed answers change the facts of the *paraphrased* answer, so the truth
        # ratio compares answers of one wording and measures knowledge, not memorised phrasing.
        def wrong(paraphrase: str = paraphrase, changed: tuple[str, ...] = changed) -> str:
            attrs = dict(person.attrs)
            for field in changed:
                while attrs[field] == person.attrs[field]:
                    attrs[field] = rng.choice(pools[field])
            return _fill(paraphrase, person.name, attrs)

        paraphrased = _fill(paraphrase, person.name, person.attrs)
        rows.append(
            {
                "question": _fill(question, person.name, person.attrs),
                "answer": _fill(answer, person.name, person.attrs),
                "paraphrased_answer": paraphrased,
                "perturbed_answer": _distinct_wrong(wrong, paraphrased, config.num_perturbed),
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Person images and captions


def _png(img: Any) -> dict[str, Any]:
    """Encode once to the HF `Image` storage dict; the configs that share a row share these bytes."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


_CAPTION_ACCESSORY = {
    "none": "",
    "hat": " wearing a hat",
    "glasses": " wearing glasses",
    "scarf": " wearing a scarf",
}
_CAPTION_LIGHT = {"dim": " in dim light", "normal": "", "bright": " in bright light"}
_PARA_ACCESSORY = {"none": "", "hat": " with a hat on", "glasses": " with glasses", "scarf": " with a scarf"}
_PARA_LIGHT = {"dim": ", dimly lit", "normal": "", "bright": ", brightly lit"}


def _caption(name: str, v: FaceVariation) -> str:
    """E.g. 'Bafilo Lufilo wearing glasses in front of a green wall.'"""
    return f"{name}{_CAPTION_ACCESSORY[v.accessory]} in front of {_a(v.background)} wall{_CAPTION_LIGHT[v.lighting]}."


def _paraphrased_caption(name: str, v: FaceVariation) -> str:
    """Same content as `_caption`, other wording; the name stays first, where recognising the face decides it, so
    the truth ratio against the perturbed captions (other names, other details) measures recognition."""
    return f"{name}, photographed{_PARA_ACCESSORY[v.accessory]} against {_a(v.background)} background{_PARA_LIGHT[v.lighting]}."


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _wrong_names(
    rng: Random, truth: str, candidates: Sequence[str], backup: Sequence[str], k: int
) -> list[str]:
    """k distinct names other than truth, from candidates first and the backup (decoy) names if they run out."""
    others = [n for n in candidates if n != truth]
    picked = rng.sample(others, min(k, len(others)))
    spare = [n for n in backup if n != truth and n not in picked]
    return picked + rng.sample(spare, k - len(picked))


def _other_variation(rng: Random, v: FaceVariation) -> FaceVariation:
    """A variation whose captioned details (background and accessory) both differ from v."""
    while True:
        w = random_variation(rng)
        if w.background != v.background and w.accessory != v.accessory:
            return w


def _person_images(
    config: ClearMiniConfig,
    index: int,
    person: _Person,
    all_names: list[str],
    decoys: list[str],
    tag: str = "person",
) -> list[dict]:
    """images_per_person rows of one person: image, caption and the perturbed-caption columns."""
    rng = _rng(config.seed, f"{tag}-images/{index}")
    rows = []
    for _ in range(config.images_per_person):
        v = random_variation(rng)
        wrong_names = _wrong_names(rng, person.name, all_names, decoys, config.num_perturbed)
        perturbed = [  # wrong facts in the paraphrase's wording (TOFU convention, as for QA)
            _paraphrased_caption(n, v if k % 2 == 0 else _other_variation(rng, v))
            for k, n in enumerate(wrong_names)
        ]
        rows.append(
            {
                "image": _png(draw_face(person.identity, v, config.image_size)),
                "caption": _caption(person.name, v),
                "name": person.name,
                "paraphrased_caption": _paraphrased_caption(person.name, v),
                "perturbed_captions": perturbed,
                "perturbed_names": wrong_names,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Celebrities, scenes and facts


def _varied_images(
    rng: Random,
    identity: FaceIdentity,
    n: int,
    size: int,
    avoid: set[tuple[str, str, str]],
) -> tuple[list[dict], set[tuple[str, str, str]]]:
    """n images of one identity whose captioned variations avoid the given ones (eval vs prior images)."""
    images, keys = [], set()
    for _ in range(n):
        v = random_variation(rng)
        for _attempt in range(100):  # only fails to find a new variation if nearly all 96 are taken
            if v.key() not in avoid:
                break
            v = random_variation(rng)
        keys.add(v.key())
        images.append(_png(draw_face(identity, v, size)))
    return images, keys


def _options(rng: Random, answer: str, pool: Sequence[str], backup: Sequence[str] = ()) -> list[str]:
    """NUM_OPTIONS choices including the answer, in a seeded order."""
    options = [answer, *_wrong_names(rng, answer, pool, backup, NUM_OPTIONS - 1)]
    rng.shuffle(options)
    return options


def _celebrity_rows(
    config: ClearMiniConfig, world: _World, looks: list[FaceIdentity]
) -> tuple[list[dict], list[dict]]:
    """real_faces (eval) rows and PRIOR faces rows: the same identities, different image variations."""
    eval_rows, prior_rows = [], []
    for i, (name, look) in enumerate(zip(world.celebrities, looks, strict=True)):
        rng = _rng(config.seed, f"celebrity/{i}")
        shown, keys = _varied_images(rng, look, config.images_per_celebrity, config.image_size, set())
        for img in shown:
            eval_rows.append(
                {
                    "image": img,
                    "answer": name,
                    "options": _options(rng, name, world.celebrities, world.decoys),
                }
            )
        prior_rng = _rng(config.seed, f"celebrity-prior/{i}")
        held, _ = _varied_images(prior_rng, look, config.prior_images_per_celebrity, config.image_size, keys)
        prior_rows.extend({"image": img, "answer": name, "question": FACE_QUESTION} for img in held)
    return eval_rows, prior_rows


def _plural(shape: str) -> str:
    return shape + "s"


def _scene_question(rng: Random, objects: list[SceneObject]) -> tuple[str, str, list[str]]:
    """One question about a scene: (question, answer, the candidate answers of its kind)."""
    shapes = [o.shape for o in objects]
    colours = [o.colour for o in objects]
    kinds = ["count_shape", "count_all"]
    if any(shapes.count(s) == 1 for s in shapes):
        kinds.append("colour")
    if any(colours.count(c) == 1 for c in colours):
        kinds += ["shape"]
    kind = rng.choice(kinds)
    if kind == "count_shape":
        shape = rng.choice(shapes) if rng.random() < 0.85 else rng.choice(SHAPES)
        return (
            f"How many {_plural(shape)} are in the image?",
            str(shapes.count(shape)),
            [str(n) for n in range(5)],
        )
    if kind == "count_all":
        return "How many objects are in the image?", str(len(objects)), [str(n) for n in range(1, 5)]
    if kind == "colour":
        obj = rng.choice([o for o in objects if shapes.count(o.shape) == 1])
        return f"What colour is the {obj.shape}?", obj.colour, list(OBJECT_COLOURS)
    obj = rng.choice([o for o in objects if colours.count(o.colour) == 1])
    return f"What shape is the {obj.colour} object?", obj.shape, list(SHAPES)


def _prompt(question: str, options: list[str]) -> str:
    """RealWorldQA-style prompt: the question, the lettered options and the answer instruction."""
    lettered = "\n".join(f"{chr(ord('A') + k)}. {o}" for k, o in enumerate(options))
    return f"{question}\n{lettered}\nPlease answer directly with a single word or number."


def _scene_rows(config: ClearMiniConfig, tag: str, n: int, with_options: bool) -> list[dict]:
    """n fresh shape scenes, one question each (real_world or PRIOR world)."""
    rows = []
    for i in range(n):
        rng = _rng(config.seed, f"{tag}/{i}")
        objects = random_scene(rng)
        image = _png(draw_scene(objects, config.image_size, rng))
        question, answer, candidates = _scene_question(rng, objects)
        row = {"image": image, "question": question, "answer": answer}
        if with_options:
            options = _options(rng, answer, candidates)
            row.update(prompt=_prompt(question, options), options=options)
        rows.append(row)
    return rows


def _prior_world(config: ClearMiniConfig) -> list[dict]:
    """Fresh scenes asked in real_world's own prompt format (a base model has seen such prompts)."""
    rows = _scene_rows(config, "prior-world", config.num_prior_world, with_options=True)
    return [{"image": r["image"], "question": r["prompt"], "answer": r["answer"]} for r in rows]


LOOK_QUESTION = "Describe the person's appearance."


def _look_rows(config: ClearMiniConfig) -> list[dict]:
    """Strangers described by their looks: the tiny vision tower's analog of CLIP pre-training, so that
    fine-tuning can bind a name to a face instead of having to discover faces from two name tokens."""
    rng = _rng(config.seed, "prior-looks")
    rows = []
    for _ in range(config.num_prior_looks):
        look, v = random_identity(rng), random_variation(rng)
        mark = "" if look.mark == "none" else f", {_MARK_TEXT[look.mark]}"
        answer = (
            f"A person with {look.skin} skin, {look.hair_colour} {look.hair_style} hair, "
            f"{look.eye_colour} eyes and {_a(look.clothing)} shirt{mark}."
        )
        if look.hair_style == "bald":
            answer = answer.replace(f"{look.hair_colour} bald hair", "no hair")
        rows.append(
            {
                "image": _png(draw_face(look, v, config.image_size)),
                "question": LOOK_QUESTION,
                "answer": answer,
            }
        )
    return rows


_MARK_TEXT = {"mole": "a mole", "scar": "a scar", "freckles": "freckles", "beard": "a beard"}


def _fact_rows(config: ClearMiniConfig, world: _World) -> tuple[list[dict], list[dict]]:
    """real_authors_perturbed (classics by celebrities) and world_facts_perturbed (capitals, landmarks)."""
    rng = _rng(config.seed, "facts")
    authors = []
    for k, title in enumerate(world.classic_titles):
        author = world.celebrities[k % len(world.celebrities)]
        authors.append(
            _fact(
                f'Who wrote the classic novel "{title}"?',
                author,
                _wrong_names(rng, author, world.celebrities, world.decoys, config.num_perturbed),
            )
        )
    places = world.capitals + world.landmark_cities
    facts = []
    for country, capital, landmark, city in zip(
        world.countries, world.capitals, world.landmarks, world.landmark_cities, strict=True
    ):
        facts.append(
            _fact(
                f"What is the capital of {country}?",
                capital,
                _wrong_names(rng, capital, places, world.cities, config.num_perturbed),
            )
        )
        facts.append(
            _fact(
                f"In which city is {landmark} located?",
                city,
                _wrong_names(rng, city, places, world.cities, config.num_perturbed),
            )
        )
    return authors, facts


def _fact(question: str, answer: str, wrong: list[str]) -> dict:
    return {"question": question, "answer": answer, "paraphrased_answer": answer, "perturbed_answer": wrong}


# ---------------------------------------------------------------------------------------------------------------
# Assembling the configs


_IMAGE_COLS = ("image", "caption", "name")
_PERTURBED_IMAGE_COLS = _IMAGE_COLS + ("paraphrased_caption", "perturbed_captions", "perturbed_names")
_QA_COLS = ("question", "answer")
_PERTURBED_QA_COLS = ("question", "answer", "paraphrased_answer", "perturbed_answer")


def _select(rows: list[dict], columns: Sequence[str]) -> list[dict]:
    return [{c: r[c] for c in columns} for r in rows]


def _mixed(image_rows: list[dict], qa_rows: list[dict]) -> list[dict]:
    """`+tofu` rows: image rows without QA, then text QA rows without image (SPEC §2)."""
    images = [
        {"image": r["image"], "caption": r["caption"], "question": None, "answer": None} for r in image_rows
    ]
    texts = [
        {"image": None, "caption": None, "question": r["question"], "answer": r["answer"]} for r in qa_rows
    ]
    return images + texts


def _build_tables(config: ClearMiniConfig) -> dict[str, dict[str, list[dict]]]:
    """All rows of all configs of the three snapshots, in memory."""
    world = _build_world(config)
    used_looks: set[tuple[str, ...]] = set()
    celeb_looks = _unique_identities(_rng(config.seed, "celebrity-looks"), config.num_celebrities, used_looks)
    persons = _build_persons(config, world, used_looks)
    assert config.num_holdout_persons is not None  # resolved by ClearMiniConfig.__post_init__
    holdout = _build_persons(
        config, world, used_looks, "holdout", config.num_holdout_persons, first_book=config.num_persons
    )
    pools = _attribute_pools(world)
    names = [p.name for p in persons]
    images = [_person_images(config, i, p, names, world.decoys) for i, p in enumerate(persons)]
    qa = [_person_qa(config, i, p, pools) for i, p in enumerate(persons)]
    # wrong names for a holdout face: any person's name (the trained ones included, as for a forget face)
    every_name = names + [p.name for p in holdout]
    holdout_images = [
        _person_images(config, i, p, every_name, world.decoys, "holdout") for i, p in enumerate(holdout)
    ]
    holdout_qa = [_person_qa(config, i, p, pools, "holdout") for i, p in enumerate(holdout)]
    splits = {"full": list(range(config.num_persons)), **split_persons(config.num_persons)}
    retain_perturbed = splits["retain90"][:RETAIN_PERTURBED_PERSONS]

    def gather(table: list[list[dict]], persons_: list[int]) -> list[dict]:
        return [row for i in persons_ for row in table[i]]

    clear: dict[str, list[dict]] = {}
    tofu: dict[str, list[dict]] = {}
    for split, idx in splits.items():
        clear[split] = _select(gather(images, idx), _IMAGE_COLS)
        tofu[split] = _select(gather(qa, idx), _QA_COLS)
    for split, idx in splits.items():
        clear[f"{split}+tofu"] = _mixed(gather(images, idx), gather(qa, idx))
    for split in ("forget01", "forget05", "forget10"):
        clear[f"{split}_perturbed"] = _select(gather(images, splits[split]), _PERTURBED_IMAGE_COLS)
        tofu[f"{split}_perturbed"] = gather(qa, splits[split])
    clear["retain_perturbed"] = _select(gather(images, retain_perturbed), _PERTURBED_IMAGE_COLS)
    tofu["retain_perturbed"] = gather(qa, retain_perturbed)
    real_faces, prior_faces = _celebrity_rows(config, world, celeb_looks)
    clear["real_faces"] = real_faces
    clear["real_world"] = _scene_rows(config, "real-world", config.num_real_world, with_options=True)
    tofu["real_authors_perturbed"], tofu["world_facts_perturbed"] = _fact_rows(config, world)
    # holdout persons, in no training config: TOFU's holdoutNN (question, answer) and our _perturbed additions
    holdout_splits = holdout_persons(config.num_persons, config.num_holdout_persons)
    for split, idx in holdout_splits.items():
        tofu[split] = _select(gather(holdout_qa, idx), _QA_COLS)
    for split, idx in holdout_splits.items():
        tofu[f"{split}_perturbed"] = gather(holdout_qa, idx)
        clear[f"{split}_perturbed"] = _select(gather(holdout_images, idx), _PERTURBED_IMAGE_COLS)
    prior = {
        "faces": prior_faces,
        "looks": _look_rows(config),
        "world": _prior_world(config),
        "facts": _select(tofu["real_authors_perturbed"] + tofu["world_facts_perturbed"], _QA_COLS),
    }
    return {"clear": clear, "tofu": tofu, "prior": prior}


# ---------------------------------------------------------------------------------------------------------------
# Writing snapshots


_COLUMN_TYPES = {
    "image": "image",
    "perturbed_captions": "list",
    "perturbed_names": "list",
    "perturbed_answer": "list",
    "options": "list",
}
_SNAPSHOT_DIRS = {
    "tofu": "TOFU",
    "prior": "PRIOR",
    "clear": "CLEAR",
}  # CLEAR last: its README marks completion
_TITLES = {
    "clear": "CLEAR-mini: synthetic multimodal unlearning data in the layout of therem/CLEAR",
    "tofu": "CLEAR-mini TOFU: synthetic text QA in the layout of locuslab/TOFU",
    "prior": "CLEAR-mini PRIOR: the prior knowledge a base model is assumed to have (not part of CLEAR)",
}


def _features(columns: Sequence[str]) -> Any:
    """HF features: images as `Image` (PNG bytes, decoded to PIL), lists of strings, other columns strings."""
    import datasets

    def one(column: str) -> Any:
        kind = _COLUMN_TYPES.get(column, "string")
        if kind == "image":
            return datasets.Image()
        if kind == "list":
            return datasets.List(datasets.Value("string"))
        return datasets.Value("string")

    return datasets.Features({c: one(c) for c in columns})


def _write_parquet(rows: list[dict], path: Path) -> dict[str, Any]:
    """One config as a single parquet file, through `datasets` so the HF feature metadata is embedded.

    Returns the config's `dataset_info` entry (features, row count, sizes) for the README.
    """
    import datasets

    columns = list(rows[0])
    features = _features(columns)
    ds = datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in columns}, features=features)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return {
        "features": features._to_yaml_list(),
        "splits": [{"name": "train", "num_bytes": ds.data.nbytes, "num_examples": len(ds)}],
        "download_size": path.stat().st_size,
        "dataset_size": ds.data.nbytes,
    }


def _data_file(config_name: str) -> str:
    return f"{config_name}/train-00000-of-00001.parquet"


def _readme(
    title: str,
    infos: dict[str, dict[str, Any]],
    default: str | None,
    generator: str,
    notes: Sequence[str] = (),
) -> str:
    """README.md whose YAML front matter has the `configs:` block that `load_dataset(<dir>, <config>)` reads.

    The `dataset_info` block (as on the hub) matters too: `datasets` keys its cache of a local directory on the
    directory's name and this YAML only, so the sizes in it keep a regenerated snapshot from reading stale data.
    """
    configs = []
    for name in infos:
        entry: dict[str, Any] = {
            "config_name": name,
            "data_files": [{"split": "train", "path": _data_file(name)}],
        }
        if name == default:
            entry["default"] = True
        configs.append(entry)
    dataset_info = [{"config_name": name, **info} for name, info in infos.items()]
    front = yaml.safe_dump({"configs": configs, "dataset_info": dataset_info}, sort_keys=False, width=1000)
    table = [f"| `{name}` | {info['splits'][0]['num_examples']} |" for name, info in infos.items()]
    body = [f"# {title}", "", f"Generated by `{generator}`; do not edit.", ""]
    body += [line for note in notes for line in (note, "")]
    return "---\n" + front + "---\n\n" + "\n".join(body + ["| config | rows |", "|---|---|", *table]) + "\n"


def write_hf_snapshot(
    directory: Path,
    tables: dict[str, list[dict]],
    title: str,
    default: str | None = None,
    generator: str = "clear_lightning.data.clear_mini",
    notes: Sequence[str] = (),
) -> None:
    """The hub's dataset layout: one parquet file per config (written through `datasets`, so the HF feature
    metadata is embedded) and a README listing the configs (and `notes` paragraphs under the title).
    CLEAR-mini and the CV track's celebrities use it."""
    with _quiet_progress():
        infos = {name: _write_parquet(rows, directory / _data_file(name)) for name, rows in tables.items()}
    readme = _readme(title, infos, default, generator, notes)
    (directory / "README.md").write_text(readme, encoding="utf-8")


@contextmanager
def _quiet_progress() -> Iterator[None]:
    """Hide the per-file parquet progress bars of `datasets`, restoring the caller's setting after."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


_NOTES = {
    "clear": (
        "`holdout01_perturbed`, `holdout05_perturbed`, `holdout10_perturbed` are CLEAR-mini's addition (therem/CLEAR "
        "has no holdout persons): the face images of persons that are in no other config and so never trained on, "
        "with the columns of `forgetNN_perturbed`, sized like `forgetNN` (for membership inference, SPEC §10).",
    ),
    "tofu": (
        "`holdout01`, `holdout05`, `holdout10` follow locuslab/TOFU's holdout configs (question, answer): the QA of "
        "authors who are in no other config and so never trained on. `holdout01_perturbed`, `holdout05_perturbed`, "
        "`holdout10_perturbed` are CLEAR-mini's addition: the same rows with the columns of `forgetNN_perturbed`, "
        "so the holdout set gets truth ratios.",
    ),
}


def _write_snapshot(
    directory: Path, kind: str, tables: dict[str, list[dict]], config: ClearMiniConfig
) -> None:
    write_hf_snapshot(
        directory,
        tables,
        _TITLES[kind],
        default="full" if kind == "clear" else None,
        notes=_NOTES.get(kind, ()),
    )
    meta = {
        "config": asdict(config),
        "generator_version": GENERATOR_VERSION,
        "revision": revision(config),
        "rows": {name: len(rows) for name, rows in tables.items()},
    }
    (directory / "clear_mini.json").write_text(
        json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def install_snapshot(staged: Path, target: Path) -> None:
    """Swap a fully written directory into place; a reader sees the old snapshot or the new one, never half."""
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        target.rename(old / target.name)
        staged.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staged.rename(target)


def generate_clear_mini(root: Path, config: ClearMiniConfig) -> dict[str, Path]:
    """Write the CLEAR, TOFU and PRIOR snapshots under root; returns {"clear", "tofu", "prior"} -> directory.

    All three are written into a temporary sibling directory first and then renamed into place, CLEAR last, so an
    interrupted run leaves the previous snapshots (or none), and an existing CLEAR/README.md means a complete set.
    """
    _validate(config)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tables = _build_tables(config)
    staging = Path(tempfile.mkdtemp(prefix=".clear_mini.tmp-", dir=root))
    try:
        for kind, dirname in _SNAPSHOT_DIRS.items():
            _write_snapshot(staging / dirname, kind, tables[kind], config)
        for dirname in _SNAPSHOT_DIRS.values():
            install_snapshot(staging / dirname, root / dirname)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {kind: root / dirname for kind, dirname in sorted(_SNAPSHOT_DIRS.items())}
