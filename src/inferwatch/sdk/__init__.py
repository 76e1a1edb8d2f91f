"""The instrumentation SDK: the hot path of inferwatch."""

from inferwatch.sdk.monitor import Monitor
from inferwatch.sdk.registry import Registry, default_registry
from inferwatch.sdk.sketch import QuantileSketch
from inferwatch.sdk.track import Inference

__all__ = ["Inference", "Monitor", "QuantileSketch", "Registry", "default_registry"]
