"""Collection: the in-process registry and remote ``/metrics`` targets, into the store.

- :class:`ScrapeManager` runs every target on its own schedule and collects the
  in-process :class:`~inferwatch.Registry` without HTTP.
- :func:`parse_scrape_configs` reads Prometheus's ``scrape_configs`` (a subset: static
  targets, intervals, timeouts, path, scheme, params, basic auth, bearer tokens,
  ``honor_labels`` and ``metric_relabel_configs`` with keep, drop, replace, labeldrop,
  labelkeep), so a model server that is not Python (Triton, vLLM) is monitored too.
"""

from __future__ import annotations

from inferwatch.scrape.config import (
    Authorization,
    BasicAuth,
    RelabelConfig,
    ScrapeConfig,
    StaticConfig,
    parse_duration,
    parse_scrape_configs,
)
from inferwatch.scrape.manager import ScrapeManager
from inferwatch.scrape.parse import ScrapeError, parse_exposition
from inferwatch.scrape.relabel import relabel
from inferwatch.scrape.target import ScrapeResult, Target, TargetStatus, scrape_once

__all__ = [
    "Authorization",
    "BasicAuth",
    "RelabelConfig",
    "ScrapeConfig",
    "ScrapeError",
    "ScrapeManager",
    "ScrapeResult",
    "StaticConfig",
    "Target",
    "TargetStatus",
    "parse_duration",
    "parse_exposition",
    "parse_scrape_configs",
    "relabel",
    "scrape_once",
]
