"""The working-day calendar (工作日历): which dates are working days in China.

Deadlines in working days (工作日) follow the State Council General Office's yearly notice of holiday
arrangements: its holidays are rest days, even on a weekday, and its adjusted working weekends
(调休上班) are working days, even on a Saturday or Sunday. Each year is one file, `YYYY.csv`:

    # any number of comment lines; the first one names the notice (shown by `mall check-calendar`)
    date,kind,name
    2026-02-14,workday,春节
    2026-02-15,holiday,春节

`kind` is `holiday` (a rest day of the notice, weekends inside a holiday included) or `workday`
(a Saturday or Sunday that is a working day); `name` is the holiday the date belongs to. The mall
ships the years in `mall/data/workdays/`; an operator adds a year (or replaces one) with a file in
`MALL_CALENDAR_DIR`. For a year no file covers, weekends are the only rest days, and a warning is
logged once per year and process. Files are checked strictly when they are read (at start-up).
"""

from __future__ import annotations

import csv
import functools
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("mall.workdays")

# The years the mall ships, one file a year.
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "data" / "workdays"
HEADER = ("date", "kind", "name")
HOLIDAY = "holiday"
WORKDAY = "workday"
KINDS = (HOLIDAY, WORKDAY)
_YEAR_FILE = re.compile(r"(\d{4})\.csv")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SATURDAY = 5
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CalendarError(ValueError):
    """A calendar file that cannot be used (English, for operators: the path and the line)."""


@dataclass(frozen=True)
class Entry:
    day: date
    kind: str
    name: str


@dataclass(frozen=True)
class YearFile:
    """One year of the calendar, as read from its file."""

    year: int
    path: Path
    note: str  # the first comment line: the notice the year comes from
    entries: tuple[Entry, ...]

    @property
    def holidays(self) -> tuple[date, ...]:
        return tuple(e.day for e in self.entries if e.kind == HOLIDAY)

    @property
    def workdays(self) -> tuple[date, ...]:
        return tuple(e.day for e in self.entries if e.kind == WORKDAY)


def read_year_file(path: Path) -> YearFile:
    """Read and check one `YYYY.csv`: every date inside the file's year and listed once, a known
    kind, a `workday` only on a Saturday or Sunday, a name for every date."""
    m = _YEAR_FILE.fullmatch(path.name)
    if m is None:
        raise CalendarError(f"{path}: a calendar file is named after its year, like 2027.csv")
    year = int(m.group(1))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalendarError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
    note = ""
    header_seen = False
    seen: dict[date, int] = {}
    entries: list[Entry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            if not note and not header_seen:
                note = line.lstrip().lstrip("#").strip()
            continue
        cells = tuple(cell.strip() for cell in next(csv.reader([line])))
        if not header_seen:
            if cells != HEADER:
                raise CalendarError(f"{where}: the first line that is not a comment must be date,kind,name")
            header_seen = True
            continue
        if len(cells) != len(HEADER):
            raise CalendarError(f"{where}: expected 3 fields (date,kind,name), found {len(cells)}")
        raw, kind, name = cells
        if not _ISO_DATE.fullmatch(raw):
            raise CalendarError(f"{where}: {raw!r} is not a date written YYYY-MM-DD")
        try:
            day = date.fromisoformat(raw)
        except ValueError as exc:
            raise CalendarError(f"{where}: {raw!r} is not a date ({exc})") from exc
        if day.year != year:
            raise CalendarError(f"{where}: {raw} is not in {year}, the year of this file")
        if kind not in KINDS:
            raise CalendarError(f"{where}: kind {kind!r} is not holiday or workday")
        if kind == WORKDAY and day.weekday() < SATURDAY:
            raise CalendarError(
                f"{where}: {raw} is a {WEEKDAYS[day.weekday()]}; a workday row is for a Saturday or Sunday "
                "that is a working day (调休上班)"
            )
        if not name:
            raise CalendarError(f"{where}: {raw} has no name (the holiday it belongs to)")
        if day in seen:
            raise CalendarError(f"{where}: {raw} is listed twice (first on line {seen[day]})")
        seen[day] = number
        entries.append(Entry(day, kind, name))
    if not header_seen:
        raise CalendarError(f"{path}: no header line date,kind,name")
    if not entries:
        raise CalendarError(f"{path}: no dates (a year always has holidays)")
    return YearFile(year, path, note, tuple(sorted(entries, key=lambda e: e.day)))


def read_folder(folder: Path) -> dict[int, YearFile]:
    """Every `YYYY.csv` in a folder, by year. Other CSV files are refused (a misnamed year would be
    silently missing); files that are not CSV (a README) are left alone."""
    if not folder.is_dir():
        raise CalendarError(f"{folder}: not a folder")
    years: dict[int, YearFile] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".csv":
            continue
        year_file = read_year_file(path)
        years[year_file.year] = year_file
    return years


class WorkCalendar:
    """Working days: Monday to Friday, less the holidays, plus the adjusted working weekends.

    `extra_holidays` are local rest days on top of the notices (`MALL_HOLIDAYS`): they are rest days
    whatever the files say. A date in a year no file covers counts weekends only, and the first such
    date of each year logs a warning."""

    def __init__(self, years: Iterable[YearFile], extra_holidays: frozenset[date] = frozenset()) -> None:
        self.years = {y.year: y for y in sorted(years, key=lambda y: y.year)}
        self.extra_holidays = extra_holidays
        self._rest = frozenset(d for y in self.years.values() for d in y.holidays) | extra_holidays
        self._work = frozenset(d for y in self.years.values() for d in y.workdays) - extra_holidays
        self._warned: set[int] = set()

    def covered_years(self) -> tuple[int, ...]:
        return tuple(self.years)

    def covers(self, year: int) -> bool:
        return year in self.years

    def is_working_day(self, d: date) -> bool:
        if d.year not in self.years:
            self._uncovered(d.year)
        if d in self._rest:
            return False
        return d in self._work or d.weekday() < SATURDAY

    def add_working_days(self, start: date, n: int) -> date:
        """The `n`-th working day after `start` (`start` itself not counted, whatever it is); for a
        negative `n`, the `-n`-th working day before it; `start` for 0."""
        step = timedelta(days=1 if n > 0 else -1)
        d = start
        left = abs(n)
        while left:
            d += step
            if self.is_working_day(d):
                left -= 1
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """The working days passed on the way from `a` to `b`, not counting `a`, counting `b`:
        negative when `b` is before `a`. So `working_days_between(a, add_working_days(a, n)) == n`."""
        sign = 1 if b >= a else -1
        step = timedelta(days=sign)
        count = 0
        d = a
        while d != b:
            d += step
            count += self.is_working_day(d)
        return sign * count

    def _uncovered(self, year: int) -> None:
        if year in self._warned:
            return
        self._warned.add(year)
        log.warning(
            "no working-day calendar for %d: counting weekends%s only as rest days; add %d.csv "
            "(from the State Council's notice of holiday arrangements) to MALL_CALENDAR_DIR",
            year,
            " and MALL_HOLIDAYS" if self.extra_holidays else "",
            year,
        )


def load_calendar(
    calendar_dir: str | Path = "", extra_holidays: frozenset[date] = frozenset()
) -> WorkCalendar:
    """The shipped years, with those of `calendar_dir` added (a year there replaces the shipped
    file of that year: a corrected notice), and the extra local holidays. Reads the files."""
    years = read_folder(PACKAGE_DIR)
    if calendar_dir:
        years.update(read_folder(Path(calendar_dir)))
    return WorkCalendar(years.values(), extra_holidays)


@functools.lru_cache(maxsize=16)
def calendar_for(calendar_dir: str, extra_holidays: frozenset[date]) -> WorkCalendar:
    """`load_calendar`, read once per process for each setting (files changed later need a restart)."""
    return load_calendar(calendar_dir, extra_holidays)
