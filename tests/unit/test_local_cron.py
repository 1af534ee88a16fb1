"""FC timer schedules: 6-field cron with seconds, CRON_TZ, @every, and the errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from outpaint.local.cron import CronError, parse, parse_duration

# Saturday, 2025-03-01 08:00:00.5 UTC
T0 = datetime(2025, 3, 1, 8, 0, 0, 500000, tzinfo=timezone.utc)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 * * * * *", utc(2025, 3, 1, 8, 1, 0)),  # s.yaml's on-tick timer
        ("*/15 * * * * *", utc(2025, 3, 1, 8, 0, 15)),
        ("0 0 4 * * *", utc(2025, 3, 2, 4, 0, 0)),
        ("0 0/20 * * * ?", utc(2025, 3, 1, 8, 20, 0)),
        ("30 5-10/5 8 * * *", utc(2025, 3, 1, 8, 5, 30)),
        ("0 0 0 * * MON", utc(2025, 3, 3, 0, 0, 0)),
        ("0 0 0 * * 7", utc(2025, 3, 2, 0, 0, 0)),  # 7 is Sunday
        ("0 0 0 13 * FRI", utc(2025, 3, 7, 0, 0, 0)),  # both day fields: either matches
        ("0 30 9 ? JAN-MAR 1-5", utc(2025, 3, 3, 9, 30, 0)),
        ("0 0 12 1 jun *", utc(2025, 6, 1, 12, 0, 0)),
        ("0 0 0 29 2 *", utc(2028, 2, 29, 0, 0, 0)),
        ("0,30 59 23 31 12 *", utc(2025, 12, 31, 23, 59, 0)),
        ("CRON_TZ=Asia/Shanghai 0 0 4 1 * *", utc(2025, 3, 31, 20, 0, 0)),
    ],
)
def test_next_firing(expression, expected):
    assert parse(expression).next_after(T0) == expected


def test_successive_firings_are_strictly_later():
    schedule = parse("*/20 * * * * *")
    first = schedule.next_after(T0)
    assert schedule.next_after(first) == utc(2025, 3, 1, 8, 0, 40)


def test_naive_moments_are_utc():
    assert parse("0 * * * * *").next_after(datetime(2025, 3, 1, 8, 0, 0)) == utc(2025, 3, 1, 8, 1, 0)


@pytest.mark.parametrize(("text", "seconds"), [("1m", 60), ("90s", 90), ("1h30m", 5400), ("2h", 7200)])
def test_every(text, seconds):
    assert parse_duration(text) == seconds
    assert (parse(f"@every {text}").next_after(T0) - T0).total_seconds() == seconds


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 * * * *", "expected 6 fields"),
        ("60 * * * * *", "second '60': out of range 0-59"),
        ("0 0 25 * * *", "hour '25'"),
        ("0 0 0 0 * *", "day-of-month '0'"),
        ("0 0 0 * 13 *", "month '13'"),
        ("0 0 0 * * FUNDAY", "day-of-week 'FUNDAY': not a number"),
        ("0 0 10-2 * * *", "runs backwards"),
        ("*/0 * * * * *", "at least 1"),
        ("@every", "expected a duration"),
        ("@every 5 minutes", "expected a duration"),
        ("@every 0s", "positive"),
        ("CRON_TZ=Mars/Olympus 0 * * * * *", "unknown time zone"),
    ],
)
def test_bad_expressions_say_what_is_wrong(expression, message):
    with pytest.raises(CronError, match=message):
        parse(expression)


def test_a_date_that_never_comes_is_reported():
    with pytest.raises(CronError, match="never fires"):
        parse("0 0 0 30 FEB *").next_after(T0)
