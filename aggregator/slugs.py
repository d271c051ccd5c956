"""Category and tag slugs: safe folder names by construction.

A run of Han characters becomes toneless pinyin without separators (每日经济新闻 ->
`meirijingjixinwen`, as the old site named its categories); Latin text becomes lowercase ASCII words;
the pieces are joined by `-`. Accented letters are folded to ASCII, anything else is dropped. The
result only ever holds `[a-z0-9-]`, is never empty, never a Windows device name and at most
`MAX_SLUG_LENGTH` characters, so it can be used as a folder name whatever the input was.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import threading
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

from . import forkserver

MAX_SLUG_LENGTH = 64
_HAN_RUN = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]+)")
_WORD = re.compile(r"[a-z0-9]+")
_RESERVED = {"con", "prn", "aux", "nul", "tag"} | {f"{p}{n}" for p in ("com", "lpt") for n in range(10)}


def _fallback(text: str) -> str:
    return "c-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]


def pinyin_here(han: str) -> str:
    """Toneless pinyin of a run of Han characters, phrase-aware (银行 -> yinhang, not yinxing),
    computed in this process (importing pypinyin here on first use)."""
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(han, style=Style.NORMAL)).lower()


class PinyinHelper:
    """pypinyin in a helper process that exits when idle.

    pypinyin's phrase dictionary costs ~55 MB. A daemon needs it only for the few new category and
    tag names an hour brings, and a first import only while it stores; held in the main process it
    would stay for good (a third of a daemon's memory). The helper is forked from our forkserver
    on the first Chinese slug, answers each new Han run (slugify caches every name), and exits
    after `idle` seconds without one. If it cannot run, the pinyin is made here instead.
    """

    def __init__(self, idle: float = 10.0):
        self.idle = idle
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._timer: threading.Timer | None = None
        self._busy = 0

    def __call__(self, han: str) -> str:
        try:
            executor = self._acquire()
        except Exception:  # no process can be started here: make it here
            return pinyin_here(han)
        try:
            return executor.submit(pinyin_here, han).result()
        except Exception:  # the helper died (killed, out of memory): a new one next time; this one here
            self._discard(executor)
            return pinyin_here(han)
        finally:
            self._release()

    def _acquire(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    1, mp_context=forkserver.context(), initializer=forkserver.follow_parent,
                    initargs=(os.getpid(),),
                )
            self._busy += 1
            return self._executor

    def _release(self) -> None:
        with self._lock:
            self._busy -= 1
            if not self._busy and self._executor is not None and self._timer is None:
                self._timer = threading.Timer(self.idle, self._close_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            if self._busy:
                return
            self._timer = None
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the helper now (it is started again when needed)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            executor = self._executor
        if executor is not None:
            self._discard(executor)


_pinyin = PinyinHelper()
atexit.register(_pinyin.close)


@lru_cache(maxsize=4096)
def slugify(text: str) -> str:
    """Return the URL- and folder-safe slug of a category or tag name."""
    pieces: list[str] = []
    for i, part in enumerate(_HAN_RUN.split(text)):
        if not part:
            continue
        if i % 2:  # a Han run
            pieces.append(_pinyin(part))
        else:
            folded = unicodedata.normalize("NFKD", part).encode("ascii", "ignore").decode("ascii")
            pieces.extend(_WORD.findall(folded.lower()))
    slug = "-".join(p for p in pieces if p)
    slug = re.sub(r"[^a-z0-9-]+", "", slug).strip("-")
    if not slug:
        return _fallback(text)
    if len(slug) > MAX_SLUG_LENGTH:
        slug = slug[: MAX_SLUG_LENGTH - 11].rstrip("-") + "-" + _fallback(text)[2:]
    if slug in _RESERVED:
        slug += "-1"
    return slug
