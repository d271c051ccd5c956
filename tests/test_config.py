"""feeds.yaml validation: every mistake is one line FILE:LINE: message, exit 2, database untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.config import load_config, parse_interval
from aggregator.errors import ConfigError

from .conftest import ROOT, run_cli

VALID = """\
site:
  title: 财经新闻聚合
  url: https://news.example.com/
  timezone: Asia/Shanghai
  output_dir: var/public
  database: var/aggregator.db
defaults:
  interval: 30m
sources:
  - name: 每日经济新闻
    url: https://example.com/rss.xml
    category: 每日经济新闻
    slug: meirijingjixinwen
    tags: [每日经济新闻新闻]
    interval: 10m
    timezone: Asia/Shanghai
    enabled: true
    include: ["券商|证券"]
    exclude: ["广告"]
  - name: Hacker News
    url: https://hnrss.org/frontpage
    category: [Tech News, 科技]
rules:
  - match: "券商"
    categories: [券商]
    tags: [券商]
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_issue_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(VALID, encoding="utf-8")
    config = load_config(path)
    src = config.source("每日经济新闻")
    assert src.interval == 600
    assert [c.slug for c in src.categories] == ["meirijingjixinwen"]
    assert src.tags == ("每日经济新闻新闻",)
    assert [c.slug for c in config.source("Hacker News").categories] == ["tech-news", "keji"]
    assert config.site.output_dir == tmp_path / "var/public"
    assert config.site.database == tmp_path / "var/aggregator.db"
    assert config.defaults.interval == 1800
    assert config.categories["quanshang"] == "券商"
    # worked out once per config (each source's store asks for it): the same mapping every time
    assert config.categories is config.categories
    assert list(config.categories) == ["meirijingjixinwen", "tech-news", "keji", "quanshang"]


def test_repo_feeds_yaml_passes_check() -> None:
    result = run_cli("check", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout


@pytest.mark.parametrize(
    ("edit", "line", "needle"),
    [
        (("  interval: 30m\n", "  interval: 30m\n  colour: blue\n"), 9, "unknown key 'colour' in defaults"),
        (("    url: https://example.com/rss.xml\n", ""), 10, "has no url"),
        (("https://example.com/rss.xml", "ftp://example.com/rss.xml"), 11, "url must be http(s)"),
        (("https://example.com/rss.xml", "example.com/rss.xml"), 11, "url must be http(s)"),
        (("https://example.com/rss.xml", "file:///etc/passwd"), 11, "url must be http(s)"),
        (("    interval: 10m\n", "    interval: soon\n"), 15, "bad interval 'soon'"),
        (("    timezone: Asia/Shanghai\n", "    timezone: Asia/Atlantis\n"), 16, "unknown time zone 'Asia/Atlantis'"),
        (('include: ["券商|证券"]', 'include: ["券商(证券"]'), 18, "bad regex '券商(证券' in include"),
        (("  - name: Hacker News", "  - name: 每日经济新闻"), 20, "duplicate source name '每日经济新闻'"),
        (("[Tech News, 科技]", "[Tech News, tech-news]"), 22, "both map to slug 'tech-news'"),
        (("    categories: [券商]", "    categories: [券商]\n    colour: red"), 26, "unknown key 'colour' in a rule"),
        (("slug: meirijingjixinwen", "slug: Bad/Slug"), 13, "slug must be lowercase"),
    ],
)
def test_each_config_error_names_its_line(tmp_path: Path, edit: tuple[str, str], line: int, needle: str) -> None:
    text = VALID.replace(*edit)
    assert text != VALID
    found = problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / 'feeds.yaml'}:{line}: ") and needle in p for p in found), found


def test_slug_only_with_single_category(tmp_path: Path) -> None:
    text = VALID.replace("category: [Tech News, 科技]", "category: [Tech News, 科技]\n    slug: tech")
    assert any("slug is only allowed with a single category" in p for p in problems(tmp_path, text))


def test_an_unclosed_quote_or_bracket_names_the_line_it_opened_on(tmp_path: Path) -> None:
    """The parser notices an unclosed quote where it gives up, often past the last line: the line
    to fix is where the quote or bracket opened."""
    start = "site:\n  title: t\n  url: http://127.0.0.1:8080/\nsources:\n  - name: A\n    url: http://x/a.xml\n"
    rest = "  - name: B\n    url: http://x/b.xml\n"
    assert problems(tmp_path, start + '    tags: "unclosed\n' + rest) == [
        f"{tmp_path / 'feeds.yaml'}:7: invalid YAML: while scanning a quoted scalar on line 7: "
        "found unexpected end of stream on line 10"]
    assert problems(tmp_path, start + "    category: [a, b\n" + rest) == [
        f"{tmp_path / 'feeds.yaml'}:7: invalid YAML: while parsing a flow sequence on line 7: "
        "did not find expected ',' or ']' on line 8"]
    inside = start + "    tags: [\n     a,\n     c: d: e,\n    ]\n"  # a mistake inside: named where it is
    assert problems(tmp_path, inside) == [
        f"{tmp_path / 'feeds.yaml'}:9: invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence "
        "on line 7)"]
    assert problems(tmp_path, "site:\n  title: t\n url: http://x/\n") == [
        f"{tmp_path / 'feeds.yaml'}:3: invalid YAML: did not find expected key (while parsing a block mapping on line 1)"]


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    text = VALID.replace("interval: 10m", "interval: x").replace("Asia/Shanghai\n    enabled", "Nowhere\n    enabled")
    assert len(problems(tmp_path, text)) == 2


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace("tags: [每日经济新闻新闻]", "tags: [每日经济新闻新闻"))
    assert len(found) == 1 and found[0].startswith(f"{tmp_path / 'feeds.yaml'}:") and "invalid YAML" in found[0]


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    found = problems(tmp_path, VALID.replace("  interval: 30m\n", "  interval: 30m\n  interval: 1h\n"))
    assert "duplicate key" in found[0]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), (45, 45)])
def test_parse_interval(text: object, seconds: int) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["0m", "-5m", "10 minutes", "", True])
def test_parse_interval_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_interval(text)


def test_check_cli_exit_2_one_line_and_database_untouched(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(VALID.replace("10m", "ten minutes"), encoding="utf-8")
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "feeds.yaml:15: interval: bad interval 'ten minutes' (use a number with s, m, h or d, e.g. 30m)"
    )
    assert not (tmp_path / "var").exists()


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_file_is_an_error(tmp_path: Path, text: str) -> None:
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'feeds.yaml'}:1: the file is empty; it needs at least a sources: list (sources: [] for none yet)"
    ]
    (tmp_path / "feeds.yaml").write_text("sources: []\n", encoding="utf-8")
    assert load_config(tmp_path / "feeds.yaml").sources == ()  # no sources yet: valid, with a warning


def test_check_warns_of_commas_and_of_no_sources(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "sources:\n  - name: a\n    url: http://127.0.0.1:9/x\n    tags: business, news\n    category: 财经，新闻\n",
        encoding="utf-8",
    )
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "warning: feeds.yaml:2: source 'a': tag 'business, news' has a comma; for several, write a list: "
        "[business, news]",
        "warning: feeds.yaml:2: source 'a': category '财经，新闻' has a comma; for several, write a list: [财经, 新闻]",
    ]
    (tmp_path / "feeds.yaml").write_text("sources: []\n", encoding="utf-8")
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 0 and result.stderr == "warning: feeds.yaml: no sources yet: nothing will be fetched\n"


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert "feeds.yaml: no such file" in result.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(VALID, encoding="utf-8")
    result = run_cli("check", cwd=tmp_path, env={"AGGREGATOR_CONFIG": "other.yaml"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("other.yaml: ok: 2 sources")


def test_yaml_1_2_scalars_and_anchors(tmp_path: Path) -> None:
    """feeds.yaml means what YAML 1.2 says: `no`/`on` are names, not booleans; anchors and merge keys work."""
    head, rules = VALID.split("rules:")
    head = head.replace("category: [Tech News, 科技]", "category: [no, on]")
    head = head.replace("  - name: 每日经济新闻\n", "  - &first\n    name: 每日经济新闻\n")
    merged = "  - <<: *first\n    name: 第二个\n    url: https://example.com/2.xml\n    slug: dier\n"
    path = tmp_path / "feeds.yaml"
    path.write_text(head + merged + "rules:" + rules, encoding="utf-8")
    config = load_config(path)
    assert [c.name for c in config.sources[1].categories] == ["no", "on"]
    second = config.sources[2]
    assert (second.name, second.url, second.interval, second.tags) == (
        "第二个", "https://example.com/2.xml", 600, ("每日经济新闻新闻",)
    )


def test_fast_reader_keeps_lines_merges_and_refuses_duplicates() -> None:
    from aggregator.config.fastyaml import load_lined

    data = load_lined("a: yes\nb: 010\nc: 1:30\nbase: &b\n  x: 1\n  y: 2\nm:\n  <<: *b\n  y: 3\nl:\n  - one\n  - k: v\n")
    assert data == {"a": "yes", "b": 10, "c": "1:30", "base": {"x": 1, "y": 2}, "m": {"x": 1, "y": 3},
                    "l": ["one", {"k": "v"}]}
    assert (data.key_line("m", 0), data["m"].key_line("y", 0), data["l"].item_line(1, 0)) == (7, 9, 12)
    with pytest.raises(Exception, match="duplicate key 'a'"):
        load_lined("a: 1\na: 2\n")


def test_category_slugs_are_remembered_beside_the_database(tmp_path: Path) -> None:
    """The second load takes slugs from `<database>-slugs.json` (no pypinyin); the file pins them."""
    path = tmp_path / "feeds.yaml"
    path.write_text(VALID.replace("var/aggregator.db", "agg.db"), encoding="utf-8")
    load_config(path)
    memo = tmp_path / "agg.db-slugs.json"
    saved = json.loads(memo.read_text(encoding="utf-8"))
    assert saved["slugs"]["科技"] == "keji" and "每日经济新闻" not in saved["slugs"]  # that one has slug:
    saved["slugs"]["科技"] = "pinned-by-memo"
    memo.write_text(json.dumps(saved, ensure_ascii=False), encoding="utf-8")
    config = load_config(path)
    assert [c.slug for c in config.sources[1].categories] == ["tech-news", "pinned-by-memo"]
    memo.write_text("{not json", encoding="utf-8")  # a broken memo is ignored and rewritten
    assert [c.slug for c in load_config(path).sources[1].categories] == ["tech-news", "keji"]
    assert json.loads(memo.read_text(encoding="utf-8"))["slugs"]["科技"] == "keji"


def test_fast_reader_merges_without_changing_anchors_and_reports_bad_values(tmp_path: Path) -> None:
    from aggregator.config.fastyaml import load_lined
    from aggregator.config.yamlfile import read_config_yaml

    data = load_lined("a: &a {A: x, B: 1}\nh: &h {<<: *a, A: y}\ng: *h\nm: {<<: [{k: 1}, {k: 2}]}\nn: 1_000\n")
    assert data["h"] == data["g"] == {"A": "y", "B": 1} and data["a"] == {"A": "x", "B": 1}
    assert data["m"] == {"k": 1} and data["n"] == 1000  # the earlier merge source wins
    for text, expected in (("a: 1\nb: !!int abc\n", ":2: invalid YAML: 'abc' is not a valid"),
                           ("a: &a [*a]\n", ":1: invalid YAML: an alias refers to itself")):
        path = tmp_path / "feeds.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            read_config_yaml(path)
        assert expected in caught.value.problems[0]
