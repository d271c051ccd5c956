from __future__ import annotations

import re

import pytest

from aggregator.slugs import MAX_SLUG_LENGTH, slugify


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("每日经济新闻", "meirijingjixinwen"),
        ("Hacker News", "hacker-news"),
        ("A股 Market", "a-gu-market"),
        ("Café Crème", "cafe-creme"),
        ("36氪", "36-ke"),
        ("券商", "quanshang"),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


@pytest.mark.parametrize(
    "name", ["../../etc", "..", ".", "CON", "con", "a/b\\c", "", "   ", "\x00\x01", "Ωμέγα", "🙂🙂", "x" * 300, "tag"]
)
def test_slug_is_always_a_safe_folder_name(name: str) -> None:
    slug = slugify(name)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug), slug
    assert 0 < len(slug) <= MAX_SLUG_LENGTH
    assert slug not in {"con", "prn", "aux", "nul", "tag"}


def test_distinct_unslugifiable_names_get_distinct_slugs() -> None:
    assert slugify("🙂") != slugify("🙃")
