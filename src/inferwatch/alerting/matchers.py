"""Alertmanager's label matchers: ``severity="page"``, ``service=~"foo|bar"``.

Routes, inhibition rules and silences select alerts with matchers. The text syntax
is Alertmanager's (``pkg/labels/parse.go``): a comma-separated list, optionally
wrapped in braces, each item ``name op value`` where the value may be double-quoted
(OpenMetrics escapes ``\\"``, ``\\n``, ``\\\\`` apply inside). Regular expressions are
RE2, anchored at both ends, and a missing label matches as the empty string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from inferwatch.tsdb.labels import go_regex

MatchOp = Literal["=", "!=", "=~", "!~"]

#: A valid label name (Prometheus's ``model.LabelNameRE``).
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# '=~' before '=' so that the '~' is not taken as the start of the value.
_MATCHER = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*", re.DOTALL)


def compile_go_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern anchored at both ends, as Alertmanager does.

    Raises ValueError worded like Go's ``regexp`` error, showing the anchored pattern.
    """
    anchored = f"^(?:{pattern})$"
    try:
        return re.compile(f"(?:{go_regex(pattern)})")
    except re.error as exc:
        raise ValueError(f"error parsing regexp: {exc.msg}: `{anchored}`") from None


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher. ``op`` is ``=``, ``!=``, ``=~`` or ``!~``; regular
    expressions are anchored (``=~"foo"`` does not match ``"foobar"``).

    Construction validates the operator and compiles the regex (ValueError if bad).
    """

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown match operator {self.op!r}")
        if self.op in ("=~", "!~"):
            object.__setattr__(self, "_regex", compile_go_regex(self.value))

    def matches_value(self, value: str) -> bool:
        """Whether one label value (``""`` for a missing label) satisfies the matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        found = self._regex.fullmatch(value) is not None
        return found if self.op == "=~" else not found

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the label set satisfies the matcher (a missing label is ``""``)."""
        return self.matches_value(labels.get(self.name, ""))

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{openmetrics_escape(self.value)}"'


def openmetrics_escape(value: str) -> str:
    """Escape backslash, newline and double quote as OpenMetrics (and Alertmanager) do."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches ``labels`` (true for no matchers)."""
    return all(m.matches(labels) for m in matchers)


def sort_key(matcher: Matcher) -> tuple[str, str, int]:
    """Alertmanager's order of matchers (``labels.Matchers.Less``): name, value, type."""
    return (matcher.name, matcher.value, ("=", "!=", "=~", "!~").index(matcher.op))


def format_matchers(matchers: Iterable[Matcher]) -> str:
    """``{a="1",b=~"x"}``: Alertmanager's ``Matchers.String()`` (no space after commas)."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher such as ``severity="critical"`` or ``job=~api.*``.

    Raises ValueError naming the offending text (``bad matcher format: ...``).
    """
    found = _MATCHER.fullmatch(text)
    if found is None:
        raise ValueError(f"bad matcher format: {text}")
    name, op, raw = found.group(1), found.group(2), found.group(3)
    expect_quote = raw.startswith('"')
    if expect_quote:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                out.append("\n")
            elif ch in '"\\':
                out.append(ch)
            else:
                out.append("\\" + ch)
            continue
        if ch == "\\":
            if i < last:
                escaped = True
                continue
            out.append("\\")
        elif ch == '"':
            if not expect_quote or i < last:
                raise ValueError(f"matcher value contains unescaped double quote: {found.group(3)}")
            expect_quote = False
        else:
            out.append(ch)
    if expect_quote:
        raise ValueError(f"matcher value contains unescaped double quote: {found.group(3)}")
    return Matcher(name, op, "".join(out))  # type: ignore[arg-type]


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a list of matchers: ``{a="b", c=~"d"}`` or ``a=b,c!~"x"``.

    Braces are optional; commas inside double quotes do not separate; a trailing
    comma is allowed. Raises ValueError naming the offending text.
    """
    if text.startswith("{"):
        text = text[1:]
    if text.endswith("}"):
        text = text[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for ch in text:
        if ch == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside_quotes = not inside_quotes
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    rest = "".join(token).strip()
    if rest:
        tokens.append(rest)
    return [parse_matcher(t) for t in tokens]


__all__ = [
    "LABEL_NAME",
    "MatchOp",
    "Matcher",
    "compile_go_regex",
    "format_matchers",
    "matches_all",
    "openmetrics_escape",
    "parse_matcher",
    "parse_matchers",
    "sort_key",
]
