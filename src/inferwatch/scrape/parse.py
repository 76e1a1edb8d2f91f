"""Parsing a scraped exposition into samples.

The Prometheus text format (0.0.4) is read by this module's own parser, OpenMetrics 1.0
by prometheus_client's; the ``Content-Type`` of the response picks the parser, as in
Prometheus. The whole body is parsed before anything is returned, so a malformed
exposition raises :class:`ScrapeError`, naming the line, and no sample of it reaches
the store.

The text parser gives exactly what prometheus_client's text parser gave when this module
used it (the tests hold the two side by side), quirks included: ``# HELP`` and ``# TYPE``
open a family, a sample whose name does not belong to the open family is a family of its
own, a value may be followed by a timestamp in ms (and, as prometheus_client allows, by
more fields of which the last is the timestamp), ``\\\\``, ``\\"`` and ``\\n`` are the escapes
of label values. Most lines take a fast path (a plain name, plain label values, a single
value); any other line goes to a careful parser that follows prometheus_client's rules
step by step. A :class:`SeriesCache` given to every parse of one target keeps the label
sets of its series, so a line whose series was in the previous scrape costs little more
than reading its value.

Sample names are kept as exposed (``x_total``, ``x_bucket``, ``vllm:num_requests_running``,
Triton's counters without ``_total``). The ``_created`` samples of counters, histograms
and summaries are dropped in OpenMetrics, as Prometheus does by default; a ``_created``
line in the text format, which is a separate gauge family there, is kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import getitem, itemgetter
from typing import TYPE_CHECKING, TypeAlias

from inferwatch._errors import ScrapeError
from inferwatch.tsdb.labels import METRIC_NAME, Labels, make_labels, metric_name

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "ParsedSample",
    "ScrapeError",
    "SeriesCache",
    "is_openmetrics",
    "parse_exposition",
    "samples_from_families",
]

#: ``(labels including __name__, value, timestamp in ms or None when not exposed)``.
ParsedSample: TypeAlias = tuple[Labels, float, int | None]

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"
_WITH_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
_TEXT = "Prometheus text format"

# prometheus_client's validation patterns, ``$`` included (it also matches before a final
# newline, which an unescaped name can hold).
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_RESERVED_LABEL = re.compile(r"^__.*$")
_ESCAPE = re.compile(r'\\[\\n"]')
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_WHITESPACE = " \t\n\r\x0b\x0c"  # string.whitespace, what prometheus_client splits on
#: The types prometheus_client's ``Metric`` accepts (``untyped`` becomes ``unknown``).
_TYPES = frozenset(
    {"counter", "gauge", "summary", "histogram", "gaugehistogram", "unknown", "info", "stateset"}
) | {"untyped"}
_SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "summary": ("_count", "_sum", ""),
    "histogram": ("_count", "_sum", "_bucket"),
}

# The fast path: lines it accepts parse to the same result the careful parser gives.
_PLAIN_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PLAIN_COMMENT = re.compile(r"[ !#-~]*")  # printable ASCII without '"': spaces split it
#: Line breaks of ``str.splitlines`` that ``split("\n")`` does not break at.
_OTHER_BREAKS = re.compile("[\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|\r(?!\n)")
#: An integer -0 in a value text (which is 0.0 where float("-0") is -0.0).
_NEGATIVE_ZERO = re.compile(r"(?m)^\s*-0+\s*$")

# (sample name, its label set with __name__, whether the name is a plain one)
_Entry: TypeAlias = tuple[str, Labels, bool]


def is_openmetrics(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names the OpenMetrics text format."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == OPENMETRICS_CONTENT_TYPE


class SeriesCache:
    """The series of one target's recent scrapes, to parse its next exposition faster.

    Give the same cache to every :func:`parse_exposition` of one target (as Prometheus
    keeps a scrape cache per target): a line whose series text was seen before is not
    parsed again, and its sample carries the very same label-set object, so maps keyed
    by label sets downstream find it at once. When every line but the values is as in
    the last scrape (the usual case), only the values are read. Series gone from the
    target are forgotten when the cache holds twice as many as the last exposition, so
    it grows and shrinks with the target. Not thread-safe: one parse at a time.
    """

    __slots__ = ("_entries", "_legacy", "_skeleton")

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._legacy = False
        self._skeleton: _Skeleton | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every series."""
        self._entries = {}
        self._skeleton = None


def parse_exposition(
    body: bytes | str, content_type: str | None = None, *, cache: SeriesCache | None = None
) -> list[ParsedSample]:
    """Every sample of an exposition, or :class:`ScrapeError` if any part is malformed.

    ``content_type`` is the response's ``Content-Type``: ``application/openmetrics-text``
    selects the OpenMetrics parser (which requires the final ``# EOF``); anything else,
    or nothing, the Prometheus text format. ``cache`` (text format only) keeps the
    target's series between scrapes; see :class:`SeriesCache`.
    """
    openmetrics = is_openmetrics(content_type)
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScrapeError(f"exposition is not valid UTF-8: {exc}") from None
    else:
        text = body
    if not openmetrics:
        return _parse_text(text, cache)
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    try:
        return _samples(text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    except Exception as exc:  # the parser raises ValueError, and worse on odd input
        raise ScrapeError(f"invalid OpenMetrics exposition: {exc}") from None


def samples_from_families(families: Iterable[Metric]) -> list[ParsedSample]:
    """The samples of prometheus_client metric families (parsed or collected).

    Also used for the in-process registry, whose families come from ``collect()``.
    Native-histogram samples, which have no float value, are skipped.
    """
    return _samples(families)


def _samples(families: Iterable[Metric]) -> list[ParsedSample]:
    out: list[ParsedSample] = []
    for family in families:
        created = family.name + "_created" if family.type in _WITH_CREATED else None
        for sample in family.samples:
            if sample.name == created or getattr(sample, "native_histogram", None) is not None:
                continue
            pairs = [(k, v) for k, v in sample.labels.items() if k != METRIC_NAME]
            pairs.append((METRIC_NAME, sample.name))
            out.append((make_labels(pairs), float(sample.value), _timestamp_ms(sample.timestamp)))
    return out


def _timestamp_ms(timestamp: object) -> int | None:
    if timestamp is None:
        return None
    sec = getattr(timestamp, "sec", None)
    if sec is not None:  # prometheus_client.samples.Timestamp (OpenMetrics)
        nsec: int = getattr(timestamp, "nsec", 0)
        return int(sec) * 1000 + nsec // 1_000_000
    if isinstance(timestamp, int | float):
        return round(timestamp * 1000)
    raise ValueError(f"unsupported sample timestamp {timestamp!r}")


# -- the text format ------------------------------------------------------------------


class _LineError(ValueError):
    """A malformed line found after it was read (when its family was closed)."""

    def __init__(self, reason: str, lineno: int, line: str) -> None:
        super().__init__(reason)
        self.lineno = lineno
        self.line = line


class _Family:
    """The family being read: the state prometheus_client's text parser keeps."""

    __slots__ = ("allowed", "mixed", "name", "origin", "start", "type", "type_origin")

    def __init__(self) -> None:
        self.name = ""
        self.type = "untyped"
        #: Sample names that belong to the family; any other is a family of its own.
        self.allowed: tuple[str, ...] = ()
        #: Where the family's samples start in the output.
        self.start = 0
        #: Whether a sample's name differs from the family's (``x_count`` of ``x``).
        self.mixed = False
        self.origin = (0, "")
        self.type_origin = (0, "")

    def open(self, name: str, start: int, origin: tuple[int, str]) -> None:
        self.name = name
        self.start = start
        self.mixed = False
        self.origin = origin


#: A counter family's samples in the output: (start, end, name as typed, mixed names).
_CounterRange: TypeAlias = tuple[int, int, str, bool]


class _BulkValuesFailed(Exception):
    """Some value needs reading line by line (to apply its rules, or to name its line)."""


def _parse_text(text: str, cache: SeriesCache | None) -> list[ParsedSample]:
    from prometheus_client.validation import get_legacy_validation

    legacy = get_legacy_validation()
    lines = text.split("\n")
    known: dict[str, _Entry] = {}
    if cache is not None and cache._legacy == legacy:
        known = cache._entries
        if cache._skeleton is not None:
            out = cache._skeleton.parse(lines)
            if out is not None:
                return out
    remember = cache is not None
    parse = _TextParse(text, lines, known, legacy, remember=remember, line_by_line=False)
    try:
        try:
            out = parse.run()
        except _BulkValuesFailed:
            parse = _TextParse(text, lines, known, legacy, remember=remember, line_by_line=True)
            out = parse.run()
    except _LineError as exc:
        raise _error(exc, exc.lineno, exc.line) from None
    except (ValueError, ArithmeticError) as exc:
        raise _error(exc, *parse.at) from None
    if cache is not None:
        if len(known) > 2 * len(out) + 100:  # keep only the series of this scrape
            heads = (raw.rpartition(" ")[0] for raw in lines)
            known = {h: e for h in heads if (e := known.get(h)) is not None}
        cache._entries = known
        cache._legacy = legacy
        cache._skeleton = _Skeleton(lines, parse.others, out) if parse.regular else None
    return out


class _Skeleton:
    """An exposition's lines but for its values, and the samples they gave.

    An exposition with as many lines, the same lines where there is no sample, and
    sample lines that start with the same series text followed by a space and a value
    without spaces, parses to the same label sets in the same order, whatever its
    values: only they need reading. It is made from a parse at no cost; what a check
    beyond the count of lines needs is made when one first gets that far.
    """

    __slots__ = ("_heads", "_labels", "_lines", "_out", "_pick", "_starts", "count", "others")

    def __init__(self, lines: list[str], others: list[int], out: list[ParsedSample]) -> None:
        self.count = len(lines)
        #: The lines without a sample (comments, blank lines), by index.
        self.others = [(i, lines[i]) for i in others]
        self._lines = lines
        self._out = out
        self._heads: list[str] = []
        self._pick: Callable[[list[str]], tuple[str, ...]] | None = None
        self._starts: list[slice] = []
        self._labels: list[Labels] = []

    def parse(self, lines: list[str]) -> list[ParsedSample] | None:
        """The samples of an exposition split into ``lines``, or None if it is not one of
        this skeleton's (or a value needs more than ``float()``)."""
        if len(lines) != self.count:
            return None
        for i, line in self.others:
            if lines[i] != line:
                return None
        if self._pick is None:
            self._prepare()
        assert self._pick is not None
        sample_lines = self._pick(lines)
        if not all(map(str.startswith, sample_lines, self._heads)):
            return None
        values: list[str] = list(map(getitem, sample_lines, self._starts))  # " <value>"
        joined = "\n".join(values)
        n = len(values)
        if n and (joined[0] != " " or joined.count("\n ") != n - 1 or joined.count(" ") != n):
            return None  # not one space, then a value without spaces, on every line
        floats = _bulk_floats(values, joined)
        if floats is None:
            return None
        untimed: repeat[int | None] = repeat(None)
        return list(zip(self._labels, floats, untimed, strict=False))

    def _prepare(self) -> None:
        others = {i for i, _ in self.others}
        samples = [i for i in range(self.count) if i not in others]
        if len(samples) >= 2:
            self._pick = itemgetter(*samples)  # then a tuple
        else:
            self._pick = lambda lines: tuple(lines[i] for i in samples)
        lines = self._lines
        self._heads = [lines[i].rpartition(" ")[0] for i in samples]
        slices: dict[int, slice] = {}
        self._starts = [slices.setdefault(len(h), slice(len(h), None)) for h in self._heads]
        self._labels = [sample[0] for sample in self._out]
        self._lines, self._out = [], []


def _bulk_floats(values: Sequence[str], joined: str) -> list[float] | None:
    """The values of value texts (``joined`` by newlines) if ``float()`` reads each as
    prometheus_client does, else None."""
    if not joined.isascii() or "_" in joined or "\t" in joined:
        return None
    try:
        floats = list(map(float, values))
    except ValueError:
        return None
    if "-0" in joined and _NEGATIVE_ZERO.search(joined) is not None:
        return None  # the integer -0 is 0.0, float("-0") is -0.0
    if math.inf in floats or -math.inf in floats:
        for text, value in zip(values, floats, strict=True):
            if math.isinf(value) and any(c.isdigit() for c in text):
                return None  # a long integer overflows where float() gives inf
    return floats


def _error(exc: Exception, lineno: int, line: str) -> ScrapeError:
    shown = line if len(line) <= 200 else line[:200] + "..."
    return ScrapeError(f"invalid {_TEXT} exposition: line {lineno}: {exc}: {shown!r}")


class _TextParse:
    """One parse of a text-format body.

    The loop in :meth:`run` handles the common line, ``<series> <value>``, whose series
    is in the cache or plain, and which belongs to the open family or opens none; it
    keeps the value's text. Every other line goes to :meth:`line`. The values are then
    read all at once; if any needs more than ``float()`` (an integer ``-0``, a
    timestamp, a bad value to report with its line), the body is parsed again with
    ``line_by_line``, which reads each value as its line is parsed.
    """

    def __init__(
        self,
        text: str,
        lines: list[str],
        known: dict[str, _Entry],
        legacy: bool,
        *,
        remember: bool,
        line_by_line: bool,
    ) -> None:
        self.text = text
        self.lines = lines
        #: Series texts known to their entries; new ones are added when ``remember``.
        self.known = known
        self.remember = remember
        self.legacy = legacy
        self.line_by_line = line_by_line
        self.labels: list[Labels] = []
        #: Value texts, aligned with ``labels``; "0" where ``exact`` has the value.
        self.values: list[str] = []
        #: (index, value, timestamp) of samples whose value was read with its line.
        self.exact: list[tuple[int, float, int | None]] = []
        self.family = _Family()
        self.counters: list[_CounterRange] = []
        #: Names in ``# TYPE <name> counter`` lines without ``_total`` (for the names).
        self.typed_counters: set[str] = set()
        #: The line being read, for errors.
        self.at = (0, "")
        #: Indices of the lines without a sample.
        self.others: list[int] = []
        #: Whether every sample's value is its line's tail (see :class:`_Skeleton`).
        self.regular = True

    def run(self) -> list[ParsedSample]:
        known = self.known
        known_get = known.get
        remember = self.remember
        labels_append = self.labels.append
        values_append = self.values.append
        family = self.family
        allowed, name = family.allowed, family.name
        for lineno, raw in enumerate(self.lines, 1):
            head, _, tail = raw.rpartition(" ")
            entry = known_get(head)
            if entry is None:
                entry = _plain_series(head)
                if entry is not None and remember:
                    known[head] = entry
            if entry is not None and not self.line_by_line:
                sample_name = entry[0]
                if sample_name in allowed:
                    if name:
                        if sample_name != name:
                            family.mixed = True
                        labels_append(entry[1])
                        values_append(tail)
                        continue
                elif not name and not allowed and entry[2]:  # no family open, none opened
                    labels_append(entry[1])
                    values_append(tail)
                    continue
            self.at = (lineno, raw)
            self.line(raw, lineno, entry, head, tail)
            allowed, name = family.allowed, family.name
        self.at = self.family.origin
        self.close_family()
        untimed: repeat[int | None] = repeat(None)
        out = list(zip(self.labels, self.floats(), untimed, strict=False))
        for i, value, ts in self.exact:
            out[i] = (out[i][0], value, ts)
        if self.counters:
            _name_counters(self.text, out, self.counters, self.typed_counters)
        return out

    def line(self, raw: str, lineno: int, entry: _Entry | None, head: str, tail: str) -> None:
        """Any line the loop in :meth:`run` does not take."""
        exact: tuple[int | float, float | None] | None = None
        if entry is None:
            line = raw.strip()
            if not line or line[0] == "#":
                self.others.append(lineno - 1)
                if line:
                    self.comment(line, lineno)
                return
            self.regular = False
            entry, series, exact = _careful_sample(line, self.legacy)
            if self.remember and series is not None and series == head:
                self.known[head] = entry
        elif self.line_by_line:
            exact = _value_and_timestamp(tail)
        sample_name = entry[0]
        family = self.family
        if sample_name in family.allowed:
            if not family.name:  # prometheus_client never yields a family without a name
                self.regular = False
                if exact is None:
                    _value_and_timestamp(tail)  # but it read the value
                return
            if sample_name != family.name:
                family.mixed = True
        else:
            if family.name:
                self.close_family()
                family.open("", 0, (0, ""))
            family.type = "untyped"
            family.allowed = ()
            if not entry[2]:
                _check_metric_name(sample_name, self.legacy)
        self.labels.append(entry[1])
        if exact is None:
            self.values.append(tail)
            return
        value, ts = exact
        try:
            as_float = float(value)
        except OverflowError:
            raise ValueError("the value is too large for a float") from None
        try:
            ts_ms = None if ts is None else round(ts * 1000)
        except (ValueError, OverflowError):
            raise ValueError("the timestamp is not a finite number") from None
        self.exact.append((len(self.values), as_float, ts_ms))
        self.values.append("0")

    def floats(self) -> list[float]:
        """The values of the texts in ``values``, or :class:`_BulkValuesFailed`."""
        floats = _bulk_floats(self.values, "\n".join(self.values))
        if floats is None:
            raise _BulkValuesFailed
        return floats

    def comment(self, line: str, lineno: int) -> None:
        """A line starting with ``#``: ``# HELP`` and ``# TYPE`` open families."""
        plain = _PLAIN_COMMENT.fullmatch(line) is not None
        parts = line.split(None, 3) if plain else _split_comment(line)
        words = parts if plain else line.split(None, 3)  # as _counters_without_total splits
        if len(words) == 4 and words[0] == "#" and words[1] == "TYPE" and words[3] == "counter":
            typed = words[2].strip('"')
            if not typed.endswith("_total"):
                self.typed_counters.add(typed)
        if len(parts) < 2:
            return
        keyword = parts[1]
        if len(parts) > 2:
            if keyword != "TYPE" and keyword != "HELP":
                return
            name, quoted = _unquote(parts[2])
            if not quoted and not _is_metric_name(name):
                raise ValueError(f"invalid metric name {name!r}")
        else:
            name = ""
        family = self.family
        if keyword == "HELP":
            if name != family.name:
                self.close_family()
                family.open(name, len(self.labels), (lineno, line))
                family.type = "untyped"
                family.allowed = (name,)
        elif keyword == "TYPE":
            if len(parts) < 4:
                raise ValueError("a # TYPE line needs a metric name and a type")
            if name != family.name:
                self.close_family()
                family.open(name, len(self.labels), (lineno, line))
            family.type = parts[3]
            family.type_origin = (lineno, line)
            family.allowed = tuple(name + s for s in _SUFFIXES.get(parts[3], ("",)))

    def close_family(self) -> None:
        """The checks prometheus_client makes when it yields the family."""
        family = self.family
        if not family.name:
            return  # never yielded: its samples were dropped as they came
        name = family.name
        if family.type == "counter" and name.endswith("_total"):
            name = name[:-6]
        try:
            _check_metric_name(name, self.legacy)
        except ValueError as exc:
            raise _LineError(str(exc), *family.origin) from None
        if family.type not in _TYPES:
            raise _LineError(f"unknown metric type {family.type!r}", *family.type_origin)
        if family.type == "counter" and family.start < len(self.labels):
            self.counters.append((family.start, len(self.labels), family.name, family.mixed))


def _plain_series(key: str) -> _Entry | None:
    """A series text of plain names and label values, or None for the careful parser."""
    brace = key.find("{")
    if brace < 0:
        return (key, ((METRIC_NAME, key),), True) if _PLAIN_NAME.fullmatch(key) else None
    name = key[:brace]
    if key[-1] != "}" or not _PLAIN_NAME.fullmatch(name):
        return None
    block = key[brace + 1 : -1]
    if not block:
        return name, ((METRIC_NAME, name),), True
    if block[-1] == ",":
        block = block[:-1]
    if block[-1:] != '"' or "\\" in block:
        return None
    pairs = [(METRIC_NAME, name)]
    for term in block[:-1].split('",'):
        label, eq, value = term.partition('="')
        if (
            not eq
            or '"' in value
            or not label.isidentifier()  # with isascii: [a-zA-Z_][a-zA-Z0-9_]*
            or not label.isascii()
            or label[:2] == "__"
        ):
            return None
        pairs.append((label, value))
    if len(dict(pairs)) != len(pairs):
        return None  # a label given twice: the careful parser says so
    if '=""' in block:
        pairs = [pair for pair in pairs if pair[1]]  # an empty value is no label
    pairs.sort()
    return name, tuple(pairs), True


def _name_counters(
    text: str, out: list[ParsedSample], counters: list[_CounterRange], typed_counters: set[str]
) -> None:
    """Give counter samples the names the old parse gave them.

    prometheus_client names every sample of a counter typed ``x`` as ``x_total``; the old
    parse then restored ``x`` for the samples named ``x_total`` of counter families named
    ``x`` when ``# TYPE x counter`` was a line of ``text.splitlines()``. That set is the
    one gathered from the ``#`` lines unless the text has breaks only ``splitlines`` sees.
    """
    restorable = (
        _counters_without_total(text) if _OTHER_BREAKS.search(text) is not None else typed_counters
    )
    for start, end, typed, mixed in counters:
        appended = not typed.endswith("_total")
        family = typed if appended else typed[:-6]
        restore = family in restorable
        if not mixed:  # every sample is named as typed: one answer for all
            if appended:
                final = typed if restore else typed + "_total"
            else:
                final = family if restore else typed
            if final != typed:
                for i in range(start, end):
                    labels, value, ts = out[i]
                    out[i] = (_renamed(labels, final), value, ts)
            continue
        for i in range(start, end):
            labels, value, ts = out[i]
            exposed = metric_name(labels)
            named = exposed + "_total" if appended else exposed
            if restore and named == family + "_total":
                named = family
            if named != exposed:
                out[i] = (_renamed(labels, named), value, ts)


def _counters_without_total(text: str) -> set[str]:
    """Names declared ``# TYPE <name> counter`` that do not end in ``_total``."""
    names: set[str] = set()
    for line in text.splitlines():
        parts = line.strip().split(None, 3)
        if len(parts) == 4 and parts[0] == "#" and parts[1] == "TYPE" and parts[3] == "counter":
            name = parts[2].strip('"')
            if not name.endswith("_total"):
                names.add(name)
    return names


def _renamed(labels: Labels, name: str) -> Labels:
    return tuple((k, name) if k == METRIC_NAME else (k, v) for k, v in labels)


# -- the careful parser: prometheus_client's rules, line by line -------------------------


def _careful_sample(
    line: str, legacy: bool
) -> tuple[_Entry, str | None, tuple[int | float, float | None]]:
    """One sample line: its entry, its series text when it has labels, value and time."""
    label_start = _next_unquoted(line, "{")
    if label_start == -1 or " # " in line[:label_start]:
        name_end = _next_unquoted(line, " \t")
        name = line[:name_end].strip()  # no separator: all but the last character
        if not _is_metric_name(name):
            raise ValueError(f"invalid metric name {name!r}")
        try:
            value_ts = _value_and_timestamp(line[name_end + 1 :])
        except ValueError:
            if name_end == -1:
                raise ValueError("a sample needs a metric name and a value") from None
            raise
        return (name, ((METRIC_NAME, name),), False), None, value_ts
    name = line[:label_start].strip()
    label_end = _next_unquoted(line, "}", label_start)
    if label_end == -1:
        label_end = label_start - 1  # as prometheus_client: no labels, the rest a value
    labels = _parse_labels(line[label_start + 1 : label_end], legacy)
    if not name:
        if METRIC_NAME not in labels:
            raise ValueError("no metric name")
        name = labels.pop(METRIC_NAME)
    elif METRIC_NAME in labels:
        raise ValueError("metric name given twice")
    value_ts = _value_and_timestamp(line[label_end + 1 :])
    pairs = [*labels.items(), (METRIC_NAME, name)]
    series = line[: label_end + 1] if label_end > label_start else None
    return (name, make_labels(pairs), False), series, value_ts


def _parse_labels(text: str, legacy: bool) -> dict[str, str]:
    labels: dict[str, str] = {}
    rest = text.strip()
    while rest:
        name_term, value_term, rest = _next_term(rest)
        if not value_term:
            continue
        name, quoted = _unquote(name_term)
        if not quoted and not _is_metric_name(name):
            raise ValueError(f"invalid label name {name!r}")
        if value_term[0] != '"':
            raise ValueError(f"label value of {name!r} not in quotes")
        i = 1  # the closing quote must be the term's last character
        while i < len(value_term):
            i = value_term.find('"', i)
            if i < 0:
                raise ValueError(f"label value of {name!r} has no closing quote")
            if not _escaped(value_term, i):
                break
            i += 1
        if i + 1 != len(value_term):
            raise ValueError(f"unexpected text after the label value of {name!r}")
        value, _ = _unquote(value_term)
        if name != METRIC_NAME:
            _check_label_name(name, legacy)
        if name in labels:
            raise ValueError(f"label {name!r} given twice")
        labels[name] = value
    return labels


def _next_term(text: str) -> tuple[str, str, str]:
    """The next ``name=value`` term (the name is ``__name__`` without ``=``), and the rest."""
    if text[0] == ",":
        text = text[1:]
        if not text:
            return "", "", ""
        if text[0] == ",":
            raise ValueError("two commas in a row")
    split = _next_unquoted(text, "=,}")
    if split >= 0 and text[split] == "=":
        name = text[:split]
        text = text[split + 1 :]
        split = _next_unquoted(text, ",}")
    else:
        name = METRIC_NAME
    if split == -1:
        split = len(text)
    return name, text[:split].strip(), text[split:].strip()


def _value_and_timestamp(text: str) -> tuple[int | float, float | None]:
    """The value and the timestamp in seconds; with more fields the last is the time."""
    text = text.lstrip()
    separator = " " if " " in text else "\t"
    fields = [f.strip() for f in text.split(separator) if f.strip()]
    if not fields:
        raise ValueError("no value")
    value = _number(fields[0])
    ts = _number(fields[-1]) / 1000 if len(fields) > 1 else None
    return value, ts


def _number(text: str) -> int | float:
    if text != text.strip() or "_" in text:
        raise ValueError(f"invalid number {text!r}")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None


def _split_comment(line: str) -> list[str]:
    """Up to four fields split at whitespace outside quotes, the last one the rest."""
    fields = [""]
    at = 0
    while at < len(line):
        split = _next_unquoted(line, _WHITESPACE, at)
        if split == -1:
            fields[-1] = line[at:]
            break
        if split == at:
            at += 1
            continue
        if len(fields) > 3:
            fields[-1] = line[at:]
            break
        fields[-1] = line[at:split]
        at = split + 1
        fields.append("")
    return fields


def _unquote(text: str) -> tuple[str, bool]:
    """``text`` without surrounding quotes and escapes, and whether it was quoted."""
    if not text:
        return text, False
    quoted = False
    text = text.strip()
    if not text:
        raise ValueError("empty name")
    if text[0] == '"':
        if len(text) == 1 or text[-1] != '"':
            raise ValueError("no closing quote")
        text = text[1:-1]
        quoted = True
    if "\\" in text:
        text = _ESCAPE.sub(lambda m: _UNESCAPED[m.group(0)], text)
    return text, quoted


def _next_unquoted(text: str, chars: str, start: int = 0) -> int:
    """The first index from ``start`` of one of ``chars`` outside quotes, or -1."""
    in_quotes = False
    for i in range(start, len(text)):
        c = text[i]
        if c == '"' and not _escaped(text, i):
            in_quotes = not in_quotes
        if not in_quotes and c in chars:
            return i
    return -1


def _escaped(text: str, pos: int) -> bool:
    """Whether an odd number of backslashes precedes ``text[pos]``."""
    n = 0
    while pos > n and text[pos - 1 - n] == "\\":
        n += 1
    return n % 2 == 1


def _is_metric_name(name: str) -> bool:
    return bool(name) and _METRIC_NAME.match(name) is not None


def _check_metric_name(name: str, legacy: bool) -> None:
    if not name:
        raise ValueError("empty metric name")
    if legacy and not _METRIC_NAME.match(name):
        raise ValueError(f"invalid metric name {name!r}")
    _check_utf8(name)


def _check_label_name(name: str, legacy: bool) -> None:
    if legacy and not _LABEL_NAME.match(name):
        raise ValueError(f"invalid label name {name!r}")
    _check_utf8(name)
    if _RESERVED_LABEL.match(name):
        raise ValueError(f"label name {name!r} is reserved (starts with __)")


def _check_utf8(name: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"name {name!r} is not valid UTF-8") from None
