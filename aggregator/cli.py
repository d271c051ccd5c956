"""The `aggregator` command: each subcommand is a thin call into the library.

Errors a user can cause arrive as our exception types and leave as one line on stderr with an exit
code: 2 for usage and config errors, 1 for failed sources.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import __version__
from .cli_common import FORMAT, Context, category_slug, counted, err, handle_errors, pass_ctx, print_table
from .config import Config, config_warnings
from .errors import ConfigError, NotFoundError
from .models import SourceOutcome
from .pipeline import sources_to_fetch
from .update import fetch_and_publish
from .views import post_json
from .websub import announce_changes


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("AGGREGATOR_CONFIG", "feeds.yaml"),
    show_default="./feeds.yaml or $AGGREGATOR_CONFIG",
    help="The feeds.yaml to use.",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path) -> None:
    """Poll RSS/Atom sources, store posts in SQLite and republish them.

    \b
    Example:
      aggregator check
      aggregator fetch
      aggregator posts --limit 5
    """
    ctx.obj = Context(config_path)


@cli.command()
@pass_ctx
@handle_errors
def check(ctx: Context) -> None:
    """Validate feeds.yaml; print every problem as FILE:LINE: message (exit 2).

    Nothing is fetched and the database is not opened.

    \b
    Example:
      aggregator --config feeds.yaml check
    """
    config = ctx.config
    for warning in config_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    enabled = sum(1 for s in config.sources if s.enabled)
    click.echo(
        f"{ctx.config_path}: ok: {counted(len(config.sources), 'source')} ({enabled} enabled), "
        f"{counted(len(config.categories), 'category', 'categories')}, {counted(len(config.rules), 'rule')}"
    )


@cli.command()
@click.option("--source", "names", multiple=True, metavar="NAME", help="Fetch only this source (repeatable).")
@click.option("--workers", type=click.IntRange(1, 64), help="Concurrent fetches (default: defaults.workers).")
@pass_ctx
@handle_errors
def fetch(ctx: Context, names: tuple[str, ...], workers: int | None) -> None:
    """Fetch every enabled source once, store new and changed posts, republish what they touch.

    Exit 0 when every source was ok or not modified, 1 when any failed.

    \b
    Example:
      aggregator fetch
      aggregator fetch --source 每日经济新闻 --source "Hacker News"
    """
    config = ctx.config
    sources = None
    if names:
        known = {s.name: s for s in config.sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError([f"{ctx.config_path}: no source named {n!r}" for n in missing])
        sources = [known[n] for n in names]
    with ctx.store() as store:
        chosen = sources_to_fetch(config, store.source_states(counts=False), sources)  # read once, here
        total = len(chosen)
        with _progress(total) as advance:
            update = fetch_and_publish(config, store, chosen, workers=workers, progress=advance)
        report, published = update.fetched, update.published
        if update.rebuilt:
            click.echo("note: an earlier run stopped before publishing what it stored: everything was built")
        if published is not None:
            click.echo(f"published: {published.summary()}")
            for failure in announce_changes(config.site, published.written):
                click.echo(f"warning: WebSub publish failed: {failure}", err=True)
        publish_error = ""
        if update.publish_error:
            publish_error = (f"error: {update.publish_error}; the posts are stored: the next `aggregator fetch` "
                             "or `aggregator build` publishes them once it is fixed")
    for outcome in report.failed:
        click.echo(f"failed: {outcome.source}: {outcome.error}", err=True)
    for outcome in report.outcomes:
        if outcome.warning:
            click.echo(f"warning: {outcome.source}: {outcome.warning}", err=True)
        if outcome.articles_failed:
            click.echo(f"articles: {outcome.source}: {outcome.articles_failed} failed, last: {outcome.article_error}",
                       err=True)
    click.echo(
        f"{counted(len(report.outcomes), 'source')}: {report.count('ok')} ok, "
        f"{report.count('not-modified')} not modified, {len(report.failed)} failed; "
        f"posts: {report.new} new, {report.updated} updated"
    )
    if publish_error:
        click.echo(publish_error, err=True)
    sys.exit(1 if report.failed or publish_error else 0)


class _progress:
    """A rich progress bar on a terminal; nothing when stderr is not one."""

    def __init__(self, total: int):
        self.total = total
        self.bar: Progress | None = None

    def __enter__(self) -> Callable[[SourceOutcome], None]:
        if err.is_terminal and self.total > 1:
            self.bar = Progress(
                TextColumn("fetching"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), console=err, transient=True,
            )
            self.bar.start()
            task = self.bar.add_task("", total=self.total)
            bar = self.bar
            return lambda outcome: bar.update(task, advance=1, description=outcome.source)
        return lambda outcome: None

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


@cli.command()
@click.option("--category", metavar="SLUG", help="Only posts of this category (its slug or its name).")
@click.option("--source", metavar="NAME", help="Only posts of this source.")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@FORMAT
@pass_ctx
@handle_errors
def posts(ctx: Context, category: str | None, source: str | None, limit: int, fmt: str) -> None:
    """List stored posts, newest first. JSON is one object per line.

    \b
    Example:
      aggregator posts --category meirijingjixinwen --limit 5
      aggregator posts --format json | jq .title
    """
    with ctx.store(create=False) as store:
        slug = category_slug(ctx.config, store, category) if category else None
        if source and source not in {s.name for s in ctx.config.sources} | set(store.source_states(counts=False)):
            raise NotFoundError(f"no source named {source!r} in {ctx.config_path} or the database")
        found = store.posts(category=slug, source=source, limit=limit)
    _print_posts(ctx.config, found, fmt)


def _print_posts(config: Config, found: list[Any], fmt: str) -> None:
    zone = config.site.timezone
    if fmt == "json":
        for post in found:
            click.echo(json.dumps(post_json(post, zone), ensure_ascii=False))
        return
    rows = [
        {"date": p.date.astimezone(zone).strftime("%Y-%m-%d %H:%M"), "source": p.source,
         "categories": ",".join(p.categories), "title": p.title}
        for p in found
    ]
    print_table(rows, ["date", "source", "categories", "title"])


@cli.command()
@click.argument("query")
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@FORMAT
@pass_ctx
@handle_errors
def search(ctx: Context, query: str, limit: int, fmt: str) -> None:
    """Full-text search of titles, summaries and content (Chinese words too), newest first.

    \b
    Example:
      aggregator search 券商
      aggregator search "bitcoin etf" --format json
    """
    with ctx.store(create=False) as store:
        found = store.search(query, limit=limit)
    _print_posts(ctx.config, found, fmt)


from .cli_build import build  # noqa: E402
from .cli_daemon import run, serve, status  # noqa: E402
from .cli_sources import sources  # noqa: E402

for command in (sources, build, run, serve, status):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="aggregator")
