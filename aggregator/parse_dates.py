"""Entry dates feedparser misreads, read here through its documented `registerDateHandler` hook.

Chinese feeds often write dates feedparser does not know, and some it gets wrong without a word:

* ``2022年03月28日 20:00``, ``2022/03/28 20:00:00`` and ``2022.03.28`` came out as 1 December
  2022 (feedparser's W3DTF reader takes the year and gives up on the rest);
* RFC 822 without a zone, ``Mon, 28 Mar 2022 20:00:00``, and without seconds, came out as no date
  at all (so the post was dated when it was fetched);
* ``GMT+8``-style zones likewise;
* what programs print: Go's ``2022-03-28 20:00:00 +0800 CST`` and Ruby's ``... 12:00:00 UTC`` lost
  their time, PostgreSQL's ``+08`` after a time was applied twice, a Chinese weekday after the
  date (``2022年03月28日 星期一 20:00``) made it 1 December again, and ``2022/02/30`` became 2 March.

Registered handlers are tried before feedparser's own and may decline (return None), so these
only take the forms above. Like feedparser, a date without a zone is returned as if it were UTC:
`normalise.read_date` then reads the same wall-clock time in the source's zone, as for any date.
"""

from __future__ import annotations

import re
import time
from calendar import monthrange, timegm
from email.utils import parsedate_tz

import feedparser

# a Chinese weekday, which pages and feeds put after the date or at the end: 星期一, 周一, （礼拜天）
_WEEKDAY = r"(?:\s*[(（]?(?:星期|周|礼拜)[一二三四五六日天][)）]?)?"
# Y年M月D日, Y/M/D, Y.M.D or Y-M-D, then an optional time (fractions of a second ignored) and an
# optional zone: numeric (+8, +08, +0800, +08:00, GMT+8), maybe followed by its name as Go writes
# it ("+0800 CST"), or a name alone: GMT, UTC, Z, or CST (read as feedparser reads it, US Central;
# `normalise.read_date` makes it China's in a zone at +08:00)
_NUMERIC = re.compile(
    r"^\s*(\d{4})\s*(?:年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?|([/.-])(\d{1,2})\4(\d{1,2}))" + _WEEKDAY
    + r"(?:[\sT,]*(\d{1,2})\s*[:：时点]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2})(?:\.\d+)?\s*秒?)?\s*分?)?"
    r"\s*(?:(?:GMT|UTC?)?\s*([+-])(\d{1,2})(?::?(\d{2}))?(?:\s*\(?[A-Z]{2,5}\)?)?|(GMT|UTC?|Z|CST))?"
    + _WEEKDAY + r"\s*$",
    re.IGNORECASE,
)
_NAMED_OFFSETS = {"cst": -6 * 3600}  # the rest of the names matched above are UTC
NO_DATE = time.struct_time((1, 1, 1, 0, 0, 0, 0, 1, 0))
# a date string that names its zone: Z, +08:00, +0800, GMT+8, GMT, UT(C), EST, CEST... or a
# military letter, in any case, maybe followed by a comment such as (CST) or (PDT)
_NAMES_ZONE = re.compile(
    r"(?:[zZ]|[+-]\d{2}:?\d{2}|(?<=:\d\d)\s?[+-]\d{1,2}|\b(?:GMT|UTC?)\s*[+-]\d{1,2}(?::?\d{2})?|\b[A-IK-Z]"
    r"|\b(?:UT|UTC|GMT|[ECMPA][SD]T|[ECMP]T|[CEW]ES?T|MES?T|MET|BST|IST|JST|HKT|SGT|KST))\s*(?:\([^()]*\))?\s*$",
    re.IGNORECASE,
)
# a zone written as GMT+8, UTC+08:00 or GMT-0530 at the end of an RFC 822 date
_GMT_OFFSET = re.compile(r"\s*\b(?:GMT|UTC?)\s*([+-])(\d{1,2})(?::?(\d{2}))?\s*$", re.IGNORECASE)
# an RFC 822 date and time, all of it: optional weekday, day, month name, year, time, nothing after
_RFC822_NO_ZONE = re.compile(
    r"^\s*(?:[A-Za-z]{3,9},?\s+)?\d{1,2}\s+[A-Za-z]{3,9}\.?\s+\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?\s*$"
)


def names_zone(text: str) -> bool:
    """Whether a date string ends with a zone; one that does not is a wall-clock time."""
    return _NAMES_ZONE.search(text.strip()) is not None


def _utc_tuple(fields: tuple[int, int, int, int, int, int], offset_seconds: int) -> time.struct_time | None:
    """The UTC struct_time of a wall-clock time `offset_seconds` ahead of UTC, or None if invalid."""
    year, month, day, hour, minute, second = fields
    if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    if not 1 <= day <= monthrange(year, month)[1]:  # 30 February is not 2 March
        return None
    try:
        stamp = timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0)) - offset_seconds
        return time.gmtime(stamp)
    except (OverflowError, ValueError, OSError):
        return None


def _offset(sign: str | None, hours: str | None, minutes: str | None) -> int:
    if not sign:
        return 0
    seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60
    return seconds if sign == "+" else -seconds


def numeric_date(text: str) -> time.struct_time | None:
    """``2022年03月28日 20:00``, ``2022/03/28 20:00:00``, ``2022.03.28``, with an optional zone."""
    match = _NUMERIC.match(text)
    if match is None:
        return None
    g = match.groups()
    month, day = (g[1], g[2]) if g[1] else (g[4], g[5])
    fields = (int(g[0]), int(month), int(day), int(g[6] or 0), int(g[7] or 0), int(g[8] or 0))
    offset = _offset(g[9], g[10], g[11]) if g[9] else _NAMED_OFFSETS.get((g[12] or "").lower(), 0)
    # a date of this form that cannot be (30 February, 25 o'clock) is no date: year 1, which
    # read_date takes for missing, rather than None, after which feedparser's W3DTF reader would
    # keep only the year and say 1 December
    return _utc_tuple(fields, offset) or NO_DATE


def rfc822_date(text: str) -> time.struct_time | None:
    """An RFC 822 date with no zone or a ``GMT+8``-style one, which feedparser does not read."""
    zone = _GMT_OFFSET.search(text)
    offset = 0
    if zone is not None:
        offset = _offset(*zone.groups())
        text = text[: zone.start()]
    if _RFC822_NO_ZONE.match(text) is None:
        return None  # anything else after the time (+0800, EST, a comment): feedparser's own reader
    parsed = parsedate_tz(text)  # without a zone it says 0 (UTC): the wall-clock time, as we want
    return None if parsed is None else _utc_tuple(parsed[:6], offset)


_registered = False


def register() -> None:
    """Put our handlers in front of feedparser's, once per process (`parse` calls it at import)."""
    global _registered
    if not _registered:
        for handler in (rfc822_date, numeric_date):
            feedparser.registerDateHandler(handler)
        _registered = True
