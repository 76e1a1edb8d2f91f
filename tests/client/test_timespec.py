"""Times and durations of the client commands' options."""

from __future__ import annotations

import pytest

from inferwatch._errors import ConfigError
from inferwatch.client.timespec import parse_duration, parse_time

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-5m", NOW - 300),
        ("now - 1h30m", NOW - 5400),
        ("now+2h", NOW + 7200),
        ("1700000000", 1_700_000_000.0),
        ("1700000000.5", 1_700_000_000.5),
        ("2023-11-14T22:13:20Z", 1_700_000_000.0),
        ("2023-11-14T23:13:20.250+01:00", 1_700_000_000.25),
        ("2023-11-14T22:13:20", 1_700_000_000.0),
    ],
)
def test_times(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW, field="--time") == expected


@pytest.mark.parametrize("text", ["yesterday", "now-", "now-5 minutes", "nan", "inf", ""])
def test_a_bad_time_names_the_field_and_the_text(text: str) -> None:
    with pytest.raises(ConfigError, match="--time") as raised:
        parse_time(text, now=NOW, field="--time")
    assert raised.value.field == "--time"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15s", 15.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
        ("90", 90.0),
        ("0.5", 0.5),
    ],
)
def test_durations(text: str, expected: float) -> None:
    assert parse_duration(text, field="--step") == expected


@pytest.mark.parametrize("text", ["0", "-5", "5 m", "1.5h", "nan", "inf", ""])
def test_a_bad_duration_names_the_field_and_the_text(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--step: .* is not a duration above zero"):
        parse_duration(text, field="--step")
