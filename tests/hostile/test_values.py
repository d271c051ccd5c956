"""Hostile values in feeds and config: names, titles, dates, sizes, ids.

Each test runs the real `aggregator fetch` and `aggregator build` (with a jekyll section) in a folder a few
levels below tmp_path, and snapshots the whole tmp_path tree before and after: nothing may be written
outside the output folders and the database.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from aggregator.normalise import post_id

from ..conftest import write_config
from ..feedserver import FeedServer
from .helpers import (
    ATOM,
    DB_FILES,
    assert_no_traceback,
    assert_outputs_well_formed,
    cli,
    db_rows,
    files_under,
    front_matter,
    item,
    posts_of,
    rss,
    source_state,
    titles_in,
    tree,
)

SAFE_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{n}" for n in range(10)), *(f"lpt{n}" for n in range(10))}
OUR_FILES = {"feed.xml", "atom.xml", "feed.json", "index.html", "feeds.opml"}
FRONT_MATTER_KEYS = {"layout", "title", "date", "categories", "tags"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT)$"
)
JEKYLL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")


def jekyll_date(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S %z")


class Site:
    """A config folder three levels below tmp_path, with a snapshot of tmp_path taken before the run."""

    def __init__(self, tmp_path: Path, server: FeedServer):
        self.tmp = tmp_path
        self.server = server
        self.root = tmp_path / "a" / "b" / "c" / "site"
        self.root.mkdir(parents=True)
        self.before: dict[str, tuple[int, int]] = {}

    @property
    def db(self) -> Path:
        return self.root / "agg.db"

    @property
    def public(self) -> Path:
        return self.root / "public"

    @property
    def jekyll(self) -> Path:
        return self.root / "jekyll"

    def configure(self, sources: list[dict[str, Any]], *, jekyll: bool = True, **defaults: Any) -> None:
        sections: dict[str, Any] = {"jekyll": {"dir": "jekyll"}} if jekyll else {}
        write_config(
            self.root, sources, defaults={"interval": "30m", "timeout": "5s", "deadline": "20s", **defaults},
            **sections,
        )
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return tree(self.tmp, skip=(self.public, self.jekyll, *(self.root / f for f in DB_FILES)))

    def fetch_and_build(self, fetch_ok: bool = True) -> None:
        fetched = cli("fetch", cwd=self.root)
        assert_no_traceback(fetched)
        if fetch_ok:
            assert fetched.returncode == 0, str(fetched)
        built = cli("build", cwd=self.root)
        assert_no_traceback(built)
        assert built.returncode == 0, str(built)
        assert_outputs_well_formed(self.public, self.jekyll)

    def assert_nothing_written_outside(self) -> None:
        after = self.snapshot()
        added = sorted(set(after) - set(self.before))
        changed = sorted(k for k in self.before if k in after and after[k] != self.before[k] and not
                         (self.tmp / k).is_dir())
        removed = sorted(set(self.before) - set(after))
        assert not (added or changed or removed), f"outside the output folders: {added=} {changed=} {removed=}"
        for root in (self.public, self.jekyll):
            for path in files_under(root):
                assert path.resolve().is_relative_to(root.resolve()), path


@pytest.fixture
def site(tmp_path: Path, server: FeedServer) -> Site:
    return Site(tmp_path, server)


# -- names -------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../etc", "..", "CON", "nul", "A" * 300, "长" * 300, "", "/etc/passwd", ".hidden", "tag", "x/../../y",
    "%2e%2e%2f", "..\\..\\windows", "~root", "a\x00b", "com1.txt",
]


def test_hostile_category_and_tag_names_stay_inside_output(site: Site) -> None:
    """Category names (feeds.yaml) and tags (the feed's <category>) that look like paths, devices, or are huge
    or empty: every folder written is a safe slug inside output_dir, and Jekyll front matter reads back."""
    tags = "".join(f"<category>{escape(name.replace(chr(0), ''))}</category>" for name in HOSTILE_NAMES)
    feed = rss([item(f"n{i}", f"entry {i}", link=f"http://n.example.com/{i}", extra=tags) for i in range(3)])
    categories = ["../../etc", "..", "CON", "A" * 300, "长" * 300, "", "/x/passwd", "...", "lpt1"]
    site.configure([{"name": "names", "url": site.server.add("/names.xml", feed), "category": categories,
                     "tags": ["../up", "CON"]}])
    site.fetch_and_build()
    site.assert_nothing_written_outside()

    folders = sorted({p.relative_to(site.public).parts[:-1] for p in files_under(site.public)})
    assert len(folders) > 10, folders
    for parts in folders:
        slugs = parts[1:] if parts[:1] == ("tag",) else parts
        assert len(slugs) <= 1, parts
        for slug in slugs:
            assert SAFE_SLUG.match(slug) and len(slug) <= 64, parts
            assert slug.split(".")[0] not in WINDOWS_RESERVED, parts
    assert {p.name for p in files_under(site.public)} <= OUR_FILES
    stored = posts_of(site.db, "names")
    assert len(stored) == 3
    for path in files_under(site.jekyll):
        meta, _, _ = front_matter(path)
        post = next(p for p in stored if p["id"] in path.name)
        assert meta["tags"] == json.loads(post["tags"]) and meta["categories"] == json.loads(post["categories"])[0]


# -- titles ------------------------------------------------------------------------------------------

HOSTILE_TITLES = [
    'He said "hi": yes',
    "key: value",
    "---",
    "--- front matter breaker ---",
    "line one\nline two\n---\nlayout: evil\ntitle: injected",
    "'single' and \"double\" quotes",
    "- list item",
    "? complex key",
    "&anchor *alias !tag %directive @at `tick`",
    "# comment-like",
    "{a: 1, b: [2]}",
    "[1, 2]",
    "null",
    "~",
    "yes",
    "1e3",
    "2022-03-28",
    "12:30",
    "back\\slash \\n not a newline",
    "tab\there",
    "emoji 🎉 and 中文：标题",
    "...",
    "| pipe",
    "> folded",
    "\u2028line separator and NEL\x85 and BOM\ufeff",
    "%YAML 1.2",
    "title: nested: colons: everywhere",
]
#: titles a reader must get back exactly (no whitespace or control characters to normalise)
VERBATIM = [t for t in HOSTILE_TITLES if not re.search(r"[\s\x85\ufeff\u2028]", t.replace(" ", ""))]


def test_hostile_titles_round_trip_through_front_matter_and_feeds(site: Site) -> None:
    feed = rss([
        item(f"t{i}", escape(title), link=f"http://t.example.com/{i}") for i, title in enumerate(HOSTILE_TITLES)
    ])
    site.configure([{"name": "titles", "url": site.server.add("/titles.xml", feed), "category": "titles"}])
    site.fetch_and_build()
    site.assert_nothing_written_outside()

    stored = {p["id"]: p["title"] for p in posts_of(site.db, "titles")}
    assert len(stored) == len(HOSTILE_TITLES)
    missing = [t for t in VERBATIM if t not in stored.values()]
    assert not missing, f"titles changed on the way in: {missing}"
    for path in files_under(site.jekyll):
        meta, _, lines = front_matter(path)
        post_id = path.stem[11:]
        # `<` and `>` are written as references (a layout may insert the title unescaped)
        assert meta["title"] == stored[post_id].replace("<", "&lt;").replace(">", "&gt;"), path
        assert set(meta) == FRONT_MATTER_KEYS and meta["layout"] == "post", meta
        assert len(lines) == 5, lines  # nothing in a title adds a line to the front matter
    for name in ("feed.xml", "atom.xml", "feed.json"):
        assert sorted(titles_in(site.public / "titles" / name)) == sorted(stored.values()), name


def test_links_with_spaces_and_braces_are_published_percent_encoded(site: Site) -> None:
    """A link with spaces, quotes or braces (feeds carry them) is republished as a browser would send it,
    not as an invalid URI; the post's id still comes from the link as the feed gave it, so it is stable."""
    raw = 'http://s.example.com/a b/{x}|"q".html?k=1 2&v=%41'
    enclosure = '<enclosure url="http://s.example.com/a b.mp3" type="audio/mpeg" length="3"/>'
    feed = rss([f"<item><title>spaced</title><link>{escape(raw)}</link>{enclosure}</item>"])
    site.configure([{"name": "links", "url": site.server.add("/links.xml", feed), "category": "links"}])
    site.fetch_and_build()

    encoded = "http://s.example.com/a%20b/%7Bx%7D%7C%22q%22.html?k=1%202&v=%41"
    [post] = posts_of(site.db, "links")
    assert post["link"] == encoded
    assert post["id"] == post_id("links", raw)  # the id an older version gave it
    rss_item = etree.parse(str(site.public / "links" / "feed.xml")).find(".//item")
    assert rss_item.findtext("link") == encoded
    assert rss_item.find("enclosure").get("url") == "http://s.example.com/a%20b.mp3"
    atom = etree.parse(str(site.public / "links" / "atom.xml"))
    hrefs = [e.get("href") for e in atom.iter("{http://www.w3.org/2005/Atom}link")]
    assert encoded in hrefs and not [h for h in hrefs if " " in h], hrefs
    [jekyll_post] = files_under(site.jekyll)
    assert f"<{encoded}>" in jekyll_post.read_text(encoding="utf-8")


# -- dates -------------------------------------------------------------------------------------------


def test_out_of_range_date_does_not_fail_the_whole_source(site: Site) -> None:
    """An entry dated year 1 without a zone (read in the site's +08:00 zone, it falls before year 1 in UTC)
    must cost at most that entry's date, not the whole feed."""
    feed = rss([
        item("ok-1", "normal entry", link="http://d.example.com/ok-1"),
        item("year-1", "year one", link="http://d.example.com/y1", date="0001-01-01T00:00:00"),
        item("year-0", "year zero", link="http://d.example.com/y0", date="Mon, 01 Jan 0000 00:00:00 GMT"),
        item("ok-2", "another normal entry", link="http://d.example.com/ok-2"),
    ])
    site.configure([{"name": "dates", "url": site.server.add("/dates.xml", feed), "category": "dates"}])
    fetched = cli("fetch", cwd=site.root)
    assert_no_traceback(fetched)
    state = source_state(site.db, "dates")
    assert state["result"] == "ok", f"source failed: {state['error']!r}"
    assert {p["guid"] for p in posts_of(site.db, "dates")} >= {"ok-1", "ok-2"}
    site.fetch_and_build()
    site.assert_nothing_written_outside()


def test_control_characters_and_year_one_never_stop_publishing(site: Site) -> None:
    """An enclosure type or an absolute-IRI id with a control character, and a date in year 1 in a site
    west of UTC (no such local time): each once made every build and publish fail, for good."""
    json_feed = json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "j",
        "items": [{"id": "http://j.example.com/guid\u0001x", "url": "http://j.example.com/1", "title": "ctl id",
                   "content_text": "x", "attachments": [{"url": "http://j.example.com/a.mp3",
                                                         "mime_type": "audio/mpeg\u0001"}]}],
    })
    rss_feed = rss([item("y1", "year one", link="http://y.example.com/1", date="Mon, 01 Jan 0001 00:00:00 GMT")])
    sources = [{"name": "json", "url": site.server.add("/j.json", json_feed, content_type="application/feed+json"),
                "category": "j"},
               {"name": "old", "url": site.server.add("/y.xml", rss_feed), "category": "y"}]
    write_config(site.root, sources, site={"timezone": "America/New_York"}, jekyll={"dir": "jekyll"},
                 defaults={"interval": "30m", "timeout": "5s", "deadline": "20s"})
    site.before = site.snapshot()
    site.fetch_and_build()
    atom = etree.parse(str(site.public / "j" / "atom.xml"))
    entry_id = atom.findtext(".//{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}id")
    assert entry_id.startswith("urn:uuid:"), entry_id
    enclosure = etree.parse(str(site.public / "j" / "feed.xml")).find(".//enclosure")
    assert enclosure.get("type") == "audio/mpeg"
    [old] = posts_of(site.db, "old")
    assert old["date"] > "2000", old["date"]  # year 1 is no date: the first-seen time
    listed = cli("posts", "--format", "json", cwd=site.root)
    assert listed.returncode == 0 and "year one" in listed.stdout, str(listed)


def test_remote_text_is_never_markup_and_tags_are_bounded(site: Site) -> None:
    """A title like `[/bold]` once crashed `posts` (rich markup); a tag `<img onerror>` reached Jekyll's
    front matter raw (layouts print `{{ tag }}` unescaped); 2,000 tags on one entry made 4,000 files;
    a JSON Feed date before year 1 in UTC failed its whole source."""
    tags = "<category>&amp;lt;img src=x onerror=alert(1)&amp;gt;</category>" + "".join(
        f"<category>t{n}</category>" for n in range(200))
    feed = rss([item("m1", escape("[/bold] closing [link=https://evil.example/]x"), link="http://m.example.com/1",
                     extra=tags)])
    json_feed = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j", "items": [
        {"id": "early", "url": "http://j.example.com/e", "title": "early", "content_text": "x",
         "date_published": "0001-01-01T00:30:00+14:00"}]})
    site.configure([{"name": "markup", "url": site.server.add("/m.xml", feed), "category": "m"},
                    {"name": "json", "url": site.server.add("/j.json", json_feed, content_type="application/feed+json"),
                     "category": "j"}])
    site.fetch_and_build()
    listed = cli("posts", cwd=site.root)
    assert listed.returncode == 0 and "[/bold] closing [link=https://evil.example/]x" in listed.stdout, str(listed)
    [post] = posts_of(site.db, "markup")
    assert len(json.loads(post["tags"])) == 25
    assert len(list((site.public / "tag").iterdir())) <= 26
    [meta] = [m for m in (front_matter(p)[0] for p in files_under(site.jekyll)) if "closing" in m["title"]]
    assert "<img src=x onerror=alert(1)>" not in meta["tags"] and "&lt;img src=x onerror=alert(1)&gt;" in meta["tags"]
    assert [p["title"] for p in posts_of(site.db, "json")] == ["early"]


def test_extreme_dates_give_valid_dates_in_every_output(site: Site) -> None:
    """Years 1900 and 9999, garbage, empty, an impossible day and the epoch's eve: every entry is stored and
    every date written is valid in its format (RFC 822 in RSS, RFC 3339 in Atom and JSON Feed, Jekyll's
    `YYYY-MM-DD HH:MM:SS +HHMM`). 1900 is the interesting one: Asia/Shanghai's offset then was LMT +08:05:43."""
    dates = {
        "y1900": "Mon, 01 Jan 1900 00:00:00 GMT",
        "y1900-local": "1900-06-01T12:00:00+08:00",
        "y9999": "Fri, 31 Dec 9999 23:59:59 GMT",
        "garbage": "not a date at all",
        "empty": "",
        "feb30": "2022-02-30T10:00:00Z",
        "eve": "1969-12-31T23:59:59Z",
        "normal": "Mon, 28 Mar 2022 10:00:00 +0800",
    }
    feed = rss([item(k, f"dated {k}", link=f"http://d.example.com/{k}", date=v) for k, v in dates.items()])
    site.configure([{"name": "dates", "url": site.server.add("/dates.xml", feed), "category": "dates"}])
    started = datetime.now(UTC)
    site.fetch_and_build()
    site.assert_nothing_written_outside()
    stored = posts_of(site.db, "dates")
    assert {p["guid"] for p in stored} == set(dates)
    assert all(datetime.fromisoformat(p["date"].replace("Z", "+00:00")) <= started + timedelta(days=1, minutes=5)
               for p in stored), [p["date"] for p in stored]

    bad: list[str] = []

    def check(where: str, value: str | None, pattern: re.Pattern[str], parse: Callable[[str], Any]) -> None:
        try:
            ok = bool(value) and pattern.match(value) is not None and parse(value) is not None
        except (ValueError, TypeError):
            ok = False
        if not ok:
            bad.append(f"{where}: {value!r}")

    for path in files_under(site.public):
        if path.name == "feed.xml":
            root = etree.fromstring(path.read_bytes())
            for el in [*root.iter("pubDate"), *root.iter("lastBuildDate")]:
                check(f"{path.relative_to(site.root)} {el.tag}", el.text, RFC822, parsedate_to_datetime)
        elif path.name == "atom.xml":
            root = etree.fromstring(path.read_bytes())
            for el in [*root.iter(f"{ATOM}updated"), *root.iter(f"{ATOM}published")]:
                check(f"{path.relative_to(site.root)} {el.tag[len(ATOM):]}", el.text, RFC3339, datetime.fromisoformat)
        elif path.name == "feed.json":
            for entry in json.loads(path.read_text(encoding="utf-8"))["items"]:
                for key in ("date_published", "date_modified"):
                    check(f"{path.relative_to(site.root)} {key}", entry.get(key), RFC3339, datetime.fromisoformat)
    for path in files_under(site.jekyll):
        line = next(x for x in front_matter(path)[2] if x.startswith("date: "))[6:]
        check(f"{path.relative_to(site.root)} date", line, JEKYLL_DATE, jekyll_date)
        if JEKYLL_DATE.match(line) and not path.name.startswith(line[:10]):
            bad.append(f"{path.name}: file name day differs from its date {line!r}")
    assert not bad, "\n".join(sorted(set(bad)))


# -- sizes and ids -----------------------------------------------------------------------------------


def test_100000_entries_store_only_the_newest_max_entries(site: Site) -> None:
    """defaults.max_entries (1,000 by default) caps what one fetch stores, newest first, whatever the order of
    the document. (No jekyll section here: exporting 1,000 posts is tested elsewhere and only costs time.)"""
    base = datetime(2022, 1, 1, tzinfo=UTC)
    order = list(range(100_000))
    random.Random(6).shuffle(order)
    entries = "".join(
        f"<item><guid>g{i}</guid><pubDate>{(base + timedelta(minutes=i)).strftime('%d %b %Y %H:%M:%S')} GMT"
        "</pubDate></item>"
        for i in order
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>huge</title>{entries}</channel></rss>'
    site.configure([{"name": "huge", "url": site.server.add("/huge.xml", body), "category": "huge"}], jekyll=False)
    fetched = cli("fetch", cwd=site.root, timeout=120)
    assert_no_traceback(fetched)
    assert fetched.returncode == 0, str(fetched)
    print(f"100,000 entries: fetch took {fetched.seconds:.1f}s, peak {fetched.max_rss_mb:.0f} MB")
    guids = {p["guid"] for p in posts_of(site.db, "huge")}
    assert len(guids) == 1000
    assert guids == {f"g{i}" for i in range(99_000, 100_000)}
    feed = etree.fromstring((site.public / "huge" / "feed.xml").read_bytes())
    assert [el.text for el in feed.iter("guid")] == [f"g{i}" for i in range(99_999, 99_949, -1)]
    site.assert_nothing_written_outside()


def test_10kb_guid_and_duplicate_ids_in_one_feed(site: Site) -> None:
    long_guid = "http://g.example.com/" + "x" * 10_240
    feed = rss([
        item(long_guid, "ten kilobyte guid", link="http://g.example.com/long"),
        item("dup", "first of the duplicates", link="http://g.example.com/dup-1",
             date="Mon, 28 Mar 2022 12:00:00 +0800"),
        item("dup", "second of the duplicates", link="http://g.example.com/dup-2",
             date="Mon, 28 Mar 2022 11:00:00 +0800"),
        item("dup", "third of the duplicates", link="http://g.example.com/dup-3"),
        item("other", "an ordinary entry", link="http://g.example.com/other"),
    ])
    site.configure([{"name": "ids", "url": site.server.add("/ids.xml", feed), "category": "ids"}])
    site.fetch_and_build()
    site.assert_nothing_written_outside()
    stored = posts_of(site.db, "ids")
    assert len(stored) == 3, [(p["guid"][:30], p["title"]) for p in stored]
    assert [p["title"] for p in stored if p["guid"] == "dup"] == ["first of the duplicates"]
    assert any(p["title"] == "ten kilobyte guid" and long_guid.startswith(p["guid"]) for p in stored)
    for path in files_under(site.public / "ids"):
        if path.name == "feed.xml":
            ids = [el.text for el in etree.fromstring(path.read_bytes()).iter("guid")]
        elif path.name == "atom.xml":
            ids = [el.findtext(f"{ATOM}id") for el in etree.fromstring(path.read_bytes()).iter(f"{ATOM}entry")]
        elif path.name == "feed.json":
            ids = [i["id"] for i in json.loads(path.read_text(encoding="utf-8"))["items"]]
        else:
            continue
        assert len(ids) == 3 and len(set(ids)) == 3, (path.name, [i[:40] for i in ids])
    assert len(files_under(site.jekyll)) == 3


def test_distinct_long_guids_sharing_a_prefix_are_distinct_posts(site: Site) -> None:
    """Two entries whose 10 KB guids differ only after the first 5 KB are two entries, not one."""
    prefix = "urn:long:" + "p" * 5_000
    feed = rss([
        item(prefix + "A" * 5_000, "first long guid", link="http://g.example.com/a"),
        item(prefix + "B" * 5_000, "second long guid", link="http://g.example.com/b"),
    ])
    site.configure([{"name": "ids", "url": site.server.add("/ids.xml", feed), "category": "ids"}])
    site.fetch_and_build()
    titles = sorted(p["title"] for p in posts_of(site.db, "ids"))
    assert titles == ["first long guid", "second long guid"]
    assert len(db_rows(site.db, "SELECT id FROM posts")) == 2
