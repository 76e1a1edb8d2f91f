"""The exported ``prometheus.yml``: the same scrape jobs and rules, plus inferwatch's series.

A real Prometheus started with it scrapes the same services as the inferwatch server,
evaluates the same rule files (copied beside it, byte for byte), pulls what only the
inferwatch server computes (baseline bounds, replica advice, cost, probes) through its
``/federate`` endpoint, and sends alerts both to a real Alertmanager and to the
inferwatch server, whose Alertmanager API delivers the DingTalk, WeCom and Feishu
receivers a real Alertmanager lacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inferwatch._errors import ConfigError

#: The job that federates inferwatch-computed series from the inferwatch server.
FEDERATE_JOB = "inferwatch-federate"

#: The series the federate job pulls: baselines, scaling advice, cost, probes.
FEDERATE_MATCH = (
    '{__name__=~".+:(upper|lower|anomaly_score)"}',
    '{__name__=~"inferwatch_recommended_replicas.*"}',
    '{__name__=~"inferwatch_model_cost.*"}',
    '{__name__=~"probe_.*"}',
)


def prometheus_duration(seconds: float) -> str:
    """``seconds`` in Prometheus's duration syntax: ``15s``, ``2m``, ``7d``, ``1500ms``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ConfigError(f"a duration must be positive (got {seconds!r} s)", value=seconds)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def prometheus_config(
    *,
    global_: Mapping[str, Any],
    scrape_configs: Sequence[Mapping[str, Any]],
    rule_files: Sequence[str],
    inferwatch_address: str,
    alertmanager_address: str,
    inferwatch_auth: Mapping[str, Any] | None = None,
    inferwatch_scheme: str = "http",
    extra: Mapping[str, Any] | None = None,
    source: str = "<config>",
) -> dict[str, Any]:
    """The mapping of a ``prometheus.yml`` (see the module docstring).

    ``global_`` and ``scrape_configs``: the sections as the user wrote them.
    ``rule_files``: paths as the exported file names them (relative to it).
    ``inferwatch_address`` / ``alertmanager_address``: ``host:port`` of the inferwatch
    server (or the demo, which embeds one) and of the real Alertmanager.
    ``inferwatch_auth``: Prometheus HTTP client settings for the inferwatch server
    (``{"authorization": {...}}`` or ``{"basic_auth": {...}}``), when it has auth.
    ``extra``: other sections of the user's file (``remote_write``, ``storage``, ...),
    passed through unchanged.
    """
    jobs = [dict(job) for job in scrape_configs]
    for i, job in enumerate(jobs):
        if job.get("job_name") == FEDERATE_JOB:
            raise ConfigError(
                f"{source}: scrape_configs[{i}].job_name: {FEDERATE_JOB!r} is reserved by "
                "inferwatch export for the job that federates from the inferwatch server",
                field=f"scrape_configs[{i}].job_name",
                value=FEDERATE_JOB,
            )
    auth = dict(inferwatch_auth or {})
    federate: dict[str, Any] = {
        "job_name": FEDERATE_JOB,
        "honor_labels": True,
        "metrics_path": "/federate",
        "params": {"match[]": list(FEDERATE_MATCH)},
        "scheme": inferwatch_scheme,
        **auth,
        "static_configs": [{"targets": [inferwatch_address]}],
    }
    inferwatch_am: dict[str, Any] = {
        "scheme": inferwatch_scheme,
        **auth,
        "static_configs": [{"targets": [inferwatch_address]}],
    }
    config: dict[str, Any] = {"global": dict(global_)}
    config["rule_files"] = list(rule_files)
    config["alerting"] = {
        "alertmanagers": [
            {"static_configs": [{"targets": [alertmanager_address]}]},
            inferwatch_am,
        ]
    }
    config["scrape_configs"] = [*jobs, federate]
    for key, value in (extra or {}).items():
        if key not in config:
            config[key] = value
    return config


def prometheus_auth(
    bearer_token: str | None, basic_auth: tuple[str, str] | None
) -> dict[str, Any] | None:
    """Prometheus HTTP client settings that pass the inferwatch server's auth."""
    if basic_auth is not None:
        return {"basic_auth": {"username": basic_auth[0], "password": basic_auth[1]}}
    if bearer_token is not None:
        return {"authorization": {"type": "Bearer", "credentials": bearer_token}}
    return None
