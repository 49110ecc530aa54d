"""CLEAR-mini's invented world and its persons: seeded random streams, invented words, places, awards, titles,
celebrity names, and the fictitious authors (names, facts and a unique face each).

Every random choice comes from a string-seeded `random.Random` stream per entity (`stream`), never from global
state, time or `hash()`, so the same config gives the same world.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import TYPE_CHECKING

from .faces import FaceIdentity, random_identity
from .mini_vocabulary import (
    AWARD_KINDS,
    GENDERS,
    GENRES,
    LANDMARK_KINDS,
    MONTHS,
    PROFESSIONS,
    STYLES,
    SUBJECTS,
    THEMES,
    TITLE_ADJECTIVES,
    TITLE_NOUNS,
)

if TYPE_CHECKING:
    from .mini_config import ClearMiniConfig

NUM_FACT_ROWS = 20  # rows of real_authors_perturbed and of world_facts_perturbed
NUM_OPTIONS = 4  # choices of a real_faces / real_world question

_NUM_COUNTRIES = 10
_NUM_LANDMARKS = 10
_NUM_CITIES = 30
_NUM_AWARDS = 12
_NUM_LANGUAGES = 8


def stream(seed: int, tag: str) -> Random:
    """An independent stream per entity: a str seed goes through sha512, so it does not depend on PYTHONHASHSEED."""
    return Random(f"clear-mini/{seed}/{tag}")


_CONSONANTS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


class Words:
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


@dataclass
class World:
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
    words: Words


def build_world(config: ClearMiniConfig) -> World:
    """Place names, awards, titles, celebrity and decoy names, in a fixed order so sizes do not reshuffle them."""
    words = Words()
    rng = stream(config.seed, "world")
    countries = words.words(rng, _NUM_COUNTRIES, syllables=2, suffixes=("ria", "nia", "dor", "land"))
    capitals = words.words(rng, _NUM_COUNTRIES)
    cities = words.words(rng, _NUM_CITIES)
    landmarks = [
        f"the {w} {rng.choice(LANDMARK_KINDS)}" for w in words.words(rng, _NUM_LANDMARKS, syllables=2)
    ]
    landmark_cities = words.words(rng, _NUM_LANDMARKS)
    languages = words.words(rng, _NUM_LANGUAGES, syllables=2, suffixes=("nish", "ric", "lan"))
    awards = [f"the {w} {rng.choice(AWARD_KINDS)}" for w in words.words(rng, _NUM_AWARDS, syllables=2)]
    titles = [f"The {a} {n}" for a in TITLE_ADJECTIVES for n in TITLE_NOUNS]
    rng.shuffle(titles)
    celebrities = words.names(stream(config.seed, "celebrity-names"), config.num_celebrities)
    decoys = words.names(stream(config.seed, "decoy-names"), config.num_perturbed + NUM_OPTIONS)
    return World(
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


@dataclass(frozen=True)
class Person:
    """A fictitious author: a unique name, facts (`attrs`) and a unique face."""

    name: str
    attrs: dict[str, str]
    identity: FaceIdentity


def attribute_pools(world: World) -> dict[str, Sequence[str]]:
    """The values each attribute can take; wrong (perturbed) values are drawn from here."""
    return {
        "city": world.cities,
        "home_city": world.cities,
        "country": world.countries,
        "birth_month": MONTHS,
        "birth_day": [str(d) for d in range(1, 29)],
        "birth_year": [str(y) for y in range(1935, 1996)],
        "gender": GENDERS,
        "father_job": PROFESSIONS,
        "mother_job": PROFESSIONS,
        "genre": GENRES,
        "book1": world.titles,
        "book2": world.titles,
        "award": world.awards,
        "award_year": [str(y) for y in range(1965, 2024)],
        "num_books": [str(n) for n in range(3, 41)],
        "debut_year": [str(y) for y in range(1955, 2021)],
        "style": STYLES,
        "theme": THEMES,
        "subject": SUBJECTS,
        "language": world.languages,
    }


def _person_attrs(rng: Random, index: int, world: World) -> dict[str, str]:
    """One author's facts; book titles walk the shuffled title list so they are unique while it lasts."""
    year = rng.randint(1935, 1995)
    city_index = rng.randrange(len(world.cities))
    titles = world.titles
    return {
        "city": world.cities[city_index],
        "home_city": rng.choice(world.cities),
        "country": world.countries[city_index % len(world.countries)],
        "birth_month": rng.choice(MONTHS),
        "birth_day": str(rng.randint(1, 28)),
        "birth_year": str(year),
        "gender": rng.choice(GENDERS),
        "father_job": rng.choice(PROFESSIONS),
        "mother_job": rng.choice(PROFESSIONS),
        "genre": rng.choice(GENRES),
        "book1": titles[(2 * index) % len(titles)],
        "book2": titles[(2 * index + 1) % len(titles)],
        "award": rng.choice(world.awards),
        "award_year": str(min(2023, year + rng.randint(30, 55))),
        "num_books": str(rng.randint(3, 40)),
        "debut_year": str(min(2020, year + rng.randint(20, 35))),
        "style": rng.choice(STYLES),
        "theme": rng.choice(THEMES),
        "subject": rng.choice(SUBJECTS),
        "language": rng.choice(world.languages),
    }


def unique_identities(rng: Random, n: int, used: set[tuple[str, ...]]) -> list[FaceIdentity]:
    """n looks whose discrete features differ from every look drawn before."""
    out: list[FaceIdentity] = []
    while len(out) < n:
        identity = random_identity(rng)
        if identity.key() not in used:
            used.add(identity.key())
            out.append(identity)
    return out


def build_persons(
    config: ClearMiniConfig,
    world: World,
    used_looks: set[tuple[str, ...]],
    tag: str = "person",
    count: int | None = None,
    first_book: int = 0,
) -> list[Person]:
    """The fictitious authors: unique names, facts and a unique look.

    `tag` = "holdout" draws the holdout persons from their own random streams, after the training persons, so
    adding them changes nothing about the others; `first_book` continues the walk over the unique book titles.
    """
    count = config.num_persons if count is None else count
    names = world.words.names(stream(config.seed, f"{tag}-names"), count)
    looks = unique_identities(stream(config.seed, f"{tag}-looks"), count, used_looks)
    return [
        Person(name, _person_attrs(stream(config.seed, f"{tag}/{i}"), first_book + i, world), look)
        for i, (name, look) in enumerate(zip(names, looks, strict=True))
    ]


def wrong_names(
    rng: Random, truth: str, candidates: Sequence[str], backup: Sequence[str], k: int
) -> list[str]:
    """k distinct names other than truth, from candidates first and the backup (decoy) names if they run out."""
    others = [n for n in candidates if n != truth]
    picked = rng.sample(others, min(k, len(others)))
    spare = [n for n in backup if n != truth and n not in picked]
    return picked + rng.sample(spare, k - len(picked))
