"""Many small feeds on 127.0.0.1, from their own process, for the daemon load and soak benchmarks.

`/feed/N.xml` is an RSS feed of 10 entries with a strong ETag (304 on If-None-Match). With
`--grow S`, every feed gains a new entry every S seconds, so healthy sources keep having news. With
`--faulty F`, the first F feeds misbehave at random on each request: HTTP 500, a stall longer than
the client's timeout, or garbage bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.time()


def feed_bytes(index: int, generation: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {index} story {n} 第{n}条新闻</title><guid>f{index}-{n}</guid>"
        f"<link>http://farm.example.com/{index}/{n}</link>"
        f"<pubDate>{time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(START + n))}</pubDate>"
        f"<description><![CDATA[<p>{'市场消息。' * 40} story {n}</p>]]></description></item>"
        for n in range(generation + 10, generation, -1)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {index}</title>'
        f"<link>http://farm.example.com/{index}/</link><description>d</description>{items}</channel></rss>"
    ).encode()


class Farm(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, port: int, grow: float, faulty: int, stall: float):
        super().__init__(("127.0.0.1", port), Handler)
        self.grow = grow
        self.faulty = faulty
        self.stall = stall
        self.rng = random.Random(7)
        self.cache: dict[tuple[int, int], tuple[bytes, str]] = {}

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients hang up on stalled and garbage answers: that is the point, not news

    def feed(self, index: int) -> tuple[bytes, str]:
        generation = int((time.time() - START) / self.grow) if self.grow else 0
        key = (index, generation)
        if key not in self.cache:
            body = feed_bytes(index, generation)
            self.cache[key] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
        return self.cache[key]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall
    server: Farm

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        try:
            index = int(self.path.removeprefix("/feed/").removesuffix(".xml"))
        except ValueError:
            self.send(404, b"no")
            return
        if index < self.server.faulty:
            fault = self.server.rng.choice(("500", "stall", "garbage", "ok"))
            if fault == "500":
                self.send(500, b"internal error")
                return
            if fault == "stall":
                time.sleep(self.server.stall)
                self.send(200, b"<rss>too late")
                return
            if fault == "garbage":
                self.send(200, bytes(self.server.rng.getrandbits(8) for _ in range(2000)))
                return
        body, etag = self.server.feed(index)
        if self.headers.get("If-None-Match") == etag:
            self.send(304, b"", {"ETag": etag})
            return
        self.send(200, body, {"ETag": etag, "Content-Type": "application/rss+xml; charset=utf-8"})

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body) if status != 304 else 0))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--grow", type=float, default=0, help="seconds between new entries per feed (0: never)")
    parser.add_argument("--faulty", type=int, default=0, help="the first F feeds fail at random")
    parser.add_argument("--stall", type=float, default=30.0, help="seconds a stalling feed waits")
    args = parser.parse_args()
    farm = Farm(args.port, args.grow, args.faulty, args.stall)
    print(farm.server_address[1], flush=True)
    farm.serve_forever()


if __name__ == "__main__":
    main()
