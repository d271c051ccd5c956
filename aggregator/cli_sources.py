"""`aggregator sources ...`: list the configured sources and edit feeds.yaml in place."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cli_common import FORMAT, Context, handle_errors, pass_ctx, print_table
from .sources_file import NewSource, add_sources, read_opml, remove_source, sources_opml
from .views import source_rows


@click.group()
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
    with ctx.store() as store:
        rows = source_rows(ctx.config, store.source_states())
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        row["categories"] = ",".join(row["categories"])
        row["last_fetch"] = (row["last_fetch"] or "never").replace("T", " ")
        if row["moved_to"]:
            row["last_error"] = f"moved permanently to {row['moved_to']}: update feeds.yaml"
    print_table(rows, ["name", "categories", "enabled", "result", "http_status", "last_fetch", "posts", "last_error"])


@sources.command("add")
@click.argument("url")
@click.option("--name", default="", help="Source name (default: derived from the URL).")
@click.option("--category", default="", help="Category name (default: the source name).")
@click.option("--tag", "tags", multiple=True, help="A tag for every post of the source (repeatable).")
@pass_ctx
@handle_errors
def add(ctx: Context, url: str, name: str, category: str, tags: tuple[str, ...]) -> None:
    """Add a source to feeds.yaml.

    \b
    Example:
      aggregator sources add https://example.com/rss.xml --name 例子 --category 财经 --tag 新闻
    """
    _, added, skipped = add_sources(ctx.config_path, [NewSource(url, name, category, tags)])
    for line in skipped:
        click.echo(f"skipped: {line}", err=True)
    for added_name in added:
        click.echo(f"added {added_name!r} to {ctx.config_path}")


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
        click.echo(f"skipped: {line}", err=True)
    click.echo(f"imported {len(added)} sources into {ctx.config_path} ({len(skipped)} skipped)")


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
    with ctx.store() as store:
        if not store.reset_source(name):
            raise click.ClickException(f"no fetch state stored for {name!r}")
    click.echo(f"reset {name!r}: it will be polled at the daemon's next check")
