"""The pieces of the client's tables: series names, values, times and sparklines."""

from __future__ import annotations

import math

from inferwatch.client.render import (
    SPARK_LEVELS,
    format_number,
    parse_api_time,
    series_name,
    span,
    sparkline,
    when,
)


def test_series_name_is_prometheus_notation() -> None:
    assert series_name({"__name__": "up"}) == "up"
    assert series_name({"__name__": "up", "job": "a", "b": 'x"y'}) == 'up{b="x\\"y", job="a"}'
    assert series_name({"model": "m"}) == '{model="m"}'
    assert series_name({}) == "{}"


def test_numbers() -> None:
    assert format_number(390.0) == "390"
    assert format_number(2 / 3) == "0.666667"
    assert format_number(math.inf) == "+Inf"
    assert format_number(-math.inf) == "-Inf"
    assert format_number(math.nan) == "NaN"


def test_api_times_with_nanoseconds_and_go_zero_time() -> None:
    assert parse_api_time("2023-11-14T22:13:20.123456789Z") == 1_700_000_000.123456
    assert parse_api_time("0001-01-01T00:00:00Z") is None
    assert parse_api_time("soon") is None
    assert parse_api_time(None) is None


def test_spans_and_relative_times() -> None:
    assert [span(s) for s in (5, 60, 185, 3600, 7260, 90000)] == [
        "5s", "1m", "3m 5s", "1h", "2h 1m", "1d 1h",
    ]  # fmt: skip
    assert when(1_700_000_000, 1_700_000_185) == "2023-11-14 22:13:20Z (3m 5s ago)"
    assert when(1_700_000_000, 1_699_999_000) == "2023-11-14 22:13:20Z (in 16m 40s)"
    assert when(None, 0) == "-"


def test_sparkline_scales_from_lowest_to_highest() -> None:
    points = [(float(t), float(t)) for t in range(8)]
    assert sparkline(points, 0, 7, width=8) == SPARK_LEVELS


def test_sparkline_shows_gaps_flat_lines_and_non_finite_values() -> None:
    assert sparkline([(0, 1.0), (3, 1.0)], 0, 3, width=4) == "▄  ▄"
    assert sparkline([(0, 0.0), (1, math.nan), (2, 1.0)], 0, 2, width=3) == "▁·█"
    assert sparkline([(5, 2.0)], 5, 5, width=1) == "▄"
    assert sparkline([], 0, 1) == ""


def test_sparkline_keeps_the_last_point_of_a_bucket() -> None:
    # Times 0 and 1 fall in the first bucket, 2 and 3 in the second: 9.0 and 5.0 remain.
    points = [(float(t), v) for t, v in enumerate([0.0, 9.0, 1.0, 5.0])]
    assert sparkline(points, 0, 3, width=2) == "█▁"
