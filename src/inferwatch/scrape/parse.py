"""Parsing a scraped exposition into samples, with prometheus_client's parsers.

The Prometheus text format (0.0.4) and OpenMetrics 1.0 are read; the ``Content-Type``
of the response picks the parser, as in Prometheus. The whole body is parsed before
anything is returned, so a malformed exposition raises :class:`ScrapeError` and no
sample of it reaches the store.

Sample names are kept as exposed (``x_total``, ``x_bucket``, ``vllm:num_requests_running``).
The ``_created`` samples of counters, histograms and summaries are dropped, as Prometheus
does by default; a ``_created`` line in the text format, which is a separate gauge family
there, is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

from inferwatch._errors import ScrapeError
from inferwatch.tsdb.labels import METRIC_NAME, Labels, make_labels

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "ParsedSample",
    "ScrapeError",
    "is_openmetrics",
    "parse_exposition",
    "samples_from_families",
]

#: ``(labels including __name__, value, timestamp in ms or None when not exposed)``.
ParsedSample: TypeAlias = tuple[Labels, float, int | None]

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"
_WITH_CREATED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})


def is_openmetrics(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names the OpenMetrics text format."""
    if not content_type:
        return False
    return content_type.split(";", 1)[0].strip().lower() == OPENMETRICS_CONTENT_TYPE


def parse_exposition(body: bytes | str, content_type: str | None = None) -> list[ParsedSample]:
    """Every sample of an exposition, or :class:`ScrapeError` if any part is malformed.

    ``content_type`` is the response's ``Content-Type``: ``application/openmetrics-text``
    selects the OpenMetrics parser (which requires the final ``# EOF``); anything else,
    or nothing, the Prometheus text format.
    """
    openmetrics = is_openmetrics(content_type)
    kind = "OpenMetrics" if openmetrics else "Prometheus text format"
    if isinstance(body, bytes):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ScrapeError(f"exposition is not valid UTF-8: {exc}") from None
    else:
        text = body
    if openmetrics:
        from prometheus_client.openmetrics.parser import (
            text_string_to_metric_families as parse_openmetrics,
        )

        families = parse_openmetrics(text)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client.parser import text_string_to_metric_families as parse_text

        families = parse_text(text)
    # Counters typed without ``_total`` get it appended by prometheus_client's text
    # parser (Triton's ``nv_inference_request_success``); Prometheus stores them as
    # exposed, so the names are restored.
    renamed = set() if openmetrics else _counters_without_total(text)
    try:
        return _samples(families, renamed)
    except Exception as exc:  # the parsers raise ValueError, and worse on odd input
        raise ScrapeError(f"invalid {kind} exposition: {exc}") from None


def samples_from_families(families: Iterable[Metric]) -> list[ParsedSample]:
    """The samples of prometheus_client metric families (parsed or collected).

    Also used for the in-process registry, whose families come from ``collect()``.
    Native-histogram samples, which have no float value, are skipped.
    """
    return _samples(families, set())


def _samples(families: Iterable[Metric], counters_without_total: set[str]) -> list[ParsedSample]:
    out: list[ParsedSample] = []
    for family in families:
        created = family.name + "_created" if family.type in _WITH_CREATED else None
        restore = family.type == "counter" and family.name in counters_without_total
        for sample in family.samples:
            if sample.name == created or getattr(sample, "native_histogram", None) is not None:
                continue
            name = sample.name
            if restore and name == family.name + "_total":
                name = family.name
            pairs = [(k, v) for k, v in sample.labels.items() if k != METRIC_NAME]
            pairs.append((METRIC_NAME, name))
            out.append((make_labels(pairs), float(sample.value), _timestamp_ms(sample.timestamp)))
    return out


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
