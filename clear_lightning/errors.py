"""One exception type for bad input, so every user-facing failure names the problem and the fix."""

import sys
from collections.abc import Callable
from typing import Any


class ClearConfigError(ValueError):
    """A configuration or input problem the user can fix; the message says what and how."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}\n  fix: {fix}")
        self.problem = problem
        self.fix = fix


def run_or_exit(run: Callable[[Any], Any], cfg: Any) -> None:
    """The entry points' contract: a user-fixable problem prints its message and fix and exits 2, no trace."""
    try:
        run(cfg)
    except ClearConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the stage already said what was interrupted and what was kept
        sys.exit(130)
