"""Full article text at scale: a cold fetch of summary-only feeds whose articles must be fetched.

    python -m bench.bench_fulltext                 # 100 feeds x 20 entries (2,000 articles)
    python -m bench.bench_fulltext --feeds 20      # a quick look

Runs the same code path as `aggregator fetch` (fetch_sources with the shared worker pool) twice on
fresh databases: with `full_text: true` and without, and prints articles per second, the CPU spent
(this process and its worker processes), how busy the cores were (CPU seconds per wall second; 2.0
is both cores), and the share of the CPU spent extracting articles (trafilatura + sanitising,
measured by timing `extract_job` on every page alone). It prints figures; it asserts only that every
article was fetched.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

from aggregator.config import load_config
from aggregator.pipeline import fetch_sources
from aggregator.store import Store
from aggregator.workers import extract_job, shared_pool

WORDS = [
    "市场",
    "券商",
    "证券",
    "银行",
    "利率",
    "央行",
    "基金",
    "投资",
    "经济",
    "政策",
    "企业",
    "增长",
    "风险",
    "监管",
    "数据",
]


def article_page(feed: int, entry: int) -> bytes:
    rng = random.Random(feed * 1000 + entry)
    paragraphs = "".join(
        "<p>" + "".join(rng.choice(WORDS) for _ in range(60)) + "。</p>" for _ in range(rng.randint(6, 12))
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>'
        '<nav><a href="/">首页</a> <a href="/news/">新闻</a> <a href="/data/">数据</a></nav>'
        '<div class="ad">广告：开户送好礼</div>'
        f"<article><h1>文章 {feed}-{entry}</h1>{paragraphs}"
        '<ul><li>要点一</li><li>要点二</li></ul><img src="img/a.png" alt="图"><a href="more.html">更多</a></article>'
        '<div class="share">分享到 微博 微信</div><div id="comments"><p>评论：好</p></div>'
        "<footer>版权所有</footer></body></html>"
    ).encode()


def feed_xml(port: int, feed: int, entries: int) -> bytes:
    items = "".join(
        f"<item><title>文章 {feed}-{n}</title><guid>a{feed}-{n}</guid>"
        f"<link>http://127.0.0.1:{port}/a/{feed}/{n}.html</link>"
        f"<pubDate>Mon, 28 Mar 2022 {n % 24:02d}:00:00 +0800</pubDate><description>摘要 {feed}-{n}</description></item>"
        for n in range(entries)
    )
    head = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f{feed}</title>'
    return (head + items + "</channel></rss>").encode()


def serve(port_queue: multiprocessing.Queue, feeds: int, entries: int) -> None:
    pages: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms delayed-ACK stall

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path, b"")
            self.send_response(200 if body else 404)
            self.send_header(
                "Content-Type", "text/html; charset=utf-8" if "/a/" in self.path else "application/rss+xml"
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    for f in range(feeds):
        pages[f"/feed/{f}.xml"] = feed_xml(port, f, entries)
        for n in range(entries):
            pages[f"/a/{f}/{n}.html"] = article_page(f, n)
    port_queue.put(port)
    server.serve_forever()


def write_config(folder: Path, port: int, feeds: int, entries: int, full_text: bool) -> Path:
    lines = [
        "site:",
        "  url: http://127.0.0.1:9/",
        "  output_dir: public",
        "  database: agg.db",
        "defaults:",
        "  workers: 8",
        "  per_host: 8",
        "sources:",
    ]
    for f in range(feeds):
        lines += [
            f"  - name: f{f}",
            f"    url: http://127.0.0.1:{port}/feed/{f}.xml",
            f"    category: c{f % 10}",
            f"    full_text: {'true' if full_text else 'false'}",
            f"    full_text_max: {entries}",
        ]
    path = folder / "feeds.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cpu_now() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    total = own.ru_utime + own.ru_stime
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def run(port: int, feeds: int, entries: int, full_text: bool) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="agg-fulltext-"))
    config = load_config(write_config(folder, port, feeds, entries, full_text))
    shared_pool(config.defaults.processes).submit(int).result()  # start the workers outside the timing
    with Store(config.site.database) as store:
        cpu, wall = cpu_now(), time.perf_counter()
        report = fetch_sources(config, store)
        wall, cpu = time.perf_counter() - wall, cpu_now() - cpu
        articles = sum(o.articles_ok for o in report.outcomes)
        failed = sum(o.articles_failed for o in report.outcomes)
    if full_text and articles != feeds * entries:
        raise SystemExit(f"only {articles} of {feeds * entries} articles fetched ({failed} failed)")
    return {"wall": wall, "cpu": cpu, "articles": articles}


def extraction_cpu(feeds: int, entries: int) -> float:
    started = time.process_time()
    for f in range(feeds):
        for n in range(entries):
            extract_job(article_page(f, n), "text/html; charset=utf-8", f"http://127.0.0.1/a/{f}/{n}.html", "")
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--entries", type=int, default=20)
    args = parser.parse_args()
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue, args.feeds, args.entries), daemon=True)
    server.start()
    port = queue.get(timeout=60)
    with_text = run(port, args.feeds, args.entries, True)
    without = run(port, args.feeds, args.entries, False)
    server.terminate()
    extract = extraction_cpu(args.feeds, args.entries)
    articles = with_text["articles"]
    print(f"{args.feeds} feeds x {args.entries} entries, full_text on: {articles} articles")
    print(f"{'':28}{'wall s':>8}{'CPU s':>8}{'cores busy':>12}")
    for name, result in (("cold, full_text: true", with_text), ("cold, full_text: false", without)):
        print(f"{name:28}{result['wall']:8.2f}{result['cpu']:8.2f}{result['cpu'] / result['wall']:12.2f}")
    print(f"articles per second (whole run): {articles / with_text['wall']:.0f}")
    print(
        f"articles per second (article part: wall with minus without): "
        f"{articles / max(with_text['wall'] - without['wall'], 1e-9):.0f}"
    )
    print(
        f"extraction CPU (extract_job on every page, one process): {extract:.2f} s = "
        f"{extract / with_text['cpu']:.0%} of the full-text run's CPU"
    )
    print("target: extraction runs in the worker processes and the run keeps both cores busy (cores busy ~2.0)")


if __name__ == "__main__":
    main()
