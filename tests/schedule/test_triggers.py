"""Schedule spellings and their next times, in UTC and across Europe/Paris's DST changes."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from fleuve.config import validate
from fleuve.errors import ConfigError
from fleuve.triggers import ACCEPTED, Manual, airbyte_schedule, parse

PARIS = ZoneInfo("Europe/Paris")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def paris(*parts: int, fold: int = 0) -> datetime:
    return datetime(*parts, tzinfo=PARIS, fold=fold)


def times(spec: str, start: datetime, n: int, tz: str = "UTC") -> list[datetime]:
    trigger, out, t = parse(spec, tz), [], start
    for _ in range(n):
        t = trigger.next_after(t)
        out.append(t)
    return out


@pytest.mark.parametrize(
    ("spec", "start", "expected"),
    [
        ("0 1 * * *", utc(2026, 1, 1, 0, 30), [utc(2026, 1, 1, 1), utc(2026, 1, 2, 1)]),
        ("0 1 * * *", utc(2026, 1, 1, 1), [utc(2026, 1, 2, 1), utc(2026, 1, 3, 1)]),
        ("hourly", utc(2026, 1, 1, 0, 59, 59), [utc(2026, 1, 1, 1), utc(2026, 1, 1, 2)]),
        ("daily", utc(2026, 1, 1, 12), [utc(2026, 1, 2), utc(2026, 1, 3)]),
        (
            "every_15_minutes",
            utc(2026, 1, 1, 0, 7),
            [utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 0, 30)],
        ),
        (
            "every 15 minutes",
            utc(2026, 1, 1, 0, 15),
            [utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 45)],
        ),
        ("every_6_hours", utc(2026, 1, 1, 5), [utc(2026, 1, 1, 6), utc(2026, 1, 1, 12)]),
        (
            "every_1_minutes",
            utc(2026, 1, 1, 0, 0, 1),
            [utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 2)],
        ),
        # 7 does not divide 60: ticks every 420 s from the Unix epoch.
        ("every_7_minutes", utc(2026, 1, 1), [utc(2026, 1, 1, 0, 7), utc(2026, 1, 1, 0, 14)]),
        ("every_5_hours", utc(2026, 1, 1), [utc(2026, 1, 1, 4), utc(2026, 1, 1, 9)]),
    ],
)
def test_next_times_in_utc(spec: str, start: datetime, expected: list[datetime]) -> None:
    assert times(spec, start, len(expected)) == expected


def test_manual_is_never_due() -> None:
    assert parse("manual") == Manual()
    assert parse("manual").next_after(utc(2026, 1, 1)) is None


def test_cron_in_a_time_zone() -> None:
    # 01:00 in Paris is 00:00 UTC in winter and 23:00 UTC the day before in summer.
    assert times("0 1 * * *", utc(2026, 1, 10), 1, "Europe/Paris") == [utc(2026, 1, 11, 0)]
    assert times("0 1 * * *", utc(2026, 7, 10), 1, "Europe/Paris") == [utc(2026, 7, 10, 23)]


def test_spring_forward_in_paris() -> None:
    # 2026-03-29: clocks jump from 02:00 to 03:00. A daily 02:30 runs at 03:00 that day, once.
    got = times("30 2 * * *", paris(2026, 3, 28, 12), 3, "Europe/Paris")
    assert [t.astimezone(PARIS) for t in got] == [
        paris(2026, 3, 29, 2, 30).replace(hour=3, minute=0),
        paris(2026, 3, 30, 2, 30),
        paris(2026, 3, 31, 2, 30),
    ]
    assert got[0] == utc(2026, 3, 29, 1)
    # Hourly runs are a real hour apart across the jump: 01:00 CET then 03:00 CEST.
    hourly = times("hourly", paris(2026, 3, 29, 0, 30), 3, "Europe/Paris")
    assert hourly == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2)]


def test_fall_back_in_paris() -> None:
    # 2026-10-25: clocks go back from 03:00 to 02:00. A daily 02:30 runs once, not twice.
    got = times("30 2 * * *", paris(2026, 10, 24, 12), 3, "Europe/Paris")
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)]
    # Every real hour runs, the repeated one too: 02:00 CEST, 02:00 CET, 03:00 CET.
    hourly = times("0 * * * *", paris(2026, 10, 25, 1, 30), 3, "Europe/Paris")
    assert hourly == [utc(2026, 10, 25, 0), utc(2026, 10, 25, 1), utc(2026, 10, 25, 2)]
    quarter = times("every_15_minutes", paris(2026, 10, 25, 2, 50), 6, "Europe/Paris")
    assert [b - a for a, b in itertools.pairwise(quarter)] == [quarter[1] - quarter[0]] * 5


@pytest.mark.parametrize(
    "spec", ["every fortnight", "0 25 * * *", "* * * *", "every_0_minutes", "at noon", ""]
)
def test_unknown_spellings_name_the_value_and_the_forms(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(spec)
    assert repr(spec) in err.value.message or "at least 1" in err.value.message
    if "at least" not in err.value.message:
        assert err.value.fix == f"write {ACCEPTED}"


@pytest.mark.parametrize(
    "raw",
    [
        {"connections": [{"name": "c", "source": {"type": "files"}, "schedule": "0 99 * * *"}]},
        {"schedules": [{"name": "s", "what": "pipeline", "schedule": "weekdays"}]},
        {"schedule": {"reflections": "sometimes"}},
    ],
)
def test_fleuve_yml_rejects_unknown_spellings(raw: dict) -> None:
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert "unknown schedule" in err.value.message and "every_N_minutes" in err.value.message


def test_fleuve_yml_rejects_unknown_time_zones() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Paris'"):
        validate({"schedule": {"timezone": "Paris"}})


def test_fleuve_yml_rejects_bad_after_links() -> None:
    with pytest.raises(ConfigError, match="runs after 'nope'"):
        validate({"schedules": [{"name": "a", "what": "lake_maintain", "after": ["nope"]}]})
    loop = [
        {"name": "a", "what": "lake_maintain", "after": ["b"]},
        {"name": "b", "what": "lake_maintain", "after": ["a"]},
    ]
    with pytest.raises(ConfigError, match="runs after itself"):
        validate({"schedules": loop})


@pytest.mark.parametrize(
    ("spec", "shape"),
    [
        ("manual", {"scheduleType": "manual"}),
        ("every_15_minutes", ("basic", "minutes", 15)),
        ("every 7 minutes", ("basic", "minutes", 7)),
        ("every_hour", ("basic", "hours", 1)),
        ("every_6_hours", ("basic", "hours", 6)),
        ("hourly", ("cron", "0 0 * * * ?")),
        ("daily", ("cron", "0 0 0 * * ?")),
        ("weekly", ("cron", "0 0 0 ? * 1")),
        ("monthly", ("cron", "0 0 0 1 * ?")),
        ("30 2 * * 1-5", ("cron", "0 30 2 ? * 2-6")),
        ("*/10 * * * 0,6", ("cron", "0 */10 * ? * 1,7")),
        ("0 8 * * 5-7", ("cron", "0 0 8 ? * 6-7,1")),
        ("0 8 * * 0-2,7", ("cron", "0 0 8 ? * 1-3,1")),
    ],
)
def test_schedules_in_airbyte_shape(spec: str, shape: object) -> None:
    got = airbyte_schedule(spec, "Europe/Paris")
    if isinstance(shape, dict):
        assert got == shape
    elif shape[0] == "basic":
        basic = {"timeUnit": shape[1], "units": shape[2]}
        assert got == {"scheduleType": "basic", "scheduleData": {"basicSchedule": basic}}
    else:
        cron = {"cronExpression": shape[1], "cronTimeZone": "Europe/Paris"}
        assert got == {"scheduleType": "cron", "scheduleData": {"cron": cron}}
