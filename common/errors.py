"""Errors that carry a user-facing one-line message; the CLI maps them to exit code 2."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user (a file, an id, an option). ``str(err)`` is the message."""


class DataFileError(UserInputError):
    """A malformed data file, located by file, row and column where known."""

    def __init__(
        self, path: str, message: str, *, row: int | None = None, column: str | None = None
    ) -> None:
        where = path
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {message}")
        self.path, self.row, self.column = path, row, column
