from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from inferwatch.cli import app
from inferwatch.tsdb.backfill import BackfillError, ImportResult, import_openmetrics
from inferwatch.tsdb.labels import Labels, Matcher, make_labels
from inferwatch.tsdb.store import Store

EVERYTHING = [Matcher("__name__", "=~", ".+")]
ROOM = 'a \\"quoted\\" \\\\ back\\nslash é'  # as written in the file
ROOM_VALUE = 'a "quoted" \\ back\nslash é'  # as read

# Valid OpenMetrics, read by promtool too: every family contiguous, every series'
# samples in time order, _created next to its sample at the same timestamp.
HISTORY = f"""\
# HELP http_requests Requests served.
# TYPE http_requests counter
http_requests_total{{code="200",path="/predict"}} 10 1700000000
http_requests_created{{code="200",path="/predict"}} 1699999990 1700000000
http_requests_total{{code="200",path="/predict"}} 12 1700000015.5
http_requests_created{{code="200",path="/predict"}} 1699999990 1700000015.5
http_requests_total{{code="500",path="/predict"}} 123456789012345678 1700000000.001
# TYPE temperature gauge
temperature{{room="{ROOM}"}} NaN 1700000000
temperature{{room="{ROOM}"}} +Inf 1700000015
temperature{{room="{ROOM}"}} -Inf 1700000030
temperature{{room="b"}} -0.0 1700000000.0029999
temperature{{room="b"}} 5e-324 1700000000.0045
temperature{{room="b"}} 0.1 1700000002
temperature{{room="b"}} 1.7976931348623157e+308 1.7000001e9
temperature{{room="c"}} 1 1.7000000011e9
temperature{{room="c"}} 2 1700000002.25E0
# TYPE latency_seconds histogram
latency_seconds_bucket{{le="0.1"}} 1 1700000000
latency_seconds_bucket{{le="+Inf"}} 2 1700000000
latency_seconds_count 2 1700000000
latency_seconds_sum 0.35 1700000000
latency_seconds_created 1699999990 1700000000
latency_seconds_bucket{{le="0.1"}} 4 1700000015
latency_seconds_bucket{{le="+Inf"}} 7 1700000015
latency_seconds_count 7 1700000015
latency_seconds_sum 1.25 1700000015
latency_seconds_created 1699999990 1700000015
# TYPE rows summary
rows{{quantile="0.5"}} 3 1700000000
rows{{quantile="0.9"}} 8 1700000000
rows_count 10 1700000000
rows_sum 40 1700000000
rows{{quantile="0.5"}} 4 1700000015
rows{{quantile="0.9"}} 9 1700000015
rows_count 20 1700000015
rows_sum 85 1700000015
# TYPE jobs_created gauge
jobs_created 3 1700000000
# EOF
"""


def series(name: str, **labels: str) -> Labels:
    return make_labels({"__name__": name, **labels})


def bits(value: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", value))[0])


# What HISTORY holds, as (ms, value text): timestamps truncated to the millisecond as
# Prometheus does (1700000000.0029999 s is 1700000000002 ms), _created samples dropped.
HISTORY_SAMPLES: dict[Labels, list[tuple[int, str]]] = {
    series("http_requests_total", code="200", path="/predict"): [
        (1700000000000, "10"),
        (1700000015500, "12"),
    ],
    series("http_requests_total", code="500", path="/predict"): [
        (1700000000001, "123456789012345678"),
    ],
    series("temperature", room=ROOM_VALUE): [
        (1700000000000, "NaN"),
        (1700000015000, "inf"),
        (1700000030000, "-inf"),
    ],
    series("temperature", room="b"): [
        (1700000000002, "-0.0"),
        (1700000000004, "5e-324"),
        (1700000002000, "0.1"),
        (1700000100000, "1.7976931348623157e+308"),
    ],
    series("temperature", room="c"): [(1700000001100, "1"), (1700000002250, "2")],
    series("latency_seconds_bucket", le="0.1"): [(1700000000000, "1"), (1700000015000, "4")],
    series("latency_seconds_bucket", le="+Inf"): [(1700000000000, "2"), (1700000015000, "7")],
    series("latency_seconds_count"): [(1700000000000, "2"), (1700000015000, "7")],
    series("latency_seconds_sum"): [(1700000000000, "0.35"), (1700000015000, "1.25")],
    series("rows", quantile="0.5"): [(1700000000000, "3"), (1700000015000, "4")],
    series("rows", quantile="0.9"): [(1700000000000, "8"), (1700000015000, "9")],
    series("rows_count"): [(1700000000000, "10"), (1700000015000, "20")],
    series("rows_sum"): [(1700000000000, "40"), (1700000015000, "85")],
    series("jobs_created"): [(1700000000000, "3")],
}
SAMPLES = sum(len(pairs) for pairs in HISTORY_SAMPLES.values())
CREATED = 4  # two http_requests_created and two latency_seconds_created samples


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "inferwatch.db") as opened:
        yield opened


@pytest.fixture
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not on PATH; these tests compare the import with Prometheus's own "
            "backfill: install it (Debian: apt-get install prometheus)"
        )
    return found


def write(tmp_path: Path, text: str, name: str = "history.om") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def read_back(store: Store) -> dict[Labels, list[tuple[int, int]]]:
    """Every series in the store as (ms, value bits) pairs."""
    return {
        found.labels: [
            (t, bits(v))
            for t, v in zip(found.timestamps.tolist(), found.values.tolist(), strict=True)
        ]
        for found in store.select(EVERYTHING, -(2**62), 2**62)
    }


def expected_bits(
    samples: dict[Labels, list[tuple[int, str]]],
) -> dict[Labels, list[tuple[int, int]]]:
    return {
        labels: sorted((t, bits(float(v))) for t, v in pairs) for labels, pairs in samples.items()
    }


# -- round trip -----------------------------------------------------------------------------


def test_import_reads_back_every_sample_bit_exact(store: Store, tmp_path: Path) -> None:
    result = import_openmetrics(store, write(tmp_path, HISTORY))

    assert read_back(store) == expected_bits(HISTORY_SAMPLES)
    assert result == ImportResult(series=len(HISTORY_SAMPLES), samples=SAMPLES, skipped=CREATED)


def test_nan_keeps_its_bits(store: Store) -> None:
    import_openmetrics(store, "# TYPE x gauge\nx NaN 1\n# EOF\n")

    [found] = store.select(EVERYTHING, 0, 10_000)
    assert bits(float(found.values[0])) == bits(float("nan"))


def test_text_with_a_newline_is_read_as_the_file_itself(store: Store) -> None:
    result = import_openmetrics(store, "# TYPE x gauge\nx 1 1\nx 2 2\n# EOF\n")

    assert result == ImportResult(series=1, samples=2, skipped=0)
    assert read_back(store) == {series("x"): [(1000, bits(1.0)), (2000, bits(2.0))]}


def test_a_file_with_only_eof_imports_nothing(store: Store) -> None:
    assert import_openmetrics(store, "# EOF\n") == ImportResult(0, 0, 0)


def test_created_samples_are_dropped_but_a_gauge_named_created_is_kept(store: Store) -> None:
    text = (
        "# TYPE a counter\na_total 1 10\na_created 5 10\n"
        "# TYPE b_created gauge\nb_created 7 10\n# EOF\n"
    )
    result = import_openmetrics(store, text)

    assert set(read_back(store)) == {series("a_total"), series("b_created")}
    assert result.skipped == 1


# Valid for promtool, not for the OpenMetrics specification: families split up, a
# repeated # TYPE, a negative counter.
LAX = """\
# TYPE a gauge
a{x="1"} 1 100
a{x="2"} 2 100
a{x="1"} 3 200
# TYPE b counter
# TYPE b counter
b_total -1 100
# TYPE a gauge
a{x="2"} 4 200
# EOF
"""
LAX_SAMPLES: dict[Labels, list[tuple[int, str]]] = {
    series("a", x="1"): [(100_000, "1"), (200_000, "3")],
    series("a", x="2"): [(100_000, "2"), (200_000, "4")],
    series("b_total"): [(100_000, "-1")],
}


def test_files_promtool_accepts_beyond_the_specification_import(store: Store) -> None:
    import_openmetrics(store, LAX)

    assert read_back(store) == expected_bits(LAX_SAMPLES)


def test_samples_out_of_time_order_are_sorted(store: Store) -> None:
    # promtool keeps them only where they fall in different two-hour blocks.
    import_openmetrics(store, "# TYPE a gauge\na 1 200\na 2 100\na 3 300\n# EOF\n")

    assert read_back(store) == {
        series("a"): [(100_000, bits(2.0)), (200_000, bits(1.0)), (300_000, bits(3.0))]
    }


def test_samples_in_the_same_millisecond_keep_the_first_like_promtool(store: Store) -> None:
    result = import_openmetrics(store, "# TYPE a gauge\na 1 100.0001\na 2 100.0002\n# EOF\n")

    assert read_back(store) == {series("a"): [(100_000, bits(1.0))]}
    assert result == ImportResult(series=1, samples=1, skipped=1)


def test_importing_a_file_again_writes_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    import_openmetrics(store, path)

    again = import_openmetrics(store, path)

    assert again == ImportResult(series=len(HISTORY_SAMPLES), samples=0, skipped=SAMPLES + CREATED)
    assert read_back(store) == expected_bits(HISTORY_SAMPLES)


def test_samples_the_store_already_holds_are_skipped(store: Store) -> None:
    labels = series("a")
    store.append(200_000, [(labels, 9.0)])

    result = import_openmetrics(store, "# TYPE a gauge\na 1 100\na 2 200\n# EOF\n")

    assert result == ImportResult(series=1, samples=1, skipped=1)
    assert read_back(store) == {labels: [(100_000, bits(1.0)), (200_000, bits(9.0))]}


def test_progress_reports_bytes_parsed_and_series_written(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    seen: list[tuple[str, int, int]] = []

    import_openmetrics(store, path, progress=lambda *event: seen.append(event))

    size = path.stat().st_size
    assert seen[0] == ("parse", size, size)
    n = len(HISTORY_SAMPLES)
    assert seen[1:] == [("write", done, n) for done in range(1, n + 1)]


def test_a_failure_while_writing_says_what_was_written_and_a_rerun_completes(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '# TYPE a gauge\na{i="1"} 1 1\na{i="2"} 1 1\na{i="3"} 1 1\n# EOF\n')
    db = tmp_path / "limited.db"
    with Store(db, max_series=2) as limited, pytest.raises(BackfillError) as failure:
        import_openmetrics(limited, path)
    assert "2 of 3 series were written" in str(failure.value)

    with Store(db) as store:
        assert import_openmetrics(store, path) == ImportResult(series=3, samples=1, skipped=2)
        assert len(read_back(store)) == 3


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30),
    label=st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
    start=st.integers(min_value=0, max_value=2_000_000_000),
    steps=st.lists(st.integers(min_value=1, max_value=10**6), min_size=30, max_size=30),
)
def test_any_values_and_label_values_round_trip(
    values: list[float], label: str, start: int, steps: list[int]
) -> None:
    seconds = [start + sum(steps[:i]) for i in range(len(values))]
    escaped = label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines = [f'm{{k="{escaped}"}} {om_value(v)} {s}' for v, s in zip(values, seconds, strict=True)]
    text = "# TYPE m gauge\n" + "\n".join(lines) + "\n# EOF\n"
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "t.db") as store:
        import_openmetrics(store, text)
        got = read_back(store)

    want = [(s * 1000, bits(float(om_value(v)))) for v, s in zip(values, seconds, strict=True)]
    assert got == {series("m", k=label): want}


def om_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


# -- errors ---------------------------------------------------------------------------------

# (file text, line at fault); each also has a valid series before the fault.
BROKEN = {
    "no timestamp": ('# TYPE a gauge\na{x="1"} 1 100\na{x="2"} 1\n# EOF\n', 3),
    "no # EOF": ("# TYPE a gauge\na 1 100\na 2 200\n", 3),
    "bad labels": ("# TYPE a gauge\na 1 100\nb{ 2 17\n# EOF\n", 3),
    "bad value": ("# TYPE a gauge\na 1 100\nb abc 100\n# EOF\n", 3),
    "data after # EOF": ("# TYPE a gauge\na 1 100\n# EOF\na 2 200\n", 4),
    "blank line": ("# TYPE a gauge\na 1 100\n\n# EOF\n", 3),
    "CRLF": ("# TYPE a gauge\na 1 100\r\n# EOF\n", 2),
    "repeated label": ('# TYPE a gauge\na 1 100\nb{x="1",x="2"} 1 100\n# EOF\n', 3),
    "timestamp out of range": ("# TYPE a gauge\na 1 100\nb 1 1e400\n# EOF\n", 3),
    "extra field": ("# TYPE a gauge\na 1 100\nb 1 100 200\n# EOF\n", 3),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_file_names_the_line_and_writes_nothing(
    case: str, store: Store, tmp_path: Path
) -> None:
    text, line = BROKEN[case]
    path = write(tmp_path, text)

    with pytest.raises(BackfillError) as failure:
        import_openmetrics(store, path)

    error = failure.value
    assert (error.source, error.line) == (str(path), line)
    assert error.text == text.split("\n")[line - 1]
    assert f"{path}:{line}:" in str(error)
    assert store.series_count() == 0


def test_a_sample_without_timestamp_says_backfill_needs_one(store: Store) -> None:
    with pytest.raises(BackfillError, match=r"<text>:2: sample without a timestamp.*'a 1'"):
        import_openmetrics(store, "# TYPE a gauge\na 1\n# EOF\n")


def test_an_empty_file_is_rejected(store: Store, tmp_path: Path) -> None:
    with pytest.raises(BackfillError, match="empty"):
        import_openmetrics(store, write(tmp_path, ""))


def test_not_utf8_names_the_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin1.om"
    path.write_bytes(b'# TYPE a gauge\na{x="\xe9"} 1 100\n# EOF\n')

    with pytest.raises(BackfillError, match="not UTF-8") as failure:
        import_openmetrics(store, path)

    assert failure.value.line == 2


def test_exponent_timestamps_read_as_in_promtool(store: Store) -> None:
    # prometheus_client alone reads 1.7000000011e9 as 1.700000001 s.
    import_openmetrics(store, "# TYPE a gauge\na 1 1.7000000011e9\na 2 1700000002\n# EOF\n")

    [found] = store.select(EVERYTHING, 0, 2**62)
    assert found.timestamps.tolist() == [1700000001100, 1700000002000]


def test_native_histograms_are_refused(store: Store) -> None:
    text = (
        "# TYPE nh histogram\n"
        "nh {count:2,sum:1,schema:0,zero_threshold:0.001,zero_count:0,"
        "positive_spans:[0:1],positive_deltas:[2]} 1700000000\n# EOF\n"
    )
    with pytest.raises(BackfillError, match="native histogram"):
        import_openmetrics(store, text)


def test_timestamps_beyond_what_chunks_hold_are_refused(store: Store) -> None:
    # 2e15 s is 2e18 ms: an int64, but past the 2**60 ms that chunks encode exactly.
    with pytest.raises(BackfillError, match="out of range") as failure:
        import_openmetrics(store, "# TYPE a gauge\na 1 100\na 2 2000000000000000\n# EOF\n")

    assert failure.value.line == 3


def test_a_missing_file_is_an_os_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        import_openmetrics(store, tmp_path / "absent.om")


# -- the same files in promtool -------------------------------------------------------------

_DUMP_LINE = re.compile(r"^\{(.*)\} (\S+) (-?\d+)$")
_DUMP_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def promtool_samples(promtool: str, path: Path, out: Path) -> dict[Labels, list[tuple[int, float]]]:
    """The samples ``promtool tsdb create-blocks-from openmetrics`` makes of a file."""
    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(path), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    (out / "wal").mkdir()  # promtool tsdb dump wants one
    dumped = subprocess.run(
        [promtool, "tsdb", "dump", str(out)], capture_output=True, text=True, timeout=60
    )
    assert dumped.returncode == 0, dumped.stderr
    samples: dict[Labels, list[tuple[int, float]]] = {}
    for line in dumped.stdout.splitlines():
        match = _DUMP_LINE.match(line)
        assert match is not None, line
        pairs = [(k, json.loads(f'"{v}"')) for k, v in _DUMP_LABEL.findall(match[1])]
        samples.setdefault(make_labels(pairs), []).append((int(match[3]), float(match[2])))
    return samples


def test_promtool_makes_the_same_samples_of_the_file(
    promtool: str, store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path, HISTORY)
    theirs = promtool_samples(promtool, path, tmp_path / "blocks")
    import_openmetrics(store, path)
    ours = read_back(store)

    # promtool 2.42 keeps _created samples as series of their own; inferwatch drops them.
    created = {series("http_requests_created", code="200", path="/predict")}
    created.add(series("latency_seconds_created"))
    assert set(theirs) == set(ours) | created
    for labels, pairs in ours.items():
        want = sorted(theirs[labels])
        assert [t for t, _ in pairs] == [t for t, _ in want], labels
        for (_, got), (_, value) in zip(pairs, want, strict=True):
            # Go's NaN has other payload bits than Python's; every other value is bit-exact.
            assert got == bits(value) or (math.isnan(value) and math.isnan(_float(got)))


def _float(value_bits: int) -> float:
    return float(struct.unpack("<d", struct.pack("<Q", value_bits))[0])


def test_promtool_reads_the_lax_file_the_same(promtool: str, store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, LAX)
    theirs = promtool_samples(promtool, path, tmp_path / "blocks")
    import_openmetrics(store, path)

    assert {k: [(t, bits(v)) for t, v in sorted(pairs)] for k, pairs in theirs.items()} == (
        read_back(store)
    )


@pytest.mark.parametrize("case", BROKEN)
def test_promtool_rejects_the_broken_files_too(case: str, promtool: str, tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN[case][0])

    created = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert created.returncode != 0, created.stdout


# -- the command line -----------------------------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferwatch", "tsdb", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_imports_a_file_and_prints_the_counts(tmp_path: Path) -> None:
    path = write(tmp_path, HISTORY)
    db = tmp_path / "cli.db"

    result = run_cli("import", str(path), "--db", str(db))

    assert result.returncode == 0, result.stderr
    assert f"imported {SAMPLES} samples of {len(HISTORY_SAMPLES)} series into {db}" in result.stdout
    assert f"({CREATED} skipped)" in result.stdout
    with Store(db) as store:
        assert read_back(store) == expected_bits(HISTORY_SAMPLES)


def test_cli_uses_inferwatch_db_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, "# TYPE a gauge\na 1 100\n# EOF\n")
    db = tmp_path / "from-env.db"

    result = run_cli("import", str(path), env={**os.environ, "INFERWATCH_DB": str(db)})

    assert result.returncode == 0, result.stderr
    with Store(db) as store:
        assert read_back(store) == {series("a"): [(100_000, bits(1.0))]}


def test_cli_reports_a_broken_file_with_its_line(tmp_path: Path) -> None:
    text, line = BROKEN["no timestamp"]
    path = write(tmp_path, text)

    result = run_cli("import", str(path), "--db", str(tmp_path / "cli.db"))

    assert result.returncode == 1
    assert f"{path}:{line}: sample without a timestamp" in " ".join(result.stderr.split())


def test_cli_tsdb_help_lists_import() -> None:
    result = CliRunner().invoke(app, ["tsdb", "--help"])

    assert result.exit_code == 0
    assert "import" in result.output


def test_cli_import_help_shows_the_db_option() -> None:
    result = CliRunner().invoke(app, ["tsdb", "import", "--help"])

    assert result.exit_code == 0
    assert "--db" in result.output
