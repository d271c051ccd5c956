"""Text for SQLite FTS5 that makes Chinese searchable without a dictionary.

FTS5's unicode61 tokenizer treats a run of Han characters without spaces as one token, so 券商 in the
middle of a sentence would never match, and the trigram tokenizer cannot find two-character words.
We index every Han character as its own token and search a Chinese word as a phrase of its
characters (`"券 商"`), which matches exactly where those characters stand side by side: any 1- to
n-character word is found, with no word list to keep up to date.
"""

from __future__ import annotations

import re

from .sanitise import plain_text

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+")


def _spaced(match: re.Match[str]) -> str:
    return " " + " ".join(match.group()) + " "


def fts_text(text: str) -> str:
    """`text` with a space around every Han character (one regex match per run of them)."""
    return _HAN_RUN.sub(_spaced, text)


def search_body(summary_html: str, content_html: str) -> str:
    """The full-text index's body for a stored post's summary and content (both sanitised HTML)."""
    return fts_text(plain_text(summary_html) + " " + plain_text(content_html))


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression requiring every word of `query`, each as a phrase."""
    phrases = []
    for word in query.split():
        tokens = fts_text(word).split()
        if tokens:
            phrases.append('"' + " ".join(tokens).replace('"', '""') + '"')
    return " AND ".join(phrases)
