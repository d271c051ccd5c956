"""A deterministic synthetic feed corpus: N feeds x M entries, and its `churn` mutation.

The mix is meant to look like the sources the aggregator really polls:

* formats: about 60% RSS 2.0, 28% Atom 1.0, 12% RSS 1.0 (RDF);
* languages: half the feeds Chinese, half English; Chinese text uses characters only GBK has (镕, 喆...);
* encodings: about one Chinese feed in five is GBK-encoded and declares ``gb2312`` (in the XML
  declaration, and for half of those in the Content-Type header too); the rest is UTF-8, declared in
  the Content-Type header (a fifth of them as ``text/xml; charset=utf-8``);
* about 2 KB of HTML per entry (paragraphs, links, images, lists, the odd ``<script>`` to sanitise);
* one feed in five uses relative entry links and relative ``href``/``src`` in its HTML;
* entries carry 0-3 tags (``<category>``, Atom ``category term``, ``dc:subject``); one source in three
  also has config-level tags; dates come in +0800, GMT, Z and (rarely) zone-less forms; some entries
  have an enclosure.

Everything is derived from string-seeded ``random.Random`` instances (sha512 of the seed string), so
the same (feeds, entries, seed) always gives the same bytes on any machine, and the churned
generation differs from the first only in the churned feeds, whose other entries keep their bytes.

``churn``: 10% of the feeds (at least one) gain 5 new entries at the top, lose their 5 oldest (the
window stays M entries when M >= 10) and have their 5 newest remaining entries edited (title,
content and, for Atom, ``<updated>``).

A corpus is written once to ``bench/corpus/<N>x<M>-s<seed>-v<VERSION>/`` (git-ignored) and reused:
``g0/NNNNN.xml`` (+ ``.gz``) is generation 0, ``g1/`` holds only the feeds the churn changed, and
``manifest.json`` describes every feed. Run ``python -m bench.corpus --feeds 100 --entries 20`` to
build one and print where it is.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

VERSION = 2
DEFAULT_FEEDS = 1000
DEFAULT_ENTRIES = 50
DEFAULT_SEED = 20260401
CHURN_SHARE = 0.10
CHURN_NEW = 5
CHURN_EDITED = 5
CORPUS_ROOT = Path(__file__).resolve().parent / "corpus"
#: the newest entry of generation 0 is dated here; churned entries come after it
BASE = datetime(2025, 12, 1, 4, 0, tzinfo=UTC)
CST = timedelta(hours=8)


def _words(text: str, sep: str = " ") -> list[str]:
    return text.split(sep)


ZH_WORDS = _words(
    "券商 证券 股市 A股 央行 利率 货币政策 经济 市场 投资者 企业 增长 数据 上海 北京 深圳 "
    "广州 香港 科技 公司 银行 监管 发布 报告 消费 出口 进口 制造业 房地产 新能源 汽车 芯片 "
    "人工智能 互联网 平台 基金 债券 汇率 人民币 美元 通胀 就业 工资 物价 能源 石油 天然气 "
    "电力 光伏 电池 供应链 物流 港口 航运 航空 旅游 餐饮 零售 电商 直播 医药 疫苗 医院 "
    "教育 学校 大学 研究 专家 分析师 记者 采访 表示 认为 指出 预计 同比 环比 上涨 下跌 "
    "持平 季度 年度 目标 计划 改革 开放 合作 协议 谈判 会议 论坛 峰会 政府 部门 地方 城市 "
    "农村 农业 粮食 价格 成本 利润 收入 税收 财政 预算 赤字 债务 风险 危机 复苏 稳定 发展 "
    "创新 转型 升级 数字化 绿色 低碳 朱镕基 喆 堃 珺 昇 玥 赟 浦东 浦西 黄浦江 长三角 "
    "大湾区 京津冀 中西部 东北 一带一路 自贸区 科创板 创业板 北交所",
)
EN_WORDS = _words(
    "market markets stock stocks bond bonds central bank interest rate rates inflation growth economy "
    "economic company companies investor investors share shares price prices profit profits revenue "
    "quarter annual report analyst analysts said expected forecast government policy policies trade "
    "tariff tariffs export exports import imports manufacturing factory factories energy oil gas power "
    "solar battery batteries supply chain shipping port airline airlines travel retail online platform "
    "technology chip chips artificial intelligence software startup startups funding venture capital bank "
    "banks lending loan loans mortgage housing property real estate consumer consumers spending wages "
    "jobs employment unemployment labour union strike regulator regulators competition merger acquisition "
    "deal deals billion million percent year week month officials minister ministry parliament election "
    "budget deficit debt risk crisis recovery stable development innovation digital green carbon climate "
    "emissions electric vehicle vehicles car cars data privacy security cloud network users customers "
    "sales demand supply commodity copper gold wheat coffee shipping freight container index indices",
)
CATEGORY_NAMES_ZH = _words(
    "财经 科技 证券市场 宏观经济 国际 公司 金融 房产 汽车 能源 消费 医药 教育 互联网 农业 "
    "航运 制造 创投 区域经济 政策解读",
)
CATEGORY_NAMES_EN = _words(
    "Business|Technology|Markets|Economy|World|Companies|Finance|Property|Autos|Energy|Consumer|Health|"
    "Education|Internet|Agriculture|Shipping|Industry|Venture|Regions|Policy",
    "|",
)
TAGS_ZH = _words(
    "宏观 A股 港股 美股 央行 利率 汇率 通胀 就业 楼市 新能源 芯片 人工智能 电商 疫苗 外贸 "
    "财报 并购 IPO 监管 基金 债市 大宗商品 原油 黄金 光伏 锂电 半导体 消费电子 游戏 教育 "
    "医疗 保险 银行 券商 地产 基建 物流 航空 旅游 餐饮 零售 农业 环保 碳中和 数字经济 "
    "区块链 元宇宙 自动驾驶 机器人",
)
TAGS_EN = _words(
    "macro|stocks|bonds|fed|ecb|rates|fx|inflation|jobs|housing|ev|chips|ai|ecommerce|vaccines|trade|"
    "earnings|m&a|ipo|regulation|funds|commodities|oil|gold|solar|batteries|semiconductors|gaming|"
    "healthcare|insurance|banking|brokers|real estate|infrastructure|logistics|airlines|tourism|"
    "restaurants|retail|farming|climate|crypto|blockchain|robotics|autonomous driving|cloud|cybersecurity|"
    "privacy|startups|venture capital",
    "|",
)
AUTHORS_ZH = _words(
    "记者 王明 李华 张伟 刘洋 陈静 杨帆 赵磊 黄丽 周杰 吴昊 特约撰稿人 本报评论员",
)
AUTHORS_EN = _words(
    "Staff|Reuters|Jane Smith|John Doe|Alex Kim|Maria Garcia|Wei Chen|Priya Patel|Tom Brown|Editors",
    "|",
)
#: config-level rules, as in the shipped feeds.yaml
RULES = (
    ("券商|证券|股市|A股", ("证券",), ("证券",)),
    ("央行|利率|货币政策|central bank|interest rate", (), ("货币政策",)),
)


@dataclass
class FeedMeta:
    """What the harness needs to know about one feed of the corpus."""

    index: int
    name: str
    path: str  # URL path on the corpus server, e.g. /f/00017.xml
    kind: str  # rss2, atom, rss1
    lang: str  # zh, en
    encoding: str  # utf-8 or gbk
    content_type: str
    category: str
    tags: list[str]
    relative: bool
    entries: int
    churned: bool = False


@dataclass
class Manifest:
    feeds: int
    entries: int
    seed: int
    version: int
    churned: list[int] = field(default_factory=list)
    expected_churn_new: int = 0
    expected_churn_updated: int = 0
    bytes_g0: int = 0
    bytes_g0_gz: int = 0
    entries_g0: int = 0
    seconds_to_build: float = 0.0
    meta: list[FeedMeta] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        """Every category name the sources use, in source order (rule categories not included)."""
        return list(dict.fromkeys(m.category for m in self.meta))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["meta"] = [FeedMeta(**m) for m in data["meta"]]
        return cls(**data)


@dataclass
class Corpus:
    """A built corpus on disk."""

    root: Path
    manifest: Manifest

    def path(self, generation: int, meta: FeedMeta, gz: bool = False) -> Path:
        """The file holding `meta`'s bytes in `generation` (generation 1 falls back to 0)."""
        name = f"{meta.index:05d}.xml" + (".gz" if gz else "")
        if generation >= 1 and meta.churned:
            return self.root / "g1" / name
        return self.root / "g0" / name

    def bodies(self, generation: int = 0) -> list[tuple[FeedMeta, bytes]]:
        return [(m, self.path(generation, m).read_bytes()) for m in self.manifest.meta]


# -- text ------------------------------------------------------------------------------------------


class TextPool:
    """Pre-generated sentences, so building 50,000 entries costs a few choices each, not hundreds."""

    def __init__(self, seed: int, size: int = 1500):
        rng = random.Random(f"{seed}:pool")
        self.zh = ["".join(self._zh_clause(rng) for _ in range(rng.randint(1, 3)))[:-1] + "。" for _ in range(size)]
        self.en = [self._en_sentence(rng) for _ in range(size)]

    @staticmethod
    def _zh_clause(rng: random.Random) -> str:
        return "".join(rng.choice(ZH_WORDS) for _ in range(rng.randint(4, 9))) + "，"

    @staticmethod
    def _en_sentence(rng: random.Random) -> str:
        words = [rng.choice(EN_WORDS) for _ in range(rng.randint(8, 20))]
        if rng.random() < 0.3:
            words.insert(rng.randint(1, len(words) - 1), f"{rng.randint(2, 99)}.{rng.randint(0, 9)}%")
        return " ".join(words).capitalize() + "."

    def sentences(self, lang: str) -> list[str]:
        return self.zh if lang == "zh" else self.en


def _title(rng: random.Random, lang: str, feed: int, entry: int, edited: bool) -> str:
    if lang == "zh":
        text = "".join(rng.choice(ZH_WORDS) for _ in range(rng.randint(4, 8))) + f"：第{feed}-{entry}号"
        return text + ("（更新）" if edited else "")
    text = " ".join(rng.choice(EN_WORDS) for _ in range(rng.randint(5, 10))).capitalize() + f" ({feed}-{entry})"
    return text + (" [updated]" if edited else "")


def _content(rng: random.Random, pool: TextPool, lang: str, site: str, relative: bool, target: int) -> str:
    """About `target` bytes of HTML: paragraphs with links and images, sometimes a list or a quote."""
    sentences = pool.sentences(lang)
    sep = "" if lang == "zh" else " "
    parts: list[str] = []
    size = 0
    n = 0
    while size < target:
        n += 1
        text = sep.join(rng.choice(sentences) for _ in range(rng.randint(2, 4)))
        roll = rng.random()
        if roll < 0.25:
            href = f"{'/' if relative else site}news/{rng.randint(1000, 99999)}.html"
            word = rng.choice(ZH_WORDS if lang == "zh" else EN_WORDS)
            html = f'<p>{escape(text)} <a href="{href}" title="{word}">{word}</a></p>'
        elif roll < 0.35:
            src = f"images/{rng.randint(1, 9999)}.jpg" if relative else f"{site}images/{rng.randint(1, 9999)}.jpg"
            html = f'<p><img src="{src}" alt="{escape(text[:20])}" width="640" height="360"></p><p>{escape(text)}</p>'
        elif roll < 0.42:
            items = "".join(f"<li>{escape(rng.choice(sentences))}</li>" for _ in range(rng.randint(2, 4)))
            html = f"<ul>{items}</ul>"
        elif roll < 0.47:
            html = f"<blockquote><p>{escape(text)}</p></blockquote>"
        elif roll < 0.49:
            html = f'<p style="color:red" onclick="track()">{escape(text)}</p><script>track({n});</script>'
        else:
            html = f"<p>{'<strong>' if n == 1 else ''}{escape(text)}{'</strong>' if n == 1 else ''}</p>"
        parts.append(html)
        size += len(html.encode("utf-8"))
    return "\n".join(parts)


def _summary(rng: random.Random, pool: TextPool, lang: str) -> str:
    return escape(("" if lang == "zh" else " ").join(rng.choice(pool.sentences(lang)) for _ in range(2)))


# -- feeds -----------------------------------------------------------------------------------------


@dataclass
class Entry:
    key: int  # 0 = newest of generation 0; churned new entries are -1..-5
    title: str
    link: str
    guid: str
    date: datetime
    updated: datetime | None
    author: str
    summary: str
    content: str
    tags: list[str]
    enclosure: tuple[str, str, int] | None


def feed_meta(index: int, entries: int, seed: int) -> FeedMeta:
    rng = random.Random(f"{seed}:feed:{index}")
    roll = rng.random()
    kind = "rss2" if roll < 0.60 else "atom" if roll < 0.88 else "rss1"
    lang = "zh" if rng.random() < 0.5 else "en"
    gbk = lang == "zh" and kind != "atom" and rng.random() < 0.2
    encoding = "gbk" if gbk else "utf-8"
    mime = {"rss2": "application/rss+xml", "atom": "application/atom+xml", "rss1": "application/rdf+xml"}[kind]
    if gbk:
        content_type = "text/xml; charset=gb2312" if rng.random() < 0.5 else "text/xml"
    else:
        # (a UTF-8 feed served as bare text/xml, common in the wild, means us-ascii by RFC 3023, and the
        # aggregator now refuses it as mis-declared; the corpus keeps to feeds it accepts)
        content_type = f"{mime}; charset=utf-8" if rng.random() < 0.8 else "text/xml; charset=utf-8"
    names = CATEGORY_NAMES_ZH if lang == "zh" else CATEGORY_NAMES_EN
    category = names[index % len(names)]
    tags = [f"{category}新闻" if lang == "zh" else f"{category} news"] if rng.random() < 0.33 else []
    return FeedMeta(
        index=index,
        name=f"中文来源{index:05d}" if lang == "zh" else f"Source {index:05d}",
        path=f"/f/{index:05d}.xml",
        kind=kind,
        lang=lang,
        encoding=encoding,
        content_type=content_type,
        category=category,
        tags=tags,
        relative=rng.random() < 0.2,
        entries=entries,
    )


def _site(meta: FeedMeta) -> str:
    return f"https://site{meta.index:05d}.example.{'cn' if meta.lang == 'zh' else 'com'}/"


def make_entry(meta: FeedMeta, key: int, seed: int, pool: TextPool, edited: bool = False) -> Entry:
    """Entry `key` of a feed; `edited` gives the churned revision (same guid, link and date)."""
    rng = random.Random(f"{seed}:entry:{meta.index}:{key}")
    site = _site(meta)
    spacing = 30 + (meta.index % 7) * 20  # minutes between entries
    date = BASE - timedelta(minutes=key * spacing + meta.index % 60)
    stamp = date.strftime("%Y%m%d")
    path = f"articles/{stamp}/{meta.index}-{key}.html"
    link = f"/{path}" if meta.relative else f"{site}{path}"
    guid = f"NW{stamp}{meta.index:05d}{key + 10:05d}" if meta.relative else f"{site}{path}"
    vocabulary = TAGS_ZH if meta.lang == "zh" else TAGS_EN
    tags = rng.sample(vocabulary, rng.choice((0, 1, 1, 2, 3)))
    author = rng.choice(AUTHORS_ZH if meta.lang == "zh" else AUTHORS_EN)
    enclosure = (f"{site}media/{meta.index}-{key}.jpg", "image/jpeg", rng.randint(10_000, 900_000)) \
        if rng.random() < 0.1 else None
    target = rng.randint(1600, 2500)
    title = _title(rng, meta.lang, meta.index, key, edited)
    summary = _summary(rng, pool, meta.lang)
    content = _content(rng, pool, meta.lang, site, meta.relative, target)
    updated = None
    if edited:
        erng = random.Random(f"{seed}:edit:{meta.index}:{key}")
        content = _content(erng, pool, meta.lang, site, meta.relative, 200) + "\n" + content
        updated = BASE + timedelta(hours=2)
    return Entry(key, title, link, guid, date, updated, author, summary, content, tags, enclosure)


def _rfc822(meta: FeedMeta, when: datetime, key: int) -> str:
    if meta.lang == "zh":
        if key % 23 == 7:  # a few dates without a zone: read in the source's (the site's) zone
            return (when + CST).strftime("%a, %d %b %Y %H:%M:%S")
        return format_datetime((when + CST).replace(tzinfo=None)) + " +0800"
    return format_datetime(when, usegmt=True)


def _iso(meta: FeedMeta, when: datetime) -> str:
    if meta.lang == "zh":
        return (when + CST).replace(tzinfo=None).isoformat() + "+08:00"
    return when.replace(tzinfo=None).isoformat() + "Z"


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def render_feed(meta: FeedMeta, entries: list[Entry]) -> bytes:
    site = _site(meta)
    title = escape(f"{meta.name} · {meta.category}")
    declared = "gb2312" if meta.encoding == "gbk" else "utf-8"
    newest = max(e.updated or e.date for e in entries) if entries else BASE
    out = [f'<?xml version="1.0" encoding="{declared}"?>\n']
    if meta.kind == "rss2":
        out.append(
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
            f"<title>{title}</title>\n<link>{site}</link>\n<description>{title}</description>\n"
            f"<language>{'zh-cn' if meta.lang == 'zh' else 'en-us'}</language>\n"
            f"<lastBuildDate>{_rfc822(meta, newest, 0)}</lastBuildDate>\n"
            f'<atom:link href="{site}rss.xml" rel="self" type="application/rss+xml"/>\n'
        )
        for e in entries:
            perma = "false" if meta.relative else "true"
            out.append(
                f"<item>\n<title>{escape(e.title)}</title>\n<link>{escape(e.link)}</link>\n"
                f'<guid isPermaLink="{perma}">{escape(e.guid)}</guid>\n'
                f"<pubDate>{_rfc822(meta, e.date, e.key)}</pubDate>\n"
                f"<dc:creator>{escape(e.author)}</dc:creator>\n"
                + "".join(f"<category>{escape(t)}</category>\n" for t in e.tags)
                + f"<description>{e.summary}</description>\n<content:encoded>{_cdata(e.content)}</content:encoded>\n"
                + (f'<enclosure url="{e.enclosure[0]}" type="{e.enclosure[1]}" length="{e.enclosure[2]}"/>\n'
                   if e.enclosure else "")
                + "</item>\n"
            )
        out.append("</channel>\n</rss>\n")
    elif meta.kind == "atom":
        lang = "zh-CN" if meta.lang == "zh" else "en"
        out.append(
            f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">\n<title>{title}</title>\n'
            f'<link rel="alternate" type="text/html" href="{site}"/>\n<link rel="self" href="{site}atom.xml"/>\n'
            f"<id>{site}</id>\n<updated>{_iso(meta, newest)}</updated>\n"
        )
        for e in entries:
            out.append(
                f'<entry>\n<title type="html">{escape(escape(e.title))}</title>\n'
                f'<link rel="alternate" type="text/html" href="{escape(e.link)}"/>\n'
                + (f'<link rel="enclosure" type="{e.enclosure[1]}" length="{e.enclosure[2]}" '
                   f'href="{e.enclosure[0]}"/>\n'
                   if e.enclosure else "")
                + f"<id>{escape(e.guid if not meta.relative else 'urn:' + e.guid)}</id>\n"
                f"<published>{_iso(meta, e.date)}</published>\n<updated>{_iso(meta, e.updated or e.date)}</updated>\n"
                f"<author><name>{escape(e.author)}</name></author>\n"
                + "".join(f'<category term="{escape(t)}"/>\n' for t in e.tags)
                + f'<summary type="html">{e.summary}</summary>\n<content type="html">{escape(e.content)}</content>\n'
                "</entry>\n"
            )
        out.append("</feed>\n")
    else:
        out.append(
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:content="http://purl.org/rss/1.0/modules/content/">\n'
            f'<channel rdf:about="{site}">\n<title>{title}</title>\n<link>{site}</link>\n'
            f"<description>{title}</description>\n<dc:date>{_iso(meta, newest)}</dc:date>\n<items>\n<rdf:Seq>\n"
            + "".join(f'<rdf:li rdf:resource="{escape(e.link)}"/>\n' for e in entries)
            + "</rdf:Seq>\n</items>\n</channel>\n"
        )
        for e in entries:
            out.append(
                f'<item rdf:about="{escape(e.link)}">\n<title>{escape(e.title)}</title>\n'
                f"<link>{escape(e.link)}</link>\n"
                f"<description>{e.summary}</description>\n<dc:date>{_iso(meta, e.date)}</dc:date>\n"
                f"<dc:creator>{escape(e.author)}</dc:creator>\n"
                + "".join(f"<dc:subject>{escape(t)}</dc:subject>\n" for t in e.tags)
                + f"<content:encoded>{_cdata(e.content)}</content:encoded>\n</item>\n"
            )
        out.append("</rdf:RDF>\n")
    text = "".join(out)
    return text.encode("gbk") if meta.encoding == "gbk" else text.encode("utf-8")


def churned_indices(feeds: int, seed: int) -> list[int]:
    count = max(1, round(feeds * CHURN_SHARE))
    return sorted(random.Random(f"{seed}:churn").sample(range(feeds), count))


def churn_keys(entries: int) -> tuple[list[int], list[int], list[int]]:
    """(new keys, kept old keys, edited keys) of a churned feed of `entries` entries."""
    new = [-(i + 1) for i in reversed(range(CHURN_NEW))]  # -5 .. -1: newest first after sorting by date
    kept = list(range(max(entries - CHURN_NEW, CHURN_NEW) if entries > CHURN_NEW else entries))
    edited = kept[:CHURN_EDITED]
    return new, kept, edited


def feed_entries(meta: FeedMeta, seed: int, pool: TextPool, generation: int) -> list[Entry]:
    if generation == 0 or not meta.churned:
        return [make_entry(meta, k, seed, pool) for k in range(meta.entries)]
    new, kept, edited = churn_keys(meta.entries)
    return [make_entry(meta, k, seed, pool, edited=k in edited) for k in new + kept]


def corpus_dir(feeds: int, entries: int, seed: int) -> Path:
    return CORPUS_ROOT / f"{feeds}x{entries}-s{seed}-v{VERSION}"


def _write(path: Path, data: bytes) -> int:
    path.write_bytes(data)
    packed = gzip.compress(data, compresslevel=6, mtime=0)
    path.with_name(path.name + ".gz").write_bytes(packed)
    return len(packed)


def build(feeds: int = DEFAULT_FEEDS, entries: int = DEFAULT_ENTRIES, seed: int = DEFAULT_SEED,
          force: bool = False, quiet: bool = False) -> Corpus:
    """Build the corpus on disk (or reuse the one already there) and return it."""
    root = corpus_dir(feeds, entries, seed)
    done = root / "manifest.json"
    if done.exists() and not force:
        return Corpus(root, Manifest.load(done))
    started = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    tmp = root.with_name(root.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "g0").mkdir(parents=True)
    (tmp / "g1").mkdir()
    pool = TextPool(seed)
    churned = set(churned_indices(feeds, seed))
    manifest = Manifest(feeds=feeds, entries=entries, seed=seed, version=VERSION, churned=sorted(churned))
    new, kept, edited = churn_keys(entries)
    manifest.expected_churn_new = len(new) * len(churned)
    manifest.expected_churn_updated = len(edited) * len(churned)
    for i in range(feeds):
        meta = feed_meta(i, entries, seed)
        meta.churned = i in churned
        body = render_feed(meta, feed_entries(meta, seed, pool, 0))
        manifest.bytes_g0 += len(body)
        manifest.bytes_g0_gz += _write(tmp / "g0" / f"{i:05d}.xml", body)
        manifest.entries_g0 += meta.entries
        if meta.churned:
            _write(tmp / "g1" / f"{i:05d}.xml", render_feed(meta, feed_entries(meta, seed, pool, 1)))
        manifest.meta.append(meta)
        if not quiet and feeds >= 1000 and (i + 1) % 1000 == 0:
            print(f"  corpus: {i + 1}/{feeds} feeds", file=sys.stderr, flush=True)
    manifest.seconds_to_build = round(time.perf_counter() - started, 2)
    data = asdict(manifest)
    (tmp / "manifest.json").write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.rename(root)
    return Corpus(root, manifest)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha1(data).hexdigest()[:20] + '"'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=DEFAULT_FEEDS)
    parser.add_argument("--entries", type=int, default=DEFAULT_ENTRIES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus is on disk")
    args = parser.parse_args()
    corpus = build(args.feeds, args.entries, args.seed, force=args.force)
    m = corpus.manifest
    kinds: dict[str, int] = {}
    for meta in m.meta:
        key = f"{meta.kind}/{meta.lang}/{meta.encoding}"
        kinds[key] = kinds.get(key, 0) + 1
    print(f"{corpus.root}: {m.feeds} feeds x {m.entries} entries, {m.bytes_g0 / 1e6:.1f} MB "
          f"({m.bytes_g0_gz / 1e6:.1f} MB gzipped), {m.bytes_g0 / max(1, m.entries_g0):.0f} bytes/entry, "
          f"built in {m.seconds_to_build} s")
    print("  mix: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print(f"  churn: {len(m.churned)} feeds, expect {m.expected_churn_new} new + {m.expected_churn_updated} updated")


if __name__ == "__main__":
    main()
