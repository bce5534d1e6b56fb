"""The dashboard's server-side charts (`issuer.charts`), CSV exports (`issuer.dashboard.Panel`)
and CST days (`registry.stats_days`): pure, no database or chain."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET

import pytest

from issuer.charts import bar_chart, legend, nice_ceiling
from issuer.dashboard import Panel
from registry.stats_days import bounds, day_text, days, parse_period

SVG = "{http://www.w3.org/2000/svg}"


def test_a_bar_chart_is_an_accessible_image_with_its_figures_stacked() -> None:
    svg = bar_chart("c1", "签发 <量>", "2 项，合计 6。", ["2026-12-03", "2026-12-04"], [("A", [1, 2]), ("B", [None, 3])],
                    short_label=5)  # fmt: skip
    root = ET.fromstring(svg)  # noqa: S314 - our own markup
    assert root.get("role") == "img" and root.get("aria-labelledby") == "c1-t c1-d"
    assert root.find(f"{SVG}title").text == "签发 <量>" and root.find(f"{SVG}desc").text == "2 项，合计 6。"
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3  # a None or 0 draws nothing
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] + heights[2] == pytest.approx(heights[0] * 5)  # stacked on one axis: 2 + 3 vs 1
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "12-03" in labels and "12-04" in labels and "5" in labels  # axis top: nice_ceiling(5)
    assert "style" not in svg  # the console's CSP allows no inline style


def test_an_empty_chart_and_nice_ceilings() -> None:
    assert ET.fromstring(bar_chart("e", "t", "d", [], [("A", [])])).get("role") == "img"  # noqa: S314
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 11, 2400)] == [1, 0.5, 1, 5, 10, 20, 2500]
    assert "&lt;b&gt;" in legend(["<b>"]) and 'aria-hidden="true"' in legend(["x"])


def test_a_panel_s_csv_is_its_table_and_defuses_formulas() -> None:
    panel = Panel(
        "failures", ["reason", "verdict", "verifications"], [["=cmd()", "INVALID", 3], ["—", "ERROR", None]]
    )
    rows = list(csv.reader(io.StringIO(panel.csv())))
    assert rows == [["reason", "verdict", "verifications"], ["'=cmd()", "INVALID", "3"], ["—", "ERROR", ""]]


def test_days_are_china_standard_time() -> None:
    assert day_text(dt.datetime(2026, 12, 3, 16, 0, tzinfo=dt.UTC)) == "2026-12-04"
    assert day_text(dt.datetime(2026, 12, 3, 15, 59)) == "2026-12-03"  # naive: stored UTC
    start, end = bounds(dt.date(2026, 12, 4), dt.date(2026, 12, 4))
    assert (start, end) == (
        dt.datetime(2026, 12, 3, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 4, 16, tzinfo=dt.UTC),
    )
    assert days(dt.date(2026, 12, 30), dt.date(2027, 1, 1)) == ["2026-12-30", "2026-12-31", "2027-01-01"]
    assert parse_period("2026-12-01", "2026-12-04") == (dt.date(2026, 12, 1), dt.date(2026, 12, 4))
    for bad in (("2026-12-05", "2026-12-04"), ("2025-01-01", "2026-12-04"), ("12/04", None)):
        with pytest.raises(ValueError):
            parse_period(*bad)
