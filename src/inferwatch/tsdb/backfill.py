"""Backfill: load an OpenMetrics file of timestamped samples into the store.

::

    with Store("inferwatch.db") as store:
        result = import_openmetrics(store, Path("history.om"))
    print(result.series, result.samples, result.skipped)

The input is what ``promtool tsdb create-blocks-from openmetrics`` takes: OpenMetrics
text where every sample carries a timestamp (in seconds) and the file ends with
``# EOF``. The same file can so be loaded into inferwatch and into a real Prometheus.

- **All or nothing per file.** The whole file is read (line by line, a few hundred
  bytes of memory per sample) before anything is written, so a file with an error
  anywhere leaves the store as it was. Errors name the line and its text.
- **Read as promtool reads it.** Each line is parsed by prometheus_client's OpenMetrics
  parser. Like promtool, the importer takes families split up, a repeated ``# TYPE``
  and negative counters, and where two samples of a series fall in the same
  millisecond the first one wins. Samples out of time order are sorted (promtool drops
  them within a two-hour block). A timestamp becomes ``int(seconds * 1000)``, truncated
  as in Prometheus; values keep their exact bits.
- **Names as exposed.** Counter samples keep their ``_total`` names; the ``_created``
  samples of counters, summaries and histograms are dropped (counted as skipped;
  promtool 2.42 stores them as series of their own).
- **Idempotent.** Samples at a millisecond the series already holds in the store are
  skipped, so importing a file again writes nothing new.

Native histograms cannot be imported.
"""

from __future__ import annotations

import io
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, TypeAlias, cast

import numpy as np
import numpy.typing as npt
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import text_fd_to_metric_families
from prometheus_client.samples import Sample, Timestamp

from inferwatch._errors import InferwatchError
from inferwatch.tsdb.labels import Labels, Matcher, format_labels, make_labels
from inferwatch.tsdb.store import Store

__all__ = ["BackfillError", "ImportResult", "Progress", "import_openmetrics"]

#: ``progress(stage, done, total)``: stage ``"parse"`` counts bytes read, ``"write"``
#: counts series written.
Progress = Callable[[str, int, int], None]

_parse_families = cast(Callable[[Iterable[str]], Iterator[Metric]], text_fd_to_metric_families)

_CREATED_TYPES = frozenset({"counter", "summary", "histogram"})
# The store's chunks hold timestamps within +-2**60 ms (36 million years) of 1970.
_MS_LIMIT = float(2**60)
_EXPONENT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+")
_PROGRESS_LINES = 1 << 15
_Columns: TypeAlias = tuple["array[int]", "array[float]"]


class BackfillError(InferwatchError, ValueError):
    """An OpenMetrics file cannot be imported; nothing of it was written.

    ``source`` is the file (``None`` for text), ``line`` the 1-based line number and
    ``text`` that line, where the error belongs to one.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        text: str | None = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.line = line
        self.text = text


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did.

    ``series``: distinct series in the file (``_created`` ones aside); ``samples``:
    samples written; ``skipped``: samples not written (``_created`` samples, samples in
    a millisecond already taken in the file or in the store).
    """

    series: int
    samples: int
    skipped: int


def import_openmetrics(
    store: Store,
    source: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """Load OpenMetrics text into ``store`` with :meth:`Store.append_series`.

    ``source`` is a path (a ``Path``, or a ``str`` without a newline) or the text itself
    (a ``str`` with a newline). Raises :class:`BackfillError` for a file that does not
    parse, with nothing written, and ``OSError`` for a file that cannot be read.
    """
    reader = _Reader.of(source)
    parsed, skipped = _parse(reader, progress)
    return _write(store, reader, parsed, skipped, progress)


# -- parsing ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reader:
    """Where the text comes from, and errors that say so."""

    name: str | None
    path: Path | None
    data: bytes

    @classmethod
    def of(cls, source: str | os.PathLike[str]) -> _Reader:
        if isinstance(source, str) and "\n" in source:
            return cls(None, None, source.encode("utf-8"))
        path = Path(source)
        return cls(str(path), path, b"")

    def open(self) -> IO[bytes]:
        return self.path.open("rb") if self.path is not None else io.BytesIO(self.data)

    def size(self, stream: IO[bytes]) -> int:
        if self.path is None:
            return len(self.data)
        return os.fstat(stream.fileno()).st_size

    def error(
        self, message: str, line: int | None = None, text: str | None = None
    ) -> BackfillError:
        where = self.name or "<text>"
        if line is not None:
            where = f"{where}:{line}"
        detail = f": {text!r}" if text and text not in message else ""
        return BackfillError(f"{where}: {message}{detail}", source=self.name, line=line, text=text)


@dataclass(slots=True)
class _Family:
    """The metric family the lines belong to, from the last ``# TYPE``/``# HELP``."""

    name: str = ""
    type: str = "unknown"

    def update(self, metadata: Metric, text: str) -> None:
        if metadata.name != self.name:
            self.name, self.type = metadata.name, metadata.type
        elif text.startswith("# TYPE "):
            self.type = metadata.type

    def is_created(self, sample: Sample) -> bool:
        return self.type in _CREATED_TYPES and sample.name == f"{self.name}_created"


def _parse(reader: _Reader, progress: Progress | None) -> tuple[dict[Labels, _Columns], int]:
    """Every series of the file with its samples in file order; and samples dropped.

    Lines are parsed one at a time: prometheus_client's whole-text parser drops or
    rejects the samples of histograms and summaries over more than one timestamp.
    Only ``\\n`` ends a line (as in promtool): a ``\\r`` stays in the line, and fails it.
    """
    series: dict[Labels, _Columns] = {}
    skipped = 0
    family = _Family()
    eof = False
    with reader.open() as stream:
        total = reader.size(stream)
        done = number = 0
        text = ""
        for number, raw in enumerate(stream, 1):
            done += len(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                shown = raw.decode("utf-8", "replace").rstrip("\n")
                message = f"not UTF-8 ({exc.reason} at byte {exc.start})"
                raise reader.error(message, number, shown) from None
            if text.endswith("\n"):
                text = text[:-1]
            if eof:
                raise reader.error("data after # EOF", number, text)
            if not text:
                raise reader.error("blank line (OpenMetrics has none)", number, text)
            if text[0] == "#":
                if text == "# EOF":
                    eof = True
                else:
                    family.update(_parse_metadata(reader, number, text), text)
                continue
            sample = _parse_sample(reader, number, text, family)
            if family.is_created(sample):
                skipped += 1
                continue
            labels = make_labels({**sample.labels, "__name__": sample.name})
            columns = series.get(labels)
            if columns is None:
                columns = series[labels] = (array("q"), array("d"))
            columns[0].append(_timestamp_ms(reader, number, text, sample))
            columns[1].append(_value(reader, number, text, sample))
            if progress is not None and number % _PROGRESS_LINES == 0:
                progress("parse", done, total)
        if not eof:
            if number == 0:
                raise reader.error("empty; an OpenMetrics file ends with '# EOF'")
            raise reader.error("no '# EOF' at the end (is the file complete?)", number, text)
    if progress is not None:
        progress("parse", done, total)
    return series, skipped


def _parse_metadata(reader: _Reader, number: int, text: str) -> Metric:
    try:
        [metadata] = _parse_families([text, "# EOF"])
    except ValueError as exc:
        raise reader.error(str(exc) or "invalid metadata line", number, text) from None
    return metadata


def _parse_sample(reader: _Reader, number: int, text: str, family: _Family) -> Sample:
    try:
        [metric] = _parse_families([_plain_timestamp(text), "# EOF"])
        [sample] = metric.samples
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        if family.type == "histogram" and "{count:" in text:
            message = f"{family.name} is a native histogram, which cannot be imported"
        else:
            message = str(exc) or "invalid sample line"
        raise reader.error(message, number, text) from None
    if sample.timestamp is None:
        raise reader.error(
            "sample without a timestamp (backfill needs one on every sample, in seconds "
            "after the value)",
            number,
            text,
        )
    return sample


def _plain_timestamp(line: str) -> str:
    """The line with a timestamp like ``1.7e9`` at its end written as ``1700000000``.

    prometheus_client (0.26) reads the first nine decimals of ``1.700000000e9`` as
    nanoseconds, ignoring the exponent. The decimal text is the same number, so it
    reads as in promtool. Lines with exemplars are left alone.
    """
    head, _, tail = line.rpartition(" ")
    if ("e" in tail or "E" in tail) and _EXPONENT.fullmatch(tail) and " # " not in line:
        number = Decimal(tail)
        if abs(number.adjusted()) <= 24:
            return f"{head} {number:f}"
    return line


def _timestamp_ms(reader: _Reader, number: int, text: str, sample: Sample) -> int:
    """Milliseconds as Prometheus computes them: ``int64(seconds * 1000)``."""
    ts = sample.timestamp
    if isinstance(ts, Timestamp):
        # The decimal text again, so that it rounds to the float64 Go reads.
        sign = "-" if ts.sec < 0 or ts.nsec < 0 else ""
        seconds = float(f"{sign}{abs(ts.sec)}.{abs(ts.nsec):09d}")
    else:
        seconds = float(cast(float, ts))
    ms = seconds * 1000.0
    if not -_MS_LIMIT <= ms < _MS_LIMIT:
        raise reader.error(
            "timestamp out of range (the store holds times within 36 million years of 1970)",
            number,
            text,
        )
    return int(ms)


def _value(reader: _Reader, number: int, text: str, sample: Sample) -> float:
    try:
        return float(sample.value)
    except OverflowError:
        raise reader.error("value out of range", number, text) from None


# -- writing ------------------------------------------------------------------------------


def _write(
    store: Store,
    reader: _Reader,
    parsed: dict[Labels, _Columns],
    skipped: int,
    progress: Progress | None,
) -> ImportResult:
    total = len(parsed)
    written = 0
    for done, labels in enumerate(sorted(parsed), 1):
        ts_column, value_column = parsed.pop(labels)
        ts = np.frombuffer(ts_column, dtype=np.int64)
        values = np.frombuffer(value_column, dtype=np.float64)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        keep = np.ones(ts.size, dtype=bool)
        keep[1:] = ts[1:] != ts[:-1]
        stored = _stored_timestamps(store, labels, int(ts[0]), int(ts[-1]))
        if stored.size:
            keep &= ~np.isin(ts, stored)
        ts, values = ts[keep], values[keep]
        skipped += int(keep.size - ts.size)
        if ts.size:
            try:
                written += store.append_series(labels, ts, values)
            except ValueError as exc:
                raise reader.error(
                    f"{format_labels(labels)}: {exc}; {done - 1} of {total} series were "
                    "written before it (importing the file again skips what is stored)"
                ) from None
        if progress is not None:
            progress("write", done, total)
    return ImportResult(series=total, samples=written, skipped=skipped)


def _stored_timestamps(store: Store, labels: Labels, mint: int, maxt: int) -> npt.NDArray[np.int64]:
    matchers = [Matcher(name, "=", value) for name, value in labels]
    for found in store.select(matchers, mint, maxt):
        if found.labels == labels:
            return found.timestamps
    return np.empty(0, dtype=np.int64)
