"""Category and tag slugs: safe folder names by construction.

A run of Han characters becomes toneless pinyin without separators (每日经济新闻 ->
`meirijingjixinwen`, as the old site named its categories); Latin text becomes lowercase ASCII words;
the pieces are joined by `-`. Accented letters are folded to ASCII, anything else is dropped. The
result only ever holds `[a-z0-9-]`, is never empty, never a Windows device name and at most
`MAX_SLUG_LENGTH` characters, so it can be used as a folder name whatever the input was.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

from . import pinyin

MAX_SLUG_LENGTH = 64
_HAN_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+)")
_WORD = re.compile(r"[a-z0-9]+")
_RESERVED = {"con", "prn", "aux", "nul", "tag"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}


def _fallback(text: str) -> str:
    return "c-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


@lru_cache(maxsize=4096)
def slugify(text: str) -> str:
    """Return the URL- and folder-safe slug of a category or tag name."""
    pieces: list[str] = []
    for i, part in enumerate(_HAN_RUN.split(text)):
        if not part:
            continue
        if i % 2:  # a Han run
            pieces.append(pinyin.helper(part))
        else:
            folded = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode("ascii")
            pieces.extend(_WORD.findall(folded.lower()))
    slug = "-".join(p for p in pieces if p)
    slug = re.sub(r"[^a-z0-9-]+", "", slug).strip("-")
    if not slug:
        return _fallback(text)
    if len(slug) > MAX_SLUG_LENGTH:
        slug = slug[: MAX_SLUG_LENGTH - 11].rstrip("-") + "-" + _fallback(text)[2:]
    if slug in _RESERVED:
        slug += "-1"
    return slug
