"""Errors a user can act on.

Every problem with user input is raised as :class:`InputError`, which names where the problem is
(file, row, column or parameter), what is wrong, and how to fix it. The CLI prints it without a
traceback and exits with status 2.
"""

from __future__ import annotations


class MultivectorError(Exception):
    """Base class of the errors multivector raises on purpose."""


class InputError(MultivectorError, ValueError):
    """Bad input: a file, row, field or parameter that cannot be used as given."""

    def __init__(self, message: str, *, file=None, row=None, column=None, hint: str | None = None):
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (": ".join([", ".join(where), self.message]) if where else self.message)
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConvergenceWarning(UserWarning):
    """An equilibrium solver stopped before reaching the requested gap."""


class MissingDependency(MultivectorError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it.

    Not an input error: the request was fine, the installation lacks a piece (the server answers 503).
    """

    def __init__(self, message: str, *, extra: str):
        self.extra = extra
        self.hint = f"pip install 'multivector[{extra}]'"
        super().__init__(f"{message} ({self.hint})")
        self._message = message

    def __reduce__(self):
        # keyword-only ``extra`` would be lost by the default (server workers send errors back pickled)
        return _missing_dependency, (self._message, self.extra)


def _missing_dependency(message: str, extra: str) -> MissingDependency:
    return MissingDependency(message, extra=extra)
