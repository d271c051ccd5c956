"""Exception types for errors a user can cause; the CLI turns each into one line and an exit code."""

from __future__ import annotations


class AggregatorError(Exception):
    """Base class of every error we raise on purpose."""


class ConfigError(AggregatorError):
    """feeds.yaml is invalid. `problems` holds one `FILE:LINE: what is wrong` line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class NotFoundError(AggregatorError):
    """A name given on the command line (a category, a source) names nothing we have: a usage error."""


class FetchError(AggregatorError):
    """A source could not be fetched: the message says why, in one line."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        self.status = status
        self.retry_after = retry_after
        super().__init__(message)


class ParseError(AggregatorError):
    """A response could not be read as a feed."""


class StoreError(AggregatorError):
    """The database cannot be opened or written (names the path)."""


class PublishError(AggregatorError, OSError):
    """An output file or folder cannot be written (names the path). An OSError too, so code that
    guards against a full disk or a read-only folder catches it."""


def unexpected(exc: BaseException) -> str:
    """One line for an error no code path expected (recorded on the source, like any failure)."""
    if isinstance(exc, AggregatorError):  # ours: the message says it all
        return str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"unexpected error: {type(exc).__name__}: {exc}".splitlines()[0][:300]
