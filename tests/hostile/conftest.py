"""Fixtures of the hostile-input tests: daemons that are always killed at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..test_daemon import Daemon


class TrackedDaemon(Daemon):
    """tests.test_daemon.Daemon, registered before it waits for the server, so a failed start is cleaned up."""

    def __init__(self, registry: list[Daemon], directory: Path, *args: str):
        registry.append(self)
        super().__init__(directory, *args)


def kill(daemon: Daemon) -> None:
    proc = getattr(daemon, "proc", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., Daemon]]:
    """start_daemon(directory, *args): `aggregator run` in `directory`, killed at teardown if still up."""
    started: list[Daemon] = []

    def start(directory: Path, *args: str) -> Daemon:
        return TrackedDaemon(started, directory, *args)

    yield start
    for daemon in started:
        kill(daemon)
