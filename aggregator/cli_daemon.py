"""`aggregator run`, `serve` and `status`: the long-running side of the CLI."""

from __future__ import annotations

import math
import sys
import threading
from collections import Counter

import click

from .cli_common import FORMAT, Context, counted, handle_errors, pass_ctx, print_json, print_table, source_table_row
from .daemon_lock import running_daemon
from .logs import setup_logging
from .views import source_rows

LOG_LEVEL = click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
LOG_FORMAT = click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)


def _not_nan(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    if math.isnan(value):  # a range lets nan through: it compares false with both ends
        raise click.BadParameter("nan is not a number of seconds")
    return value


@click.command()
@click.option("--host", help="Address to serve on (default: server.host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to serve on (default: server.port, 8080).")
@click.option(
    "--grace",
    type=click.FloatRange(min=0, max=24 * 3600),
    callback=_not_nan,
    default=10.0,
    show_default=True,
    help="Seconds in-flight fetches may take to finish on SIGTERM.",
)
@LOG_LEVEL
@LOG_FORMAT
@pass_ctx
@handle_errors
def run(ctx: Context, host: str | None, port: int | None, grace: float, log_level: str, log_format: str) -> None:
    """Poll every source on its schedule, republish what changed and serve the output.

    Reloads feeds.yaml when it changes (or on SIGHUP); stops cleanly on SIGTERM or SIGINT.

    \b
    Example:
      aggregator run --port 8080 --log-format json
    """
    from .scheduler import Daemon

    setup_logging(log_level, log_format)
    try:
        daemon = Daemon(ctx.config_path, host=host, port=port, grace=grace)
    except OSError as exc:
        raise click.ClickException(f"cannot start: {exc}") from None
    sys.exit(daemon.run())


@click.command()
@click.option("--host", help="Address to serve on (default: server.host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to serve on (default: server.port).")
@LOG_LEVEL
@pass_ctx
@handle_errors
def serve(ctx: Context, host: str | None, port: int | None, log_level: str) -> None:
    """Serve the output folder without polling.

    \b
    Example:
      aggregator serve --host 0.0.0.0 --port 8000
    """
    import logging
    import signal

    from .server import FeedServer, StaticSite

    setup_logging(log_level)
    config = ctx.config
    config.site.output_dir.mkdir(parents=True, exist_ok=True)
    app = StaticSite(config.site.output_dir, health=lambda: (200, {"status": "ok", "scheduler": None}))
    try:
        server = FeedServer(app, host or config.server.host, config.server.port if port is None else port)
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    logging.getLogger("aggregator").info("serving %s on port %d", config.site.output_dir, server.port)
    stop.wait()
    server.stop()


@click.command()
@FORMAT
@pass_ctx
@handle_errors
def status(ctx: Context, fmt: str) -> None:
    """Per source: state, last fetch and result, HTTP status, error, failures, posts, next due.

    \b
    Example:
      aggregator status
      aggregator status --format json | jq '.[] | select(.state == "failing")'
    """
    rows = source_rows(ctx.config, ctx.source_states())
    if fmt == "json":
        print_json(rows)
        return
    print_table(
        [source_table_row(row, ctx.config.site.timezone, ctx.config_path.name) for row in rows],
        ["name", "category", "state", "http_status", "last_fetch", "last_success", "failures", "posts", "next_due",
         "last_error"],
    )
    counts = Counter(row["state"] for row in rows)
    click.echo(
        f"{counted(len(rows), 'source')}: "
        + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        + f"; {counted(sum(r['posts'] for r in rows), 'post')}"
    )
    pid = running_daemon(ctx.config.site.database)
    click.echo(f"daemon: running (pid {pid})" if pid else "daemon: not running (next_due is when it would poll)")
