"""Prometheus metrics of one daemon (prometheus_client), in a registry of its own."""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.fetches = Counter(
            "aggregator_fetches", "Fetches by source and result", ["source", "result"], registry=self.registry
        )
        self.fetch_seconds = Histogram(
            "aggregator_fetch_duration_seconds",
            "Time to fetch, parse and store a source",
            registry=self.registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.posts_stored = Gauge("aggregator_posts_stored", "Posts in the database", registry=self.registry)
        self.posts_new = Counter("aggregator_posts_new", "New posts stored", registry=self.registry)
        self.posts_updated = Counter("aggregator_posts_updated", "Posts updated in place", registry=self.registry)
        self.last_success = Gauge(
            "aggregator_source_last_success_timestamp_seconds",
            "Time of the last successful fetch per source",
            ["source"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "aggregator_publish_duration_seconds", "Time to republish changed output", registry=self.registry
        )

        self.poll_lateness = Histogram(
            "aggregator_poll_lateness_seconds",
            "How late polls start against their due time, by lane (healthy or failing sources)",
            ["lane"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60),
        )

    def forget_sources(self, keep: Collection[str]) -> None:
        """Stop exporting the sources not in `keep` (removed from feeds.yaml, renamed, disabled):
        their last-success time would stay frozen, and a staleness alert fire for them for good."""
        for family in self.last_success.collect():
            for source in {sample.labels["source"] for sample in family.samples}.difference(keep):
                self.last_success.remove(source)
        for family in self.fetches.collect():
            for source, result in {(sample.labels["source"], sample.labels["result"]) for sample in family.samples}:
                if source not in keep:
                    self.fetches.remove(source, result)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
