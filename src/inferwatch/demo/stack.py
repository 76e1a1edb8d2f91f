"""The monitoring stack inside ``inferwatch demo``: store, rules, baselines, alerting.

:class:`DemoStack` builds an embedded :class:`~inferwatch.server.app.Server` over the
demo's own registry (collected in process, no HTTP round trip) with the rules, the
baseline and the prices shipped in this package (``rules.yml``, ``baselines.yml``,
``prices.yml``), scaling advice for the ``digits`` model, and an embedded Alertmanager
whose only receiver is a webhook when one is given. Alerts that fire or resolve are
also printed, one line each::

    ALERT FIRING HighErrorRatio model=digits version=1: 100% of the inferences of digits 1 fail
    ALERT RESOLVED HighErrorRatio model=digits version=1: ...

Its Prometheus and Alertmanager configurations (:func:`prometheus_config`,
:func:`alertmanager_config`) are the ordinary formats (``promtool`` and ``amtool``
accept them), so the same rules run in a real Prometheus.
"""

from __future__ import annotations

import logging
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferwatch._errors import ConfigError

if TYPE_CHECKING:
    from inferwatch.server.app import Server

__all__ = [
    "BASELINES_FILE",
    "INTERVAL_S",
    "PRICES_FILE",
    "RULES_FILE",
    "ConsoleAlerts",
    "DemoStack",
    "alertmanager_config",
    "prometheus_config",
]

#: The demo's alert rules (a Prometheus rule file).
RULES_FILE = Path(__file__).with_name("rules.yml")
#: The demo's baselines (dynamic thresholds), in the format of ``examples/baselines.yml``.
BASELINES_FILE = Path(__file__).with_name("baselines.yml")
#: The demo's prices, for its cost series (``inferwatch_model_cost_per_hour``).
PRICES_FILE = Path(__file__).with_name("prices.yml")
#: Seconds between two collections of the demo's metrics and two rule evaluations.
INTERVAL_S = 2.0
#: Labels left out of the console line of an alert (the same in every demo alert).
HIDDEN_LABELS = frozenset({"alertname", "severity", "job", "instance", "uuid", "name"})
ALERT_LOGGER = "inferwatch.alerts"


def check_webhook_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL, else :class:`ConfigError` naming it."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--webhook: not an http(s) URL such as http://127.0.0.1:5001/hook (got {url!r})",
            field="webhook",
            value=url,
        )
    return url


def prometheus_config(
    *, rule_files: tuple[str, ...], interval_s: float = INTERVAL_S
) -> dict[str, Any]:
    """The demo's Prometheus configuration: no scrape targets (its own registry is
    collected in process), the given rule files, one interval for both."""
    return {
        "global": {
            "scrape_interval": f"{interval_s:g}s",
            "scrape_timeout": f"{interval_s:g}s",
            "evaluation_interval": f"{interval_s:g}s",
            "external_labels": {"service": "inferwatch-demo"},
        },
        "rule_files": list(rule_files),
    }


def alertmanager_config(webhook: str | None = None) -> dict[str, Any]:
    """The embedded Alertmanager's configuration: every alert, grouped by alert name and
    model, notified at once (``group_wait: 0s``, ``group_interval: 5s``) to the webhook
    (with the resolved notifications), or to no one without one."""
    receiver: dict[str, Any] = {"name": "demo"}
    if webhook is not None:
        receiver["webhook_configs"] = [
            {"url": check_webhook_url(webhook), "send_resolved": True, "max_alerts": 0}
        ]
    return {
        "route": {
            "receiver": "demo",
            "group_by": ["alertname", "model"],
            "group_wait": "0s",
            "group_interval": "5s",
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }


def alert_line(state: str, alertname: str, labels: Mapping[str, str], summary: str) -> str:
    """``ALERT FIRING HighErrorRatio model=digits version=1: <summary>``."""
    shown = " ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in HIDDEN_LABELS)
    head = f"ALERT {state} {alertname}" + (f" {shown}" if shown else "")
    return f"{head}: {summary}" if summary else head


class ConsoleAlerts(logging.Handler):
    """A handler of the ``inferwatch.alerts`` logger that prints one line when an alert
    fires and one when a firing alert resolves (pending alerts are not printed)."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        super().__init__(level=logging.INFO)
        self.echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        try:
            state = getattr(record, "state", "")
            previous = getattr(record, "previous_state", "")
            if state == "firing":
                word = "FIRING"
            elif previous == "firing":
                word = "RESOLVED"
            else:
                return
            labels = getattr(record, "labels", None) or {}
            annotations = getattr(record, "annotations", None) or {}
            alertname = str(getattr(record, "alertname", "") or labels.get("alertname", ""))
            self.echo(alert_line(word, alertname, labels, str(annotations.get("summary", ""))))
        except Exception:  # a console line must never break rule evaluation
            self.handleError(record)


class DemoStack:
    """The embedded server of ``inferwatch demo`` and what runs beside it.

    ``registry``: the demo's registry, collected every ``interval_s`` into the store in
    ``db`` (``None``: a temporary file, removed by :meth:`stop`). ``webhook``: the URL
    the embedded Alertmanager posts its notifications to (Alertmanager's webhook
    payload). ``echo``: where the alert lines go (``None``: nowhere). ``external_url``:
    the demo's base URL, for links in alerts. Call :meth:`start` and :meth:`stop`;
    :meth:`app` is the ASGI app to mount at ``/``.
    """

    def __init__(
        self,
        registry: Any,
        *,
        db: str | None = None,
        webhook: str | None = None,
        echo: Callable[[str], None] | None = None,
        external_url: str = "",
        interval_s: float = INTERVAL_S,
    ) -> None:
        import yaml

        from inferwatch.alerting.config import parse_config
        from inferwatch.analyze.scaling import ScalingPolicy
        from inferwatch.server.app import DEFAULT_GROUP_WAIT_S, Server
        from inferwatch.server.config import parse_server_config

        self.interval_s = interval_s
        prometheus = prometheus_config(rule_files=(str(RULES_FILE),), interval_s=interval_s)
        alertmanager = alertmanager_config(webhook)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if not db:
            self._tmp = tempfile.TemporaryDirectory(prefix="inferwatch-demo-")
            db = str(Path(self._tmp.name) / "demo.db")
        self.db = db
        try:
            self.server: Server = Server(
                prometheus=parse_server_config(yaml.safe_dump(prometheus), source="<demo>"),
                alertmanager_config=parse_config(
                    yaml.safe_dump(alertmanager),
                    file="<demo alertmanager>",
                    default_group_wait_s=DEFAULT_GROUP_WAIT_S,
                ),
                db=db,
                external_url=external_url,
                registry=registry,
                baseline_files=(str(BASELINES_FILE),),
                prices_file=str(PRICES_FILE),
                scaling={"digits": ScalingPolicy(capacity_rps=5.0, max_replicas=10)},
                scaling_interval_s=interval_s * 5,
            )
        except BaseException:
            self._cleanup()
            raise
        self.console = ConsoleAlerts(echo) if echo is not None else None

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    def app(self) -> Any:
        """The server's ASGI app: dashboard, ``/api/v1``, ``/api/v2``, ``/-/...``."""
        return self.server.app()

    def start(self) -> None:
        """Start collecting, evaluating rules and baselines, and notifying."""
        if self.console is not None:
            logger = logging.getLogger(ALERT_LOGGER)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self.console)
        self.server.start()

    def stop(self) -> None:
        """Stop everything, close the store and remove the temporary store."""
        try:
            self.server.stop()
        finally:
            if self.console is not None:
                logging.getLogger(ALERT_LOGGER).removeHandler(self.console)
            self._cleanup()
