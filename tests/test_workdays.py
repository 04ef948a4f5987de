"""The working-day calendar (工作日历): the State Council's holidays and adjusted working weekends
(调休) of 2025 and 2026, the weekends-only fallback for a year without data (and its warning), the
extra local holidays, the operator's folder of more years, and files refused with their reason."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mall.core import clock, workdays
from mall.core.settings import Settings, SettingsError, load_settings
from mall.core.workdays import CalendarError, WorkCalendar, load_calendar, read_year_file
from tests.factories import frozen_at

RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large]
HEADER = "date,kind,name\n"


@pytest.fixture
def cal() -> WorkCalendar:
    return load_calendar()  # read afresh: its warnings are its own


def rest_days(cal: WorkCalendar, first: date, last: date) -> list[date]:
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [d for d in days if not cal.is_working_day(d)]


def test_the_shipped_years_are_2025_and_2026_as_the_notices_say(cal: WorkCalendar) -> None:
    assert {2025, 2026} <= set(cal.covered_years())
    y25, y26 = cal.years[2025], cal.years[2026]
    assert "国办发明电〔2024〕12号" in y25.note and "国办发明电〔2025〕7号" in y26.note
    # 2025: 元旦 1, 春节 8, 清明 3, 劳动节 5, 端午 3, 国庆+中秋 8 rest days; 5 working weekends
    assert (len(y25.holidays), len(y25.workdays)) == (28, 5)
    assert y25.workdays == tuple(date(2025, m, d) for m, d in [(1, 26), (2, 8), (4, 27), (9, 28), (10, 11)])
    # 2026: 元旦 3, 春节 9, 清明 3, 劳动节 5, 端午 3, 中秋 3, 国庆 7 rest days; 6 working weekends
    assert (len(y26.holidays), len(y26.workdays)) == (33, 6)
    assert y26.workdays == tuple(
        date(2026, m, d) for m, d in [(1, 4), (2, 14), (2, 28), (5, 9), (9, 20), (10, 10)]
    )
    assert {e.name for e in y26.entries} == {"元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节"}


def test_spring_festival_2026(cal: WorkCalendar) -> None:
    # Sat Feb 14 works, Feb 15–23 rest (9 days), Sat Feb 28 works, Sun Mar 1 rests.
    assert cal.is_working_day(date(2026, 2, 14)) and cal.is_working_day(date(2026, 2, 28))
    assert rest_days(cal, date(2026, 2, 13), date(2026, 3, 2)) == [
        *(date(2026, 2, d) for d in range(15, 24)),
        date(2026, 3, 1),
    ]
    friday = date(2026, 2, 13)
    # Feb 14 (Sat), 24, 25, 26, 27, 28 (Sat), Mar 2: weekends only would have said Feb 24.
    assert cal.add_working_days(friday, 7) == date(2026, 3, 2)
    assert cal.add_working_days(friday, 1) == date(2026, 2, 14)
    assert cal.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)  # the start is not counted
    assert cal.add_working_days(date(2026, 2, 27), 1) == date(2026, 2, 28)
    assert cal.working_days_between(friday, date(2026, 3, 2)) == 7
    assert cal.working_days_between(date(2026, 2, 14), date(2026, 2, 23)) == 0
    assert cal.add_working_days(date(2026, 2, 24), -1) == date(2026, 2, 14)


def test_national_day_and_mid_autumn_2026(cal: WorkCalendar) -> None:
    assert cal.is_working_day(date(2026, 9, 20))  # a Sunday that works
    assert not cal.is_working_day(date(2026, 9, 25))  # 中秋, a Friday
    assert cal.is_working_day(date(2026, 10, 10)) and not cal.is_working_day(date(2026, 10, 11))
    assert rest_days(cal, date(2026, 9, 19), date(2026, 10, 11)) == [
        date(2026, 9, 19),
        *(date(2026, 9, d) for d in (25, 26, 27)),
        *(date(2026, 10, d) for d in range(1, 8)),
        date(2026, 10, 11),
    ]
    # Thu Sep 24: Sep 28, 29, 30, Oct 8, 9, 10 (Sat), 12 — weekends only would have said Oct 5.
    assert cal.add_working_days(date(2026, 9, 24), 7) == date(2026, 10, 12)
    assert cal.add_working_days(date(2026, 9, 18), 1) == date(2026, 9, 20)


def test_new_year_2026_and_the_2025_holidays(cal: WorkCalendar) -> None:
    assert rest_days(cal, date(2025, 12, 31), date(2026, 1, 4)) == [date(2026, 1, d) for d in (1, 2, 3)]
    assert cal.add_working_days(date(2025, 12, 31), 1) == date(2026, 1, 4)  # a Sunday that works
    # 2025
    assert cal.is_working_day(date(2025, 1, 26)) and cal.is_working_day(date(2025, 2, 8))
    assert rest_days(cal, date(2025, 1, 27), date(2025, 2, 8)) == [
        *(date(2025, 1, d) for d in range(28, 32)),
        *(date(2025, 2, d) for d in range(1, 5)),
    ]
    assert cal.is_working_day(date(2025, 4, 27)) and not cal.is_working_day(date(2025, 5, 5))
    assert not cal.is_working_day(date(2025, 6, 2))  # 端午, a Monday
    # Fri Sep 26: Sep 28 (Sun), 29, 30, then Oct 1–8 rest, Oct 9, 10.
    assert cal.add_working_days(date(2025, 9, 26), 5) == date(2025, 10, 10)
    assert cal.add_working_days(date(2025, 10, 10), 1) == date(2025, 10, 11)  # a Saturday that works
    # 261 weekdays, less 18 holidays on weekdays, plus 5 working weekends; 2026: 261 − 19 + 6
    assert cal.working_days_between(date(2024, 12, 31), date(2025, 12, 31)) == 248
    assert cal.working_days_between(date(2025, 12, 31), date(2026, 12, 31)) == 248
    assert cal.working_days_between(date(2026, 12, 31), date(2025, 12, 31)) == -248


def test_a_year_without_data_counts_weekends_only_and_says_so_once(
    cal: WorkCalendar, caplog: pytest.LogCaptureFixture
) -> None:
    assert not cal.covers(2031)
    with caplog.at_level(logging.WARNING, logger="mall.workdays"):
        assert cal.add_working_days(date(2031, 9, 30), 5) == date(2031, 10, 7)  # no National Day
        assert cal.add_working_days(date(2031, 10, 1), 1) == date(2031, 10, 2)
        assert cal.is_working_day(date(2031, 1, 1)) and not cal.is_working_day(date(2031, 1, 4))
    warned = [r.getMessage() for r in caplog.records if r.name == "mall.workdays"]
    assert len(warned) == 1 and "2031" in warned[0] and "MALL_CALENDAR_DIR" in warned[0]
    caplog.clear()
    # A deadline counted from late December into a year without data warns for that year.
    with caplog.at_level(logging.WARNING, logger="mall.workdays"):
        assert cal.add_working_days(date(2026, 12, 30), 3) == date(2027, 1, 4)
        assert cal.covers(2026)
    assert [r.getMessage() for r in caplog.records if "2027" in r.getMessage()] != []
    assert not any("2026" in r.getMessage() for r in caplog.records)


def test_mall_holidays_are_extra_rest_days() -> None:
    cal = load_calendar("", frozenset({date(2026, 3, 3), date(2026, 2, 14), date(2031, 5, 6)}))
    assert not cal.is_working_day(date(2026, 3, 3))
    assert not cal.is_working_day(date(2026, 2, 14))  # a local rest day wins over a working weekend
    assert cal.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 24)
    assert not cal.is_working_day(date(2031, 5, 6))  # also in a year without data
    s = load_settings({"MALL_HOLIDAYS": "2026-03-03, 2026-03-04"})
    assert s.work_calendar.add_working_days(date(2026, 3, 2), 1) == date(2026, 3, 5)
    assert s.work_calendar.is_working_day(date(2026, 2, 28))  # the notices still apply
    assert s.work_calendar is load_settings({"MALL_HOLIDAYS": "2026-03-03, 2026-03-04"}).work_calendar
    with pytest.raises(SettingsError, match="MALL_HOLIDAYS"):
        load_settings({"MALL_HOLIDAYS": "2026-03-03,三月四日"})


def year_file(folder: Path, name: str, body: str, comment: str = "# 测试用日历\n") -> Path:
    path = folder / name
    path.write_text(comment + body, encoding="utf-8")
    return path


def test_an_operator_adds_a_year_and_replaces_one(tmp_path: Path) -> None:
    # Made-up dates for the test: not the 2027 notice.
    year_file(
        tmp_path,
        "2027.csv",
        HEADER + "2027-02-06,workday,春节\n\n2027-02-08,holiday,春节\n2027-02-09,holiday,春节\n",
    )
    (tmp_path / "README.md").write_text("年度日历文件说明\n", encoding="utf-8")  # not a CSV: left alone
    # a corrected 2026: the Spring Festival one day longer
    year_file(tmp_path, "2026.csv", HEADER + "2026-02-15,holiday,春节\n2026-02-16,holiday,春节\n")
    s = load_settings({"MALL_CALENDAR_DIR": str(tmp_path)})
    cal = s.work_calendar
    assert cal.covers(2027) and cal.covers(2025)
    assert cal.years[2027].path == tmp_path / "2027.csv" and cal.years[2027].note == "测试用日历"
    assert cal.is_working_day(date(2027, 2, 6)) and not cal.is_working_day(date(2027, 2, 8))
    assert cal.add_working_days(date(2027, 2, 5), 2) == date(2027, 2, 10)
    assert cal.years[2026].path == tmp_path / "2026.csv"
    assert cal.is_working_day(date(2026, 2, 17)) and not cal.is_working_day(date(2026, 2, 14))
    assert cal.is_working_day(date(2025, 2, 8))  # other years stay as shipped


BAD_FILES = [
    ("2027.csv", "2026-12-31,holiday,元旦\n", "2027.csv:3: 2026-12-31 is not in 2027"),
    ("2027.csv", "2027-02-08,vacation,春节\n", "kind 'vacation' is not holiday or workday"),
    (
        "2027.csv",
        "2027-02-08,workday,春节\n",
        "2027-02-08 is a Monday; a workday row is for a Saturday or Sunday",
    ),
    (
        "2027.csv",
        "2027-02-08,holiday,春节\n2027-02-08,holiday,春节\n",
        "2027.csv:4: 2027-02-08 is listed twice (first on line 3)",
    ),
    ("2027.csv", "2027-02-06,workday,春节\n2027-02-06,holiday,春节\n", "listed twice"),
    ("2027.csv", "2027-2-8,holiday,春节\n", "'2027-2-8' is not a date written YYYY-MM-DD"),
    ("2027.csv", "2027-02-30,holiday,春节\n", "'2027-02-30' is not a date"),
    ("2027.csv", "2027-02-08,holiday,\n", "2027-02-08 has no name"),
    ("2027.csv", "2027-02-08,holiday\n", "expected 3 fields"),
    ("2027.csv", "", "no dates"),
    ("2027-spring.csv", "2027-02-08,holiday,春节\n", "named after its year, like 2027.csv"),
]


@pytest.mark.parametrize(("name", "rows", "message"), BAD_FILES)
def test_a_bad_file_is_refused_at_start_with_its_line(
    tmp_path: Path, name: str, rows: str, message: str
) -> None:
    path = year_file(tmp_path, name, HEADER + rows)
    with pytest.raises(CalendarError, match=re.escape(message)):
        read_year_file(path)
    with pytest.raises(SettingsError, match=re.escape(message)) as err:
        load_settings({"MALL_CALENDAR_DIR": str(tmp_path)})
    assert "MALL_CALENDAR_DIR" in str(err.value) and str(tmp_path) in str(err.value)


def test_a_file_without_its_header_and_a_missing_folder_are_refused(tmp_path: Path) -> None:
    path = year_file(tmp_path, "2027.csv", "2027-02-08,holiday,春节\n")
    with pytest.raises(
        CalendarError, match=r"2027\.csv:2: the first line that is not a comment must be date,kind,name"
    ):
        read_year_file(path)
    path = year_file(tmp_path, "2027.csv", "", comment="# 只有说明\n")
    with pytest.raises(CalendarError, match="no header line"):
        read_year_file(path)
    with pytest.raises(SettingsError, match="not a folder"):
        load_settings({"MALL_CALENDAR_DIR": str(tmp_path / "missing")})


@settings(max_examples=200, deadline=None, suppress_health_check=RELAXED)
@given(
    start=st.dates(min_value=date(2024, 11, 1), max_value=date(2027, 2, 28)),
    n=st.integers(min_value=-30, max_value=30),
)
def test_counting_forward_and_between_agree(start: date, n: int) -> None:
    cal = workdays.calendar_for("", frozenset())
    end = cal.add_working_days(start, n)
    assert cal.working_days_between(start, end) == n
    if n:
        assert cal.is_working_day(end)
        # the n-th working day: the day before it has one fewer after `start`
        step = timedelta(days=1 if n > 0 else -1)
        assert cal.working_days_between(start, end - step) == n - (1 if n > 0 else -1)
    else:
        assert end == start


def test_check_calendar_lists_the_years_and_fails_when_this_year_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    from mall import cli

    if settings.data_key:  # a server database: every `mall` command needs its data key to start
        monkeypatch.setenv("MALL_DATA_KEY", settings.data_key)
    monkeypatch.delenv("MALL_CALENDAR_DIR", raising=False)
    monkeypatch.delenv("MALL_HOLIDAYS", raising=False)
    with frozen_at(datetime(2026, 6, 1, 2, 0, tzinfo=clock.UTC)), pytest.raises(SystemExit) as done:
        cli.main(["check-calendar"])
    out, err = capsys.readouterr()
    assert done.value.code == 0
    assert "2025年：放假 28 天，调休上班 5 天" in out and "国办发明电〔2025〕7号" in out
    assert "2027年未覆盖" in err  # next year: said, not failed

    with frozen_at(datetime(2031, 6, 1, 2, 0, tzinfo=clock.UTC)), pytest.raises(SystemExit) as done:
        cli.main(["check-calendar"])
    assert done.value.code == 1 and "2031年未覆盖" in capsys.readouterr().err

    year_file(tmp_path, "2027.csv", HEADER + "2027-02-08,workday,春节\n")
    monkeypatch.setenv("MALL_CALENDAR_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as done:
        cli.main(["check-calendar"])
    assert done.value.code == 2
    assert "2027-02-08 is a Monday" in capsys.readouterr().err
