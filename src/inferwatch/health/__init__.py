"""Health of a model service: liveness, readiness with a canary, synthetic probes.

- :class:`Readiness` answers ``/readyz``: the model is loaded, a GPU is present when the
  model needs one, and a canary inference on known samples passes a validator within a
  latency budget. :meth:`inferwatch.Monitor.readiness` configures it and
  :meth:`inferwatch.Monitor.instrument` mounts ``/healthz`` and ``/readyz``.
- :class:`Probe` and :class:`ProbeRunner` probe remote model endpoints like the
  blackbox exporter does, with checks on the JSON they answer; :func:`load_probe_file`
  reads probes from YAML.
- Guards (:mod:`inferwatch.health.guard`) act on live signals: :class:`Shed` rejects a
  fraction of new requests, :class:`CircuitBreaker` opens on errors, and
  :class:`AdaptiveBatchSize` advises a dynamic-batching loop; :meth:`inferwatch.Monitor.guard`
  adds one, :func:`load_guard_file` reads them from YAML.
"""

from inferwatch.health.checks import CheckResult, Readiness, ReadinessReport, liveness_body
from inferwatch.health.guard import (
    AdaptiveBatchSize,
    CircuitBreaker,
    Condition,
    Guard,
    GuardSet,
    Shed,
)
from inferwatch.health.guard_file import load_guard_file, parse_guard_file
from inferwatch.health.probe import (
    JSONCheck,
    PathExists,
    Probe,
    ProbeResult,
    ProbeRunner,
    ValueInRange,
    ValueMatches,
    evaluate_response,
    load_probe_file,
    parse_json_path,
    parse_probe_file,
)

__all__ = [
    "AdaptiveBatchSize",
    "CheckResult",
    "CircuitBreaker",
    "Condition",
    "Guard",
    "GuardSet",
    "JSONCheck",
    "PathExists",
    "Probe",
    "ProbeResult",
    "ProbeRunner",
    "Readiness",
    "ReadinessReport",
    "Shed",
    "ValueInRange",
    "ValueMatches",
    "evaluate_response",
    "liveness_body",
    "load_guard_file",
    "load_probe_file",
    "parse_guard_file",
    "parse_json_path",
    "parse_probe_file",
]
