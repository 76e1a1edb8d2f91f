"""inferwatch: monitoring for deployed ML model inference services.

::

    from inferwatch import Monitor

    monitor = Monitor(model="digits", version="1")

    @monitor.track
    def predict(x): ...
"""

from inferwatch._errors import (
    AlertingConfigError,
    ConfigError,
    DuplicateMetricError,
    InferwatchError,
    MetricError,
    NotifyError,
    QueryError,
    Rejected,
    RuleFileError,
    ScrapeError,
    TemplateError,
)
from inferwatch._version import __version__
from inferwatch.sdk.family import BucketCounts, FamilySnapshot
from inferwatch.sdk.metrics import Counter, Gauge, Histogram
from inferwatch.sdk.monitor import Monitor
from inferwatch.sdk.registry import Registry, default_registry
from inferwatch.sdk.sketch import QuantileSketch
from inferwatch.sdk.track import Inference

__all__ = [
    "AlertingConfigError",
    "BucketCounts",
    "ConfigError",
    "Counter",
    "DuplicateMetricError",
    "FamilySnapshot",
    "Gauge",
    "Histogram",
    "Inference",
    "InferwatchError",
    "MetricError",
    "Monitor",
    "NotifyError",
    "QuantileSketch",
    "QueryError",
    "Registry",
    "Rejected",
    "RuleFileError",
    "ScrapeError",
    "TemplateError",
    "__version__",
    "default_registry",
]
