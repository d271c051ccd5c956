"""A benchmark working folder: a feeds.yaml pointing every source at the corpus server.

The config mirrors the shipped feeds.yaml (site in Asia/Shanghai, feed_size 50, the two keyword rules,
a Jekyll export) with one source per corpus feed. Paths are relative to the folder, so the database,
the site and the Jekyll export all land inside it.
"""

from __future__ import annotations

import json
from pathlib import Path

from .corpus import RULES, Corpus

CONFIG = "feeds.yaml"


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def write_config(folder: Path, corpus: Corpus, base_url: str, workers: int, *, name: str = CONFIG,
                 output_dir: str = "public", jekyll_dir: str | None = "jekyll", database: str = "aggregator.db",
                 limit: int | None = None, per_host: int | None = None) -> Path:
    """Write folder/name for the corpus (its first `limit` feeds) served at `base_url`; return its path.

    Every feed is served from 127.0.0.1, so the per-host politeness limit (`defaults.per_host`, 2 by
    default) would cap the whole run at 2 concurrent fetches; real sources live on many hosts, so it
    is set to `workers` unless `per_host` says otherwise.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "site:", "  title: 基准聚合", "  description: 合成语料基准", "  url: http://127.0.0.1:8080/",
        "  timezone: Asia/Shanghai", "  language: zh-CN", f"  output_dir: {output_dir}", f"  database: {database}",
        "  feed_size: 50", "defaults:", "  interval: 30m", f"  workers: {workers}",
        f"  per_host: {per_host or workers}",
    ]
    if jekyll_dir:
        lines += ["jekyll:", f"  dir: {jekyll_dir}", "  archive_after_days: 3"]
    lines.append("sources:")
    for meta in corpus.manifest.meta[:limit]:
        lines += [f"  - name: {_q(meta.name)}", f"    url: {_q(base_url + meta.path)}",
                  f"    category: {_q(meta.category)}"]
        if meta.tags:
            lines.append(f"    tags: [{', '.join(_q(t) for t in meta.tags)}]")
    lines.append("rules:")
    for pattern, categories, tags in RULES:
        lines.append(f"  - match: {_q(pattern)}")
        if categories:
            lines.append(f"    categories: [{', '.join(_q(c) for c in categories)}]")
        if tags:
            lines.append(f"    tags: [{', '.join(_q(t) for t in tags)}]")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
