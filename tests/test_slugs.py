from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from aggregator.pinyin import PinyinHelper
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


def test_pinyin_is_made_in_a_helper_process_that_exits_when_idle() -> None:
    """pypinyin's ~55 MB dictionary never loads in the calling process (a daemon would keep it for
    good); the helper answers, then exits after its idle time, and comes back when needed."""
    code = (
        "import sys\n"
        "from aggregator.slugs import slugify\n"
        "print(slugify('银行 Bank'), slugify('重庆'), 'pypinyin' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["yinhang-bank", "chongqing", "False"], result.stderr
    helper = PinyinHelper(idle=0.5)
    try:
        assert helper("证券") == "zhengquan"
        deadline = time.monotonic() + 10
        pid = helper.pid
        assert pid is not None and pid != os.getpid()
        while helper.pid is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert helper.pid is None, "the helper did not exit when idle"
        with pytest.raises(ProcessLookupError):  # exited, and reaped
            os.kill(pid, 0)
        assert helper("券商") == "quanshang"  # started again
    finally:
        helper.close()


def answered_once(**options: float) -> tuple[PinyinHelper, int]:
    """A helper that has answered one question, and its process id."""
    helper = PinyinHelper(**options)
    assert helper("证券") == "zhengquan"
    assert helper.pid is not None
    return helper, helper.pid


def test_a_killed_pinyin_helper_is_replaced() -> None:
    helper, pid = answered_once(idle=30)
    try:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        assert helper("银行") == "yinhang"  # answered all the same, by a new helper
        assert helper("重庆") == "chongqing"
        assert helper.pid is not None and helper.pid != pid
    finally:
        helper.close()


def test_the_pinyin_helper_outlives_a_ctrl_c_meant_for_the_daemon() -> None:
    """Ctrl-C in a terminal reaches the whole foreground group; the helper leaves stopping to us
    (no KeyboardInterrupt traceback of its own) and ends when we close its input."""
    helper, pid = answered_once(idle=30)
    try:
        os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
        assert helper("银行") == "yinhang" and helper.pid == pid
    finally:
        helper.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_stuck_pinyin_helper_is_replaced_after_its_timeout() -> None:
    """A helper that stops answering (here: stopped by SIGSTOP) must not hold every caller, nor
    our exit, for good: after `timeout` it is killed and a new one answers."""
    helper, stuck = answered_once(idle=30, timeout=1.0)
    try:
        os.kill(stuck, signal.SIGSTOP)
        answers: list[str] = []
        caller = threading.Thread(target=lambda: answers.append(helper("银行")), daemon=True)
        caller.start()
        caller.join(10)
        assert answers == ["yinhang"], "still waiting on the stuck helper"
        assert helper.pid is not None and helper.pid != stuck
        with pytest.raises(ProcessLookupError):  # killed and reaped
            os.kill(stuck, 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)  # if the test failed, so that close() is not stuck too
        helper.close()

PINYIN_OF_EVERY_PHRASE = """
import sys
from aggregator.pinyin import load_phrases_compactly
if sys.argv[1] == "compact":
    assert load_phrases_compactly()
from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.constants import PHRASES_DICT
phrases = sorted(PHRASES_DICT)
text = "".join(phrases[::97])  # long runs: the segmentation across phrases is compared too
for phrase in phrases + [text]:
    print(phrase, pinyin(phrase, style=Style.TONE, heteronym=True), "".join(lazy_pinyin(phrase)))
"""


def test_the_helpers_compact_phrase_dictionary_gives_pypinyins_own_pinyin() -> None:
    """The helper loads pypinyin's phrases itself (sharing repeated syllables, ~20 MB less): every
    phrase, and long text cut across phrases, must come out exactly as with pypinyin's own loading."""
    runs = [subprocess.Popen([sys.executable, "-c", PINYIN_OF_EVERY_PHRASE, mode], stdout=subprocess.PIPE, text=True)
            for mode in ("compact", "pypinyin")]  # side by side
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs[0].count("\n") > 40_000
    assert outputs[0] == outputs[1]
