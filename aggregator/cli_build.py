"""`aggregator build`: rebuild the static site (feeds, pages, OPML, Jekyll export) from the database."""

from __future__ import annotations

import os

import click

from .cli_common import Context, category_slug, handle_errors, pass_ctx
from .publish import build_site
from .websub import announce_changes


@click.command()
@click.option(
    "--category", metavar="SLUG", help="Rebuild only this category, by slug or name (and the shared pages and feeds)."
)
@pass_ctx
@handle_errors
def build(ctx: Context, category: str | None) -> None:
    """Write the site into site.output_dir; print each file that changed, then a summary.

    Files whose bytes did not change are left alone. A full build first deletes posts older than
    site.retention_days when that is set.

    \b
    Example:
      aggregator build
      aggregator build --category meirijingjixinwen
    """
    with ctx.store() as store:
        slug = category_slug(ctx.config, store, category) if category else None
        report = build_site(ctx.config, store, category=slug)
    for failure in announce_changes(ctx.config.site, report.written):
        click.echo(f"warning: WebSub publish failed: {failure}", err=True)
    here = os.getcwd() + os.sep
    for verb, paths in (("wrote", report.written), ("removed", report.removed)):
        for path in paths:
            text = str(path)
            click.echo(f"{verb} {text.removeprefix(here)}")  # var/public/... when under the current folder
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(report.summary())
