"""FC timer schedules: the 6-field cron (seconds first) and ``@every`` intervals, evaluated in UTC.

Supported, as FC documents them: ``Seconds Minutes Hours Day-of-month Month Day-of-week`` with ``*``,
``?``, lists ``a,b``, ranges ``a-b``, steps ``*/n`` ``a-b/n`` ``a/n``, month names ``JAN``–``DEC``, weekday
names ``SUN``–``SAT`` (0 or 7 = Sunday); an optional ``CRON_TZ=Area/City`` prefix; and ``@every 1m``,
``@every 90s``, ``@every 1h30m``. When both day fields are restricted, a day matches either (like cron).
One scan per firing, field by field, so an impossible date (``0 0 0 30 FEB *``) is reported, not looped on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_DURATION = re.compile(r"(\d+)(h|m|s)")
_SEARCH_YEARS = 5


class CronError(ValueError):
    """A schedule FC would not accept (or this subset does not implement)."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("second", 0, 59),
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day-of-week", 0, 7, WEEKDAYS, 0),
)


class Schedule:
    """When a timer fires: :meth:`next_after` gives the first firing strictly after a moment."""

    def next_after(self, moment: datetime) -> datetime:  # pragma: no cover - interface
        raise NotImplementedError


class Every(Schedule):
    """``@every D``: fires every ``seconds``, counted from the moment given."""

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise CronError("@every needs a positive interval")
        self.seconds = seconds

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


class Cron(Schedule):
    """A parsed 6-field cron expression."""

    def __init__(
        self,
        fields: list[frozenset[int]],
        days: frozenset[int] | None,
        weekdays: frozenset[int] | None,
        tz: tzinfo,
    ) -> None:
        self.seconds, self.minutes, self.hours, self.months = fields
        self.days, self.weekdays = days, weekdays  # None: the field is * or ?
        self.tz = tz

    def next_after(self, moment: datetime) -> datetime:
        """The first whole second after ``moment`` that matches (aware datetimes; naive = UTC)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        local = moment.astimezone(self.tz).replace(tzinfo=None, microsecond=0) + timedelta(seconds=1)
        limit = local + timedelta(days=366 * _SEARCH_YEARS)
        while local < limit:
            if local.month not in self.months:
                local = _first_of_next_month(local)
            elif not self._day_matches(local):
                local = local.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif local.hour not in self.hours:
                local = local.replace(minute=0, second=0) + timedelta(hours=1)
            elif local.minute not in self.minutes:
                local = local.replace(second=0) + timedelta(minutes=1)
            elif local.second not in self.seconds:
                local += timedelta(seconds=1)
            else:
                return local.replace(tzinfo=self.tz).astimezone(timezone.utc)
        raise CronError(f"the schedule never fires within {_SEARCH_YEARS} years")

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7  # Python: Monday=0; cron: Sunday=0
        checks = [day.day in self.days] if self.days is not None else []
        checks += [weekday in self.weekdays] if self.weekdays is not None else []
        return any(checks) if checks else True


def _first_of_next_month(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1)


def parse(expression: str) -> Schedule:
    """Parse an FC ``cronExpression``; :class:`CronError` says what is wrong with it."""
    text = expression.strip()
    if text.startswith("@every"):
        return Every(parse_duration(text[len("@every") :].strip()))
    tz: tzinfo = timezone.utc
    if text.startswith("CRON_TZ="):
        zone, _, text = text[len("CRON_TZ=") :].partition(" ")
        tz = _zone(zone)
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise CronError(
            f"{expression!r}: expected 6 fields (seconds minutes hours day-of-month month day-of-week), "
            f"got {len(parts)}"
        )
    values = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    days = None if _unrestricted(parts[3]) else values[3]
    weekdays = None if _unrestricted(parts[5]) else frozenset(v % 7 for v in values[5])  # 7 is Sunday too
    return Cron([values[0], values[1], values[2], values[4]], days, weekdays, tz)


def parse_duration(text: str) -> float:
    """``90s``, ``1m``, ``1h30m`` → seconds (the Go duration units FC's ``@every`` takes)."""
    if not text or _DURATION.sub("", text):
        raise CronError(f"@every {text!r}: expected a duration like 1m, 90s or 1h30m")
    scale = {"h": 3600, "m": 60, "s": 1}
    return float(sum(int(n) * scale[unit] for n, unit in _DURATION.findall(text)))


def _unrestricted(part: str) -> bool:
    return part in ("*", "?")


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"CRON_TZ={name}: unknown time zone") from None


def _parse_field(part: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        values.update(_parse_item(item, spec))
    return frozenset(values)


def _parse_item(item: str, spec: _Field) -> range:
    base, _, step_text = item.partition("/")
    step = _number(step_text, spec) if step_text else 1
    if step < 1:
        raise CronError(f"{spec.name} {item!r}: the step must be at least 1")
    if base in ("*", "?"):
        low, high = spec.low, spec.high
    elif "-" in base:
        first, _, last = base.partition("-")
        low, high = _value(first, spec), _value(last, spec)
    else:
        low = _value(base, spec)
        high = spec.high if step_text else low
    if low > high:
        raise CronError(f"{spec.name} {item!r}: the range runs backwards")
    return range(low, high + 1, step)


def _value(text: str, spec: _Field) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.names.index(upper) + spec.name_base
    value = _number(text, spec)
    if not spec.low <= value <= spec.high:
        raise CronError(f"{spec.name} {text!r}: out of range {spec.low}-{spec.high}")
    return value


def _number(text: str, spec: _Field) -> int:
    if not text.isdigit():
        raise CronError(f"{spec.name} {text!r}: not a number")
    return int(text)
