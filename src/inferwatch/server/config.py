"""The server's configuration: a Prometheus configuration file, read as Prometheus does.

::

    global:
      scrape_interval: 1s          # inferwatch's default; Prometheus's is 1m
      evaluation_interval: 1s      # inferwatch's default; Prometheus's is 1m
      external_labels: {cluster: gpu-a}
    rule_files: ["rules/*.yml"]
    alerting:                      # optional: send alerts to a real Alertmanager too
      alertmanagers:
        - static_configs: [{targets: ["alertmanager:9093"]}]
    scrape_configs:
      - job_name: triton
        static_configs: [{targets: ["triton:8002"]}]

The same file works with a real Prometheus. Sections of Prometheus's format that
inferwatch does not use (``remote_write``, ``storage``, ...) are reported once in the
log and ignored, so a real Prometheus's file loads; a key that Prometheus does not know
either is an error naming it. ``rule_files`` globs are relative to the file.

inferwatch's defaults differ from Prometheus's where one process watching a few model
servers can afford it and alerts get faster for it: targets are scraped and rules
evaluated every second unless the file says otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from inferwatch._errors import ConfigError
from inferwatch.scrape.config import ScrapeConfig, parse_duration, parse_scrape_configs

log = logging.getLogger("inferwatch.server")

#: inferwatch's default scrape and evaluation interval (Prometheus: 60 s).
DEFAULT_INTERVAL_S = 1.0
#: inferwatch's default scrape timeout (Prometheus: 10 s; never more than the interval).
DEFAULT_SCRAPE_TIMEOUT_S = 10.0

_TOP_LEVEL = ("global", "rule_files", "scrape_configs", "alerting")
#: Prometheus sections inferwatch reads past (logged, not an error).
_IGNORED = (
    "remote_write",
    "remote_read",
    "storage",
    "tracing",
    "scrape_config_files",
    "otlp",
    "runtime",
)
_GLOBAL = (
    "scrape_interval",
    "scrape_timeout",
    "evaluation_interval",
    "external_labels",
    "rule_query_offset",
    "query_log_file",
    "scrape_protocols",
    "body_size_limit",
    "sample_limit",
    "label_limit",
    "label_name_length_limit",
    "label_value_length_limit",
    "target_limit",
    "keep_dropped_targets",
)


@dataclass(frozen=True, slots=True)
class AlertmanagerTarget:
    """A real Alertmanager to send alerts to: ``url`` is its base (``http://am:9093``)."""

    url: str
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What the server runs: scrape jobs, rule files, intervals, external labels."""

    scrape_interval_s: float = DEFAULT_INTERVAL_S
    scrape_timeout_s: float = DEFAULT_SCRAPE_TIMEOUT_S
    evaluation_interval_s: float = DEFAULT_INTERVAL_S
    rule_query_offset_s: float = 0.0
    external_labels: Mapping[str, str] = field(default_factory=dict)
    rule_files: tuple[str, ...] = ()
    scrape_configs: tuple[ScrapeConfig, ...] = ()
    alertmanagers: tuple[AlertmanagerTarget, ...] = ()
    file: str = ""


def load_server_config(path: str | Path) -> ServerConfig:
    """Read a Prometheus configuration file; :class:`ConfigError` names file and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}", field=str(path)) from None
    return parse_server_config(text, source=str(path), base=path.parent)


def parse_server_config(
    text: str, *, source: str = "<config>", base: Path | None = None
) -> ServerConfig:
    """Parse the text of a Prometheus configuration file (see the module docstring).

    Errors read ``<source>:<line>: <field>: <problem>``.
    """
    try:
        return _parse(text, source, base)
    except ConfigError as exc:
        raise _with_line(exc, text, source) from None


def _with_line(exc: ConfigError, text: str, source: str) -> ConfigError:
    """``exc`` with the line of its field after the file name, when it has a field."""
    import yaml

    prefix = f"{source}: "
    message = str(exc)
    if not exc.field or not message.startswith(prefix):
        return exc
    from inferwatch.config import node_line, parse_field_path

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:  # pragma: no cover - it parsed a moment ago
        return exc
    line = node_line(root, parse_field_path(exc.field))
    return ConfigError(
        f"{source}:{line}: {message[len(prefix) :]}", field=exc.field, value=exc.value
    )


def _parse(text: str, source: str, base: Path | None) -> ServerConfig:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the file must be a mapping of sections", value=data)
    for key in data:
        if key in _IGNORED:
            log.warning("%s: section %r is not used by inferwatch; ignored", source, key)
        elif key not in _TOP_LEVEL:
            raise _error(source, str(key), f"unknown section (known: {', '.join(_TOP_LEVEL)})")
    glob = _mapping(data.get("global"), "global", source)
    for key in glob:
        if key not in _GLOBAL:
            raise _error(source, f"global.{key}", "unknown field")
    timeout = _duration(glob, "scrape_timeout", 0.0, source)
    # A file that sets only a timeout was written for Prometheus's 1 m interval: the
    # default interval then grows to the timeout rather than refusing the file.
    interval = _duration(glob, "scrape_interval", max(DEFAULT_INTERVAL_S, timeout), source)
    timeout = timeout or min(DEFAULT_SCRAPE_TIMEOUT_S, interval)
    if timeout > interval:
        raise _error(
            source, "global.scrape_timeout", f"{timeout:g}s is longer than scrape_interval"
        )
    evaluation = _duration(glob, "evaluation_interval", DEFAULT_INTERVAL_S, source)
    offset = _duration(glob, "rule_query_offset", 0.0, source, allow_zero=True)
    external = _mapping(glob.get("external_labels"), "global.external_labels", source)
    external_labels = {str(k): str(v) for k, v in external.items()}
    rule_files = _rule_files(data.get("rule_files"), source, base)
    scrape = parse_scrape_configs(
        data.get("scrape_configs"),
        source=source,
        default_interval=interval,
        default_timeout=timeout,
    )
    alerting = _mapping(data.get("alerting"), "alerting", source)
    return ServerConfig(
        scrape_interval_s=interval,
        scrape_timeout_s=timeout,
        evaluation_interval_s=evaluation,
        rule_query_offset_s=offset,
        external_labels=external_labels,
        rule_files=rule_files,
        scrape_configs=tuple(scrape),
        alertmanagers=_alertmanagers(alerting, source),
        file=source,
    )


def _error(source: str, path: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: {path}: {problem}", field=path)


def _mapping(value: object, path: str, source: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(source, path, f"must be a mapping (got {value!r})")
    return value


def _duration(
    data: Mapping[str, object],
    key: str,
    default: float,
    source: str,
    *,
    allow_zero: bool = False,
    parent: str = "global",
) -> float:
    if key not in data:
        return default
    value = data[key]
    try:
        seconds = parse_duration(value)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise _error(source, f"{parent}.{key}", str(exc)) from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise _error(source, f"{parent}.{key}", f"must be a positive duration (got {value!r})")
    return seconds


def _rule_files(value: object, source: str, base: Path | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _error(source, "rule_files", f"must be a list of file names or globs ({value!r})")
    root = base if base is not None else Path.cwd()
    return tuple(str(p if Path(p).is_absolute() else root / p) for p in value)


def _alertmanagers(alerting: Mapping[str, object], source: str) -> tuple[AlertmanagerTarget, ...]:
    for key in alerting:
        if key not in ("alertmanagers", "alert_relabel_configs"):
            raise _error(source, f"alerting.{key}", "unknown field")
    if alerting.get("alert_relabel_configs"):
        raise _error(source, "alerting.alert_relabel_configs", "is not supported by inferwatch yet")
    items = alerting.get("alertmanagers") or []
    if not isinstance(items, list):
        raise _error(source, "alerting.alertmanagers", "must be a list")
    targets: list[AlertmanagerTarget] = []
    allowed = ("static_configs", "scheme", "path_prefix", "timeout", "api_version")
    for i, item in enumerate(items):
        path = f"alerting.alertmanagers[{i}]"
        am = _mapping(item, path, source)
        for key in am:
            if key not in allowed:
                raise _error(source, f"{path}.{key}", f"unknown or unsupported field ({allowed})")
        if am.get("api_version", "v2") != "v2":
            raise _error(source, f"{path}.api_version", "only v2 is supported (as Prometheus 2.42)")
        scheme = str(am.get("scheme", "http"))
        prefix = str(am.get("path_prefix", "")).rstrip("/")
        timeout = _duration(am, "timeout", 10.0, source, parent=path)
        statics = am.get("static_configs") or []
        if not isinstance(statics, list):
            raise _error(source, f"{path}.static_configs", "must be a list")
        for j, static in enumerate(statics):
            entry = _mapping(static, f"{path}.static_configs[{j}]", source)
            hosts = entry.get("targets") or []
            if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
                raise _error(source, f"{path}.static_configs[{j}].targets", "must be a list")
            targets += [AlertmanagerTarget(f"{scheme}://{h}{prefix}", timeout) for h in hosts]
    return tuple(targets)


__all__ = [
    "DEFAULT_INTERVAL_S",
    "AlertmanagerTarget",
    "ServerConfig",
    "load_server_config",
    "parse_server_config",
]
