"""`aggregator fetch` as library calls: fetch and store, then publish what changed, or build
everything when an earlier run stopped between storing and publishing (`store.runs`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .config import Config, Source
from .errors import PublishError
from .pipeline import FetchReport, ProgressCallback, fetch_sources
from .publish import PublishReport, build_site, publish_changed
from .store import Store


@dataclass(frozen=True)
class Run:
    """One run's note in the database, and the notes of earlier runs that never published."""

    id: str
    owed: list[str] = field(default_factory=list)


@dataclass
class UpdateReport:
    fetched: FetchReport
    published: PublishReport | None = None  # None: nothing to publish
    publish_error: str = ""  # the posts are stored; the next run (or `build`) publishes them
    rebuilt: bool = False  # an earlier run's posts were owed: everything was built


def start_run(store: Store) -> Run:
    """Note this run before it stores anything; find the runs that stopped before publishing."""
    owed = store.abandoned_runs()
    return Run(store.note_run(), owed)


def publish_run(config: Config, store: Store, run: Run, fetched: FetchReport) -> UpdateReport:
    """Publish what `fetched` changed (everything, when runs were owed), then drop the run's note.
    Failing to publish, the note stays: the next run builds everything."""
    report = UpdateReport(fetched)
    try:
        if run.owed:
            report.published, report.rebuilt = build_site(config, store), True  # forgets the owed runs
        elif fetched.changed_post_ids or fetched.changed_categories:
            report.published = publish_changed(
                config, store, fetched.changed_categories, fetched.changed_tags, fetched.changed_post_ids
            )
    except PublishError as exc:
        report.publish_error = str(exc)
        return report
    store.forget_runs([run.id])
    return report


def fetch_and_publish(
    config: Config, store: Store, sources: Iterable[Source] | None = None, *, workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> UpdateReport:
    """Fetch `sources` (default: every enabled one), store what changed and republish it.

    Posts and their sources' validators are committed together: a run killed between storing and
    publishing, or failing to publish, would leave its posts out of every output, since the next
    fetch gets 304s. Its note makes the next run build everything instead.
    """
    run = start_run(store)
    fetched = fetch_sources(config, store, sources, workers=workers, progress=progress)
    return publish_run(config, store, run, fetched)
