"""A template database already holding 1,000,000 posts, for `run_all --million`.

How it is built (fast, and without going through `Store.store_posts`, which would take hours):

1. `Store(path)` creates an empty database with the package's own migrations, so the schema (tables,
   indexes, the FTS5 table and its tokenizer, `user_version`) is exactly the application's.
2. Plain SQL `executemany` inserts fill `posts`, `post_categories`, `post_tags`, `posts_fts`,
   `categories` and `tags`, in batches inside one transaction, with the journal off and
   `synchronous=OFF` (safe here: a crash only loses the template, which is rebuilt). Rows mirror what
   the store's upsert writes: `link_key` in `canonical_link` form, JSON `categories`/`tags`/`enclosures`,
   second-precision UTC dates, and FTS rows made with `fts_text` over the title and the plain text of
   summary + content, so Han characters are single tokens as in the real index.
3. The database is switched back to WAL (what `Store` uses) and closed; the file is cached as
   ``bench/corpus/million-<posts>-v<VERSION>-<key>.db`` (git-ignored; the key covers the vocabulary
   and the application's schema, so a new migration builds a new template) and copied into each
   run's folder. Columns added by later migrations take their defaults.

The filler posts belong to 500 archive sources that are not in the config, but use the same category
slugs as the benchmark's config (so every category it publishes has ~25,000 older posts behind it)
and the corpus's tag vocabulary. They are dated before the corpus (one every 90 s going back ~3
years). Their content is ~1 KB of HTML (the corpus has ~2 KB), drawn from a pool of 512 bodies, which
keeps the template near 5 GB. No Jekyll files exist for them (the export folder starts empty), so
the Jekyll part of publishing is not slowed by 1,000,000 files on disk.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from aggregator.sanitise import plain_text
from aggregator.search_text import fts_text
from aggregator.slugs import slugify
from aggregator.store import Store, to_db_time

from .corpus import BASE, CORPUS_ROOT, RULES, TAGS_EN, TAGS_ZH, Corpus, TextPool, _content

VERSION = 1
ARCHIVE_SOURCES = 500
POOL = 512
BATCH = 20_000


def schema_sql() -> str:
    """The application's schema as its migrations create it, and the page size a new database gets
    (part of the template's cache key)."""
    with tempfile.TemporaryDirectory(prefix="aggregator-schema-") as tmp:
        store = Store(Path(tmp) / "schema.db")
        rows = store.conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").fetchall()
        page_size = store.conn.execute("PRAGMA page_size").fetchone()[0]
        store.close()
    return "\n".join(r[0] for r in rows) + f"\npage_size={page_size}"


def template_path(posts: int, categories: list[str], tags: list[str]) -> Path:
    key = hashlib.sha1(json.dumps([categories, tags, schema_sql()], ensure_ascii=False).encode()).hexdigest()[:8]
    return CORPUS_ROOT / f"million-{posts}-v{VERSION}-{key}.db"


def _vocabulary(corpus: Corpus) -> tuple[dict[str, str], list[str]]:
    """(category slug -> name, tag names) as the benchmark's config and corpus produce them."""
    names = corpus.manifest.categories + [c for _pattern, cats, _tags in RULES for c in cats]
    categories = {slugify(n): n for n in names}
    tags = list(dict.fromkeys(TAGS_ZH + TAGS_EN + [t for m in corpus.manifest.meta for t in m.tags]
                              + [t for _p, _c, ts in RULES for t in ts]))
    return categories, tags


def template(posts: int, corpus: Corpus, seed: int) -> tuple[Path, float]:
    """The cached template for `corpus`'s vocabulary (built now if missing) and its build seconds."""
    categories, tags = _vocabulary(corpus)
    path = template_path(posts, sorted(categories), tags)
    if path.exists():
        return path, 0.0
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    Store(tmp).close()  # the application's schema, by its own migrations
    conn = sqlite3.connect(tmp, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-400000")
    fill(conn, posts, categories, tags, seed)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    tmp.rename(path)
    return path, round(time.perf_counter() - started, 1)


def fill(conn: sqlite3.Connection, posts: int, categories: dict[str, str], tags: list[str], seed: int) -> None:
    rng = random.Random(f"{seed}:million")
    text_pool = TextPool(seed)
    bodies = []
    for i in range(POOL):
        lang = "zh" if i % 2 == 0 else "en"
        html = _content(rng, text_pool, lang, "https://archive.example.org/", False, rng.randint(700, 1300))
        summary = plain_text(html)[:140]
        bodies.append((lang, html, summary, fts_text(summary + " " + plain_text(html))))
    slugs = sorted(categories)
    tag_slugs = {t: slugify(t) for t in tags}
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO categories(slug, name) VALUES (?, ?)", list(categories.items()))
    conn.executemany("INSERT OR IGNORE INTO tags(slug, name) VALUES (?, ?)", [(s, t) for t, s in tag_slugs.items()])
    post_rows, category_rows, tag_rows, fts_rows = [], [], [], []
    newest = BASE - timedelta(days=40)
    for i in range(posts):
        num = i + 1
        lang, html, summary, fts_body = bodies[i % POOL]
        host = f"archive{i % ARCHIVE_SOURCES:03d}.example.org"
        link = f"https://{host}/a/{i}.html"
        title = f"{'存档文章' if lang == 'zh' else 'Archived story'} {i}: {summary[:30]}"
        date = to_db_time(newest - timedelta(seconds=90 * i))
        cats = [slugs[i % len(slugs)]]
        if i % 7 == 0 and slugs[(i + 1) % len(slugs)] not in cats:
            cats.append(slugs[(i + 1) % len(slugs)])
        post_tags = rng.sample(tags, rng.choice((0, 1, 1, 2, 3)))
        digest = hashlib.sha1(f"{seed}:{i}".encode()).hexdigest()
        post_rows.append((
            num, digest[:20], f"Archive {i % ARCHIVE_SOURCES:03d}", title, link, f"http://{host}/a/{i}.html", link,
            date, None, date, "Archive", f"<p>{summary}</p>", html, json.dumps(cats, ensure_ascii=False),
            json.dumps(post_tags, ensure_ascii=False), "[]", digest[:32], 1,
        ))
        category_rows += [(c, num, date) for c in cats]
        tag_rows += [(tag_slugs[t], num, date) for t in post_tags]
        fts_rows.append((num, fts_text(title), fts_body))
        if len(post_rows) >= BATCH or i == posts - 1:
            conn.executemany(
                "INSERT INTO posts (num, id, source, title, link, link_key, guid, date, updated, first_seen, author, "
                "summary, content, categories, tags, enclosures, content_hash, dated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                post_rows,
            )
            conn.executemany("INSERT OR IGNORE INTO post_categories(slug, post, date) VALUES (?, ?, ?)", category_rows)
            conn.executemany("INSERT OR IGNORE INTO post_tags(slug, post, date) VALUES (?, ?, ?)", tag_rows)
            conn.executemany("INSERT INTO posts_fts(rowid, title, body) VALUES (?, ?, ?)", fts_rows)
            post_rows, category_rows, tag_rows, fts_rows = [], [], [], []
    conn.execute("COMMIT")
