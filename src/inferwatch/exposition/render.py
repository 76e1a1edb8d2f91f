"""Choosing the exposition format from the ``Accept`` header and writing it."""

from __future__ import annotations

from typing import Protocol

from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as _OM_CONTENT_TYPE

CONTENT_TYPE_TEXT = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_OPENMETRICS = _OM_CONTENT_TYPE


class MetricSource(Protocol):
    def collect(self) -> object: ...


def render(source: MetricSource, accept: str | None = None) -> tuple[bytes, str]:
    """``(body, content type)`` of ``source``'s metrics in the format ``accept`` asks for.

    OpenMetrics when the header accepts ``application/openmetrics-text``, the
    Prometheus text format 0.0.4 otherwise.
    """
    encoder, content_type = choose_encoder(accept or "")
    body: bytes = encoder(source)  # type: ignore[arg-type]
    return body, content_type


__all__ = ["CONTENT_TYPE_OPENMETRICS", "CONTENT_TYPE_TEXT", "Metric", "render"]
