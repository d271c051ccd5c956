"""The measured scenarios, each run in a fresh process by `bench.run_all`:

    python -m bench.scenarios NAME SPEC.json OUT.json

SPEC.json says where the corpus, the working folder and the corpus server are; OUT.json receives
wall/CPU seconds, peak RSS, counts, phases and `errors` (the failed correctness checks). Only the
region between `meter.begin()` and `meter.end()` is timed: imports and reading the spec are not.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .corpus import Corpus, Manifest
from .measure import Meter

Spec = dict[str, Any]
Result = dict[str, Any]


def _corpus(spec: Spec) -> Corpus:
    root = Path(spec["corpus_root"])
    return Corpus(root, Manifest.load(root / "manifest.json"))


# -- floor -----------------------------------------------------------------------------------------


def floor(spec: Spec) -> Result:
    """Bare `feedparser.parse(bytes)` of every feed of generation 0, one process, no HTTP or storage."""
    import feedparser

    corpus = _corpus(spec)
    metas = corpus.manifest.meta
    meter = Meter()
    meter.begin()
    entries = bozo = 0
    for meta in metas:
        result = feedparser.parse(corpus.path(0, meta).read_bytes())
        entries += len(result.entries)
        bozo += bool(result.get("bozo"))
    meter.end()
    expected = sum(m.entries for m in metas)
    errors = [] if entries == expected else [f"floor: parsed {entries} entries, expected {expected}"]
    return meter.result(feeds=len(metas), entries=entries, bozo_feeds=bozo, errors=errors)


# -- the aggregator: the code path of `aggregator fetch` -----------------------------------------


def output_problems(config: Any, store: Any, check_jekyll: bool = True) -> list[str]:
    """Every expected output file that is missing: category, tag and top-level feeds, pages, Jekyll."""
    from aggregator.publish.jekyll import ARCHIVE, POSTS

    tag_counts = store.tag_counts()

    out = config.site.output_dir
    missing = [f"{name}" for name in ("feed.xml", "atom.xml", "feed.json", "index.html", "feeds.opml")
               if not (out / name).is_file()]
    for slug in config.categories:
        missing += [f"{slug}/{name}" for name in ("feed.xml", "atom.xml", "feed.json", "index.html")
                    if not (out / slug / name).is_file()]
    for slug, (_name, count) in tag_counts.items():
        if count >= config.site.tag_feed_min:
            missing += [f"tag/{slug}/{name}" for name in ("feed.xml", "atom.xml")
                        if not (out / "tag" / slug / name).is_file()]
    problems = [f"missing output {m}" for m in missing[:10]]
    if len(missing) > 10:
        problems.append(f"... and {len(missing) - 10} more missing outputs")
    if check_jekyll and config.jekyll is not None:
        folders = [config.jekyll.dir / d for d in (POSTS, ARCHIVE)]
        files = sum(len(os.listdir(d)) for d in folders if d.is_dir())
        posts = store.count_posts()
        if files != posts:
            problems.append(f"Jekyll export has {files} files for {posts} posts")
    return problems


def fetch(spec: Spec) -> Result:
    """`aggregator fetch` (`update.fetch_and_publish`, its steps timed apart): load the config, open
    the store, note the run and fetch_sources, then publish_run (publish_changed)."""
    from aggregator.config import load_config
    from aggregator.pipeline import fetch_sources
    from aggregator.store import Store
    from aggregator.update import publish_run, start_run

    kind = spec["kind"]  # cold, warm, churn
    config_path = Path(spec["config"])
    database_existed = (config_path.parent / "aggregator.db").exists()
    meter = Meter()
    meter.begin()
    with meter.phase("config"):
        config = load_config(config_path)
    with meter.phase("open"):
        store = Store(config.site.database)
    with meter.phase("fetch"):
        run = start_run(store)
        report = fetch_sources(config, store, None, workers=spec["workers"])
    with meter.phase("publish"):
        update = publish_run(config, store, run, report)
    published = update.published
    meter.end()

    sources = len(config.sources)
    posts = store.count_posts()
    expect = spec.get("expect", {})
    errors = [f"{kind}: source {o.source} failed: {o.error}" for o in report.failed[:5]]
    errors += [f"{kind}: publishing failed: {update.publish_error}"] if update.publish_error else []
    if len(report.failed) > 5:
        errors.append(f"{kind}: ... {len(report.failed)} sources failed in all")
    if kind == "cold":
        if database_existed and not spec.get("prefilled"):
            errors.append("cold: the database existed before the run")
        if report.count("ok") != sources:
            errors.append(f"cold: {report.count('ok')} of {sources} sources ok")
        if report.new != expect["new"]:
            errors.append(f"cold: {report.new} new posts, expected {expect['new']}")
        if posts != expect["posts"]:
            errors.append(f"cold: database holds {posts} posts, expected exactly {expect['posts']}")
        errors += [f"cold: {p}" for p in output_problems(config, store, check_jekyll=not spec.get("prefilled"))]
    elif kind == "warm":
        if report.count("not-modified") != sources:
            errors.append(f"warm: {report.count('not-modified')} of {sources} sources not modified")
        if report.new or report.updated:
            errors.append(f"warm: {report.new} new and {report.updated} updated posts, expected none")
        if posts != expect["posts"]:
            errors.append(f"warm: database holds {posts} posts, expected {expect['posts']}")
    elif kind == "churn":
        if report.new != expect["new"] or report.updated != expect["updated"]:
            errors.append(f"churn: {report.new} new + {report.updated} updated posts, "
                          f"expected {expect['new']} + {expect['updated']}")
        if posts != expect["posts"]:
            errors.append(f"churn: database holds {posts} posts, expected {expect['posts']}")
        errors += [f"churn: {p}" for p in output_problems(config, store)]
    store.close()
    ok_names = {o.source for o in report.outcomes if o.result == "ok"}
    parsed = sum(m.entries for m in _corpus(spec).manifest.meta if m.name in ok_names)
    return meter.result(
        feeds=sources, entries=parsed, posts=posts, new=report.new, updated=report.updated,
        ok=report.count("ok"), not_modified=report.count("not-modified"), failed=len(report.failed),
        written=len(published.written) if published else 0, unchanged=published.unchanged if published else 0,
        errors=errors,
    )


# -- reader ----------------------------------------------------------------------------------------


def reader(spec: Spec) -> Result:
    """lemon24's `reader`: add every feed URL (cold only), then update_feeds(workers=W)."""
    import reader as reader_lib

    kind = spec["kind"]  # reader-cold, reader-warm
    db = Path(spec["workdir"]) / "reader.sqlite"
    urls = [spec["base_url"] + m.path for m in _corpus(spec).manifest.meta]
    existed = db.exists()
    meter = Meter()
    meter.begin()
    with meter.phase("open"):
        r = reader_lib.make_reader(str(db))
    if kind == "reader-cold":
        with meter.phase("add"):
            for url in urls:
                r.add_feed(url, exist_ok=True)
    with meter.phase("update"):
        # scheduled=False: update every feed now (the warm run comes right after the cold one)
        r.update_feeds(workers=spec["workers"], scheduled=False)
    meter.end()
    counts = r.get_entry_counts()
    broken = list(r.get_feeds(broken=True))
    errors = [f"{kind}: feed {f.url} broken: {f.last_exception}" for f in broken[:5]]
    expected = spec["expect"]["posts"]
    if counts.total != expected:
        errors.append(f"{kind}: reader holds {counts.total} entries, expected {expected}")
    if kind == "reader-cold" and existed:
        errors.append("reader-cold: the database existed before the run")
    r.close()
    return meter.result(feeds=len(urls), entries=expected if kind == "reader-cold" else 0, posts=counts.total,
                        reader_version=reader_lib.__version__, errors=errors)


# -- rebuild ---------------------------------------------------------------------------------------


def rebuild(spec: Spec) -> Result:
    """Full `build_site` of every output into a fresh output folder, from the database as it is."""
    from aggregator.config import load_config
    from aggregator.publish import build_site
    from aggregator.store import Store

    meter = Meter()
    meter.begin()
    with meter.phase("config"):
        config = load_config(Path(spec["config"]))
    with meter.phase("open"):
        store = Store(config.site.database)
    with meter.phase("build"):
        report = build_site(config, store)
    meter.end()
    errors = [f"rebuild: {p}" for p in output_problems(config, store)]
    posts = store.count_posts()
    store.close()
    return meter.result(posts=posts, entries=posts, written=len(report.written), unchanged=report.unchanged,
                        errors=errors)


SCENARIOS: dict[str, Callable[[Spec], Result]] = {
    "floor": floor, "cold": fetch, "warm": fetch, "churn": fetch, "reader-cold": reader, "reader-warm": reader,
    "rebuild": rebuild, "fetch": fetch,
}


def main() -> None:
    name, spec_path, out_path = sys.argv[1:4]
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    spec.setdefault("kind", name)
    try:
        result = SCENARIOS[name](spec)
    except Exception as exc:  # reported, and the run fails loudly
        import traceback

        traceback.print_exc()
        result = {"errors": [f"{name}: crashed: {type(exc).__name__}: {exc}"]}
    result["scenario"] = name
    Path(out_path).write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
