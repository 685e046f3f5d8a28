"""Times as a clinician reads them: on their hospital's clock, with the zone's short name beside them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_interval, format_skeleton, get_timezone_name


def zoned(moment: datetime | str, zone: str) -> str:
    """``2030-05-03 14:30 CST``: the moment on ``zone``'s clock and that zone's short name then."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def zone_label(zone: str, at: datetime | None = None) -> str:
    """``Asia/Shanghai, CST``: a form's label for the clock its times are read on."""
    local = (at or datetime.now(ZoneInfo(zone))).astimezone(ZoneInfo(zone))
    return f"{zone}, {local.tzname()}"


def for_patient(moment: datetime, zone: str, locale: str) -> str:
    """The moment in words a patient reads in a message, with the zone named in full in their language:
    ``Thursday, 3 May 2030, 14:30 (China Standard Time)``, ``2030年5月3日星期五 14:30（中国标准时间）``."""
    local = moment.astimezone(ZoneInfo(zone))
    babel_locale = locale.replace("-", "_")
    name = get_timezone_name(local, width="long", locale=babel_locale)
    if babel_locale.startswith("zh"):
        return f"{format_datetime(local, 'y年M月d日EEEE HH:mm', locale=babel_locale)}（{name}）"
    return f"{format_datetime(local, 'EEEE, d MMMM y, HH:mm', locale=babel_locale)} ({name})"


def clock_time(moment: datetime, zone: str) -> str:
    """``08:00``: the time of day on ``zone``'s clock (a calendar names the zone once, above it)."""
    return f"{moment.astimezone(ZoneInfo(zone)):%H:%M}"


def zone_names(moments: Iterable[datetime], zone: str) -> str:
    """``CST``, or ``GMT/BST`` for a week that crosses a change of summer time: the short names ``zone`` has
    at these moments, in order."""
    names: list[str] = []
    for moment in moments:
        name = moment.astimezone(ZoneInfo(zone)).tzname() or zone
        if name not in names:
            names.append(name)
    return "/".join(names) or (datetime.now(ZoneInfo(zone)).tzname() or zone)


def _babel(locale: str) -> str:
    return locale.replace("-", "_")


def weekday(day: date, locale: str) -> str:
    """``Monday``, ``星期一``."""
    return format_date(day, "EEEE", locale=_babel(locale))


def day_and_month(day: date, locale: str) -> str:
    """``Jun 2``, ``6月2日``."""
    return format_skeleton("MMMd", day, locale=_babel(locale))


def day_span(first: date, last: date, locale: str) -> str:
    """``Jun 2 – 8, 2025``, ``2025年6月2日 – 8日``: a run of days, as the language writes one."""
    return format_interval(first, last, "yMMMd", locale=_babel(locale))
