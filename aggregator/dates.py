"""Local time for output: every published date goes through `local_time`.

A zone's historical offsets can carry seconds (Asia/Shanghai in 1900 was local mean time,
+08:05:43), which RFC 822, RFC 3339 and Jekyll dates cannot express; such an offset is rounded to
whole minutes, the clock time moving with it, so the instant written stays the same to the minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone, tzinfo


def local_time(when: datetime, zone: tzinfo) -> datetime:
    """`when` in `zone`, with a whole-minute UTC offset (in UTC when the zone cannot show it: year 1
    west of Greenwich, stored by an older version)."""
    try:
        local = when.astimezone(zone)
    except OverflowError:
        return when.astimezone(UTC)
    offset = local.utcoffset() or timedelta(0)
    if offset.seconds % 60 == 0 and offset.microseconds == 0:
        return local
    minutes = round(offset.total_seconds() / 60)
    return when.astimezone(timezone(timedelta(minutes=minutes)))
