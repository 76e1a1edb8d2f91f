"""``inferwatch logs search`` and its engine, on real (and really rotated) log files."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inferwatch import ConfigError, Monitor
from inferwatch.cli import app
from inferwatch.sdk import logs
from inferwatch.sdk.logs import log_context
from inferwatch.sdk.logsearch import LogQuery, log_files, parse_time, search

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    yield
    logs.shutdown()
    for name in logs.LOGGER_NAMES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def record(i: int, **fields: Any) -> dict[str, Any]:
    base = {
        "time": logs.rfc3339(T0 + 60 * i),
        "level": "INFO",
        "logger": "inferwatch.inference",
        "event": "inference",
        "request_id": f"r{i}",
        "model": "fraud" if i % 2 else "digits",
        "version": "1",
        "outcome": "error" if i % 5 == 0 else "success",
        "latency_seconds": 0.001 * i,
    }
    return {**base, **fields}


@pytest.fixture
def rotated(tmp_path: Path) -> Path:
    """app.log with two rotated predecessors: records 0-3 in .2, 4-7 in .1, 8-11 in app.log,
    and one malformed line in .1."""
    path = tmp_path / "app.log"
    for suffix, ids in ((".2", range(0, 4)), (".1", range(4, 8)), ("", range(8, 12))):
        lines = [json.dumps(record(i)) for i in ids]
        if suffix == ".1":
            lines.insert(1, '{"time": "2027-01-15T08:05:00Z", broken')
        (tmp_path / f"app.log{suffix}").write_text("\n".join(lines) + "\n")
    (tmp_path / "app.log.bak").write_text("not a rotated file\n")
    return path


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["request_id"] for r in records]


def test_rotated_files_are_read_oldest_first(rotated: Path) -> None:
    assert [p.name for p in log_files(rotated)] == ["app.log.2", "app.log.1", "app.log"]
    result = search([rotated], LogQuery())
    assert ids(result.records) == [f"r{i}" for i in range(12)]
    assert result.malformed == 1
    assert result.lines == 13


def test_a_rotated_file_can_be_read_alone(rotated: Path) -> None:
    result = search([rotated.with_name("app.log.1")], LogQuery())
    assert ids(result.records) == ["r4", "r5", "r6", "r7"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (LogQuery(model="fraud"), ["r1", "r3", "r5", "r7", "r9", "r11"]),
        (LogQuery(outcome="error"), ["r0", "r5", "r10"]),
        (LogQuery(model="fraud", outcome="error"), ["r5"]),
        (LogQuery(request_id="r7"), ["r7"]),
        (LogQuery(text="R11"), ["r11"]),
        (LogQuery(since=T0 + 600), ["r10", "r11"]),
        (LogQuery(until=T0 + 120), ["r0", "r1", "r2"]),
        (LogQuery(since=T0 + 120, until=T0 + 180), ["r2", "r3"]),
        (LogQuery(limit=2), ["r0", "r1"]),
        (LogQuery(event="alert_state_change"), []),
    ],
)
def test_each_filter_keeps_only_matching_records(
    rotated: Path, query: LogQuery, expected: list[str]
) -> None:
    assert ids(search([rotated], query).records) == expected


def test_records_come_out_in_time_order_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(json.dumps(record(3)) + "\n" + json.dumps(record(1)) + "\n")
    (tmp_path / "b.log").write_text(json.dumps(record(2)) + "\n")
    result = search([tmp_path / "a.log", tmp_path / "b.log"], LogQuery())
    assert ids(result.records) == ["r1", "r2", "r3"]


def test_a_missing_file_is_reported_not_fatal(rotated: Path, tmp_path: Path) -> None:
    result = search([tmp_path / "nope.log", rotated], LogQuery(request_id="r0"))
    assert result.missing == [tmp_path / "nope.log"]
    assert ids(result.records) == ["r0"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", T0 - 900),
        ("1h30m", T0 - 5400),
        ("2027-01-15T08:00:00Z", T0),
        ("2027-01-15T09:00:00+01:00", T0),
        ("2027-01-15T08:00:00", T0),
        ("1800000000", T0),
    ],
)
def test_times_are_rfc3339_unix_or_relative(text: str, expected: float) -> None:
    assert parse_time(text, now=T0) == pytest.approx(expected)


def test_a_bad_time_names_the_option() -> None:
    with pytest.raises(ConfigError) as info:
        parse_time("yesterday", now=T0, field="--since")
    assert info.value.field == "--since" and info.value.value == "yesterday"


def test_search_finds_what_a_monitor_wrote_across_real_rotation(
    monitor: Monitor, tmp_path: Path
) -> None:
    path = tmp_path / "service.log"
    handle = monitor.logs(path, max_bytes=1_500, backups=20)

    @monitor.track
    def predict(x: int) -> int:
        if x == 13:
            raise KeyError("missing feature")
        return x

    for i in range(30):
        with log_context(request_id=f"req-{i}"), contextlib.suppress(KeyError):
            predict(i)
        if i % 5 == 4:
            handle.flush()
    handle.flush()
    assert len(log_files(path)) > 2
    everything = search([path], LogQuery())
    assert ids(everything.records) == [f"req-{i}" for i in range(30)]
    assert everything.malformed == 0
    [failed] = search([path], LogQuery(outcome="error")).records
    assert failed["request_id"] == "req-13" and failed["error_type"] == "KeyError"


runner = CliRunner()


def test_cli_prints_json_lines(rotated: Path) -> None:
    result = runner.invoke(
        app, ["logs", "search", str(rotated), "--model", "fraud", "--outcome", "error", "--json"]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert [json.loads(line)["request_id"] for line in lines] == ["r5"]
    assert "skipped 1 malformed of 13 lines in 3 files" in result.stderr


def test_cli_prints_a_table(rotated: Path) -> None:
    result = runner.invoke(
        app,
        ["logs", "search", str(rotated), "--request-id", "r3", "--since", "2027-01-15T08:00:00Z"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "request_id" in result.stdout and "r3" in result.stdout
    assert "r4" not in result.stdout


def test_cli_rejects_a_bad_time(rotated: Path) -> None:
    result = runner.invoke(app, ["logs", "search", str(rotated), "--since", "soon"])
    assert result.exit_code == 1
    assert "--since" in result.stderr and "soon" in result.stderr


def test_cli_fails_when_no_file_can_be_read(tmp_path: Path) -> None:
    result = runner.invoke(app, ["logs", "search", str(tmp_path / "absent.log")])
    assert result.exit_code == 1
    assert "no log file" in result.stderr
