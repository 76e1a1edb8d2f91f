"""The exported Grafana dashboard and its provisioning files.

The dashboard shows the panels of inferwatch's built-in dashboard with the same PromQL,
for one model at a time (the ``model`` variable) and from any Prometheus-compatible data
source (the ``datasource`` variable): the exported Prometheus, or the inferwatch server
itself, whose ``/api/v1`` is the Prometheus HTTP API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The uid of the provisioned Prometheus data source.
DATASOURCE_UID = "inferwatch-prometheus"
#: The dashboard's uid, so links to it stay stable across exports.
DASHBOARD_UID = "inferwatch-overview"
#: Where the compose file mounts the dashboards directory inside the Grafana container.
DASHBOARDS_DIR = "/var/lib/grafana/dashboards"

_M = 'model="$model"'
#: Grafana's rate window; the built-in dashboard picks one from the time range the same way.
_R = "$__rate_interval"
#: The accuracy window: at least 5 minutes, as the built-in dashboard's.
_QW = "5m"


@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL expression of a panel, with the legend Grafana draws for it."""

    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel: a title, a Grafana unit (``s``, ``percentunit``, ...), its queries,
    and the row it belongs to. ``kind`` is ``timeseries`` or ``stat``."""

    row: str
    title: str
    unit: str
    queries: tuple[Query, ...]
    kind: str = "timeseries"
    description: str = ""


def _q(expr: str, legend: str) -> Query:
    return Query(expr, legend)


def _quantile(q: str) -> str:
    return (
        f"histogram_quantile({q}, sum by (le) "
        f"(rate(inferwatch_inference_duration_seconds_bucket{{{_M}}}[{_R}])))"
    )


def _band(name: str) -> tuple[Query, ...]:
    """The learned range of the baseline ``name`` (absent until it has enough history)."""
    return (
        _q(f"max({name}:upper{{{_M}}})", f"{name} upper"),
        _q(f"min({name}:lower{{{_M}}})", f"{name} lower"),
    )


# The expressions of the built-in dashboard (inferwatch/server/static/app.js), with
# Grafana's $model and $__rate_interval where it puts the chosen model and window.
TOTAL = f"sum(rate(inferwatch_inferences_total{{{_M}}}[{_R}]))"
ERRORS = f'sum(rate(inferwatch_inferences_total{{{_M},outcome="error"}}[{_R}]))'
ERROR_RATIO = f"({ERRORS} or vector(0)) / ({TOTAL} > 0)"
ACCURACY = (
    f'sum(rate(inferwatch_labels_total{{{_M},correct="true"}}[{_QW}])) / '
    f'(sum(rate(inferwatch_labels_total{{{_M},correct!=""}}[{_QW}])) > 0)'
)
COST_PER_1000 = (
    f"sum by (currency) (inferwatch_model_cost_per_hour{{{_M}}} / on(model) group_left "
    f"sum by (model) (rate(inferwatch_inferences_total{{{_M}}}[1h])) / 3.6)"
)
BATCH_SIZE = (
    f"sum(rate(inferwatch_inference_batch_size_sum{{{_M}}}[{_R}])) / "
    f"(sum(rate(inferwatch_inference_batch_size_count{{{_M}}}[{_R}])) > 0)"
)
IN_FLIGHT = f"sum(inferwatch_inferences_in_flight{{{_M}}})"
REPLICAS = f"max(inferwatch_recommended_replicas{{{_M}}})"

#: The panels, in order, with the PromQL of the built-in dashboard.
PANELS: tuple[Panel, ...] = (
    Panel("Overview", "Requests/s", "reqps", (_q(TOTAL, "requests/s"),), kind="stat"),
    Panel("Overview", "Error ratio", "percentunit", (_q(ERROR_RATIO, "errors"),), kind="stat"),
    Panel("Overview", "p95 latency", "s", (_q(_quantile("0.95"), "p95"),), kind="stat"),
    Panel("Overview", "In flight", "short", (_q(IN_FLIGHT, "in flight"),), kind="stat"),
    Panel("Overview", "Accuracy", "percentunit", (_q(ACCURACY, "accuracy"),), kind="stat"),
    Panel(
        "Overview",
        "Features drifting",
        "short",
        (_q(f"count(inferwatch_drift_detected{{{_M}}} > 0) or vector(0)", "drifting"),),
        kind="stat",
    ),
    Panel("Overview", "Recommended replicas", "short", (_q(REPLICAS, "replicas"),), kind="stat"),
    Panel(
        "Overview",
        "Cost per 1,000 inferences",
        "short",
        (_q(COST_PER_1000, "{{currency}}"),),
        kind="stat",
    ),
    Panel(
        "Traffic",
        "Throughput",
        "reqps",
        (_q(TOTAL, "all"), _q(ERRORS, "errors"), *_band("request_rate")),
        description="Inferences/s and errors/s, with the learned range of the request_rate "
        "baseline where one exists.",
    ),
    Panel("Traffic", "Error ratio", "percentunit", (_q(ERROR_RATIO, "error ratio"),)),
    Panel(
        "Traffic",
        "Latency",
        "s",
        (
            _q(_quantile("0.5"), "p50"),
            _q(_quantile("0.95"), "p95"),
            _q(_quantile("0.99"), "p99"),
            *_band("latency_p99"),
        ),
        description="p50/p95/p99 of inference time, with the learned range of the "
        "latency_p99 baseline where one exists.",
    ),
    Panel("Traffic", "In flight", "short", (_q(IN_FLIGHT, "in flight"),)),
    Panel("Traffic", "Mean batch size", "short", (_q(BATCH_SIZE, "mean batch size"),)),
    Panel(
        "Resources",
        "Process CPU",
        "percentunit",
        (
            _q(
                f"sum by (job, instance) (rate(process_cpu_seconds_total[{_R}]))",
                "{{job}} {{instance}}",
            ),
        ),
    ),
    Panel(
        "Resources",
        "Process memory",
        "bytes",
        (_q("sum by (job, instance) (process_resident_memory_bytes)", "{{job}} {{instance}}"),),
    ),
    Panel(
        "Resources",
        "Host memory used",
        "percentunit",
        (_q("max by (instance) (system_memory_used_ratio)", "{{instance}}"),),
    ),
    Panel(
        "Resources",
        "GPU utilisation",
        "percentunit",
        (_q("max by (instance, gpu) (gpu_utilization_ratio)", "{{instance}} GPU {{gpu}}"),),
    ),
    Panel(
        "Resources",
        "GPU memory used",
        "percentunit",
        (_q("max by (instance, gpu) (gpu_memory_used_ratio)", "{{instance}} GPU {{gpu}}"),),
    ),
    Panel(
        "Resources",
        "GPU temperature",
        "celsius",
        (_q("max by (instance, gpu) (gpu_temperature_celsius)", "{{instance}} GPU {{gpu}}"),),
    ),
    Panel(
        "Resources",
        "GPUs available",
        "short",
        (_q("max(gpu_available)", "GPUs available"),),
        kind="stat",
    ),
    Panel(
        "Quality",
        "Accuracy (delayed labels)",
        "percentunit",
        (_q(ACCURACY, "accuracy"),),
    ),
    Panel(
        "Quality",
        "Drift by feature",
        "short",
        (
            _q(f"max by (feature) (inferwatch_drift_psi{{{_M}}})", "PSI {{feature}}"),
            _q(f"max by (feature) (inferwatch_drift_js_distance{{{_M}}})", "JS {{feature}}"),
        ),
    ),
    Panel(
        "Quality",
        "Drift detected",
        "short",
        (_q(f"inferwatch_drift_detected{{{_M}}}", "{{feature}}"),),
    ),
    Panel(
        "Scaling and cost",
        "Recommended replicas",
        "short",
        (
            _q(REPLICAS, "replicas"),
            _q(f"inferwatch_recommended_replicas_reason{{{_M}}} > 0", "reason: {{reason}}"),
        ),
    ),
    Panel(
        "Scaling and cost",
        "Cost per hour",
        "short",
        (_q(f"sum by (currency) (inferwatch_model_cost_per_hour{{{_M}}})", "{{currency}}/h"),),
    ),
    Panel(
        "Scaling and cost",
        "Cost per 1,000 inferences",
        "short",
        (_q(COST_PER_1000, "{{currency}} per 1,000"),),
    ),
)

_WIDTH = {"stat": 6, "timeseries": 12}
_HEIGHT = {"stat": 4, "timeseries": 8}


def dashboard(panels: tuple[Panel, ...] = PANELS, *, title: str = "inferwatch") -> dict[str, Any]:
    """The dashboard JSON (Grafana schemaVersion 39), with ``datasource`` and ``model``
    variables and one collapsible row per :attr:`Panel.row`."""
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    out: list[dict[str, Any]] = []
    x = y = row_height = 0
    row = None
    for panel in panels:
        if panel.row != row:
            y += row_height
            x = row_height = 0
            row = panel.row
            out.append(
                {
                    "id": len(out) + 1,
                    "type": "row",
                    "title": row,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                    "panels": [],
                }
            )
            y += 1
        w, h = _WIDTH[panel.kind], _HEIGHT[panel.kind]
        if x + w > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(
            {
                "id": len(out) + 1,
                "type": panel.kind,
                "title": panel.title,
                "description": panel.description,
                "datasource": datasource,
                "gridPos": {"h": h, "w": w, "x": x, "y": y},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": _options(panel.kind),
                "targets": [
                    {
                        "refId": chr(ord("A") + i),
                        "datasource": datasource,
                        "expr": query.expr,
                        "legendFormat": query.legend,
                        "range": True,
                    }
                    for i, query in enumerate(panel.queries)
                ],
            }
        )
        x += w
        row_height = max(row_height, h)
    return {
        "uid": DASHBOARD_UID,
        "title": title,
        "tags": ["inferwatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "15s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": DATASOURCE_UID},
                },
                {
                    "name": "model",
                    "label": "Model",
                    "type": "query",
                    "datasource": datasource,
                    "query": {
                        "query": "label_values(inferwatch_inferences_total, model)",
                        "refId": "model",
                    },
                    "definition": "label_values(inferwatch_inferences_total, model)",
                    "refresh": 2,
                    "sort": 1,
                    "multi": False,
                    "includeAll": False,
                },
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": out,
    }


def _options(kind: str) -> dict[str, Any]:
    if kind == "stat":
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
        }
    return {
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }


def datasource_provisioning(prometheus_url: str) -> dict[str, Any]:
    """Grafana's ``provisioning/datasources`` file: the Prometheus at ``prometheus_url``."""
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": "Prometheus",
                "uid": DATASOURCE_UID,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "isDefault": True,
                "editable": False,
            }
        ],
    }


def dashboard_provisioning(path: str = DASHBOARDS_DIR) -> dict[str, Any]:
    """Grafana's ``provisioning/dashboards`` file: load the dashboards found in ``path``."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "inferwatch",
                "folder": "inferwatch",
                "type": "file",
                "disableDeletion": False,
                "updateIntervalSeconds": 30,
                "allowUiUpdates": True,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }
