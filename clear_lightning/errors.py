"""One exception type for bad input, so every user-facing failure names the problem and the fix."""


class ClearConfigError(ValueError):
    """A configuration or input problem the user can fix; the message says what and how."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}\n  fix: {fix}")
        self.problem = problem
        self.fix = fix
