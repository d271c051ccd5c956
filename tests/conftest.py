"""Shared fixtures: a real feed server on 127.0.0.1, config files on disk and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.config import Config, load_config
from aggregator.store import Store

from .feedserver import FeedServer

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    srv = FeedServer().start()
    yield srv
    srv.stop()


def write_config(
    directory: Path, sources: list[dict[str, Any]], *, site: dict[str, Any] | None = None, **sections: Any
) -> Path:
    """Write a feeds.yaml into `directory` with the given sources; return its path."""
    data: dict[str, Any] = {
        "site": {
            "title": "测试站",
            "url": "https://news.example.com/",
            "timezone": "Asia/Shanghai",
            "output_dir": "public",
            "database": "agg.db",
            **(site or {}),
        },
        "defaults": {"interval": "30m", "timeout": "5s", "deadline": "10s"},
        "sources": sources,
        **sections,
    }
    path = directory / "feeds.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def make_config(tmp_path: Path) -> Any:
    def make(sources: list[dict[str, Any]], **kwargs: Any) -> Config:
        return load_config(write_config(tmp_path, sources, **kwargs))

    return make


@pytest.fixture
def open_store() -> Iterator[Any]:
    opened: list[Store] = []

    def open_(config: Config) -> Store:
        store = Store(config.site.database)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `aggregator` CLI in a subprocess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("AGGREGATOR_CONFIG", None) if env is None or "AGGREGATOR_CONFIG" not in env else None
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
