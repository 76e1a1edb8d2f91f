"""``inferwatch server``: Prometheus and Alertmanager in one process, with the same files.

::

    inferwatch server --config prometheus.yml --alertmanager-config alertmanager.yml

One :class:`Server` holds the store, the scrape manager (targets of the Prometheus
config, and optionally this process's own registry), the rule manager (its
``rule_files``) and an embedded Alertmanager (the Alertmanager config), and serves:

- ``/api/v1/...``: the Prometheus HTTP API, with ``/api/v1/rules`` and ``/api/v1/alerts``;
- ``/api/v2/...``: Alertmanager's API, so a real Prometheus can use this server as its
  Alertmanager (``alerting.alertmanagers`` pointing here) and get DingTalk, WeCom and
  Feishu receivers natively;
- ``/api/v1/targets``: scrape targets and probes, as Prometheus lists them;
- ``/federate?match[]=...``: the latest stored samples, for a real Prometheus to pull the
  baseline, scaling-advice and cost series (see :mod:`inferwatch.server.federate`);
- ``/``: the dashboard;
- ``/-/healthy``, ``/-/ready``, ``POST /-/reload`` (also on SIGHUP) and ``/metrics``.

Built from an ``inferwatch.yaml`` (:meth:`Server.from_config`) it also runs baselines,
scaling advice and cost (:mod:`inferwatch.server.analyzers`) every evaluation interval,
keeps samples for the configured retention, and asks for credentials (bearer token or
basic auth) on everything but ``/-/healthy`` and ``/-/ready`` when ``auth`` is set.

Rules are evaluated on their interval and also as soon as a scrape lands (at most four
times per interval), so an alert without ``for`` fires within about one scrape interval
of the metric crossing its threshold. Alerts go to the embedded Alertmanager and to every
Alertmanager listed in the Prometheus config.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from inferwatch._errors import ConfigError, InferwatchError
from inferwatch.alerting.alert import Alert, AlertSink
from inferwatch.server.config import ServerConfig, load_server_config

if TYPE_CHECKING:
    from inferwatch.alerting.config import AlertmanagerConfig
    from inferwatch.analyze.scaling import ScalingPolicy
    from inferwatch.config import AuthConfig, InferwatchConfig
    from inferwatch.health import ProbeRunner
    from inferwatch.server.analyzers import Analyzers

log = logging.getLogger("inferwatch.server")

#: The root route's ``group_wait`` when the Alertmanager config sets none (Alertmanager:
#: 30 s): a new group's first notification goes out at once.
DEFAULT_GROUP_WAIT_S = 0.0


class FanOut:
    """An :class:`AlertSink` that hands the same alerts to several sinks."""

    def __init__(self, sinks: Sequence[AlertSink]) -> None:
        self.sinks = tuple(sinks)

    def send_alerts(self, alerts: Sequence[Alert]) -> None:
        for sink in self.sinks:
            try:
                sink.send_alerts(alerts)
            except Exception:  # a sink must not raise; if one does, the others still get them
                log.exception("sending alerts to %r failed", sink)


class Server:
    """Everything ``inferwatch server`` runs, built from its two config files.

    ``config_path``: a Prometheus configuration file (``None``: no targets, no rules).
    ``alertmanager_config_path``: an Alertmanager configuration file (``None``: no
    embedded Alertmanager; alerts go only to the Alertmanagers of the Prometheus
    config). ``db``: the store's SQLite file; the Alertmanager's state (alerts,
    silences, notification log, outbox) lives beside it in ``<db>.alerting``.
    ``registry``: this process's own metrics, collected into the store.
    ``probe_files``: synthetic probe files (see :func:`~inferwatch.health.load_probe_file`);
    their ``probe_*`` series are collected into the store with this process's metrics,
    so rules can alert on them.

    Also (what :meth:`from_config` passes from an ``inferwatch.yaml``): ``prometheus``, an
    already parsed Prometheus config (instead of ``config_path``); ``rule_files``, rule
    files besides the config's; ``alertmanager_config``, a parsed Alertmanager config
    (instead of ``alertmanager_config_path``); ``baseline_files``, ``prices_file`` and
    ``scaling`` (policies by model, evaluated every ``scaling_interval_s``), run by
    :class:`~inferwatch.server.analyzers.Analyzers`; ``retention_s``, how long the store
    keeps samples; ``auth``, the credentials :meth:`app` asks for.
    """

    def __init__(
        self,
        config_path: str | None = None,
        *,
        alertmanager_config_path: str | None = None,
        db: str = "inferwatch.db",
        external_url: str = "",
        registry: Any = None,
        probe_files: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
        prometheus: ServerConfig | None = None,
        rule_files: Sequence[str] | None = None,
        alertmanager_config: AlertmanagerConfig | None = None,
        baseline_files: Sequence[str] = (),
        prices_file: str | None = None,
        scaling: Mapping[str, ScalingPolicy] | None = None,
        scaling_interval_s: float = 15.0,
        retention_s: float | None = 15 * 86400.0,
        auth: AuthConfig | None = None,
    ) -> None:
        from inferwatch.alerting.alertmanager import Alertmanager
        from inferwatch.alerting.config import load_config
        from inferwatch.promql import Engine
        from inferwatch.rules.manager import RuleManager
        from inferwatch.rules.sink import AlertmanagerClient
        from inferwatch.scrape import ScrapeManager
        from inferwatch.tsdb.store import Store

        self.config_path = config_path
        self.alertmanager_config_path = alertmanager_config_path
        self.external_url = external_url.rstrip("/")
        self.clock = clock
        self.auth = auth
        self.extra_rule_files = tuple(rule_files or ())
        #: The inferwatch.yaml this server was built from (re-read by :meth:`reload`).
        self.config_file: str | None = None
        if prometheus is not None:
            self.config = prometheus
        else:
            self.config = load_server_config(config_path) if config_path else ServerConfig()
        am_config = alertmanager_config
        if am_config is None and alertmanager_config_path:
            am_config = load_config(
                alertmanager_config_path, default_group_wait_s=DEFAULT_GROUP_WAIT_S
            )
        self.probe_files = list(probe_files)
        self.probes = self._load_probes(self.probe_files)
        if self.probes is not None and registry is None:
            from inferwatch.sdk.registry import Registry

            registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
        self.registry = registry
        if self.probes is not None:
            registry.register(self.probes)
        self.store = Store(db, retention_seconds=retention_s)
        self.engine = Engine(self.store)
        self.alertmanager: Alertmanager | None = None
        sinks: list[AlertSink] = []
        try:
            if am_config is not None:
                self.alertmanager = Alertmanager(
                    am_config,
                    db_path=f"{db}.alerting",
                    clock=clock,
                    external_url=self.external_url,
                )
                sinks.append(self.alertmanager)
            self.clients = [
                AlertmanagerClient(target.url, timeout=target.timeout_s)
                for target in self.config.alertmanagers
            ]
            sinks += self.clients
            self.rules = RuleManager(
                self.store,
                engine=self.engine,
                sink=FanOut(sinks),
                clock=clock,
                evaluation_interval_s=self.config.evaluation_interval_s,
                query_offset_s=self.config.rule_query_offset_s,
                external_labels=self.config.external_labels,
                external_url=self.external_url,
            )
            self.rules.load([*self.config.rule_files, *self.extra_rule_files])
            self.scrape = ScrapeManager(
                self.store,
                self.config.scrape_configs,
                clock=clock,
                registry=registry,
                registry_interval=self.config.scrape_interval_s,
                on_scrape=lambda target, result: self.rules.trigger(),
            )
            self.analyzers: Analyzers = self._analyzers(
                baseline_files, prices_file, scaling, scaling_interval_s
            )
        except BaseException:
            self.store.close()
            raise
        self._reload_lock = threading.Lock()
        self.ready = False

    @classmethod
    def from_config(
        cls,
        cfg: InferwatchConfig,
        *,
        registry: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> Server:
        """A server for an ``inferwatch.yaml`` (see :func:`inferwatch.config.load_config`)."""
        server = cls(
            prometheus=cfg.prometheus,
            alertmanager_config=cfg.alertmanager_config(default_group_wait_s=DEFAULT_GROUP_WAIT_S),
            db=cfg.storage.path,
            retention_s=cfg.storage.retention_s,
            external_url=cfg.external_url,
            registry=registry,
            probe_files=cfg.probe_files,
            baseline_files=cfg.baseline_files,
            prices_file=cfg.prices_file,
            scaling=cfg.scaling,
            scaling_interval_s=cfg.scaling_interval_s,
            auth=cfg.auth,
            clock=clock,
        )
        server.config_file = cfg.source if cfg.source != "<config>" else None
        return server

    def _analyzers(
        self,
        baseline_files: Sequence[str],
        prices_file: str | None,
        scaling: Mapping[str, ScalingPolicy] | None,
        scaling_interval_s: float,
    ) -> Analyzers:
        from inferwatch.server.analyzers import Analyzers

        errors = self.registry if hasattr(self.registry, "internal_error") else None
        return Analyzers(
            self.store,
            self.engine,
            baseline_files=baseline_files,
            prices_file=prices_file,
            scaling=scaling,
            scaling_interval_s=scaling_interval_s,
            interval_s=self.config.evaluation_interval_s,
            errors=errors,
            clock=self.clock,
        )

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start scraping, rule evaluation and alert delivery in background threads."""
        if self.alertmanager is not None:
            self.alertmanager.start()
        self.rules.start()
        self.scrape.start()
        if self.probes is not None:
            self.probes.start()
        self.analyzers.start()
        if self.store.retention_seconds is not None:
            self.store.start_maintenance()
        self.ready = True

    def stop(self) -> None:
        """Stop everything and close the store (what is acknowledged is on disk)."""
        self.ready = False
        self.analyzers.stop()
        if self.probes is not None:
            self.probes.stop()
        self.scrape.stop()
        self.rules.stop()
        for client in self.clients:
            client.close()
        if self.alertmanager is not None:
            self.alertmanager.stop()
        self.store.close()

    def reload(self) -> None:
        """Re-read the config files: rule files, the Alertmanager config and probes
        (from the ``inferwatch.yaml`` when the server was built from one).

        A broken file changes nothing (the previous rules and routing keep running) and
        raises :class:`~inferwatch.InferwatchError` with the reason.
        """
        from inferwatch.alerting.config import load_config

        with self._reload_lock:
            config = load_server_config(self.config_path) if self.config_path else self.config
            am_config = None
            if self.config_file is not None:
                from inferwatch.config import load_config as load_inferwatch_config

                cfg = load_inferwatch_config(self.config_file)
                config = cfg.prometheus
                am_config = cfg.alertmanager_config(default_group_wait_s=DEFAULT_GROUP_WAIT_S)
                self.probe_files = list(cfg.probe_files)
            elif self.alertmanager_config_path and self.alertmanager is not None:
                am_config = load_config(
                    self.alertmanager_config_path, default_group_wait_s=DEFAULT_GROUP_WAIT_S
                )
            probes = self._load_probes(self.probe_files)
            self.rules.load([*config.rule_files, *self.extra_rule_files])
            if am_config is not None and self.alertmanager is not None:
                self.alertmanager.reload(am_config)
            self.config = config
            if probes is not None and self.probes is not None:
                old, self.probes = self.probes, probes
                old.stop()
                self.registry.unregister(old)
                self.registry.register(probes)
                if self.ready:
                    probes.start()

    @staticmethod
    def _load_probes(files: Sequence[str]) -> ProbeRunner | None:
        """A runner of the probes of ``files`` (not started), or None without files."""
        if not files:
            return None
        from inferwatch.health import ProbeRunner, load_probe_file

        probes = [probe for file in files for probe in load_probe_file(file)]
        names = [p.name for p in probes]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(
                    f"probe {name!r} is defined twice in {', '.join(files)}",
                    field="name",
                    value=name,
                )
        return ProbeRunner(probes)

    # -- HTTP ----------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI app: the dashboard and the APIs of both Prometheus and Alertmanager
        (behind :class:`~inferwatch.server.auth.AuthMiddleware` when ``auth`` is set)."""
        from starlette.middleware import Middleware
        from starlette.routing import BaseRoute

        from inferwatch.server.api import PrometheusAPI
        from inferwatch.server.auth import OPEN_PATHS, AuthMiddleware
        from inferwatch.server.dashboard import dashboard_routes, public_paths
        from inferwatch.server.federate import federate_route
        from inferwatch.server.rules_api import rules_routes
        from inferwatch.server.targets_api import targets_route

        api_routes = [
            *rules_routes(self.rules),
            targets_route(lambda: self.scrape, lambda: self.probes, clock=self.clock),
        ]
        api = PrometheusAPI(self.store, engine=self.engine, routes=api_routes, clock=self.clock)
        routes: list[BaseRoute] = [
            Route("/-/healthy", self._healthy, methods=["GET", "HEAD"]),
            Route("/-/ready", self._ready, methods=["GET", "HEAD"]),
            Route("/-/reload", self._reload, methods=["POST", "PUT"]),
            Mount("/api/v1", app=api),
            federate_route(self.store, clock=self.clock),
        ]
        routes.append(Route("/metrics", self._metrics, methods=["GET"]))
        routes += dashboard_routes()
        if self.alertmanager is not None:
            # Alertmanager's app routes its own full paths (/api/v2/...): it takes the rest.
            routes.append(Mount("", app=self.alertmanager.api_app()))
        middleware = []
        if self.auth is not None:
            # A browser cannot send a bearer token when it opens a page: with only a token,
            # the page and its assets (which hold no data) are served without one, and the
            # page asks for the token before it calls the API.
            open_paths = OPEN_PATHS if self.auth.basic_auth else OPEN_PATHS | public_paths()
            middleware.append(
                Middleware(
                    AuthMiddleware,
                    bearer_token=self.auth.bearer_token,
                    basic_auth=self.auth.basic_auth,
                    open_paths=open_paths,
                )
            )
        return Starlette(routes=routes, middleware=middleware)

    async def _metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        if self.alertmanager is not None:
            registry.register(self.alertmanager.collector())
        if self.analyzers.advisor is not None:
            registry.register(_Families(self.analyzers.collect))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def _healthy(self, request: Request) -> Response:
        return PlainTextResponse("inferwatch is Healthy.\n")

    async def _ready(self, request: Request) -> Response:
        if not self.ready:
            return PlainTextResponse("Service Unavailable", status_code=503)
        return PlainTextResponse("inferwatch is Ready.\n")

    async def _reload(self, request: Request) -> Response:
        import anyio.to_thread

        try:
            await anyio.to_thread.run_sync(self.reload)
        except (InferwatchError, OSError) as exc:
            return PlainTextResponse(f"failed to reload config: {exc}\n", status_code=500)
        return PlainTextResponse("")


class _Families:
    """A prometheus_client collector of inferwatch family snapshots."""

    def __init__(self, collect: Callable[[], Sequence[Any]]) -> None:
        self._collect = collect

    def collect(self) -> Any:
        from inferwatch.exposition.convert import to_metric

        return [to_metric(family) for family in self._collect()]


def run_server(
    config_path: str | None,
    *,
    alertmanager_config_path: str | None = None,
    db: str | None = None,
    host: str | None = None,
    port: int | None = None,
    listen: str | None = None,
    external_url: str | None = None,
    probe_files: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> None:
    """Run :class:`Server` with uvicorn until Ctrl-C or SIGTERM; SIGHUP reloads.

    ``config_path`` is an ``inferwatch.yaml`` or a plain ``prometheus.yml`` (see
    :func:`inferwatch.config.load_config`); the other arguments, when given, override it.
    """
    import signal

    import uvicorn

    cfg = server_config(
        config_path,
        alertmanager_config_path=alertmanager_config_path,
        db=db,
        host=host,
        port=port,
        listen=listen,
        external_url=external_url,
        probe_files=probe_files,
    )
    server = Server.from_config(cfg)
    if config_path is not None and cfg.prometheus_file == config_path:
        # A plain prometheus.yml: reload re-reads it and the Alertmanager file as before.
        server.config_file = None
        server.config_path = config_path
        server.alertmanager_config_path = alertmanager_config_path
    elif alertmanager_config_path is not None:
        server.config_file = None  # options override the file: reload keeps them
    url = cfg.external_url

    def on_hup(signum: int, frame: object) -> None:
        try:
            server.reload()
            echo("configuration reloaded")
        except (InferwatchError, OSError) as exc:
            echo(f"reload failed, the previous configuration keeps running: {exc}")

    def on_term(signum: int, frame: object) -> None:
        # uvicorn handles SIGTERM itself, then restores this handler and raises the
        # signal again: ending in KeyboardInterrupt lets server.stop() below run.
        raise KeyboardInterrupt

    signal.signal(signal.SIGHUP, on_hup)
    signal.signal(signal.SIGTERM, on_term)
    uv = uvicorn.Server(
        uvicorn.Config(
            server.app(), host=cfg.listen_host, port=cfg.listen_port, log_level="warning"
        )
    )
    server.start()
    echo(f"inferwatch server on {url}")
    echo(f"  dashboard         {url}/")
    echo(f"  Prometheus API    {url}/api/v1 (rules, alerts, query, targets, ...)")
    if server.alertmanager is not None:
        echo(f"  Alertmanager API  {url}/api/v2 (alerts, silences, status)")
    echo(f"  store             {cfg.storage.path}")
    if server.probes is not None:
        echo(f"  probes            {len(server.probes.probes)} from {', '.join(cfg.probe_files)}")
    if cfg.auth is not None:
        echo("  auth              required (except /-/healthy and /-/ready)")
    try:
        uv.run()
    finally:
        server.stop()


def server_config(
    config_path: str | None,
    *,
    alertmanager_config_path: str | None = None,
    db: str | None = None,
    host: str | None = None,
    port: int | None = None,
    listen: str | None = None,
    external_url: str | None = None,
    probe_files: Sequence[str] = (),
) -> InferwatchConfig:
    """The config ``inferwatch server`` runs: the file's, with the command line's options
    over it. Listening beyond loopback without ``auth`` is a :class:`ConfigError`."""
    import dataclasses

    from inferwatch.config import (
        InferwatchConfig,
        StorageConfig,
        is_loopback,
        load_config,
        parse_listen,
    )
    from inferwatch.tsdb.store import default_path

    if config_path is not None:
        cfg = load_config(config_path)
    else:
        cfg = InferwatchConfig(
            storage=StorageConfig(path=str(default_path()), retention_s=15 * 86400.0)
        )
    changes: dict[str, Any] = {}
    if listen is not None:
        try:
            host_, port_ = parse_listen(listen)
        except ValueError as exc:
            raise ConfigError(f"--listen: {exc} (got {listen!r})", field="listen") from None
        changes.update(listen_host=host_, listen_port=port_)
    if host is not None:
        changes["listen_host"] = host
    if port is not None:
        changes["listen_port"] = port
    if db:
        changes["storage"] = StorageConfig(path=db, retention_s=cfg.storage.retention_s)
    if alertmanager_config_path is not None:
        from inferwatch.alerting.config import load_config as load_alertmanager

        text = Path(alertmanager_config_path).read_text(encoding="utf-8")
        load_alertmanager(alertmanager_config_path)
        changes.update(
            alertmanager_file=alertmanager_config_path,
            alertmanager_text=text,
            alertmanager_raw=None,
        )
    if probe_files:
        changes["probe_files"] = (*cfg.probe_files, *probe_files)
    derived = cfg.external_url == f"http://{cfg.listen}"  # not set in the file
    if changes:
        cfg = dataclasses.replace(cfg, **changes)
    if external_url:
        cfg = dataclasses.replace(cfg, external_url=external_url.rstrip("/"))
    elif derived:
        cfg = dataclasses.replace(cfg, external_url=f"http://{cfg.listen}")
    if cfg.auth is None and not is_loopback(cfg.listen_host):
        raise ConfigError(
            f"auth: listening on {cfg.listen}, not a loopback address, needs `auth` "
            "(bearer_token or basic_auth) in the config file; or listen on 127.0.0.1",
            field="auth",
            value=cfg.listen,
        )
    return cfg


__all__ = ["DEFAULT_GROUP_WAIT_S", "FanOut", "Server", "run_server", "server_config"]
