"""Toneless pinyin of Han text, made by pypinyin in a small helper process that exits when idle.

pypinyin's phrase dictionary (what makes 银行 `yinhang` and 重庆 `chongqing`) costs ~55 MB. A
daemon needs it only for the few new category and tag names an hour brings, and a first fetch only
while it stores; held in the main process it would stay for good (a third of a daemon's memory).
So a helper answers instead: a fresh interpreter that imports nothing but pypinyin (and this
module), reading one Han run per line and writing its pinyin back. It exits after `idle` seconds
without a question, and on its own when its input closes (our process gone, even by `kill -9`).

A first fetch needs the helper while it stores, alongside everything else, so it is kept small:
started afresh rather than forked from the worker processes' forkserver, it carries none of their
preloaded modules, and it loads the phrase dictionary more compactly than pypinyin does by itself
(`load_phrases_compactly`): 44 MB PSS while it lives, against 75 MB forked with pypinyin's loading.

    python -m aggregator.pinyin     # the helper itself: one Han run per line in, pinyin out
"""

from __future__ import annotations

import atexit
import gc
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

# pypinyin copies its two dictionaries at import unless told not to, for callers that add their
# own entries; we never do (its documentation suggests this setting to save memory)
_PYPINYIN_ENV = {"PYPINYIN_NO_DICT_COPY": "1"}


def pinyin_here(han: str) -> str:
    """Toneless pinyin of a run of Han characters, phrase-aware (银行 -> yinhang, not yinxing),
    computed in this process (importing pypinyin here on first use)."""
    from pypinyin import Style, lazy_pinyin

    return "".join(lazy_pinyin(han, style=Style.NORMAL)).lower()


def load_phrases_compactly() -> bool:
    """Import pypinyin with its phrase dictionary loaded by us, sharing what repeats; True if done.

    pypinyin reads its phrases (47,000 of them) with `json.load`, which makes a list per phrase and
    a list and a string per syllable: 600,000 objects, 35 MB. The syllables are ~1,500 distinct
    lists, so here the same data is read, every repeated syllable list shared, and handed to
    pypinyin through its public `load_phrases_dict` (with `PYPINYIN_NO_PHRASES`, its documented
    switch, so it does not read them itself first). The pinyin is the same (a test compares every
    phrase); the phrase strings are copied so that nothing of the parse outlives it and its memory
    goes back whole. Only for the helper, before anything imported pypinyin; if the data file is
    not where pypinyin keeps it (a future layout), pypinyin loads it its own way.
    """
    spec = importlib.util.find_spec("pypinyin")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    data = Path(locations[0]) / "phrases_dict.json" if locations else None
    if "pypinyin" in sys.modules or data is None or not data.is_file():
        return False
    os.environ["PYPINYIN_NO_PHRASES"] = "1"
    try:
        import pypinyin
    finally:
        del os.environ["PYPINYIN_NO_PHRASES"]
    try:
        with data.open(encoding="utf-8") as handle:
            phrases = _shared(json.load(handle))
    except (OSError, ValueError, TypeError, AttributeError):  # not the shape we know: pypinyin's own way
        from pypinyin import phrases_dict

        phrases = phrases_dict.phrases_dict
    gc.collect()
    pypinyin.load_phrases_dict(phrases)
    return True


def _shared(loaded: dict[str, Any]) -> dict[str, list[list[str]]]:
    """`loaded` (phrase -> a list of syllable lists) rebuilt with equal syllable lists shared."""
    groups: dict[tuple[str, ...], list[str]] = {}
    compact: dict[str, list[list[str]]] = {}
    for phrase, readings in loaded.items():
        value = []
        for group in readings:
            key = tuple(group)
            if key not in groups:
                groups[key] = [syllable.encode().decode() for syllable in group]  # copies: see above
            value.append(groups[key])
        compact[phrase.encode().decode()] = value
    return compact


def serve(questions: BinaryIO, answers: BinaryIO) -> None:
    """The helper's loop: a line of UTF-8 Han text in, its pinyin (ASCII) out, until input ends."""
    for line in questions:
        answers.write(pinyin_here(line.decode("utf-8").strip()).encode("ascii", "replace") + b"\n")
        answers.flush()


def _read_answer(fd: int, timeout: float) -> str:
    """One line from the helper (read unbuffered, so nothing after it is taken), within `timeout`."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise OSError(f"the pinyin helper gave no answer within {timeout:g} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise OSError("the pinyin helper ended without answering")
        data += chunk
    if data.count(b"\n") != 1:
        raise OSError("the pinyin helper answered more than it was asked")
    try:
        return data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise OSError("the pinyin helper answered with something other than pinyin") from None


class PinyinHelper:
    """Asks the helper process, starting it when needed; falls back to this process when it cannot."""

    def __init__(self, idle: float = 10.0, timeout: float = 30.0):
        """`idle`: seconds without a question before the helper exits; `timeout`: seconds to wait
        for one answer (a first one includes the helper's start) before giving up on the helper."""
        self.idle = idle
        self.timeout = timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._timer: threading.Timer | None = None
        self._asked = 0  # questions so far: an idle timer that fires late sees a newer one came

    @property
    def pid(self) -> int | None:
        """The helper's process id while it runs, else None."""
        process = self._process
        return process.pid if process is not None else None

    def __call__(self, han: str) -> str:
        with self._lock:  # one question at a time: answers come back in order
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._asked += 1
            answer = None
            for _attempt in range(2):  # a helper killed meanwhile (OOM, kill) is replaced once
                try:
                    answer = self._ask(han)
                    break
                except (OSError, ValueError):  # gone, stuck or out of step: that one was stopped
                    continue
            self._timer = threading.Timer(self.idle, self._close_if_idle, args=(self._asked,))
            self._timer.daemon = True
            self._timer.start()
        return answer if answer is not None else pinyin_here(han)  # no helper can run here: made here

    def _ask(self, han: str) -> str:
        """One question and its answer, or OSError. A helper whose answer did not come back whole,
        for any reason (an interrupt included), is stopped: a later answer must never be the
        answer to an earlier question."""
        try:
            process = self._process or self._start()
            assert process.stdin is not None and process.stdout is not None
            process.stdin.write(han.encode("utf-8") + b"\n")
            process.stdin.flush()
            return _read_answer(process.stdout.fileno(), self.timeout)
        except BaseException:
            self._stop(kill=True)
            raise

    def _start(self) -> subprocess.Popen[bytes]:
        # isolated (-I: neither the working folder nor PYTHON* variables count), with our own
        # import path: the helper imports this copy of the package and the pypinyin we would
        code = f"import sys; sys.path[:0] = {sys.path!r}; from aggregator.pinyin import main; main()"
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, **_PYPINYIN_ENV}, close_fds=True,
        )
        return self._process

    def _stop(self, kill: bool = False) -> None:
        """Close the helper's input (it exits at once) and reap it; `kill`: one that failed to
        answer is killed rather than trusted to exit."""
        process = self._process
        if process is None:
            return
        if kill:
            process.kill()
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:  # a pipe to a helper already gone
                pass
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._process = None

    def _close_if_idle(self, asked: int) -> None:
        with self._lock:
            if asked == self._asked:  # no question since this timer was set
                self._timer = None
                self._stop()

    def close(self) -> None:
        """Stop the helper now (it is started again when needed)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._stop()


helper = PinyinHelper()
atexit.register(helper.close)


def main() -> None:
    """The helper process: answer until our process closes its input."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the daemon, which stops us
    load_phrases_compactly()
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
