"""Errors a user can act on: what was wrong, with which input, and what to do."""

from __future__ import annotations


class SimmimError(Exception):
    """Base for expected failures; the CLI prints them as one line, without a traceback."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message


class NotFound(SimmimError):
    """The object asked for (by id or name) does not exist; the API answers 404."""


class ConfigError(SimmimError):
    """A setting or config file is wrong."""


class DatabaseError(SimmimError):
    """The database cannot be reached or is not at the schema this code expects."""
