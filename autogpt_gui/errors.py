"""Errors of our own, each naming the field or file at fault and what to do about it."""
from __future__ import annotations


class AutoGPTError(Exception):
    """Base class: a message meant for the user, never a traceback."""

    field: str | None = None

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ConfigError(AutoGPTError):
    """One or more configuration values are invalid; `problems` lists (field, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        first_field = self.problems[0][0] if self.problems else None
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.problems), None)
        self.field = first_field

    def __str__(self) -> str:
        return "\n".join(f"{f}: {m}" for f, m in self.problems)


class DataError(AutoGPTError):
    """The data source cannot be used (missing, empty, binary, too short, ...)."""


class CheckpointError(AutoGPTError):
    """A checkpoint cannot be written or read."""


class TrainingError(AutoGPTError):
    """Training cannot go on (non-finite loss, out of memory, ...)."""


class Cancelled(AutoGPTError):
    """The user cancelled a long operation."""
