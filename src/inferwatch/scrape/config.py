"""Scrape configuration: the subset of Prometheus's ``scrape_configs`` that inferwatch reads.

::

    scrape_configs:
      - job_name: triton
        scrape_interval: 15s
        static_configs:
          - targets: ["triton:8002"]
            labels: {cluster: gpu-a}
        metric_relabel_configs:
          - source_labels: [__name__]
            regex: nv_energy_.*
            action: drop

:func:`parse_scrape_configs` turns the parsed YAML (a list of mappings) into frozen
:class:`ScrapeConfig` values, with Prometheus's field names and defaults. Anything it
does not understand is an error that names the field path and the offending value, so a
typo never silently scrapes the wrong thing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from inferwatch._duration import duration_ms
from inferwatch._errors import ConfigError
from inferwatch.scrape.relabel import RelabelAction, RelabelConfig

__all__ = [
    "Authorization",
    "BasicAuth",
    "RelabelAction",
    "RelabelConfig",
    "ScrapeConfig",
    "StaticConfig",
    "parse_duration",
    "parse_scrape_configs",
]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration string: ``15s``, ``1m30s``, ``500ms``, ``1h``, ``0``.

    Units are ``y`` (365 days), ``w``, ``d``, ``h``, ``m``, ``s`` and ``ms``, integers
    only, largest unit first, each at most once. Raises :class:`ConfigError` otherwise.
    """
    if not isinstance(text, str):
        raise ConfigError(
            f"expected a duration string such as '15s' or '1m30s', got {text!r}", value=text
        )
    ms = duration_ms(text)
    if ms is None:
        raise ConfigError(
            f"invalid duration {text!r}: use Prometheus units, e.g. '15s', '1m30s', '500ms'",
            value=text,
        )
    return ms / 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicAuth:
    """HTTP basic authentication; ``password_file`` is read at every scrape."""

    username: str = ""
    password: str = ""
    password_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorization:
    """An ``Authorization: <type> <credentials>`` header (``bearer_token`` maps here).

    ``credentials_file`` is read at every scrape, so a rotated token is picked up.
    """

    type: str = "Bearer"
    credentials: str = ""
    credentials_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StaticConfig:
    """A list of ``host:port`` targets and the labels every one of them gets."""

    targets: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScrapeConfig:
    """One scrape job: which targets, how often, how, and how to rewrite what comes back.

    Durations are in seconds. ``honor_labels``: on a clash between a scraped label and a
    target label (``job``, ``instance``, static labels), keep the scraped one (``True``)
    or keep the target's and rename the scraped one ``exported_<name>`` (``False``,
    the default). ``honor_timestamps``: use timestamps the target exposes.
    """

    job_name: str
    static_configs: tuple[StaticConfig, ...] = ()
    scrape_interval: float = 60.0
    scrape_timeout: float = 10.0
    metrics_path: str = "/metrics"
    scheme: Literal["http", "https"] = "http"
    params: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    honor_labels: bool = False
    honor_timestamps: bool = True
    metric_relabel_configs: tuple[RelabelConfig, ...] = ()

    def __post_init__(self) -> None:
        if self.scrape_interval <= 0:
            raise ConfigError("scrape_interval must be positive", field="scrape_interval")
        if not 0 < self.scrape_timeout <= self.scrape_interval:
            raise ConfigError(
                f"scrape_timeout ({self.scrape_timeout:g}s) must be positive and not greater "
                f"than scrape_interval ({self.scrape_interval:g}s)",
                field="scrape_timeout",
                value=self.scrape_timeout,
            )


class _Reader:
    """Reads one mapping of a config, keeping the field path for error messages."""

    def __init__(self, data: object, path: str, source: str, allowed: tuple[str, ...]) -> None:
        self.path = path
        self.source = source
        if not isinstance(data, Mapping):
            raise self.error(path, "must be a mapping", data)
        for key in data:
            if key not in allowed:
                raise self.error(
                    f"{path}.{key}",
                    f"unknown field (supported here: {', '.join(allowed)})",
                    data[key],
                )
        self.data: Mapping[str, object] = data

    def error(self, path: str, problem: str, value: object) -> ConfigError:
        return ConfigError(
            f"{self.source}: {path}: {problem} (got {value!r})", field=path, value=value
        )

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}"

    def string(self, key: str, default: str) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self.error(self.sub(key), "must be a string", value)
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(self.sub(key), "must be true or false", value)
        return value

    def duration(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        value = self.data[key]
        try:
            seconds = parse_duration(value)  # type: ignore[arg-type]
        except ConfigError as exc:
            raise self.error(self.sub(key), str(exc), value) from None
        if seconds <= 0:
            raise self.error(self.sub(key), "must be a positive duration", value)
        return seconds

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        path = self.sub(key)
        if not isinstance(value, list | tuple):
            raise self.error(path, "must be a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{path}[{i}]", "must be a string", item)
        return tuple(value)

    def label_name(self, path: str, name: object) -> str:
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            raise self.error(path, "is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)", name)
        return name


def parse_scrape_configs(
    data: list[dict[str, object]] | None,
    *,
    source: str = "<config>",
    default_interval: float = 60.0,
    default_timeout: float = 10.0,
) -> list[ScrapeConfig]:
    """Validate the ``scrape_configs`` list of a Prometheus-style config file.

    ``data`` is what a YAML loader gives for the ``scrape_configs`` key. ``source``
    (the file name) starts every error message. ``default_interval`` and
    ``default_timeout`` (seconds) stand in for Prometheus's ``global`` section. A job
    without ``scrape_timeout`` gets ``min(default_timeout, scrape_interval)``.
    Raises :class:`~inferwatch.ConfigError` naming the field path, e.g.
    ``scrape_configs[1].static_configs[0].targets[2]``, and the offending value.
    """
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{source}: scrape_configs: must be a list", field="scrape_configs")
    configs: list[ScrapeConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        config = _parse_job(item, f"scrape_configs[{i}]", source, default_interval, default_timeout)
        if config.job_name in seen:
            raise ConfigError(
                f"{source}: scrape_configs[{i}].job_name: duplicate job name "
                f"{config.job_name!r}; every job needs its own name",
                field=f"scrape_configs[{i}].job_name",
                value=config.job_name,
            )
        seen.add(config.job_name)
        configs.append(config)
    return configs


_JOB_FIELDS = (
    "job_name",
    "static_configs",
    "scrape_interval",
    "scrape_timeout",
    "metrics_path",
    "scheme",
    "params",
    "basic_auth",
    "authorization",
    "bearer_token",
    "bearer_token_file",
    "honor_labels",
    "honor_timestamps",
    "metric_relabel_configs",
)


def _parse_job(
    item: object, path: str, source: str, default_interval: float, default_timeout: float
) -> ScrapeConfig:
    r = _Reader(item, path, source, _JOB_FIELDS)
    job_name = r.string("job_name", "")
    if not job_name:
        raise r.error(r.sub("job_name"), "is required and must not be empty", job_name)
    interval = r.duration("scrape_interval", default_interval)
    timeout = r.duration("scrape_timeout", min(default_timeout, interval))
    if timeout > interval:
        raise r.error(
            r.sub("scrape_timeout"),
            f"must not be greater than scrape_interval ({interval:g}s)",
            r.data["scrape_timeout"],
        )
    metrics_path = r.string("metrics_path", "/metrics")
    if not metrics_path.startswith("/"):
        raise r.error(r.sub("metrics_path"), "must start with '/'", metrics_path)
    scheme = r.string("scheme", "http")
    if scheme not in ("http", "https"):
        raise r.error(r.sub("scheme"), "must be 'http' or 'https'", scheme)
    return ScrapeConfig(
        job_name=job_name,
        static_configs=tuple(
            _parse_static(r, i, s) for i, s in enumerate(_list(r, "static_configs"))
        ),
        scrape_interval=interval,
        scrape_timeout=timeout,
        metrics_path=metrics_path,
        scheme="https" if scheme == "https" else "http",
        params=_parse_params(r),
        basic_auth=_parse_basic_auth(r),
        authorization=_parse_authorization(r),
        honor_labels=r.boolean("honor_labels", False),
        honor_timestamps=r.boolean("honor_timestamps", True),
        metric_relabel_configs=tuple(
            _parse_relabel(r, i, c) for i, c in enumerate(_list(r, "metric_relabel_configs"))
        ),
    )


def _list(r: _Reader, key: str) -> list[object]:
    value = r.data.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise r.error(r.sub(key), "must be a list", value)
    return value


def _parse_static(parent: _Reader, i: int, item: object) -> StaticConfig:
    r = _Reader(item, f"{parent.path}.static_configs[{i}]", parent.source, ("targets", "labels"))
    targets = r.strings("targets")
    for j, target in enumerate(targets):
        if not target or "/" in target or target.strip() != target:
            raise r.error(
                f"{r.path}.targets[{j}]",
                "must be 'host:port' without scheme or path (set scheme and metrics_path "
                "on the job)",
                target,
            )
    labels_value = r.data.get("labels", {}) or {}
    if not isinstance(labels_value, Mapping):
        raise r.error(r.sub("labels"), "must be a mapping of label names to values", labels_value)
    labels: dict[str, str] = {}
    for name, value in labels_value.items():
        name_path = f"{r.path}.labels.{name}"
        r.label_name(name_path, name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise r.error(name_path, "label values must be strings", value)
        labels[name] = str(value)
    return StaticConfig(targets=targets, labels=labels)


def _parse_params(r: _Reader) -> dict[str, tuple[str, ...]]:
    value = r.data.get("params", {}) or {}
    if not isinstance(value, Mapping):
        raise r.error(r.sub("params"), "must map parameter names to lists of values", value)
    params: dict[str, tuple[str, ...]] = {}
    for name, values in value.items():
        path = f"{r.path}.params.{name}"
        if not isinstance(name, str):
            raise r.error(path, "parameter names must be strings", name)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise r.error(path, "must be a list of strings", values)
        params[name] = tuple(values)
    return params


def _parse_basic_auth(parent: _Reader) -> BasicAuth | None:
    if parent.data.get("basic_auth") is None:
        return None
    fields = ("username", "password", "password_file")
    r = _Reader(parent.data["basic_auth"], parent.sub("basic_auth"), parent.source, fields)
    if "password" in r.data and "password_file" in r.data:
        raise r.error(r.sub("password_file"), "set password or password_file, not both", "both")
    if "authorization" in parent.data or "bearer_token" in parent.data:
        raise r.error(r.path, "basic_auth cannot be combined with a bearer token", "both")
    password_file = r.string("password_file", "") or None
    return BasicAuth(
        username=r.string("username", ""),
        password=r.string("password", ""),
        password_file=password_file,
    )


def _parse_authorization(parent: _Reader) -> Authorization | None:
    token_keys = [
        k for k in ("authorization", "bearer_token", "bearer_token_file") if k in parent.data
    ]
    if not token_keys:
        return None
    if len(token_keys) > 1:
        raise parent.error(
            parent.sub(token_keys[1]), f"cannot be combined with {token_keys[0]}", token_keys
        )
    if "bearer_token" in parent.data:
        return Authorization(credentials=parent.string("bearer_token", ""))
    if "bearer_token_file" in parent.data:
        return Authorization(credentials_file=parent.string("bearer_token_file", ""))
    fields = ("type", "credentials", "credentials_file")
    r = _Reader(parent.data["authorization"], parent.sub("authorization"), parent.source, fields)
    auth_type = r.string("type", "Bearer")
    if auth_type.lower() == "basic":
        raise r.error(r.sub("type"), "use basic_auth for basic authentication", auth_type)
    if "credentials" in r.data and "credentials_file" in r.data:
        raise r.error(r.sub("credentials_file"), "set credentials or credentials_file", "both")
    return Authorization(
        type=auth_type,
        credentials=r.string("credentials", ""),
        credentials_file=r.string("credentials_file", "") or None,
    )


_RELABEL_FIELDS = ("source_labels", "separator", "regex", "target_label", "replacement", "action")


def _parse_relabel(parent: _Reader, i: int, item: object) -> RelabelConfig:
    path = f"{parent.path}.metric_relabel_configs[{i}]"
    r = _Reader(item, path, parent.source, _RELABEL_FIELDS)
    source_labels = r.strings("source_labels")
    for j, name in enumerate(source_labels):
        r.label_name(f"{path}.source_labels[{j}]", name)
    action = r.string("action", "replace").lower()
    try:
        return RelabelConfig(
            source_labels=source_labels,
            separator=r.string("separator", ";"),
            regex=r.string("regex", "(.*)"),
            target_label=r.string("target_label", ""),
            replacement=r.string("replacement", "$1"),
            action=action,  # type: ignore[arg-type]
        )
    except ConfigError as exc:
        key = exc.field or "action"
        raise r.error(f"{path}.{key}", str(exc), exc.value) from None
