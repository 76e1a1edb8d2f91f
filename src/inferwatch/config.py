"""``inferwatch.yaml``: the one configuration of ``inferwatch server`` and ``inferwatch export``.

::

    listen: 127.0.0.1:9090          # anything not loopback needs `auth`
    storage: {path: inferwatch.db, retention: 15d}
    auth: {bearer_token_file: token.txt}
    prometheus: prometheus.yml      # a Prometheus config file, or its sections inline
    alertmanager: alertmanager.yml  # an Alertmanager config file, or inline
    probes: [probes.yml]
    baselines: [baselines.yml]
    prices: prices.yml
    scaling:
      interval: 15s
      models:
        digits: {capacity_rps: 50, min_replicas: 1, max_replicas: 10}
    deployment: {name: digits, image: ghcr.io/example/digits:latest, port: 8000}

:func:`load_config` reads the file, validates it with pydantic and resolves it into an
:class:`InferwatchConfig` (paths made absolute against the file's folder, durations in
seconds, the Prometheus part parsed as :func:`~inferwatch.server.config.parse_server_config`
parses a ``prometheus.yml``). A file whose top-level keys are only Prometheus sections
(``global``, ``scrape_configs``, ``rule_files``, ``alerting``, ...) is read as a plain
``prometheus.yml``.

Every problem is reported at once, one per line, as
``<file>:<line>: <dotted.field>: <problem> (got <offending text>)`` in a
:class:`~inferwatch.ConfigError`; unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from yaml.nodes import MappingNode, Node, SequenceNode

from inferwatch._duration import duration_ms
from inferwatch._errors import ConfigError
from inferwatch.rules.yamlpos import FileProblems, config_document, line_of

if TYPE_CHECKING:
    from inferwatch.analyze.scaling import ScalingPolicy
    from inferwatch.server.config import ServerConfig

__all__ = [
    "AuthConfig",
    "DeploymentConfig",
    "InferwatchConfig",
    "load_config",
    "node_line",
    "parse_config",
]

DEFAULT_LISTEN = "127.0.0.1:9090"
DEFAULT_RETENTION = "15d"
DEFAULT_SCALING_INTERVAL = "15s"

#: Top-level sections of a Prometheus configuration file.
PROMETHEUS_SECTIONS = frozenset(
    {
        "global",
        "rule_files",
        "scrape_configs",
        "alerting",
        "remote_write",
        "remote_read",
        "storage",
        "tracing",
        "scrape_config_files",
        "otlp",
        "runtime",
    }
)

_HOST_PORT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]\s]*)):(?P<port>\d{1,5})$")


# -- resolved values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Who may use the server: a bearer token, basic auth credentials, or both."""

    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """The store's SQLite file and how long samples are kept (seconds)."""

    path: str
    retention_s: float


@dataclass(frozen=True, slots=True)
class DeploymentConfig:
    """The inference service's Kubernetes deployment, for ``inferwatch export``."""

    name: str
    namespace: str = "default"
    image: str | None = None
    port: int = 8000
    model: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InferwatchConfig:
    """A validated ``inferwatch.yaml``; build it with :func:`load_config`."""

    source: str = "<config>"
    listen_host: str = "127.0.0.1"
    listen_port: int = 9090
    external_url: str = "http://127.0.0.1:9090"
    storage: StorageConfig = field(
        default_factory=lambda: StorageConfig(path="inferwatch.db", retention_s=15 * 86400.0)
    )
    auth: AuthConfig | None = None
    prometheus: ServerConfig = field(default_factory=lambda: _server_config())
    prometheus_file: str | None = None
    prometheus_raw: dict[str, Any] = field(default_factory=dict)
    alertmanager_file: str | None = None
    alertmanager_raw: dict[str, Any] | None = None
    #: The Alertmanager part as YAML text whose line numbers are those of ``source``
    #: (or of ``alertmanager_file``): parse it with ``alerting.config.parse_config``.
    alertmanager_text: str | None = None
    probe_files: tuple[str, ...] = ()
    baseline_files: tuple[str, ...] = ()
    prices_file: str | None = None
    scaling_interval_s: float = 15.0
    scaling: Mapping[str, ScalingPolicy] = field(default_factory=dict)
    deployment: DeploymentConfig | None = None

    @property
    def listen(self) -> str:
        """``host:port`` as a URL writes it (IPv6 hosts in brackets)."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    def alertmanager_config(self, *, default_group_wait_s: float = 0.0) -> Any:
        """The Alertmanager part parsed (``AlertmanagerConfig``), or None when absent."""
        if self.alertmanager_text is None:
            return None
        from inferwatch.alerting.config import parse_config as parse_alertmanager

        config = parse_alertmanager(
            self.alertmanager_text,
            file=self.alertmanager_file or self.source,
            default_group_wait_s=default_group_wait_s,
        )
        if self.alertmanager_file is None:  # inline: show it without the padding
            original = textwrap.dedent(config.original.lstrip("\n")).rstrip() + "\n"
            config = dataclasses.replace(config, original=original)
        return config


def _server_config() -> ServerConfig:
    from inferwatch.server.config import ServerConfig

    return ServerConfig()


# -- the file's schema (pydantic) --------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _duration(value: str) -> str:
    if duration_ms(value) is None:
        raise ValueError("not a duration (use Prometheus units: 30s, 5m, 15d, 1h30m)")
    return value


class _Storage(_Model):
    path: str | None = None
    retention: str = DEFAULT_RETENTION

    _check = field_validator("retention")(_duration)


class _BasicAuth(_Model):
    username: str
    password: str | None = None
    password_file: str | None = None


class _Auth(_Model):
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    basic_auth: _BasicAuth | None = None


class _Scaling(_Model):
    interval: str = DEFAULT_SCALING_INTERVAL
    models: dict[str, dict[str, Any]]

    _check = field_validator("interval")(_duration)


class _Deployment(_Model):
    name: str
    namespace: str = "default"
    image: str | None = None
    port: int = 8000
    model: str | None = None

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be a port number, 1 to 65535")
        return value


class _File(_Model):
    listen: str = DEFAULT_LISTEN
    external_url: str = ""
    storage: _Storage = _Storage()
    auth: _Auth | None = None
    prometheus: Any = None
    alertmanager: Any = None
    probes: list[str] = []
    baselines: list[str] = []
    prices: str | None = None
    scaling: _Scaling | None = None
    deployment: _Deployment | None = None

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9090`` for IPv6; an empty host is every address) as a pair;
    raises ValueError."""
    match = _HOST_PORT.match(value)
    port = int(match["port"]) if match else -1
    if match is None or not 0 <= port < 65536:
        raise ValueError("must be host:port, e.g. 127.0.0.1:9090")
    host = match["v6"] if match["v6"] is not None else match["host"]
    return (host or "0.0.0.0"), port


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- positions ---------------------------------------------------------------------------------


def node_line(root: Node | None, path: Sequence[str | int]) -> int:
    """The 1-based line of the deepest node of ``path`` that exists under ``root`` (a
    mapping entry's line is its key's); 1 for an empty document."""
    if root is None:
        return 1
    line = line_of(root)
    node: Node = root
    for step in path:
        nxt: Node | None = None
        if isinstance(node, MappingNode):
            for key, value in node.value:
                if str(key.value) == str(step):
                    line, nxt = line_of(key), value
                    break
        elif isinstance(node, SequenceNode) and isinstance(step, int) and step < len(node.value):
            nxt = node.value[step]
            line = line_of(nxt)
        if nxt is None:
            break
        node = nxt
    return line


def field_path(loc: Sequence[str | int]) -> str:
    """``("scrape_configs", 0, "job_name")`` as ``scrape_configs[0].job_name``."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def parse_field_path(text: str) -> list[str | int]:
    """The inverse of :func:`field_path`."""
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return out


def _node_text(text: str, node: Node) -> str:
    """The YAML text of ``node`` alone, padded so its line numbers stay those of ``text``."""
    start, end = node.start_mark, node.end_mark
    lines = text[start.index : end.index].rstrip().split("\n")
    while len(lines) > 1 and lines[-1].lstrip().startswith("#"):
        lines.pop()  # the comments before the next key belong to it
    return "\n" * int(start.line) + " " * int(start.column) + "\n".join(lines).rstrip() + "\n"


def _find(root: Node | None, key: str) -> Node | None:
    if isinstance(root, MappingNode):
        for k, v in root.value:
            if str(k.value) == key:
                return v  # type: ignore[no-any-return]
    return None


# -- loading -----------------------------------------------------------------------------------


def load_config(path: str | Path) -> InferwatchConfig:
    """Read and validate an ``inferwatch.yaml`` (or a plain ``prometheus.yml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}", value=str(p)) from None
    return parse_config(text, source=str(p), base=p.parent)


def parse_config(
    text: str, *, source: str = "<config>", base: str | Path | None = None
) -> InferwatchConfig:
    """Validate the text of an ``inferwatch.yaml``; ``source`` names it in errors and
    ``base`` (default: the working directory) is where relative paths start."""
    root = config_document(text, source)
    problems = FileProblems(source)
    if root is not None:
        _check_duplicates(problems, root)
        problems.raise_if_any()
    data = yaml.SafeLoader("").construct_document(root) if root is not None else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}:1: the file must be a mapping of settings (got {_short(data)})", value=data
        )
    folder = Path(base) if base is not None else Path.cwd()
    if data and set(data) <= PROMETHEUS_SECTIONS and set(data) - {"storage"}:
        return _plain_prometheus(text, source, folder, data)
    return _Resolver(text, source, folder, root).resolve(data)


def _plain_prometheus(text: str, source: str, base: Path, data: dict[str, Any]) -> InferwatchConfig:
    from inferwatch.server.config import parse_server_config

    prometheus = parse_server_config(text, source=source, base=base)
    return InferwatchConfig(
        source=source,
        storage=StorageConfig(path=_default_db(), retention_s=_seconds(DEFAULT_RETENTION)),
        prometheus=prometheus,
        prometheus_file=source,
        prometheus_raw=data,
    )


def _check_duplicates(problems: FileProblems, node: Node) -> None:
    if isinstance(node, MappingNode):
        for _, value in problems.decoder.pairs(node, "map") or []:
            _check_duplicates(problems, value)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _check_duplicates(problems, item)


def _default_db() -> str:
    """``$INFERWATCH_DB``, else ``inferwatch.db`` in the working directory (as without a
    config file)."""
    return os.environ.get("INFERWATCH_DB") or "inferwatch.db"


def _seconds(duration: str) -> float:
    ms = duration_ms(duration)
    assert ms is not None
    return ms / 1000


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Resolver:
    """Validates the mapping with pydantic, then resolves paths and nested files."""

    def __init__(self, text: str, source: str, base: Path, root: Node | None) -> None:
        self.text = text
        self.source = source
        self.base = base
        self.root = root
        self.errors: list[tuple[int, str, str, object]] = []

    def problem(
        self, loc: Sequence[str | int], reason: str, value: object = None, *, name: str = ""
    ) -> None:
        """Note a problem at ``loc``'s line, named ``name`` (default: ``loc`` dotted)."""
        got = "" if value is None else f" (got {_short(value)})"
        line = node_line(self.root, loc)
        self.errors.append((line, name or field_path(loc), reason + got, value))

    def raise_if_any(self) -> None:
        if self.errors:
            self.errors.sort(key=lambda e: e[0])
            lines = [
                f"{self.source}:{line}: {name}: {reason}" for line, name, reason, _ in self.errors
            ]
            first = self.errors[0]
            raise ConfigError("\n".join(lines), field=first[1], value=first[3])

    def path(self, loc: Sequence[str | int], value: str, *, must_exist: bool = True) -> str:
        p = Path(value).expanduser()
        p = p if p.is_absolute() else self.base / p
        if must_exist and not p.is_file():
            self.problem(loc, "no such file", value)
        return str(p)

    def resolve(self, data: dict[str, Any]) -> InferwatchConfig:
        try:
            model = _File.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = [s for s in error["loc"] if isinstance(s, str | int)]
                self.problem(loc, *_describe(error))
            self.raise_if_any()
            raise  # pragma: no cover - raise_if_any raised
        host, port = parse_listen(model.listen)
        auth = self.auth(model.auth)
        if auth is None and not is_loopback(host):
            self.problem(
                ["listen"],
                f"listening on {model.listen}, not a loopback address, needs `auth` "
                "(bearer_token or basic_auth); or listen on 127.0.0.1",
                name="auth",
            )
        listen_host = f"[{host}]" if ":" in host else host
        external = model.external_url.rstrip("/") or f"http://{listen_host}:{port}"
        storage = StorageConfig(
            path=self.path(["storage", "path"], model.storage.path, must_exist=False)
            if model.storage.path
            else _default_db(),
            retention_s=_seconds(model.storage.retention),
        )
        prometheus, prometheus_file, prometheus_raw = self.prometheus(model.prometheus)
        am_file, am_raw, am_text = self.alertmanager(model.alertmanager)
        probes = tuple(self.path(["probes", i], f) for i, f in enumerate(model.probes))
        baselines = tuple(self.path(["baselines", i], f) for i, f in enumerate(model.baselines))
        prices = self.path(["prices"], model.prices) if model.prices else None
        scaling = self.scaling(model.scaling)
        deployment = None
        if model.deployment is not None:
            d = model.deployment
            deployment = DeploymentConfig(
                name=d.name,
                namespace=d.namespace,
                image=d.image,
                port=d.port,
                model=d.model or d.name,
            )
        self.raise_if_any()
        self.check_files(baselines, prices)
        return InferwatchConfig(
            source=self.source,
            listen_host=host,
            listen_port=port,
            external_url=external,
            storage=storage,
            auth=auth,
            prometheus=prometheus if prometheus is not None else _server_config(),
            prometheus_file=prometheus_file,
            prometheus_raw=prometheus_raw,
            alertmanager_file=am_file,
            alertmanager_raw=am_raw,
            alertmanager_text=am_text,
            probe_files=probes,
            baseline_files=baselines,
            prices_file=prices,
            scaling_interval_s=_seconds(model.scaling.interval)
            if model.scaling
            else _seconds(DEFAULT_SCALING_INTERVAL),
            scaling=scaling,
            deployment=deployment,
        )

    def read_secret(self, loc: Sequence[str | int], value: str) -> str | None:
        path = self.path(loc, value)
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError:
            return None  # reported by self.path

    def auth(self, model: _Auth | None) -> AuthConfig | None:
        if model is None:
            return None
        token = model.bearer_token
        if model.bearer_token_file is not None:
            if token is not None:
                self.problem(
                    ["auth", "bearer_token_file"],
                    "give bearer_token or bearer_token_file, not both",
                )
            token = self.read_secret(["auth", "bearer_token_file"], model.bearer_token_file)
        basic: tuple[str, str] | None = None
        if model.basic_auth is not None:
            b = model.basic_auth
            password = b.password
            if (b.password is None) == (b.password_file is None):
                self.problem(["auth", "basic_auth"], "give one of password or password_file")
            elif b.password_file is not None:
                password = self.read_secret(
                    ["auth", "basic_auth", "password_file"], b.password_file
                )
            if not b.username:
                self.problem(["auth", "basic_auth", "username"], "must not be empty", b.username)
            basic = (b.username, password or "")
        if token is None and basic is None:
            self.problem(["auth"], "set bearer_token, bearer_token_file or basic_auth")
        elif token is not None and not token:
            self.problem(["auth", "bearer_token"], "must not be empty", token)
        return AuthConfig(bearer_token=token, basic_auth=basic)

    def prometheus(self, value: Any) -> tuple[ServerConfig | None, str | None, dict[str, Any]]:
        from inferwatch.server.config import load_server_config, parse_server_config

        if value is None:
            return None, None, {}
        if isinstance(value, str):
            path = self.path(["prometheus"], value)
            if not Path(path).is_file():
                return None, None, {}
            config = load_server_config(path)
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            return config, path, raw
        if isinstance(value, dict):
            node = _find(self.root, "prometheus")
            assert node is not None
            try:
                config = parse_server_config(
                    _node_text(self.text, node), source=self.source, base=self.base
                )
            except ConfigError as exc:
                raise _prefixed(exc, self.source, "prometheus") from None
            return config, None, value
        self.problem(
            ["prometheus"], "must be a prometheus.yml file name or a mapping of its sections", value
        )
        return None, None, {}

    def alertmanager(self, value: Any) -> tuple[str | None, dict[str, Any] | None, str | None]:
        from inferwatch.alerting.config import parse_config as parse_alertmanager

        if value is None:
            return None, None, None
        if isinstance(value, str):
            path = self.path(["alertmanager"], value)
            if not Path(path).is_file():
                return None, None, None
            text = Path(path).read_text(encoding="utf-8")
            parse_alertmanager(text, file=path)
            raw = yaml.safe_load(text)
            return path, raw if isinstance(raw, dict) else {}, text
        if isinstance(value, dict):
            node = _find(self.root, "alertmanager")
            assert node is not None
            text = _node_text(self.text, node)
            parse_alertmanager(text, file=self.source)
            return None, value, text
        self.problem(
            ["alertmanager"], "must be an alertmanager.yml file name or its mapping", value
        )
        return None, None, None

    def scaling(self, model: _Scaling | None) -> dict[str, ScalingPolicy]:
        from inferwatch.analyze.scaling import ScalingPolicy

        out: dict[str, ScalingPolicy] = {}
        if model is None:
            return out
        known = {f.name for f in fields(ScalingPolicy)}
        for name, settings in model.models.items():
            loc: list[str | int] = ["scaling", "models", name]
            unknown = [k for k in settings if k not in known]
            for key in unknown:
                self.problem([*loc, key], f"unknown field (known: {', '.join(sorted(known))})")
            if unknown:
                continue
            try:
                out[name] = ScalingPolicy(**settings)
            except ConfigError as exc:
                reason = str(exc)
                if exc.field and reason.startswith(exc.field + " "):
                    reason = reason[len(exc.field) + 1 :]
                self.problem([*loc, exc.field or ""], reason)
            except TypeError as exc:  # pragma: no cover - a field of the wrong kind
                self.problem(loc, str(exc), settings)
        if not out and not self.errors:
            self.problem(["scaling", "models"], "name at least one model")
        return out

    def check_files(self, baselines: Sequence[str], prices: str | None) -> None:
        """Read the baseline and price files now, so that their mistakes stop the start."""
        from inferwatch.analyze.baseline import load_baseline_rules
        from inferwatch.analyze.cost import load_prices

        for file in baselines:
            load_baseline_rules(file)
        if prices is not None:
            load_prices(prices)


def _describe(error: Any) -> tuple[str, object]:
    """A pydantic error as ``(reason, offending value or None)``."""
    kind = error["type"]
    if kind == "missing":
        return "is required", None
    if kind == "extra_forbidden":
        name = error["loc"][-1] if error["loc"] else ""
        if len(error["loc"]) == 1 and name in PROMETHEUS_SECTIONS:
            return "unknown field; Prometheus sections go under `prometheus:`", None
        return "unknown field", None
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    return message, error.get("input")


def _prefixed(exc: ConfigError, source: str, prefix: str) -> ConfigError:
    """A Prometheus-part error with its field named from the top of ``source``."""
    message = str(exc)
    match = re.match(rf"^({re.escape(source)}(?::\d+)?): (.*)$", message, re.S)
    if match is None:
        return exc
    rest = match.group(2)
    if exc.field and rest.startswith(exc.field):
        rest = f"{prefix}.{rest}"
    elif not exc.field:
        rest = f"{prefix}: {rest}"
    field_name = f"{prefix}.{exc.field}" if exc.field else prefix
    return ConfigError(f"{match.group(1)}: {rest}", field=field_name, value=exc.value)
