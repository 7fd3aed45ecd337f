"""Quiet hours' epoch boundaries from a local `HH:MM-HH:MM` window (pure functions, zoneinfo)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from config.errors import SettingsError
from config.quiet_window import QuietHours, parse_window
from config.settings import load_settings

PARIS = ZoneInfo("Europe/Paris")


def at(zone: ZoneInfo, *parts: int) -> float:
    return datetime(*parts, tzinfo=zone).timestamp()  # type: ignore[misc,arg-type]


def local(ts: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, zone).strftime("%Y-%m-%d %H:%M %Z")


@pytest.mark.parametrize("spec", ["21:00", "9:00-08:00", "24:00-08:00", "21:00-08:60", "21:00-21:00", "x"])
def test_a_malformed_window_is_refused_naming_it(spec):
    with pytest.raises(ValueError, match="HH:MM|same time"):
        parse_window(spec)


def test_settings_name_the_variable_of_a_bad_window_or_zone():
    with pytest.raises(SettingsError, match="^COSMOS_QUIET_HOURS: "):
        load_settings(_env_file=None, COSMOS_QUIET_HOURS="21-8")
    with pytest.raises(SettingsError, match="^COSMOS_QUIET_HOURS_TZ: .*IANA"):
        load_settings(_env_file=None, COSMOS_QUIET_HOURS="21:00-08:00", COSMOS_QUIET_HOURS_TZ="Mars/Olympus")


def test_a_window_across_midnight_runs_from_the_evening_to_the_next_morning():
    quiet = QuietHours.parse("21:00-08:00", "UTC")
    assert quiet is not None
    s1, e1, s2, e2 = quiet.windows(at(ZoneInfo("UTC"), 2026, 12, 8, 23, 30))
    assert (local(s1, ZoneInfo("UTC")), local(e1, ZoneInfo("UTC"))) == ("2026-12-08 21:00 UTC", "2026-12-09 08:00 UTC")
    assert (s2 - s1, e2 - e1) == (86400, 86400)
    assert quiet.until(at(ZoneInfo("UTC"), 2026, 12, 9, 7, 59)) == e1
    assert quiet.until(at(ZoneInfo("UTC"), 2026, 12, 9, 8, 0)) is None
    assert quiet.until(at(ZoneInfo("UTC"), 2026, 12, 9, 20, 59)) is None


def test_a_daytime_window_in_another_zone_follows_local_time():
    quiet = QuietHours.parse("12:00-14:00", "Asia/Tokyo")
    assert quiet is not None
    noon_in_tokyo = at(ZoneInfo("Asia/Tokyo"), 2026, 12, 8, 12, 30)
    assert quiet.until(noon_in_tokyo) == at(ZoneInfo("Asia/Tokyo"), 2026, 12, 8, 14, 0)
    assert quiet.until(at(ZoneInfo("UTC"), 2026, 12, 8, 12, 30)) is None  # 21:30 in Tokyo


@pytest.mark.parametrize(
    ("night", "hours"),
    [((2026, 3, 28), 10), ((2026, 10, 24), 12), ((2026, 6, 1), 11)],
    ids=["spring-forward", "fall-back", "no-change"],
)
def test_a_window_across_a_dst_change_keeps_its_wall_clock_ends(night, hours):
    quiet = QuietHours.parse("21:00-08:00", "Europe/Paris")
    assert quiet is not None
    start, end, _, _ = quiet.windows(at(PARIS, *night, 22, 0))
    assert local(start, PARIS)[11:16] == "21:00"
    assert local(end, PARIS)[11:16] == "08:00"
    assert (end - start) / 3600 == hours
