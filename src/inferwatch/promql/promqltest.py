"""Run Prometheus's own PromQL test files (``promql/promqltest/testdata/*.test``).

The files are scripts of ``load``, ``clear`` and ``eval`` commands; this module parses
them the way Prometheus's ``promql/promqltest/test.go`` does and checks each ``eval``
against an :class:`~inferwatch.promql.Engine` over a :class:`MemoryStorage`, comparing
results as ``test.go`` does: label sets exactly, floats to a relative 1e-6 (NaN equals
NaN, the staleness marker only itself), order only where the case asks for it, and
warning/info annotations. An instant ``eval`` is also run as a range query over
``t-1m .. t+1m`` and its middle step compared, as ``test.go`` does.

Not supported: native histograms (``{{...}}`` values; cases expecting them fail with a
message saying so, series loading them are skipped), the ``@st`` start-timestamp lines
(ignored) and ``test.go``'s extra ``@``-modifier rewrites of each instant query.

Run from the command line::

    python -m inferwatch.promql.promqltest [--subset SUBSET.tsv] FILE.test...

which prints ``file: N passed, M failed`` per file and, as its last line, one JSON object
with the totals and every failure; the exit status is 1 when any case failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from inferwatch._duration import duration_ms
from inferwatch._errors import QueryError
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.promql.value import (
    Matrix,
    Queryable,
    QueryResult,
    RangeSeries,
    Sample,
    Scalar,
    String,
)
from inferwatch.tsdb.labels import STALE_NAN, Labels, format_labels, is_stale, make_labels

#: A loaded or expected sequence of values; ``None`` is an omitted point (``_``).
Values = list[float | None]

DEFAULT_EPSILON = 1e-6
DEFAULT_MAX_SAMPLES = 10_000
DEFAULT_LOOKBACK_MS = 300_000
DEFAULT_TIMEOUT_S = 100.0

_PAT_SPACE = re.compile(r"[\t ]+")
_PAT_LOAD = re.compile(r"^load(?:_(with_nhcb))?\s+(.+?)$")
_PAT_EVAL_INSTANT = re.compile(
    r"^eval(?:_(fail|warn|ordered|info))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$"
)
_PAT_EVAL_RANGE = re.compile(
    r"^eval(?:_(fail|warn|info))?\s+range\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+?)\s+(.+)$"
)
_PAT_EXPECT = re.compile(
    r"^expect\s+(ordered|fail|warn|no_warn|info|no_info)(?:\s+(regex|msg):(.+))?$"
)
_RANGE_VECTOR_PREFIX = "expect range vector"
_PAT_EXPECT_RANGE = re.compile(
    "^" + _RANGE_VECTOR_PREFIX + r"\s+from\s+(.+)\s+to\s+(.+)\s+step\s+(.+)$"
)
_EXPECT_STRING_PREFIX = "expect string"
_PAT_QUERY_CONTEXT_FUNCS = re.compile(r"(start|end|range|step)\(\)")
_NUM = r"(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF]|[nN][aA][nN])"
_PAT_ITEM_SEQ = re.compile(rf"^([+-]?{_NUM})(?:([+-]{_NUM}))?x(\d+)$")
_PAT_ITEM_ONE = re.compile(rf"^[+-]?{_NUM}$")
_PAT_BLANKS = re.compile(r"^_x(\d+)$")
_PAT_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_PAT_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_PAT_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_PAT_ESCAPE = re.compile(
    r"\\(?:([abfnrtv\\'\"])|x([0-9a-fA-F]{2})|([0-7]{3})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))"
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


class _ParseError(ValueError):
    """A line of a test file that does not follow the format."""


class _Unsupported(_ParseError):
    """A feature of the format this runner does not implement (native histograms)."""


class _CaseTimeout(BaseException):
    """Raised by the runner's own per-case alarm (a BaseException, so the engine's
    ``except Exception`` handlers cannot swallow it)."""


class QueryEngine(Protocol):
    """What the runner drives: :class:`~inferwatch.promql.Engine` or a stand-in."""

    def instant_query(self, query: str, time_ms: int, /) -> QueryResult: ...

    def range_query(
        self, query: str, start_ms: int, end_ms: int, step_ms: int, /
    ) -> QueryResult: ...


EngineFactory = Callable[[Queryable], QueryEngine]


def default_engine(storage: Queryable) -> QueryEngine:
    """An engine with ``test.go``'s settings: 5m lookback, 10,000 samples, 100 s."""
    from inferwatch.promql.engine import Engine

    return Engine(
        storage,
        lookback_delta_ms=DEFAULT_LOOKBACK_MS,
        timeout_s=DEFAULT_TIMEOUT_S,
        max_samples=DEFAULT_MAX_SAMPLES,
    )


# --------------------------------------------------------------------------- values


def parse_duration(text: str) -> int:
    """A Prometheus duration (``1h30m``, ``10s``, ``0``) in milliseconds."""
    ms = duration_ms(text)
    if ms is None:
        raise _ParseError(f"not a valid duration string: {text!r}")
    return ms


def parse_number(text: str) -> float:
    """A number as Go's ``ParseInt(s, 0, 64)`` then ``ParseFloat`` read it."""
    s = text
    if re.fullmatch(r"[+-]?0[0-7]+", s):
        return float(int(s, 8))
    if re.fullmatch(r"[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[1-9]\d*|0)", s):
        n = int(s, 0)
        if -(2**63) <= n < 2**63:
            return float(n)
    if not re.fullmatch(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?(?i:inf|infinity|nan)", s):
        raise _ParseError(f"error parsing number: {text!r}")
    return float(s)


def go_unquote(text: str) -> str:
    """A Go/PromQL string literal (``"..."``, ``'...'`` or a raw backquoted string)."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'`":
        raise _ParseError(f"not a quoted string: {text}")
    quote, body = text[0], text[1:-1]
    if quote == "`":
        if "`" in body:
            raise _ParseError(f"invalid raw string: {text}")
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            m = _PAT_ESCAPE.match(body, i)
            if m is None:
                raise _ParseError(f"invalid escape sequence in {text}")
            simple, hex2, octal, u4, u8 = m.groups()
            if simple is not None:
                out += _SIMPLE_ESCAPES[simple].encode()
            elif hex2 is not None:
                out.append(int(hex2, 16))
            elif octal is not None:
                out.append(int(octal, 8) & 0xFF)
            else:
                out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
            i = m.end()
        elif c == quote:
            raise _ParseError(f"unescaped quote in {text}")
        else:
            out += c.encode("utf-8", "surrogateescape")
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _parse_item(item: str) -> Values:
    if item == "_":
        return [None]
    if item == "stale":
        return [STALE_NAN]
    if m := _PAT_BLANKS.match(item):
        return [None] * int(m.group(1))
    if m := _PAT_ITEM_SEQ.match(item):
        value = float(m.group(1))
        inc = float(m.group(2)) if m.group(2) else 0.0
        out: Values = []
        for _ in range(int(m.group(3)) + 1):
            out.append(value)
            value += inc
        return out
    if _PAT_ITEM_ONE.match(item):
        return [float(item)]
    raise _ParseError(f'unexpected {item!r} in series values, expected number or "stale"')


def _parse_label_set(text: str, pos: int, pairs: dict[str, str]) -> tuple[int, str | None]:
    """Parse ``{...}`` starting at ``text[pos] == "{"``; returns the end and a quoted name."""
    name: str | None = None
    pos += 1
    while True:
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == "}":
            return pos + 1, name
        if m := _PAT_LABEL_NAME.match(text, pos):
            label, quoted = m.group(), False
        elif m := _PAT_STRING.match(text, pos):
            label, quoted = go_unquote(m.group()), True
        else:
            raise _ParseError(f"unexpected {text[pos : pos + 10]!r} in label set")
        pos = _skip_ws(text, m.end())
        if pos < len(text) and text[pos] == "=":
            pos = _skip_ws(text, pos + 1)
            value = _PAT_STRING.match(text, pos)
            if value is None:
                raise _ParseError(f"expected a quoted label value for {label!r}")
            pairs[label] = go_unquote(value.group())
            pos = value.end()
        elif quoted:
            name = label
        else:
            raise _ParseError(f"expected '=' after label name {label!r}")
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif not (pos < len(text) and text[pos] == "}"):
            raise _ParseError("unexpected end of label set, expected ',' or '}'")


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def parse_series(text: str) -> tuple[Labels, Values]:
    """A series line ``metric{a="b"} 1 2+3x4 _ stale`` as a label set and its values."""
    pairs: dict[str, str] = {}
    pos = 0
    if m := _PAT_METRIC_NAME.match(text):
        pairs["__name__"] = m.group()
        pos = m.end()
    if pos < len(text) and text[pos] == "{":
        pos, quoted_name = _parse_label_set(text, pos, pairs)
        if quoted_name is not None:
            pairs["__name__"] = quoted_name
    rest = text[pos:]
    if rest and rest[0] not in " \t":
        raise _ParseError(f"expected a space between the series and its values in {text!r}")
    if "{{" in rest:
        raise _Unsupported("native histogram values ({{...}}) are not supported")
    values: Values = []
    for item in rest.split():
        values.extend(_parse_item(item))
    return make_labels(pairs), values


# --------------------------------------------------------------------------- commands


@dataclass(slots=True)
class LoadCmd:
    """``load <interval>``: series whose values start at 0 and follow every interval."""

    line: int
    interval_ms: int
    series: dict[Labels, Values] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ClearCmd:
    """``clear``: empty the storage."""

    line: int


@dataclass(slots=True)
class ExpectCmd:
    """One ``expect fail|warn|info ...`` line: an exact message or a regex to search."""

    message: str = ""
    regex: re.Pattern[str] | None = None

    def matches(self, text: str) -> bool:
        return self.message == text if self.regex is None else bool(self.regex.search(text))

    def describe(self) -> str:
        return self.message if self.regex is None else self.regex.pattern

    def kind(self) -> str:
        return "message" if self.regex is None else "pattern"


@dataclass(slots=True)
class EvalCmd:
    """One ``eval`` case and what it expects."""

    line: int
    expr: str
    is_range: bool = False
    start_ms: int = 0
    end_ms: int = 0
    step_ms: int = 0
    eval_ms: int = 0
    fail: bool = False
    warn: bool = False
    info: bool = False
    ordered: bool = False
    expected_fail_message: str = ""
    expected_fail_regexp: re.Pattern[str] | None = None
    expects: dict[str, list[ExpectCmd]] = field(default_factory=dict)
    expected: dict[Labels, tuple[int, Values]] = field(default_factory=dict)
    expect_scalar: bool = False
    expected_scalar: float = 0.0
    expected_string: str = ""
    exclude_from_range_query: bool = False
    error: str | None = None
    unsupported: str | None = None

    @property
    def is_ordered(self) -> bool:
        return self.ordered or bool(self.expects.get("ordered"))

    @property
    def is_fail(self) -> bool:
        return self.fail or bool(self.expects.get("fail"))


@dataclass(slots=True)
class BadCmd:
    """A line that is not a command; reported as a failure at its line."""

    line: int
    text: str
    error: str


Command = LoadCmd | ClearCmd | EvalCmd | BadCmd


def _get_lines(text: str) -> list[str]:
    out = []
    for raw in text.split("\n"):
        stripped = raw.strip()
        out.append("" if stripped.startswith("#") else stripped)
    return out


def parse_test(text: str) -> list[Command]:
    """The commands of a test file, in order; problems become :class:`BadCmd` or errors."""
    lines = _get_lines(text)
    cmds: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line == "":
            i += 1
            continue
        word = _PAT_SPACE.split(line, maxsplit=1)[0].lower()
        if word == "clear":
            cmds.append(ClearCmd(i + 1))
        elif word.startswith("load"):
            i, load = _parse_load(lines, i)
            cmds.append(load)
        elif word.startswith("eval"):
            i, evaluation = _parse_eval(lines, i)
            cmds.append(evaluation)
        else:
            cmds.append(BadCmd(i + 1, line, f"invalid command {line!r}"))
        i += 1
    return cmds


def _skip_block(lines: list[str], i: int) -> int:
    while i + 1 < len(lines) and lines[i + 1] != "":
        i += 1
    return i


def _parse_load(lines: list[str], i: int) -> tuple[int, LoadCmd | BadCmd]:
    m = _PAT_LOAD.match(lines[i])
    if m is None:
        return _skip_block(lines, i), BadCmd(i + 1, lines[i], "invalid load command")
    try:
        cmd = LoadCmd(i + 1, parse_duration(m.group(2)))
    except _ParseError as exc:
        return _skip_block(lines, i), BadCmd(i + 1, lines[i], f"invalid step definition: {exc}")
    while i + 1 < len(lines) and lines[i + 1] != "":
        i += 1
        first = _PAT_SPACE.split(lines[i], maxsplit=1)[0]
        if first.endswith("@st"):
            continue  # start timestamps: the store keeps none
        try:
            labels, values = parse_series(lines[i])
        except _Unsupported as exc:
            cmd.skipped.append(f"line {i + 1}: {exc}")
            continue
        except _ParseError as exc:
            return _skip_block(lines, i), BadCmd(i + 1, lines[i], str(exc))
        cmd.series[labels] = values
    return i, cmd


def _parse_eval(lines: list[str], i: int) -> tuple[int, EvalCmd]:
    text = lines[i]
    instant = _PAT_EVAL_INSTANT.match(text)
    ranged = _PAT_EVAL_RANGE.match(text)
    if instant is None and ranged is None:
        cmd = EvalCmd(i + 1, text, error="invalid evaluation command")
        return _skip_block(lines, i), cmd
    if instant is not None:
        mod, expr = instant.group(1), instant.group(3)
        cmd = EvalCmd(i + 1, expr)
        try:
            cmd.start_ms = cmd.eval_ms = parse_duration(instant.group(2) or "")
        except _ParseError as exc:
            cmd.error = f"invalid timestamp definition: {exc}"
    else:
        assert ranged is not None
        mod, expr = ranged.group(1), ranged.group(5)
        cmd = EvalCmd(i + 1, expr, is_range=True)
        try:
            cmd.start_ms, cmd.end_ms, cmd.step_ms = _parse_range(*ranged.group(2, 3, 4))
        except _ParseError as exc:
            cmd.error = str(exc)
    if mod:
        setattr(cmd, mod, True)
    expect_range_vector = False
    pos = 0
    while i + 1 < len(lines) and lines[i + 1] != "":
        i += 1
        pos += 1
        line = lines[i]
        if cmd.error is not None:
            continue
        try:
            if cmd.fail and line.startswith("expected_fail_message"):
                cmd.expected_fail_message = line.removeprefix("expected_fail_message").strip()
                break
            if cmd.fail and line.startswith("expected_fail_regexp"):
                pattern = line.removeprefix("expected_fail_regexp").strip()
                cmd.expected_fail_regexp = _compile(pattern)
                break
            if line.startswith(_RANGE_VECTOR_PREFIX):
                m = _PAT_EXPECT_RANGE.match(line)
                if m is None:
                    raise _ParseError(f"invalid range vector definition {line!r}")
                cmd.start_ms, cmd.end_ms, cmd.step_ms = _parse_range(*m.group(1, 2, 3))
                cmd.eval_ms = cmd.end_ms
                cmd.exclude_from_range_query = True
                expect_range_vector = True
                continue
            if line.startswith(_EXPECT_STRING_PREFIX):
                literal = line.removeprefix(_EXPECT_STRING_PREFIX + " ")
                if line == _EXPECT_STRING_PREFIX or literal == "":
                    raise _ParseError("a quoted string literal is required after 'expect string'")
                cmd.expected_string = go_unquote(literal)
                cmd.exclude_from_range_query = True
                continue
            if line.split(" ")[0] == "expect":
                kind, exp = _parse_expect(line)
                cmd.expects.setdefault(kind, []).append(exp)
                pos -= 1
                _validate_expects(cmd)
                continue
            try:
                cmd.expected_scalar = parse_number(line)
            except _ParseError:
                pass
            else:
                cmd.expect_scalar = True
                break
            try:
                labels, values = parse_series(line)
            except _Unsupported as exc:
                cmd.unsupported = f"{exc} (expected result, line {i + 1})"
                continue
            if len(values) > 1 and not cmd.is_range and not expect_range_vector:
                raise _ParseError(
                    "expecting multiple values in instant evaluation not allowed. consider "
                    "using 'expect range vector' directive to enable a range vector result "
                    "for an instant query"
                )
            cmd.expect_scalar = False
            cmd.expected[labels] = (pos, values)
        except _ParseError as exc:
            cmd.error = f"error in eval {expr} (line {cmd.line}): line {i + 1}: {exc}"
    return i, cmd


def _parse_range(start: str, end: str, step: str) -> tuple[int, int, int]:
    start_ms, end_ms = parse_duration(start), parse_duration(end)
    if end_ms < start_ms:
        raise _ParseError(f"end timestamp ({end}) is before start timestamp ({start})")
    return start_ms, end_ms, parse_duration(step)


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise _ParseError(f"invalid regexp {pattern!r}: {exc}") from None


def _parse_expect(line: str) -> tuple[str, ExpectCmd]:
    m = _PAT_EXPECT.match(line.strip())
    if m is None:
        raise _ParseError(
            "invalid expect statement, must match `expect <type> <match_type>: <string>` format"
        )
    kind, how, text = m.groups()
    if how == "msg":
        return kind, ExpectCmd(message=text.strip())
    if how == "regex":
        return kind, ExpectCmd(regex=_compile(text.strip()))
    return kind, ExpectCmd(regex=re.compile(".*"))


def _validate_expects(cmd: EvalCmd) -> None:
    has = cmd.expects.get
    if has("info") and has("no_info"):
        raise _ParseError("invalid expect lines, info and no_info cannot be used together")
    if has("warn") and has("no_warn"):
        raise _ParseError("invalid expect lines, warn and no_warn cannot be used together")
    if len(cmd.expects.get("fail", [])) > 1:
        raise _ParseError("invalid expect lines, multiple expect fail lines are not allowed")


# --------------------------------------------------------------------------- comparing


def almost_equal(a: float, b: float, epsilon: float = DEFAULT_EPSILON) -> bool:
    """Prometheus's ``almost.Equal``: relative ``epsilon``, NaN == NaN, StaleNaN only itself."""
    if is_stale(a) or is_stale(b):
        return is_stale(a) and is_stale(b)
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    abs_sum = abs(a) + abs(b)
    diff = abs(a - b)
    min_normal = sys.float_info.min
    if a == 0 or b == 0 or abs_sum < min_normal:
        return diff < epsilon * min_normal
    return diff / min(abs_sum, sys.float_info.max) < epsilon


def _fmt(v: float | None) -> str:
    if v is None:
        return "_"
    if is_stale(v):
        return "stale"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def _fmt_values(values: Values) -> str:
    return "[" + " ".join(_fmt(v) for v in values) + "]"


def _fmt_series(s: RangeSeries) -> str:
    points = " ".join(
        f"{_fmt(float(v))} @[{int(t)}]" for t, v in zip(s.timestamps, s.values, strict=True)
    )
    return f"{len(s.timestamps)} float point(s) [{points}]"


def _fmt_labels(labels: Labels) -> str:
    return format_labels(labels) if labels else "{}"


def _check_sorted(matrix: Matrix) -> str | None:
    for i in range(len(matrix) - 1):
        if matrix[i].labels > matrix[i + 1].labels:
            return (
                f"matrix results should always be sorted by labels, but series at index "
                f"{i + 1} with labels {_fmt_labels(matrix[i + 1].labels)} sorts before "
                f"series at index {i} with labels {_fmt_labels(matrix[i].labels)}"
            )
    return None


def compare_result(cmd: EvalCmd, result: QueryResult) -> str | None:
    """Why ``result`` does not match what ``cmd`` expects, or ``None`` when it does."""
    value = result.value
    if result.result_type == "matrix":
        assert isinstance(value, list)
        return _compare_matrix(cmd, [s for s in value if isinstance(s, RangeSeries)])
    if result.result_type == "vector":
        assert isinstance(value, list)
        return _compare_vector(cmd, [s for s in value if isinstance(s, Sample)])
    if isinstance(value, Scalar):
        if not cmd.expect_scalar:
            return f"expected vector or matrix result, but got scalar {_fmt(value.v)}"
        if not almost_equal(cmd.expected_scalar, value.v):
            return f"expected scalar {_fmt(cmd.expected_scalar)} but got {_fmt(value.v)}"
        return None
    if isinstance(value, String):
        if cmd.expected_string != value.v:
            return f'expected string "{cmd.expected_string}" but got "{value.v}"'
        return None
    return f"unexpected result type {result.result_type!r} ({type(value).__name__})"


def _compare_matrix(cmd: EvalCmd, matrix: Matrix) -> str | None:
    if cmd.is_ordered:
        return "expected ordered result, but query returned a matrix"
    if cmd.expect_scalar:
        return f"expected scalar result, but got matrix of {len(matrix)} series"
    if problem := _check_sorted(matrix):
        return problem
    seen: set[Labels] = set()
    for s in matrix:
        if s.labels not in cmd.expected:
            return f"unexpected metric {_fmt_labels(s.labels)} in result, has {_fmt_series(s)}"
        seen.add(s.labels)
        _, values = cmd.expected[s.labels]
        expected: list[tuple[int, float]] = []
        for i, v in enumerate(values):
            t = cmd.start_ms + i * cmd.step_ms
            if t > cmd.end_ms:
                return (
                    f"expected {len(values)} points for {_fmt_labels(s.labels)}, but query "
                    f"time range cannot return this many points"
                )
            if v is not None:
                expected.append((t, v))
        name = _fmt_labels(s.labels)
        if len(expected) != len(s.timestamps):
            return f"expected {len(expected)} float points for {name}, but got {_fmt_series(s)}"
        for i, ((t, v), at, av) in enumerate(zip(expected, s.timestamps, s.values, strict=True)):
            if t != int(at):
                return (
                    f"expected float value at index {i} for {name} to have timestamp {t}, "
                    f"but it had timestamp {int(at)} (result has {_fmt_series(s)})"
                )
            if not almost_equal(float(av), v):
                return (
                    f"expected float value at index {i} (t={t}) for {name} to be {_fmt(v)}, "
                    f"but got {_fmt(float(av))} (result has {_fmt_series(s)})"
                )
    for labels in cmd.expected:
        if labels not in seen:
            return f"expected metric {_fmt_labels(labels)} not found"
    return None


def _compare_vector(cmd: EvalCmd, vector: list[Sample]) -> str | None:
    if cmd.expect_scalar:
        return f"expected scalar result, but got vector of {len(vector)} samples"
    seen: set[Labels] = set()
    for pos, sample in enumerate(vector):
        name = _fmt_labels(sample.labels)
        if sample.labels not in cmd.expected:
            return f"unexpected metric {name} in result, has value {_fmt(sample.v)}"
        exp_pos, values = cmd.expected[sample.labels]
        if cmd.is_ordered and exp_pos != pos + 1:
            return (
                f"expected metric {name} with {_fmt_values(values)} at position {exp_pos} "
                f"but was at {pos + 1}"
            )
        expected = values[0] if values and values[0] is not None else 0.0
        if not almost_equal(expected, sample.v):
            return f"expected {_fmt(expected)} for {name} but got {_fmt(sample.v)}"
        seen.add(sample.labels)
    for labels, (_, values) in cmd.expected.items():
        if labels not in seen:
            return f"expected metric {_fmt_labels(labels)} with {_fmt_values(values)} not found"
    return None


def check_annotations(cmd: EvalCmd, result: QueryResult) -> str | None:
    """Why the result's warnings/infos do not match the case's ``expect`` lines, if so."""
    warnings, infos = result.warnings, result.infos
    where = f"query {cmd.expr!r} (line {cmd.line})"
    if cmd.warn and not warnings:
        return f"expected warnings evaluating {where} but got none"
    if cmd.info and not infos:
        return f"expected info annotations evaluating {where} but got none"
    for kind, actual in (("warn", warnings), ("info", infos)):
        expected = cmd.expects.get(kind, [])
        if not expected:
            continue
        if not actual:
            return f"expected {kind} annotations but none were found for {where}"
        for e in expected:
            if not any(e.matches(a) for a in actual):
                return (
                    f"expected {kind} annotation matching {e.kind()} {e.describe()!r} but no "
                    f"matching annotation was found for {where}, found: {warnings + infos}"
                )
        for a in actual:
            if not any(e.matches(a) for e in expected):
                return f"unexpected {kind} annotation {a!r} found for {where}"
    if "no_warn" in cmd.expects and warnings:
        return f"unexpected warning annotations evaluating {where}: {warnings}"
    if "no_info" in cmd.expects and infos:
        return f"unexpected info annotations evaluating {where}: {infos}"
    return None


def _check_expected_failure(cmd: EvalCmd, error: QueryError) -> str | None:
    actual = str(error)
    where = f"evaluating query {cmd.expr!r} (line {cmd.line})"
    if cmd.expected_fail_message and cmd.expected_fail_message != actual:
        return f"expected error {cmd.expected_fail_message!r} {where}, but got: {actual}"
    if cmd.expected_fail_regexp is not None and not cmd.expected_fail_regexp.search(actual):
        return (
            f"expected error matching pattern {cmd.expected_fail_regexp.pattern!r} {where}, "
            f"but got: {actual}"
        )
    fails = cmd.expects.get("fail")
    if fails and not fails[0].matches(actual):
        return f"expected error matching {fails[0].describe()!r} {where}, but got: {actual}"
    return None


# --------------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one ``eval``: ``line`` is the line of the ``eval`` command."""

    file: str
    line: int
    expr: str
    passed: bool
    message: str = ""


@contextlib.contextmanager
def _deadline(seconds: float | None) -> Iterator[None]:
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None

    def _alarm(signum: int, frame: object) -> None:
        raise _CaseTimeout(f"case ran past the runner's {seconds:g}s limit")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe_exception(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        return f"{last} (at {Path(f.filename).name}:{f.lineno} in {f.name})"
    return last


class _Runner:
    def __init__(self, engine: QueryEngine, *, range_mode: bool) -> None:
        self.engine = engine
        self.range_mode = range_mode

    def _instant(self, expr: str, t: int) -> QueryResult | QueryError:
        try:
            return self.engine.instant_query(expr, t)
        except QueryError as exc:
            return exc

    def _range(self, expr: str, start: int, end: int, step: int) -> QueryResult | QueryError:
        try:
            return self.engine.range_query(expr, start, end, step)
        except QueryError as exc:
            return exc

    def run(self, cmd: EvalCmd) -> str | None:
        if cmd.error is not None:
            return cmd.error
        if cmd.unsupported is not None:
            return cmd.unsupported
        if cmd.is_range:
            res = self._range(cmd.expr, cmd.start_ms, cmd.end_ms, cmd.step_ms)
        else:
            res = self._instant(cmd.expr, cmd.eval_ms)
        where = f"query {cmd.expr!r} (line {cmd.line})"
        if isinstance(res, QueryError):
            if cmd.is_fail:
                return _check_expected_failure(cmd, res)
            return f"error evaluating {where}: {res}"
        if cmd.is_fail:
            return f"expected error evaluating {where} but got none"
        if problem := check_annotations(cmd, res):
            return problem
        if problem := compare_result(cmd, res):
            return f"error in eval {cmd.expr} (line {cmd.line}): {problem}"
        if cmd.is_range or not self.range_mode or cmd.exclude_from_range_query:
            return None
        if _PAT_QUERY_CONTEXT_FUNCS.search(cmd.expr):
            return None
        return self._range_mode(cmd, res)

    def _range_mode(self, cmd: EvalCmd, instant: QueryResult) -> str | None:
        """Check that the instant query gives the same result as the middle range step."""
        t = cmd.eval_ms
        res = self._range(cmd.expr, t - 60_000, t + 60_000, 60_000)
        where = f"query {cmd.expr!r} (line {cmd.line}) in range mode"
        if isinstance(res, QueryError):
            return f"error evaluating {where}: {res}"
        if cmd.is_ordered:
            return None
        if res.result_type != "matrix" or not isinstance(res.value, list):
            return f"{where}: range query returned a {res.result_type}, not a matrix"
        matrix = [s for s in res.value if isinstance(s, RangeSeries)]
        if problem := _check_sorted(matrix):
            return problem
        vector = []
        for s in matrix:
            for ts, v in zip(s.timestamps, s.values, strict=True):
                if int(ts) == t:
                    vector.append(Sample(s.labels, t, float(v)))
                    break
        if instant.result_type == "scalar":
            if not vector:
                return f"error in eval {where}: no point at t={t} for the scalar result"
            mid = QueryResult("scalar", Scalar(t, vector[0].v))
        else:
            mid = QueryResult("vector", vector)
        if problem := compare_result(cmd, mid):
            return f"error in eval {where}: {problem}"
        return None


def _load(storage: MemoryStorage, cmd: LoadCmd) -> None:
    for labels, values in cmd.series.items():
        ts = [i * cmd.interval_ms for i, v in enumerate(values) if v is not None]
        vs = [v for v in values if v is not None]
        if ts:
            storage.add(labels, ts, vs)


def run_text(
    text: str,
    *,
    name: str = "<text>",
    engine_factory: EngineFactory | None = None,
    lines: Collection[int] | None = None,
    range_mode: bool = True,
    case_timeout_s: float | None = 60.0,
) -> list[CaseResult]:
    """Run the test script ``text``; one :class:`CaseResult` per ``eval``.

    ``lines`` restricts the run to the ``eval`` commands on those lines (loads and clears
    always run). ``range_mode=False`` skips re-running instant queries as range queries.
    An exception other than :class:`~inferwatch._errors.QueryError` from the engine
    fails its case with the exception's last line; it never stops the run.
    """
    storage = MemoryStorage()
    runner = _Runner((engine_factory or default_engine)(storage), range_mode=range_mode)
    results: list[CaseResult] = []
    skipped: list[str] = []
    for cmd in parse_test(text):
        if isinstance(cmd, ClearCmd):
            storage.clear()
            skipped.clear()
        elif isinstance(cmd, LoadCmd):
            _load(storage, cmd)
            skipped.extend(cmd.skipped)
        elif isinstance(cmd, BadCmd):
            results.append(CaseResult(name, cmd.line, cmd.text, False, cmd.error))
        elif lines is None or cmd.line in lines:
            try:
                with _deadline(case_timeout_s):
                    message = runner.run(cmd)
            except _CaseTimeout as exc:
                message = str(exc)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # pyo3's PanicException is a BaseException
                message = f"engine raised {_describe_exception(exc)}"
            if message is not None and skipped:
                message += f" [note: series skipped while loading: {'; '.join(skipped)}]"
            results.append(CaseResult(name, cmd.line, cmd.expr, message is None, message or ""))
    return results


def run_file(
    path: str | Path,
    engine_factory: EngineFactory | None = None,
    *,
    lines: Collection[int] | None = None,
    range_mode: bool = True,
    case_timeout_s: float | None = 60.0,
) -> list[CaseResult]:
    """Run one ``.test`` file; results carry the file's base name, as in SUBSET.tsv."""
    p = Path(path)
    return run_text(
        p.read_text(encoding="utf-8"),
        name=p.name,
        engine_factory=engine_factory,
        lines=lines,
        range_mode=range_mode,
        case_timeout_s=case_timeout_s,
    )


def run_files(
    paths: Sequence[str | Path],
    engine_factory: EngineFactory | None = None,
    *,
    subset: Mapping[str, Collection[int]] | None = None,
    range_mode: bool = True,
    case_timeout_s: float | None = 60.0,
) -> list[CaseResult]:
    """Run several files; with ``subset`` (see :func:`load_subset`) only those cases."""
    results: list[CaseResult] = []
    for path in paths:
        lines = None if subset is None else subset.get(Path(path).name, ())
        results.extend(
            run_file(
                path,
                engine_factory,
                lines=lines,
                range_mode=range_mode,
                case_timeout_s=case_timeout_s,
            )
        )
    return results


def load_subset(path: str | Path) -> dict[str, set[int]]:
    """The ``in_subset = 1`` cases of a SUBSET.tsv, as file name -> ``eval`` lines."""
    out: dict[str, set[int]] = {}
    rows = Path(path).read_text(encoding="utf-8").splitlines()
    header = rows[0].split("\t")
    col_file, col_line, col_in = (header.index(c) for c in ("file", "line", "in_subset"))
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) > col_in and cols[col_in] == "1":
            out.setdefault(cols[col_file], set()).add(int(cols[col_line]))
    return out


def summarize(results: Sequence[CaseResult]) -> dict[str, object]:
    """Totals, per-file counts and failures, as ``main`` prints them."""
    by_file: dict[str, dict[str, int]] = {}
    for r in results:
        counts = by_file.setdefault(r.file, {"passed": 0, "failed": 0})
        counts["passed" if r.passed else "failed"] += 1
    passed = sum(r.passed for r in results)
    return {
        "passed": passed,
        "failed": len(results) - passed,
        "total": len(results),
        "by_file": by_file,
        "failures": [
            {"file": r.file, "line": r.line, "expr": r.expr, "message": r.message}
            for r in results
            if not r.passed
        ],
    }


def main(argv: Sequence[str] | None = None, engine_factory: EngineFactory | None = None) -> int:
    """Command-line entry point; returns the exit status (1 when any case failed)."""
    parser = argparse.ArgumentParser(
        prog="python -m inferwatch.promql.promqltest",
        description="Run Prometheus PromQL test files against inferwatch's engine.",
    )
    parser.add_argument("files", nargs="+", type=Path, help=".test files to run")
    parser.add_argument("--subset", type=Path, help="SUBSET.tsv: run only in_subset=1 cases")
    parser.add_argument(
        "--no-range-mode",
        action="store_true",
        help="do not re-run instant queries as range queries",
    )
    parser.add_argument(
        "--case-timeout", type=float, default=60.0, help="seconds per case (0: no limit)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure")
    args = parser.parse_args(argv)
    subset = load_subset(args.subset) if args.subset else None
    results: list[CaseResult] = []
    for path in args.files:
        lines = None if subset is None else subset.get(path.name, ())
        file_results = run_file(
            path,
            engine_factory,
            lines=lines,
            range_mode=not args.no_range_mode,
            case_timeout_s=args.case_timeout or None,
        )
        passed = sum(r.passed for r in file_results)
        print(f"{path.name}: {passed} passed, {len(file_results) - passed} failed")
        if args.verbose:
            for r in file_results:
                if not r.passed:
                    print(f"  FAIL {r.file}:{r.line}: {r.expr}\n    {r.message}")
        results.extend(file_results)
    summary = summarize(results)
    print(json.dumps(summary))
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
