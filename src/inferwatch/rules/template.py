"""Prometheus's template functions, and the expansion of rule labels and annotations.

An alerting rule's labels and annotations are Go templates. Prometheus runs each with
the alert's labels and value, after a header that declares ``$labels``,
``$externalLabels``, ``$externalURL`` and ``$value``::

    expand("{{ $labels.job }} is at {{ $value | humanizePercentage }}",
           labels={"job": "api"}, value=0.25, name="__alert_HighErrors")
    # -> "api is at 25%"

The functions (``humanize``, ``humanizeDuration``, ``match``, ``query``, ...) behave
as in ``prometheus/template/template.go``, messages included.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, wraps
from typing import Any, ParamSpec
from urllib.parse import quote_plus, urlsplit

from inferwatch._duration import duration_ms
from inferwatch._errors import TemplateError
from inferwatch.gotemplate import Template, go_sprintf, parse
from inferwatch.gotemplate.gofmt import go_str, type_name
from inferwatch.gotemplate.gotime import go_time_format
from inferwatch.gotemplate.lexer import go_quote
from inferwatch.tsdb.labels import go_regex

_P = ParamSpec("_P")

QueryFunc = Callable[[str, float], list[tuple[dict[str, str], float]]]
"""Runs a PromQL instant query at a time (Unix seconds): ``[(labels, value), ...]``."""

HEADER = (
    "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}"
    "{{$externalURL := .ExternalURL}}{{$value := .Value}}"
)
"""What Prometheus puts before every rule label and annotation template."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of a ``query`` result, named as Prometheus's templates see it."""

    Labels: dict[str, str]
    Value: float


def to_float(value: Any) -> float:
    """Prometheus's ``ConvertToFloat``: numbers, and strings that parse as Go floats."""
    if isinstance(value, bool):
        raise ValueError("can't convert bool to float")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return parse_go_float(value)
    raise ValueError(f"can't convert {type_name(value)} to float")


_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan"
    r"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+)",
    re.IGNORECASE,
)


def parse_go_float(text: str) -> float:
    """Go's ``strconv.ParseFloat(text, 64)``, with its error message."""
    if not _GO_FLOAT.fullmatch(text):
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    if "x" in text.lower() and "n" not in text.lower():
        return float.fromhex(text)
    value = float(text)
    if math.isinf(value) and "inf" not in text.lower():
        raise ValueError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


def _g4(value: float, suffix: str = "") -> str:
    return go_sprintf("%.4g", value) + suffix


def _divided(v: float, base: int, prefixes: tuple[str, ...]) -> str:
    """``v`` divided by ``base`` while it is that large, with the last prefix used."""
    prefix = ""
    for p in prefixes:
        if abs(v) < base:
            break
        prefix = p
        v /= base
    return _g4(v, prefix)


def humanize(value: Any) -> str:
    """``1234567`` -> ``1.235M``, ``0.012`` -> ``12m``: SI prefixes, 4 significant digits."""
    v = to_float(value)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    if abs(v) >= 1:
        return _divided(v, 1000, ("k", "M", "G", "T", "P", "E", "Z", "Y"))
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v, prefix)


def humanize1024(value: Any) -> str:
    """``1048576`` -> ``1Mi``: binary prefixes, 4 significant digits."""
    v = to_float(value)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    return _divided(v, 1024, ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"))


def humanize_duration(value: Any) -> str:
    """Seconds as ``1d 2h 3m 4s``, ``1.5s`` or ``500ms``."""
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v, "s")
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        whole = int(v)
        seconds, minutes = whole % 60, (whole // 60) % 60
        hours, days = (whole // 3600) % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = p
        v *= 1000
    return _g4(v, prefix + "s")


def humanize_percentage(value: Any) -> str:
    """``0.1234`` -> ``12.34%``."""
    return go_sprintf("%.4g%%", to_float(value) * 100)


class GoTime:
    """A UTC instant with millisecond precision, as Prometheus's ``toTime`` returns.

    Prints as Go's ``time.Time`` does; ``Format``, ``Unix`` and ``UnixMilli`` work as
    Go's methods, so ``{{ (1435065584 | toTime).Format "2006-01-02" }}`` works.
    """

    __slots__ = ("_ms",)

    def __init__(self, unix_ms: int) -> None:
        self._ms = unix_ms

    def _datetime(self) -> dt.datetime:
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=self._ms)

    def Unix(self) -> int:
        """Seconds since the epoch."""
        return self._ms // 1000

    def UnixMilli(self) -> int:
        """Milliseconds since the epoch."""
        return self._ms

    def UTC(self) -> GoTime:
        """This instant (already UTC)."""
        return self

    def Format(self, layout: str) -> str:
        """The time written with a Go layout (``2006-01-02 15:04:05``)."""
        return go_time_format(self._datetime(), layout)

    def String(self) -> str:
        """``2006-01-02 15:04:05.999999999 -0700 MST``."""
        return str(self)

    def __str__(self) -> str:
        return go_time_format(self._datetime(), "2006-01-02 15:04:05.999999999 -0700 MST")

    def __repr__(self) -> str:
        return f"GoTime({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoTime) and other._ms == self._ms

    def __hash__(self) -> int:
        return hash(self._ms)


_MAX_INT64 = float(2**63 - 1)


def to_time(value: Any) -> GoTime:
    """Unix seconds (a number or numeric string) as a :class:`GoTime`."""
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        raise ValueError("value is NaN or Inf")
    nanos = v * 1e9
    if nanos > _MAX_INT64 or nanos < -_MAX_INT64:
        raise ValueError(
            f"{go_str(v)} cannot be represented as a nanoseconds timestamp since it overflows int64"
        )
    whole = int(nanos)
    millis = abs(whole) // 1_000_000
    return GoTime(millis if whole >= 0 else -millis)


def humanize_timestamp(value: Any) -> str:
    """Unix seconds as ``2015-06-23 13:19:44.128 +0000 UTC``."""
    v = to_float(value)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return str(to_time(v))


def title(text: str) -> str:
    """The first letter of every word in upper case; the rest left alone."""
    out = []
    previous = " "
    for ch in text:
        out.append(ch.upper() if not (previous.isalnum() or previous == "_") else ch)
        previous = ch
    return "".join(out)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(go_regex(pattern))
    except re.error as error:
        raise ValueError(f"error parsing regexp: {error}: `{pattern}`") from None


def match(pattern: str, text: str) -> bool:
    """Whether the RE2 ``pattern`` matches anywhere in ``text``."""
    return _regex(pattern).search(text) is not None


_REPL = re.compile(r"\$(?:\$|\{(\w+)\}|(\w+))")


def re_replace_all(pattern: str, replacement: str, text: str) -> str:
    """Go's ``Regexp.ReplaceAllString``: ``$1``, ``${1}``, ``${name}`` in ``replacement``."""
    regex = _regex(pattern)

    def expand(m: re.Match[str]) -> str:
        def group(r: re.Match[str]) -> str:
            if r.group() == "$$":
                return "$"
            name = r.group(1) or r.group(2)
            try:
                found = m.group(int(name)) if name.isdigit() else m.group(name)
            except IndexError:
                return ""
            return found or ""

        return _REPL.sub(group, replacement)

    return regex.sub(expand, text)


def _split_host_port(hostport: str) -> tuple[str, str] | None:
    """Go's ``net.SplitHostPort``; None where Go returns an error."""
    i = hostport.rfind(":")
    if i < 0:
        return None
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0 or end + 1 != i:
            return None
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            return None
    if "[" in hostport[j:] or "]" in hostport[k:]:
        return None
    return host, hostport[i + 1 :]


def strip_port(hostport: str) -> str:
    """``host:port`` -> ``host`` (brackets removed from IPv6); anything else unchanged."""
    split = _split_host_port(hostport)
    return hostport if split is None else split[0]


def strip_domain(hostport: str) -> str:
    """``foo.example.com:80`` -> ``foo:80``; IP addresses unchanged."""
    split = _split_host_port(hostport)
    host, port = (hostport, "") if split is None else split
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return hostport
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def parse_duration(text: str) -> float:
    """A Prometheus duration (``1h30m``) in seconds."""
    millis = duration_ms(text)
    if millis is None:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    return millis / 1000


def graph_link(expr: str) -> str:
    """The Prometheus UI's graph link for ``expr``."""
    return f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=0"


def table_link(expr: str) -> str:
    """The Prometheus UI's table link for ``expr``."""
    return f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


def first(samples: list[Sample]) -> Sample:
    """The first sample of a query result."""
    if len(samples) > 0:
        return samples[0]
    raise ValueError("first() called on vector with no elements")


def label(name: str, sample: Sample) -> str:
    """A label's value on a sample ("" when missing)."""
    return sample.Labels.get(name, "")


def value(sample: Sample) -> float:
    """A sample's value."""
    return sample.Value


def strvalue(sample: Sample) -> str:
    """A sample's ``__value__`` label."""
    return sample.Labels.get("__value__", "")


def args(*values: Any) -> dict[str, Any]:
    """Its arguments as ``{"arg0": ..., "arg1": ...}``, to pass several to a template."""
    return {f"arg{i}": v for i, v in enumerate(values)}


def sort_by_label(name: str, samples: list[Sample]) -> list[Sample]:
    """The samples sorted (stably) by one label's value."""
    return sorted(samples, key=lambda s: s.Labels.get(name, ""))


def safe_html(text: str) -> str:
    """Marks text as safe HTML; in text templates it is the text itself."""
    return text


def _no_query(query: str) -> list[Sample]:
    raise ValueError("no query function is configured for this template")


RULE_FUNCS: Mapping[str, Callable[..., Any]] = {
    "humanize": humanize,
    "humanize1024": humanize1024,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
    "humanizeTimestamp": humanize_timestamp,
    "toTime": to_time,
    "title": title,
    "toUpper": str.upper,
    "toLower": str.lower,
    "match": match,
    "reReplaceAll": re_replace_all,
    "safeHtml": safe_html,
    "label": label,
    "value": value,
    "first": first,
    "strvalue": strvalue,
    "args": args,
    "graphLink": graph_link,
    "tableLink": table_link,
    "sortByLabel": sort_by_label,
    "stripPort": strip_port,
    "stripDomain": strip_domain,
    "parseDuration": parse_duration,
    "externalURL": lambda: "",
    "pathPrefix": lambda: "",
}
"""Prometheus's template functions; ``externalURL``, ``pathPrefix`` and ``query`` get
their real values from :func:`expand`."""

_PARSE_FUNCS: Mapping[str, Callable[..., Any]] = {**RULE_FUNCS, "query": _no_query}


@lru_cache(maxsize=4096)
def _parsed(text: str, name: str) -> Template:
    return parse(HEADER + text, name=name, funcs=_PARSE_FUNCS)


def check(text: str, *, name: str = "") -> None:
    """Parse ``text`` as ``promtool check rules`` does; raise :class:`TemplateError`
    (``template: __alert_X:1: function "foo" not defined``) if it does not parse."""
    _parsed(text, name)


def _query_func(query: QueryFunc | None, timestamp_s: float) -> Callable[[str], list[Sample]]:
    if query is None:
        return _no_query

    def run(expr: str) -> list[Sample]:
        return [Sample(dict(labels), float(v)) for labels, v in query(expr, timestamp_s)]

    return run


def _reworded(error: TemplateError, doing: str, name: str) -> TemplateError:
    """``error`` prefixed as Prometheus words it: ``error {doing} template NAME: ...``."""
    return TemplateError(
        f"error {doing} template {name}: {error}",
        name=name,
        line=error.line,
        column=error.column,
    )


def expand(
    text: str,
    *,
    labels: Mapping[str, str],
    value: float,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    name: str = "",
    timestamp_s: float = 0.0,
    query: QueryFunc | None = None,
) -> str:
    """Expand a rule's label or annotation template as Prometheus does.

    Raises :class:`TemplateError` worded as Prometheus's (``error executing template
    NAME: template: NAME:1:123: executing "NAME" at <...>: ...``). Parsed templates are
    cached, so expanding the same text again costs only its execution.
    """
    try:
        template = _parsed(text, name)
    except TemplateError as error:
        raise _reworded(error, "parsing", name) from None
    data = {
        "Labels": labels,
        "ExternalLabels": external_labels if external_labels is not None else {},
        "ExternalURL": external_url,
        "Value": value,
    }
    path = urlsplit(external_url).path
    funcs: dict[str, Callable[..., Any]] = {
        "externalURL": lambda: external_url,
        "pathPrefix": lambda: path,
        "query": _query_func(query, timestamp_s),
    }
    try:
        return template.execute(data, funcs=funcs)
    except TemplateError as error:
        raise _reworded(error, "executing", name) from None


def _or_error_text(expand: Callable[_P, str]) -> Callable[_P, str]:
    # One signature to keep in step: ``expand_or_error`` takes exactly ``expand``'s
    # arguments (``inspect.signature`` follows ``__wrapped__`` to it).
    @wraps(expand, assigned=("__module__", "__annotations__"))
    def expand_or_error(*args: _P.args, **kwargs: _P.kwargs) -> str:
        """Like :func:`expand`, but a failure gives the text Prometheus stores in its
        place: ``<error expanding template: error executing template NAME: ...>``."""
        try:
            return expand(*args, **kwargs)
        except TemplateError as error:
            return f"<error expanding template: {error}>"

    return expand_or_error


expand_or_error = _or_error_text(expand)
