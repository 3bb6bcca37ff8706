"""Schedule spellings and their next times: 5-field cron in a time zone, names, `manual`.

A leaf module (croniter and the standard library only): `fleuve.config` uses it to reject an
unknown spelling when fleuve.yml is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from fleuve.errors import ConfigError

NAMES = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
}
ACCEPTED = (
    "a 5-field cron expression such as '0 1 * * *' (minute hour day month weekday), "
    "'hourly', 'daily', 'weekly', 'monthly', 'every_N_minutes' or 'every_N_hours' "
    "(e.g. every_15_minutes, every_6_hours), or 'manual'"
)
_EVERY = re.compile(r"^every_(\d+)_(minute|minutes|hour|hours)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Trigger:
    """When a schedule is due: `next_after(t)` is the first due time strictly after `t`."""

    spec: str

    def next_after(self, moment: datetime) -> datetime | None:
        """The first due time strictly after `moment` (UTC), or None for a manual schedule."""
        raise NotImplementedError


@dataclass(frozen=True)
class Manual(Trigger):
    """Runs only when asked (`fleuve schedules run-now`) or after another schedule."""

    spec: str = "manual"

    def next_after(self, moment: datetime) -> datetime | None:
        return None


@dataclass(frozen=True)
class Every(Trigger):
    """A fixed interval counted from the Unix epoch, so that every process agrees on the ticks."""

    spec: str
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        elapsed = (moment - _EPOCH).total_seconds()
        ticks = int(elapsed // self.seconds) + 1
        return _EPOCH + timedelta(seconds=ticks * self.seconds)


@dataclass(frozen=True)
class Cron(Trigger):
    """A 5-field cron expression read in a time zone.

    Across a daylight-saving change: a time skipped when clocks go forward runs at the first
    instant after the jump; a time repeated when clocks go back runs once, at its first
    occurrence, unless the hour field is '*' (then every real hour runs, as cron does).
    """

    spec: str
    expression: str
    timezone: str = "UTC"

    def next_after(self, moment: datetime) -> datetime:
        zone = _zone(self.timezone)
        local = moment.astimezone(zone)
        it = croniter(self.expression, local)
        every_hour = self.expression.split()[1] == "*"
        while True:
            candidate = it.get_next(datetime).astimezone(UTC)
            if candidate <= moment:
                continue  # croniter works in whole seconds; never answer `moment` itself
            if every_hour or not _repeated(candidate, zone):
                return candidate


def _repeated(moment: datetime, zone: ZoneInfo) -> bool:
    """True when `moment` is the second occurrence of a wall-clock time (clocks went back)."""
    local = moment.astimezone(zone)
    first = local.replace(fold=0)
    return local.fold == 1 and first.utcoffset() != local.utcoffset()


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def check_timezone(name: str, where: str = "schedule.timezone") -> str:
    """`name` if it is an IANA time zone, else a ConfigError naming it and the fix."""
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown time zone {name!r}",
            "write an IANA time zone name such as 'UTC', 'Europe/Paris' or 'America/New_York'",
        ) from None
    return name


@lru_cache(maxsize=4096)
def parse(spec: str, timezone: str = "UTC", where: str = "schedule") -> Trigger:
    """The trigger of a spelling; a ConfigError naming the value and the accepted forms."""
    text = " ".join(str(spec).split())
    lowered = text.lower()
    if lowered == "manual":
        return Manual()
    name = lowered.replace(" ", "_").replace("-", "_")
    if name in NAMES:
        return Cron(text, NAMES[name], check_timezone(timezone))
    if name in ("every_minute", "every_hour"):
        name = name.replace("every_", "every_1_")
    if m := _EVERY.match(name):
        n, unit = int(m.group(1)), m.group(2).rstrip("s")
        size = 60 if unit == "minute" else 24
        if n < 1:
            raise ConfigError(
                f"{where}: {spec!r} must count at least 1 {unit}", f"write every_1_{unit}s or more"
            )
        # Intervals that divide the hour (or day) fall on the clock's round times in the
        # schedule's time zone, as cron's */N does; others are counted from the Unix epoch.
        if size % n == 0:
            step = "*" if n == 1 else f"*/{n}"
            expr = f"{step} * * * *" if unit == "minute" else f"0 {step} * * *"
            return Cron(text, expr, check_timezone(timezone))
        return Every(text, n * (60 if unit == "minute" else 3600))
    if len(text.split()) == 5 and croniter.is_valid(text):
        return Cron(text, text, check_timezone(timezone))
    raise ConfigError(f"{where}: unknown schedule {spec!r}", f"write {ACCEPTED}")


# Airbyte's connection objects carry their schedule as scheduleType and scheduleData.
_AIRBYTE_UNITS = {"minute": "minutes", "hour": "hours"}
_DOW_NUMBER = re.compile(r"(?<![/\d])(\d)")


def airbyte_schedule(spec: str, timezone: str = "UTC") -> dict[str, Any]:
    """A connection's schedule as Airbyte writes it: `manual`; `basic` with a time unit and a
    count for every_N_minutes/hours; `cron` with a Quartz expression and its time zone."""
    trigger = parse(spec, timezone)
    if isinstance(trigger, Manual):
        return {"scheduleType": "manual"}
    name = " ".join(str(spec).split()).lower().replace(" ", "_").replace("-", "_")
    if name in ("every_minute", "every_hour"):
        name = name.replace("every_", "every_1_")
    if m := _EVERY.match(name):
        unit = _AIRBYTE_UNITS[m.group(2).rstrip("s")]
        basic = {"timeUnit": unit, "units": int(m.group(1))}
        return {"scheduleType": "basic", "scheduleData": {"basicSchedule": basic}}
    assert isinstance(trigger, Cron)
    return {
        "scheduleType": "cron",
        "scheduleData": {
            "cron": {"cronExpression": quartz(trigger.expression), "cronTimeZone": timezone}
        },
    }


def quartz(expression: str) -> str:
    """A 5-field cron expression in Quartz's spelling (Airbyte's): seconds first, `?` for the
    day field left open, weekdays counted 1 (Sunday) to 7."""
    minute, hour, dom, month, dow = expression.split()
    dow = ",".join(_quartz_weekdays(part) for part in dow.split(","))
    if dow == "*":
        dow = "?"
    elif dom == "*":
        dom = "?"
    return f"0 {minute} {hour} {dom} {month} {dow}"


def _quartz_weekdays(part: str) -> str:
    """One comma-separated part of cron's weekday field in Quartz's numbers (Sunday is 0 or 7 in
    cron, 1 in Quartz): a range up to cron's 7 wraps to Quartz's 1."""
    if m := re.fullmatch(r"(\d)-7", part):
        return f"{int(m.group(1)) % 7 + 1}-7,1"
    return _DOW_NUMBER.sub(lambda d: str(int(d.group(1)) % 7 + 1), part)
