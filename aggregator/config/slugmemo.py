"""Category slugs remembered beside the database, so loading the config needs no pypinyin.

Making a slug from Chinese needs pypinyin, whose phrase dictionary takes ~0.15 s and ~55 MB to load:
a large share of a run in which every source answers 304. The slugs of the config's category
names are therefore kept in a small JSON file next to the database (`aggregator.db-slugs.json`)
and read back on the next load. It holds names and slugs only (nothing secret), is rewritten only
when the set of names changes, is never required (a missing, unreadable or stale file just means
the slugs are made again) and pins each name's slug, so a pypinyin upgrade cannot move a
category's URL. Delete it to have every slug made afresh.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..slugs import slugify

VERSION = 1  # bump when slugify changes what it makes


def memo_path(database: Path) -> Path:
    return database.with_name(database.name + "-slugs.json")


class SlugMemo:
    def __init__(self, path: Path):
        self.path = path
        self.known = self._read()
        self.used: dict[str, str] = {}

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("slugs"), dict):
            return {}
        return {str(k): str(v) for k, v in data["slugs"].items()}

    def slug(self, name: str) -> str:
        slug = self.known.get(name) or slugify(name)
        self.used[name] = slug
        return slug

    def save(self) -> None:
        """Write the slugs this load used, if they differ from the file's; never raise."""
        if self.used == self.known or not self.path.parent.is_dir():
            return
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            text = json.dumps({"version": VERSION, "slugs": dict(sorted(self.used.items()))}, ensure_ascii=False)
            temporary.write_text(text + "\n", encoding="utf-8")
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)
