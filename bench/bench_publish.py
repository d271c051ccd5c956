"""Publishing benchmark: full rebuild of 20 categories x 100 posts, then an incremental rebuild after
one new post, and the render time of one 100-post feed in each format.

Run: .venv/bin/python -m bench.bench_publish   (prints figures; asserts nothing about timings)
Targets: incremental touches at most 4 feed files + 2 pages besides OPML/JSON; a 100-post feed
renders in under 10 ms.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.config import load_config
from aggregator.models import Enclosure, Post
from aggregator.normalise import content_hash, post_id
from aggregator.publish import build_site, publish_changed
from aggregator.publish.feeds import render_atom, render_rss
from aggregator.publish.items import FeedInfo, feed_items
from aggregator.publish.jsonfeed import render_json
from aggregator.store import Store

CATEGORIES = 20
POSTS_PER_CATEGORY = 100
NOW = datetime(2022, 3, 29, 4, 0, tzinfo=UTC)
PARAGRAPH = "<p>从3月28日起，上海以黄浦江为界分别在浦东和浦西开展区域封控和大规模核酸筛查。" * 3 + "</p>\n"


def write_config(root: Path) -> Path:
    """A feeds.yaml with one source per category (Chinese names, as the real site has)."""
    lines = [
        "site:", "  title: 基准站", "  url: https://bench.example.org/", "  timezone: Asia/Shanghai",
        "  output_dir: public", "  database: bench.db", f"  feed_size: {POSTS_PER_CATEGORY}", "sources:",
    ]
    for n in range(CATEGORIES):
        lines += [f"  - name: 来源{n}", f"    url: https://src{n}.example.com/rss", f"    category: 分类{n}",
                  f"    interval: {10 + n}m"]
    lines += ["jekyll:", "  dir: jekyll", "  archive_after_days: 3"]
    path = root / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_post(source: str, slug: str, n: int, when: datetime) -> Post:
    """A realistically sized post (about 2 KB of Chinese HTML), without tags."""
    guid = f"NW{source}{n:06d}"
    post = Post(
        id=post_id(source, guid), source=source, title=f"{source}的第{n}篇文章：券商快速出台应急方案",
        link=f"https://{slug}.example.com/a/{n}", guid=guid, date=when, updated=None, author="记者",
        summary=f"<p>摘要 {n}</p>", content=PARAGRAPH * 6, categories=[slug], tags=[],
        enclosures=[Enclosure(f"https://cdn.example.com/{n}.jpg", "image/jpeg", 1000)] if n % 10 == 0 else [],
    )
    post.content_hash = content_hash(post)
    return post


def timed(func: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """(median seconds, last result) of `repeat` calls."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        root = Path(tmp)
        config = load_config(write_config(root))
        slugs = list(config.categories)
        store = Store(config.site.database)
        posts = [
            make_post(f"来源{c}", slugs[c], n, NOW - timedelta(minutes=7 * n + c))
            for c in range(CATEGORIES) for n in range(POSTS_PER_CATEGORY)
        ]
        store.store_posts(posts, config.categories, now=NOW)

        full_time, full = timed(lambda: build_site(config, store, now=NOW))
        print(f"full rebuild: {CATEGORIES} categories x {POSTS_PER_CATEGORY} posts: {full_time * 1000:.0f} ms, "
              f"{len(full.written)} files written")  # type: ignore[attr-defined]
        again_time, again = timed(lambda: build_site(config, store, now=NOW))
        print(f"full rebuild, nothing changed: {again_time * 1000:.0f} ms, {len(again.written)} files written")  # type: ignore[attr-defined]

        new = make_post("来源3", slugs[3], 999, NOW + timedelta(minutes=1))
        result = store.store_posts([new], config.categories, now=NOW)
        inc_time, inc = timed(
            lambda: publish_changed(config, store, result.categories, result.tags, result.post_ids, now=NOW)
        )
        out = config.site.output_dir
        touched = [p for p in inc.written if p.is_relative_to(out)]  # type: ignore[attr-defined]
        feeds = [p for p in touched if p.suffix == ".xml"]
        pages = [p for p in touched if p.suffix == ".html"]
        other = [p for p in touched if p.suffix not in (".xml", ".html")]
        print(f"incremental rebuild after one new post: {inc_time * 1000:.0f} ms")
        print(f"  files touched in output_dir: {len(touched)} = {len(feeds)} feed files + {len(pages)} pages + "
              f"{len(other)} JSON/OPML ({', '.join(str(p.relative_to(out)) for p in touched)})")
        print(f"  Jekyll files touched: {len(inc.written) - len(touched)}")  # type: ignore[attr-defined]

        items = feed_items(store.posts(category=slugs[0], limit=100), config.site.timezone, config.categories,
                           {s.name: s.url for s in config.sources})
        info = FeedInfo("分类0", "基准", "https://bench.example.org/fenlei0/", "https://bench.example.org/f/feed.xml",
                        "https://bench.example.org/f/atom.xml", "https://bench.example.org/f/feed.json", "zh-CN",
                        "基准站", "https://bench.example.org/", 10, config.site.timezone)
        for name, render in (("RSS", render_rss), ("Atom", render_atom), ("JSON Feed", render_json)):
            seconds, data = timed(lambda render=render: render(info, items), repeat=30)
            print(f"render one {len(items)}-post {name} feed: {seconds * 1000:.2f} ms ({len(data) // 1024} KB)")  # type: ignore[arg-type]
        store.close()


if __name__ == "__main__":
    main()
