"""Label sets, the staleness marker, and label matchers: the vocabulary of the store.

A :data:`Labels` value is a tuple of ``(name, value)`` pairs sorted by name, including
``__name__``; it is hashable and is the identity of a series. Empty label values are
dropped, as in Prometheus (a label with an empty value is the same as no label).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Labels: TypeAlias = tuple[tuple[str, str], ...]

#: Prometheus's staleness marker: a NaN with this exact bit pattern.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

METRIC_NAME = "__name__"


def is_stale(value: float) -> bool:
    """Whether ``value`` is the staleness marker (not just any NaN)."""
    return math.isnan(value) and struct.pack("<d", value) == _STALE_BYTES


_STALE_BYTES = struct.pack("<Q", STALE_NAN_BITS)


def make_labels(pairs: Mapping[str, str] | Iterable[tuple[str, str]]) -> Labels:
    """A canonical label set: sorted by name, empty values dropped."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return tuple(sorted((k, v) for k, v in items if v != ""))


def metric_name(labels: Labels) -> str:
    for k, v in labels:
        if k == METRIC_NAME:
            return v
    return ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(labels: Labels) -> str:
    """``name{a="1",b="2"}``, as Prometheus prints a series."""
    name = metric_name(labels)
    rest = ",".join(f'{k}="{_escape(v)}"' for k, v in labels if k != METRIC_NAME)
    return f"{name}{{{rest}}}" if rest or not name else name


MatchOp = Literal["=", "!=", "=~", "!~"]


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7F",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1F\\x7F",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_INLINE_FLAGS = re.compile(r"\(\?([imsU-]+)\)")


def go_regex(pattern: str) -> str:
    """Translate Go RE2 syntax to Python's where they differ.

    Inline flags in the middle of a pattern (``a(?i)b``) apply to the rest of the
    enclosing group in Go; Python only accepts them at the start, so they become a
    scoped group ``(?i:...)``. Also ``\\z``, ``(?<name>``, and POSIX classes
    such as ``[[:alpha:]]``.
    """
    out: list[str] = []
    closers: list[int] = []  # per open group: how many scoped flag groups to close
    top = 0  # scoped flag groups opened outside any group
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                if name in _POSIX_CLASSES:
                    out.append(_POSIX_CLASSES[name])
                    i = end + 2
                    continue
            if ch == "]":
                in_class = False
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("\\]")
                i += 1
            continue
        flags = _INLINE_FLAGS.match(pattern, i)
        if flags is not None:
            text = flags.group(1).replace("U", "")
            if text and text != "-":
                out.append(f"(?{text}:")
                if closers:
                    closers[-1] += 1
                else:
                    top += 1
            i = flags.end()
            continue
        if ch == "(":
            if pattern.startswith("(?<", i) and pattern[i + 3 : i + 4] not in ("=", "!"):
                out.append("(?P<")
                i += 3
            else:
                out.append(ch)
                i += 1
            closers.append(0)
            continue
        if ch == ")":
            out.append(")" * (closers.pop() if closers else 0))
            out.append(ch)
            i += 1
            continue
        out.append(ch)
        i += 1
    # Flags opened at the top level close at the end.
    return "".join(out) + ")" * (top + sum(closers))


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher: ``name op value`` with Prometheus semantics.

    Regular expressions are fully anchored (``=~"a|b"`` matches ``a`` or ``b`` only), and
    a missing label has the value ``""`` (so ``{x=""}`` matches series without ``x``).
    """

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                pattern = re.compile(f"(?s:{go_regex(self.value)})\\Z")
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", pattern)
        elif self.op not in ("=", "!="):
            raise ValueError(f"unknown matcher operator {self.op!r}")

    def matches(self, value: str) -> bool:
        """Whether a label value (``""`` when the label is absent) satisfies the matcher."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit

    @property
    def matches_empty(self) -> bool:
        """Whether the matcher accepts series that lack the label."""
        return self.matches("")


def label_value(labels: Labels, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""
