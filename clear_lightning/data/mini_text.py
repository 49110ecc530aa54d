"""CLEAR-mini's text rows: each person's QA (question, answer, paraphrase, perturbed answers, TOFU's columns)
and the real-knowledge facts (real_authors_perturbed, world_facts_perturbed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from .mini_world import Person, World, stream, wrong_names

if TYPE_CHECKING:
    from .mini_config import ClearMiniConfig


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


def person_qa(
    config: ClearMiniConfig,
    index: int,
    person: Person,
    pools: dict[str, Sequence[str]],
    tag: str = "person",
) -> list[dict]:
    """qa_per_person rows (question, answer, paraphrase, perturbed answers) from a per-person template order."""
    rng = stream(config.seed, f"{tag}-qa/{index}")
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


def fact_rows(config: ClearMiniConfig, world: World) -> tuple[list[dict], list[dict]]:
    """real_authors_perturbed (classics by celebrities) and world_facts_perturbed (capitals, landmarks)."""
    rng = stream(config.seed, "facts")
    authors = []
    for k, title in enumerate(world.classic_titles):
        author = world.celebrities[k % len(world.celebrities)]
        authors.append(
            _fact(
                f'Who wrote the classic novel "{title}"?',
                author,
                wrong_names(rng, author, world.celebrities, world.decoys, config.num_perturbed),
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
                wrong_names(rng, capital, places, world.cities, config.num_perturbed),
            )
        )
        facts.append(
            _fact(
                f"In which city is {landmark} located?",
                city,
                wrong_names(rng, city, places, world.cities, config.num_perturbed),
            )
        )
    return authors, facts


def _fact(question: str, answer: str, wrong: list[str]) -> dict:
    return {"question": question, "answer": answer, "paraphrased_answer": answer, "perturbed_answer": wrong}
