"""Health of a model service: liveness, readiness with a canary, synthetic probes.

- :class:`Readiness` answers ``/readyz``: the model is loaded, a GPU is present when the
  model needs one, and a canary inference on known samples passes a validator within a
  latency budget. :meth:`inferwatch.Monitor.readiness` configures it and
  :meth:`inferwatch.Monitor.instrument` mounts ``/healthz`` and ``/readyz``.
- :class:`Probe` and :class:`ProbeRunner` probe remote model endpoints like the
  blackbox exporter does, with checks on the JSON they answer; :func:`load_probe_file`
  reads probes from YAML.
"""

from inferwatch.health.checks import CheckResult, Readiness, ReadinessReport, liveness_body
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
    "CheckResult",
    "JSONCheck",
    "PathExists",
    "Probe",
    "ProbeResult",
    "ProbeRunner",
    "Readiness",
    "ReadinessReport",
    "ValueInRange",
    "ValueMatches",
    "evaluate_response",
    "liveness_body",
    "load_probe_file",
    "parse_json_path",
    "parse_probe_file",
]
