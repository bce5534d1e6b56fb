"""Days of the statistics that agencies and authorities read (the issuer's dashboard, the
verifier's `/v1/stats/verifications`): calendar days of China Standard Time (UTC+8, no daylight
saving), counted in the database by one SQL expression per dialect, so that the issuer and the
verifier cut their days at the same instant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import extract, func, literal_column
from sqlalchemy.sql.elements import ColumnElement

CST = dt.timezone(dt.timedelta(hours=8), "CST")
MAX_DAYS = 366


def day_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL: the CST day of a stored UTC time, as text `YYYY-MM-DD` (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), literal_column("'YYYY-MM-DD'"))
    return func.date(column, literal_column("'+8 hours'"))


def epoch_of(column: Any, dialect: str) -> ColumnElement[Any]:
    """SQL: a stored UTC time as seconds since 1970 (a float)."""
    if dialect == "postgresql":
        return extract("epoch", column)
    return (func.julianday(column) - 2440587.5) * 86400.0


def day_text(moment: dt.datetime) -> str:
    """The CST day of an aware (or stored-UTC naive) time."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(CST).date().isoformat()


def today() -> dt.date:
    return dt.datetime.now(CST).date()


def bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants [start, end) of CST days `first` … `last`."""
    start = dt.datetime.combine(first, dt.time(), CST).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), CST).astimezone(dt.UTC)
    return start, end


def days(first: dt.date, last: dt.date) -> list[str]:
    """Every day of the period as text, oldest first."""
    count = (last - first).days + 1
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(max(count, 0))]


def parse_period(first: str | None, last: str | None, default_days: int = 30) -> tuple[dt.date, dt.date]:
    """`from`/`to` as `YYYY-MM-DD` (CST days, both included); ValueError when malformed, reversed
    or longer than `MAX_DAYS`. Defaults: the last `default_days` days up to today."""
    end = dt.date.fromisoformat(last) if last else today()
    start = dt.date.fromisoformat(first) if first else end - dt.timedelta(days=default_days - 1)
    if start > end:
        raise ValueError("from is after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise ValueError(f"a period of at most {MAX_DAYS} days")
    return start, end
