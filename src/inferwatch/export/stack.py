"""What ``inferwatch export`` writes, gathered from a config (or the demo) and written out.

::

    from inferwatch.config import load_config
    from inferwatch.export import Addresses, stack_from_config, write_stack

    stack = stack_from_config(load_config("inferwatch.yaml"))
    files = write_stack(stack, "stack/", Addresses(alertmanager="127.0.0.1:9093"))

:class:`Stack` holds plain values (the Prometheus sections as written, rule files,
the Alertmanager mapping, the deployment); :func:`write_stack` renders them with the
generators of this package into the layout the README of the output describes.
"""

from __future__ import annotations

import dataclasses
import glob
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferwatch._errors import ConfigError
from inferwatch.export import alertmanager as am
from inferwatch.export import compose, grafana, kubernetes, prometheus
from inferwatch.export.kubernetes import Deployment

if TYPE_CHECKING:
    from inferwatch.config import InferwatchConfig

#: Where ``inferwatch demo`` listens by default.
DEMO_TARGET = "127.0.0.1:8000"

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Addresses:
    """Where the parts of the stack listen (``host:port``): the exported files point at
    each other through these. ``kubernetes_prometheus_url``: the Prometheus KEDA reads
    inside the cluster."""

    prometheus: str = "127.0.0.1:9091"
    alertmanager: str = "127.0.0.1:9093"
    grafana: str = "127.0.0.1:3000"
    kubernetes_prometheus_url: str = "http://prometheus.monitoring.svc:9090"

    def __post_init__(self) -> None:
        for name in ("prometheus", "alertmanager", "grafana"):
            value = getattr(self, name)
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(
                    f"--{name}: not a host:port address (got {value!r})", field=name, value=value
                )


@dataclass(frozen=True, slots=True)
class Stack:
    """The values the exported files are made of.

    ``global_`` / ``scrape_configs``: the Prometheus sections as written.
    ``rule_files``: absolute paths, copied byte for byte. ``alertmanager``: the
    Alertmanager mapping, whose template paths are relative to ``alertmanager_base``.
    ``inferwatch_address``: ``host:port`` of the inferwatch server (the demo embeds one)
    and ``inferwatch_auth`` the Prometheus client settings to pass its auth.
    ``inferwatch_config``: the ``inferwatch.yaml`` of the stack's inferwatch server
    (``None`` for the demo, which is its own server); ``inferwatch_files``: files it
    names, as (absolute source, name beside it).
    """

    source: str
    global_: Mapping[str, Any]
    scrape_configs: tuple[Mapping[str, Any], ...]
    rule_files: tuple[str, ...]
    alertmanager: Mapping[str, Any]
    alertmanager_base: str
    inferwatch_address: str
    deployment: Deployment | None
    min_replicas: int = 1
    max_replicas: int = 10
    inferwatch_auth: Mapping[str, Any] | None = None
    inferwatch_config: Mapping[str, Any] | None = None
    inferwatch_files: tuple[tuple[str, str], ...] = ()
    demo: bool = False
    notes: tuple[str, ...] = field(default=())
    #: Sections of the Prometheus file besides global, rule_files, alerting and
    #: scrape_configs (``remote_write``, ``storage``, ...), passed through.
    prometheus_extra: Mapping[str, Any] = field(default_factory=dict)


def demo_stack(target: str = DEMO_TARGET, *, webhook_url: str | None = None) -> Stack:
    """The stack around ``inferwatch demo`` listening at ``target``: it scrapes the demo,
    runs the demo's rules, and uses the demo's embedded server for ``/federate`` and
    for the alerts to inferwatch."""
    from inferwatch.demo.stack import INTERVAL_S, RULES_FILE

    rules = RULES_FILE
    interval = f"{INTERVAL_S:g}s"
    notes: tuple[str, ...] = ()
    if not rules.is_file():
        notes = (f"the demo's rule file {rules} is missing; the stack has no rules",)
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--target: not a host:port address (got {target!r})", value=target)
    return Stack(
        source="inferwatch demo",
        global_={"scrape_interval": interval, "evaluation_interval": interval},
        scrape_configs=({"job_name": "demo", "static_configs": [{"targets": [target]}]},),
        rule_files=(str(rules),) if rules.is_file() else (),
        alertmanager=am.default_config(webhook_url),
        alertmanager_base=str(Path.cwd()),
        inferwatch_address=target,
        deployment=Deployment(name="digits", port=int(port), model="digits"),
        min_replicas=1,
        max_replicas=10,
        demo=True,
        notes=notes,
    )


def stack_from_config(cfg: InferwatchConfig, *, webhook_url: str | None = None) -> Stack:
    """The stack for the services an ``inferwatch.yaml`` describes (see the module docs)."""
    server = cfg.prometheus
    global_ = dict(cfg.prometheus_raw.get("global") or {})
    # inferwatch's defaults (1 s) are not Prometheus's (1 m): write the effective values.
    global_.setdefault("scrape_interval", prometheus.prometheus_duration(server.scrape_interval_s))
    global_.setdefault(
        "evaluation_interval", prometheus.prometheus_duration(server.evaluation_interval_s)
    )
    scrape_configs = tuple(cfg.prometheus_raw.get("scrape_configs") or ())
    rule_files = _expand(server.rule_files)
    source_dir = str(Path(cfg.source).resolve().parent) if cfg.source != "<config>" else "."
    alertmanager_base = (
        str(Path(cfg.alertmanager_file).resolve().parent) if cfg.alertmanager_file else source_dir
    )
    deployment = None
    notes: list[str] = []
    if cfg.deployment is not None:
        d = cfg.deployment
        deployment = Deployment(
            name=d.name, namespace=d.namespace, image=d.image or "", port=d.port, model=d.model
        )
    else:
        notes.append("no `deployment` in the config: no Kubernetes manifests, no model service")
    policy = cfg.scaling.get(deployment.model or deployment.name) if deployment else None
    auth = cfg.auth
    files: list[tuple[str, str]] = []
    server_config = _inferwatch_config(cfg, global_, scrape_configs, files)
    host = "127.0.0.1" if cfg.listen_host in ("0.0.0.0", "") else cfg.listen_host
    host = "[::1]" if host == "::" else (f"[{host}]" if ":" in host else host)
    return Stack(
        source=cfg.source,
        global_=global_,
        scrape_configs=scrape_configs,
        rule_files=rule_files,
        alertmanager=cfg.alertmanager_raw or am.default_config(webhook_url),
        alertmanager_base=alertmanager_base,
        inferwatch_address=f"{host}:{cfg.listen_port}",
        inferwatch_auth=prometheus.prometheus_auth(
            auth.bearer_token if auth else None, auth.basic_auth if auth else None
        ),
        deployment=deployment,
        min_replicas=policy.min_replicas if policy else 1,
        max_replicas=policy.max_replicas if policy else 10,
        inferwatch_config=server_config,
        inferwatch_files=tuple(files),
        notes=tuple(notes),
        prometheus_extra={
            key: value
            for key, value in cfg.prometheus_raw.items()
            if key not in ("global", "rule_files", "alerting", "scrape_configs")
        },
    )


def _inferwatch_config(
    cfg: InferwatchConfig,
    global_: Mapping[str, Any],
    scrape_configs: Sequence[Mapping[str, Any]],
    files: list[tuple[str, str]],
) -> dict[str, Any]:
    """The stack's inferwatch server: the same targets, baselines, advice, cost and
    probes, no rules (Prometheus evaluates them) and only the native receivers."""
    from inferwatch.analyze.scaling import ScalingPolicy

    def beside(path: str) -> str:
        name = _unique_name(Path(path).name, {n for _, n in files})
        files.append((path, name))
        return name

    out: dict[str, Any] = {
        "listen": cfg.listen,
        "storage": {
            "path": "inferwatch.db",
            "retention": prometheus.prometheus_duration(cfg.storage.retention_s),
        },
    }
    if cfg.auth is not None:
        auth: dict[str, Any] = {}
        if cfg.auth.bearer_token is not None:
            auth["bearer_token"] = cfg.auth.bearer_token
        if cfg.auth.basic_auth is not None:
            username, password = cfg.auth.basic_auth
            auth["basic_auth"] = {"username": username, "password": password}
        out["auth"] = auth
    out["prometheus"] = {"global": dict(global_), "scrape_configs": list(scrape_configs)}
    out["alertmanager"] = "alertmanager.yml"
    if cfg.probe_files:
        out["probes"] = [beside(p) for p in cfg.probe_files]
    if cfg.baseline_files:
        out["baselines"] = [beside(p) for p in cfg.baseline_files]
    if cfg.prices_file:
        out["prices"] = beside(cfg.prices_file)
    if cfg.scaling:
        defaults = ScalingPolicy()
        out["scaling"] = {
            "interval": prometheus.prometheus_duration(cfg.scaling_interval_s),
            "models": {
                model: {
                    f.name: getattr(policy, f.name)
                    for f in dataclasses.fields(policy)
                    if getattr(policy, f.name) != getattr(defaults, f.name)
                }
                for model, policy in cfg.scaling.items()
            },
        }
    if cfg.deployment is not None:
        out["deployment"] = {
            key: value
            for key, value in dataclasses.asdict(cfg.deployment).items()
            if value not in (None, "")
        }
    return out


def _expand(paths: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    for path in paths:
        if _GLOB_CHARS & set(path):
            out.extend(sorted(glob.glob(path)))
        else:
            out.append(path)
    return tuple(out)


def _unique_name(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{n}-{name}"
    return candidate


def write_stack(stack: Stack, out: str | Path, addresses: Addresses | None = None) -> list[Path]:
    """Write the stack's files under ``out`` (created if missing; files there with the
    same names are replaced); return the paths written."""
    import json

    addresses = addresses or Addresses()
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--out: {root} exists and is not a directory", value=str(root))
    written: list[Path] = []

    def put(relative: str, text: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    def copy(source: str, relative: str) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(source, path)
        except OSError as exc:
            raise ConfigError(
                f"{stack.source}: cannot copy {source}: {exc.strerror or exc}", value=source
            ) from None
        written.append(path)

    header = f"Generated by `inferwatch export` from {stack.source}."
    rule_names: list[str] = []
    for rule_file in stack.rule_files:
        name = _unique_name(Path(rule_file).name, set(rule_names))
        rule_names.append(name)
        copy(rule_file, f"prometheus/rules/{name}")
    prom = prometheus.prometheus_config(
        global_=stack.global_,
        scrape_configs=stack.scrape_configs,
        rule_files=[f"rules/{name}" for name in rule_names],
        inferwatch_address=stack.inferwatch_address,
        alertmanager_address=addresses.alertmanager,
        inferwatch_auth=stack.inferwatch_auth,
        extra=stack.prometheus_extra,
        source=stack.source,
    )
    put("prometheus/prometheus.yml", _yaml(prom, header))

    templates = _template_files(stack.alertmanager, stack.alertmanager_base)
    standard = am.standard_part(stack.alertmanager, source=stack.source)
    native = am.native_part(stack.alertmanager, source=stack.source)
    if templates:
        standard["templates"] = native["templates"] = [f"templates/{n}" for _, n in templates]
    put("alertmanager/alertmanager.yml", _yaml(standard, header + " Standard receivers only."))
    for source, name in templates:
        copy(source, f"alertmanager/templates/{name}")
    if not stack.demo:
        put(
            "inferwatch/alertmanager.yml",
            _yaml(native, header + " Receivers only inferwatch delivers (DingTalk, WeCom, ...)."),
        )
        for source, name in templates:
            copy(source, f"inferwatch/templates/{name}")
        for source, name in stack.inferwatch_files:
            copy(source, f"inferwatch/{name}")
        put("inferwatch/inferwatch.yaml", _yaml(dict(stack.inferwatch_config or {}), header))
    put("inferwatch/Dockerfile", compose.dockerfile())

    put(
        "grafana/dashboards/inferwatch.json",
        json.dumps(grafana.dashboard(), indent=2) + "\n",
    )
    put(
        "grafana/provisioning/datasources/prometheus.yml",
        _yaml(grafana.datasource_provisioning(f"http://{addresses.prometheus}"), header),
    )
    put(
        "grafana/provisioning/dashboards/inferwatch.yml",
        _yaml(grafana.dashboard_provisioning(), header),
    )

    if stack.deployment is not None:
        put(
            "kubernetes/keda-scaledobject.yaml",
            _yaml(
                kubernetes.scaled_object(
                    stack.deployment,
                    prometheus_url=addresses.kubernetes_prometheus_url,
                    min_replicas=stack.min_replicas,
                    max_replicas=stack.max_replicas,
                ),
                header + " Apply this or hpa.yaml, not both.",
            ),
        )
        put(
            "kubernetes/hpa.yaml",
            _yaml(
                kubernetes.horizontal_pod_autoscaler(
                    stack.deployment,
                    min_replicas=stack.min_replicas,
                    max_replicas=stack.max_replicas,
                ),
                header + " Apply this or keda-scaledobject.yaml, not both.",
            ),
        )
    put("docker-compose.yml", _yaml(compose.compose_file(stack, addresses), header))
    put("README.md", compose.readme(stack, addresses))
    return written


def _template_files(config: Mapping[str, Any], base: str) -> list[tuple[str, str]]:
    """The template files an Alertmanager config names, as (absolute path, new name)."""
    found: list[tuple[str, str]] = []
    for pattern in config.get("templates") or []:
        path = pattern if Path(pattern).is_absolute() else str(Path(base) / pattern)
        for match in sorted(glob.glob(path)):
            found.append((match, _unique_name(Path(match).name, {n for _, n in found})))
    return found


def _yaml(data: Mapping[str, Any], header: str) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True  # the same auth block twice is written out twice, not as &id001

    body = yaml.dump(
        dict(data), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=100
    )
    return f"# {header}\n{body}"
