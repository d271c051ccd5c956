"""`aggregator sources ...`: list the configured sources and edit feeds.yaml in place."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import (
    FORMAT,
    Context,
    config_option,
    counted,
    handle_errors,
    pass_ctx,
    print_json,
    print_table,
    source_table_row,
)
from .config import is_http_url
from .discover import Candidate, discover_feeds
from .errors import ConfigError, FetchError, NotFoundError
from .fetch import make_session
from .sources_file import NewSource, add_sources, read_opml, remove_source, sources_opml
from .views import source_rows


@click.group()
@config_option
def sources() -> None:
    """List, add, remove, import and export sources (edits feeds.yaml, keeping its comments)."""


@sources.command("list")
@FORMAT
@pass_ctx
@handle_errors
def list_sources(ctx: Context, fmt: str) -> None:
    """Every configured source with the result of its last fetch.

    \b
    Example:
      aggregator sources list
      aggregator sources list --format json
    """
    rows = source_rows(ctx.config, ctx.source_states())
    if fmt == "json":
        print_json(rows)
        return
    print_table([source_table_row(row, ctx.config.site.timezone, ctx.config_path.name) for row in rows],
                ["name", "categories", "enabled", "result", "http_status", "last_fetch", "posts", "last_error"])


@sources.command("add")
@click.argument("url")
@click.option("--name", default="", help="Source name (default: the feed's title, else derived from the URL).")
@click.option("--category", default="", help="Category name (default: the source name).")
@click.option("--tag", "tags", multiple=True, help="A tag for every post of the source (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="Only list the feeds found at URL, numbered; change nothing.")
@click.option("--pick", type=click.IntRange(1), metavar="N", help="Add the N-th feed found at URL (from 1).")
@pass_ctx
@handle_errors
def add(ctx: Context, url: str, name: str, category: str, tags: tuple[str, ...], list_only: bool,
        pick: int | None) -> None:
    """Add a source to feeds.yaml. Given a web page, add the feed it links (autodiscovery).

    \b
    Example:
      aggregator sources add https://example.com/rss.xml --name 例子 --category 财经 --tag 新闻
      aggregator sources add https://example.com/ --list
      aggregator sources add https://example.com/ --pick 2
    """
    _ = ctx.config  # validate feeds.yaml before fetching anything
    if not is_http_url(url):
        raise ConfigError([f"{url}: not an http(s) URL"])
    try:
        candidates = discover_feeds(make_session(), url)
    except FetchError as exc:
        if list_only or pick:
            raise
        click.echo(f"warning: could not check {url}: {exc}; adding it as given", err=True)
        candidates = [Candidate(url, "feed")]
    if list_only:
        for number, found in enumerate(candidates, start=1):
            click.echo(f"{number}. {found.url} ({found.kind}{': ' + found.title if found.title else ''})")
        return
    if pick and pick > len(candidates):
        raise click.UsageError(f"--pick {pick}: only {len(candidates)} feed(s) found at {url}")
    chosen = candidates[(pick or 1) - 1]
    wanted = NewSource(chosen.url, name or chosen.title, category, tags)
    _, added, skipped = add_sources(ctx.config_path, [wanted], rename_taken=not name)
    for line in skipped:
        click.echo(f"skipped: {line}", err=True)
    for added_name in added:
        where = "" if chosen.url == url else f", found on {url}"
        click.echo(f"added {added_name!r} to {ctx.config_path} ({chosen.url}{where})")


@sources.command("remove")
@click.argument("name")
@pass_ctx
@handle_errors
def remove(ctx: Context, name: str) -> None:
    """Remove a source from feeds.yaml (its stored posts are kept).

    \b
    Example:
      aggregator sources remove 每日经济新闻
    """
    remove_source(ctx.config_path, name)
    click.echo(f"removed {name!r} from {ctx.config_path}")


@sources.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_ctx
@handle_errors
def import_opml(ctx: Context, file: Path) -> None:
    """Add every feed of an OPML file (an enclosing outline becomes the category).

    \b
    Example:
      aggregator sources import-opml subscriptions.opml
    """
    _, added, skipped = add_sources(ctx.config_path, read_opml(file))
    for line in skipped:
        click.echo(f"skipped: {file}: {line}", err=True)
    for added_name in added:
        click.echo(f"added {added_name!r}")
    click.echo(f"imported {counted(len(added), 'source')} into {ctx.config_path} ({len(skipped)} skipped)")


@sources.command("export-opml")
@pass_ctx
@handle_errors
def export_opml(ctx: Context) -> None:
    """Print the configured sources as OPML 2.0.

    \b
    Example:
      aggregator sources export-opml > sources.opml
    """
    click.echo(sources_opml(ctx.config), nl=False)


@sources.command("reset")
@click.argument("name")
@pass_ctx
@handle_errors
def reset(ctx: Context, name: str) -> None:
    """Forget a source's failures, backoff, redirect and gone state so it is polled again.

    \b
    Example:
      aggregator sources reset 每日经济新闻
    """
    with ctx.store(create=False) as store:
        if not store.reset_source(name):
            raise NotFoundError(f"no fetch state stored for a source named {name!r}")
    click.echo(f"reset {name!r}: a running daemon polls it within seconds")
