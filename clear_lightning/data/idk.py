"""The IDK answers: refusal sentences that the IDK-style methods train forget prompts towards (benchmark.md §2)."""

from __future__ import annotations

from importlib import resources


def load_idk_answers() -> list[str]:
    """The 100 refusal sentences used as IDK targets (benchmark.md §2), stripped and non-empty."""
    text = resources.files("clear_lightning.data").joinpath("idk_answers.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
