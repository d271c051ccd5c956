"""What every CLI command shares: the context, error handling and output helpers."""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .config import Config, load_config
from .errors import AggregatorError, ConfigError, NotFoundError, StoreError
from .store import Store, from_db_time

F = TypeVar("F", bound=Callable[..., Any])
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
wide = Console(highlight=False, soft_wrap=True, width=100_000)  # output that is not a terminal


def counted(number: int, noun: str, plural: str = "") -> str:
    """`1 source`, `2 sources`: summary lines read as sentences."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn our exceptions into one line per problem and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            fail("\n".join(exc.problems), 2)
        except StoreError as exc:  # a database that cannot be opened (or is too new): not a usage error
            fail(f"error: database {exc}", 1)
        except NotFoundError as exc:
            fail(f"error: {exc}", 2)
        except AggregatorError as exc:
            fail(f"error: {exc}", 1)
        except sqlite3.DatabaseError as exc:  # read-only, full, locked past the busy timeout: one line
            fail(f"error: database {_database_of(args)}: {exc}", 1)

    return wrapper  # type: ignore[return-value]


def _database_of(args: tuple[Any, ...]) -> str:
    """The database a failed command used (its Context's config, if it got that far)."""
    context = next((arg for arg in args if isinstance(arg, Context)), None)
    config = getattr(context, "_config", None)
    return str(config.site.database) if config is not None else "(see site.database)"


class Context:
    """What every command needs: the config path, and the config and store loaded on demand."""

    def __init__(self, config_path: Path):
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def use_config(self, path: Path) -> None:
        self.config_path, self._config = path, None

    def store(self, create: bool = True) -> Store:
        """The store; a command that only reads (`create=False`) never makes one where none is: a
        mistyped site.database must not go unnoticed behind a fresh, empty database."""
        database = self.config.site.database
        if not create and not database.exists():
            raise NotFoundError(f"no database at {database} yet (`aggregator fetch` or `aggregator run` makes it)")
        return Store(database)

    def source_states(self) -> dict[str, Any]:
        """Every source's stored state, or none (and a note) when there is no database yet."""
        if not self.config.site.database.exists():
            click.echo(f"note: no database at {self.config.site.database} yet: nothing fetched", err=True)
            return {}
        with self.store() as store:
            return store.source_states()


def _config_after_command(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """`aggregator fetch --config X` means what `aggregator --config X fetch` does."""
    if value is not None:
        shared = ctx.find_object(Context)
        if shared is not None:
            shared.use_config(value)


#: `--config PATH` on a command or a command group, as well as before it
config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), expose_value=False,
    callback=_config_after_command, help="The feeds.yaml to use (may also come before the command).",
)


def pass_ctx(func: F) -> F:
    """Hand a command the shared Context, and accept `--config PATH` after the command name too."""
    return config_option(click.make_pass_decorator(Context)(func))  # type: ignore[return-value]


#: columns of free text, which may wrap when the terminal is narrow; the others (dates, numbers,
#: states) never do, so a date is never split across two lines
TEXT_COLUMNS = {"name", "source", "category", "categories", "title", "last_error"}


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain table whose dates, numbers and states stay on one line; text wraps when it must.

    Piped into a file or `less`, nothing is wrapped or cut to fit an 80-column terminal that is
    not there.
    """
    table = Table(show_lines=False, box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column not in TEXT_COLUMNS, overflow="fold")
    for row in rows:
        # cells are remote text (titles, HTTP reasons): never read as rich markup like "[/bold]"
        table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
    (out if out.is_terminal else wide).print(table)


def source_table_row(row: dict[str, Any], zone: tzinfo, config_name: str = "feeds.yaml") -> dict[str, Any]:
    """A `sources list` / `status` row shaped for a table: short times in the site's zone (as `posts`
    shows dates; the JSON keeps UTC), yes/no, the note that matters (`config_name`: the file to edit)."""
    for key in ("last_fetch", "last_success", "next_due"):
        when = from_db_time(row.get(key))
        row[key] = when.astimezone(zone).strftime("%Y-%m-%d %H:%M") if when else "-"
    row["enabled"] = "yes" if row["enabled"] else "no"
    row["categories"] = ",".join(row["categories"])
    if row["moved_to"]:
        move = f"moved permanently to {row['moved_to']}: update its url in {config_name}"
        row["last_error"] = f"{row['last_error']} ({move})" if row["last_error"] else move
    elif not row["last_error"] and row["warning"]:
        row["last_error"] = f"warning: {row['warning']}"
    if not row["last_error"] and row.get("article_error"):  # the feed is fine, its articles are not
        row["last_error"] = f"article: {row['article_error']}"
    return row


FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)


def print_json(value: Any) -> None:
    """JSON for scripts: UTF-8 as is (Chinese stays readable), indented."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def category_slug(config: Config, store: Store, given: str) -> str:
    """The slug of a category given by slug or by name (券商 -> quanshang)."""
    names = store.category_names(config.categories)
    if given in names:
        return given
    by_name = {name: slug for slug, name in names.items()}
    if given in by_name:
        return by_name[given]
    raise NotFoundError(f"no category {given!r} (known slugs: {', '.join(sorted(names)) or 'none'})")
