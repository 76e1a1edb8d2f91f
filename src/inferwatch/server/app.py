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
- ``/-/healthy``, ``/-/ready``, ``POST /-/reload`` (also on SIGHUP) and ``/metrics``.

Rules are evaluated on their interval and also as soon as a scrape lands (at most four
times per interval), so an alert without ``for`` fires within about one scrape interval
of the metric crossing its threshold. Alerts go to the embedded Alertmanager and to every
Alertmanager listed in the Prometheus config.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route

from inferwatch._errors import ConfigError, InferwatchError
from inferwatch.alerting.alert import Alert, AlertSink
from inferwatch.server.config import ServerConfig, load_server_config

if TYPE_CHECKING:
    from inferwatch.health import ProbeRunner

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
        self.config = load_server_config(config_path) if config_path else ServerConfig()
        am_config = (
            load_config(alertmanager_config_path, default_group_wait_s=DEFAULT_GROUP_WAIT_S)
            if alertmanager_config_path
            else None
        )
        self.probe_files = list(probe_files)
        self.probes = self._load_probes(self.probe_files)
        if self.probes is not None and registry is None:
            from inferwatch.sdk.registry import Registry

            registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
        self.registry = registry
        if self.probes is not None:
            registry.register(self.probes)
        self.store = Store(db)
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
            self.rules.load(self.config.rule_files)
            self.scrape = ScrapeManager(
                self.store,
                self.config.scrape_configs,
                clock=clock,
                registry=registry,
                registry_interval=self.config.scrape_interval_s,
                on_scrape=lambda target, result: self.rules.trigger(),
            )
        except BaseException:
            self.store.close()
            raise
        self._reload_lock = threading.Lock()
        self.ready = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start scraping, rule evaluation and alert delivery in background threads."""
        if self.alertmanager is not None:
            self.alertmanager.start()
        self.rules.start()
        self.scrape.start()
        if self.probes is not None:
            self.probes.start()
        self.ready = True

    def stop(self) -> None:
        """Stop everything and close the store (what is acknowledged is on disk)."""
        self.ready = False
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
        """Re-read both config files: rule files and the Alertmanager config.

        A broken file changes nothing (the previous rules and routing keep running) and
        raises :class:`~inferwatch.InferwatchError` with the reason.
        """
        from inferwatch.alerting.config import load_config

        with self._reload_lock:
            config = load_server_config(self.config_path) if self.config_path else self.config
            am_config = None
            if self.alertmanager_config_path and self.alertmanager is not None:
                am_config = load_config(
                    self.alertmanager_config_path, default_group_wait_s=DEFAULT_GROUP_WAIT_S
                )
            probes = self._load_probes(self.probe_files)
            self.rules.load(config.rule_files)
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
        """The ASGI app serving the APIs of both Prometheus and Alertmanager."""
        from inferwatch.server.api import PrometheusAPI
        from inferwatch.server.rules_api import rules_routes

        api = PrometheusAPI(self.store, engine=self.engine, routes=rules_routes(self.rules))
        routes: list[Route | Mount] = [
            Route("/-/healthy", self._healthy, methods=["GET", "HEAD"]),
            Route("/-/ready", self._ready, methods=["GET", "HEAD"]),
            Route("/-/reload", self._reload, methods=["POST", "PUT"]),
            Mount("/api/v1", app=api),
        ]
        routes.append(Route("/metrics", self._metrics, methods=["GET"]))
        if self.alertmanager is not None:
            # Alertmanager's app routes its own full paths (/api/v2/...): it takes the rest.
            routes.append(Mount("", app=self.alertmanager.api_app()))
        return Starlette(routes=routes)

    async def _metrics(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        if self.alertmanager is not None:
            registry.register(self.alertmanager.collector())
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


def run_server(
    config_path: str | None,
    *,
    alertmanager_config_path: str | None,
    db: str,
    host: str = "127.0.0.1",
    port: int = 9090,
    external_url: str = "",
    probe_files: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> None:
    """Run :class:`Server` with uvicorn until Ctrl-C or SIGTERM; SIGHUP reloads."""
    import signal

    import uvicorn

    url = external_url or f"http://{host}:{port}"
    server = Server(
        config_path,
        alertmanager_config_path=alertmanager_config_path,
        db=db,
        external_url=url,
        probe_files=probe_files,
    )

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
    uv = uvicorn.Server(uvicorn.Config(server.app(), host=host, port=port, log_level="warning"))
    server.start()
    echo(f"inferwatch server on {url}")
    echo(f"  Prometheus API    {url}/api/v1 (rules, alerts, query, ...)")
    if server.alertmanager is not None:
        echo(f"  Alertmanager API  {url}/api/v2 (alerts, silences, status)")
    echo(f"  store             {db}")
    if server.probes is not None:
        echo(f"  probes            {len(server.probes.probes)} from {', '.join(probe_files)}")
    try:
        uv.run()
    finally:
        server.stop()


__all__ = ["DEFAULT_GROUP_WAIT_S", "FanOut", "Server", "run_server"]
