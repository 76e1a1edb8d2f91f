"""The generators of inferwatch.export, on plain values (no files, no processes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inferwatch._errors import ConfigError
from inferwatch.export import alertmanager as am
from inferwatch.export.grafana import PANELS, dashboard
from inferwatch.export.kubernetes import Deployment, horizontal_pod_autoscaler, scaled_object
from inferwatch.export.prometheus import (
    FEDERATE_JOB,
    prometheus_auth,
    prometheus_config,
    prometheus_duration,
)
from inferwatch.promql.engine import parse

APP_JS = Path(__file__).parents[2] / "src" / "inferwatch" / "server" / "static" / "app.js"

MIXED = {
    "global": {"resolve_timeout": "5m"},
    "route": {
        "receiver": "team",
        "routes": [
            {"matchers": ['severity="critical"'], "receiver": "oncall"},
            {
                "matchers": ['team="ml"'],
                "receiver": "both",
                "routes": [{"matchers": ['env="dev"'], "receiver": "oncall"}],
            },
        ],
    },
    "receivers": [
        {"name": "team", "webhook_configs": [{"url": "http://127.0.0.1:1/hook"}]},
        {"name": "oncall", "dingtalk_configs": [{"webhook_url": "https://ding.example/x"}]},
        {
            "name": "both",
            "slack_configs": [{"api_url": "https://slack.example/x", "channel": "#ml"}],
            "feishu_configs": [{"webhook_url": "https://feishu.example/x"}],
        },
        {"name": "quiet"},
    ],
}


def test_standard_part_routes_native_only_receivers_to_a_null_receiver() -> None:
    out = am.standard_part(MIXED)
    assert out["route"]["routes"][0]["receiver"] == am.ALERTMANAGER_NULL
    assert out["route"]["routes"][1]["routes"][0]["receiver"] == am.ALERTMANAGER_NULL
    by_name = {r["name"]: r for r in out["receivers"]}
    assert set(by_name) == {"team", "both", "quiet", am.ALERTMANAGER_NULL}
    assert by_name["both"] == {
        "name": "both",
        "slack_configs": MIXED["receivers"][2]["slack_configs"],
    }
    assert by_name[am.ALERTMANAGER_NULL] == {"name": am.ALERTMANAGER_NULL}
    assert out["global"] == MIXED["global"]


def test_native_part_keeps_only_dingtalk_wecom_feishu() -> None:
    out = am.native_part(MIXED)
    assert out["route"]["receiver"] == am.INFERWATCH_NULL
    by_name = {r["name"]: r for r in out["receivers"]}
    assert set(by_name) == {"oncall", "both", "quiet", am.INFERWATCH_NULL}
    assert set(by_name["both"]) == {"name", "feishu_configs"}
    assert am.native_receivers(MIXED) == ["oncall", "both"]


def test_split_leaves_the_input_unchanged() -> None:
    before = repr(MIXED)
    am.standard_part(MIXED)
    am.native_part(MIXED)
    assert repr(MIXED) == before


def test_reserved_null_receiver_name_is_an_error() -> None:
    config = {
        "route": {"receiver": "x"},
        "receivers": [
            {"name": "x", "dingtalk_configs": [{"webhook_url": "https://d.example"}]},
            {"name": am.ALERTMANAGER_NULL, "webhook_configs": [{"url": "http://h/"}]},
        ],
    }
    with pytest.raises(ConfigError, match=r"am\.yml: receivers: the name 'handled-by-inferwatch'"):
        am.standard_part(config, source="am.yml")


def test_receiver_without_name_is_an_error_naming_its_index() -> None:
    with pytest.raises(ConfigError, match=r"receivers\[1\]"):
        am.standard_part({"route": {"receiver": "a"}, "receivers": [{"name": "a"}, {}]})


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1, "1s"),
        (15, "15s"),
        (60, "1m"),
        (90, "90s"),
        (3600, "1h"),
        (7 * 86400, "7d"),
        (1.5, "1500ms"),
    ],
)
def test_prometheus_duration(seconds: float, text: str) -> None:
    assert prometheus_duration(seconds) == text


def test_prometheus_config_federates_advice_and_baselines_with_auth() -> None:
    config = prometheus_config(
        global_={"scrape_interval": "2s"},
        scrape_configs=[{"job_name": "digits", "static_configs": [{"targets": ["m:8000"]}]}],
        rule_files=["rules/a.yml"],
        inferwatch_address="127.0.0.1:9090",
        alertmanager_address="127.0.0.1:9093",
        inferwatch_auth=prometheus_auth("tok", None),
    )
    federate = config["scrape_configs"][-1]
    assert federate["job_name"] == FEDERATE_JOB
    assert federate["honor_labels"] is True
    assert federate["metrics_path"] == "/federate"
    matches = federate["params"]["match[]"]
    assert '{__name__=~".+:(upper|lower|anomaly_score)"}' in matches
    assert '{__name__=~"inferwatch_recommended_replicas.*"}' in matches
    assert federate["authorization"] == {"type": "Bearer", "credentials": "tok"}
    targets = [a["static_configs"][0]["targets"] for a in config["alerting"]["alertmanagers"]]
    assert targets == [["127.0.0.1:9093"], ["127.0.0.1:9090"]]
    assert config["alerting"]["alertmanagers"][1]["authorization"]["credentials"] == "tok"
    assert prometheus_auth(None, ("u", "p")) == {"basic_auth": {"username": "u", "password": "p"}}


def test_a_user_job_named_like_the_federate_job_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"x.yml: scrape_configs\[0\].job_name"):
        prometheus_config(
            global_={},
            scrape_configs=[{"job_name": FEDERATE_JOB}],
            rule_files=[],
            inferwatch_address="a:1",
            alertmanager_address="b:2",
            source="x.yml",
        )


def test_scaled_object_never_scales_to_zero_on_an_empty_result() -> None:
    obj = scaled_object(
        Deployment(name="digits", namespace="ml", model="digits"),
        prometheus_url="http://prom:9090",
        min_replicas=0,
        max_replicas=8,
    )
    assert obj["apiVersion"] == "keda.sh/v1alpha1" and obj["kind"] == "ScaledObject"
    assert obj["metadata"] == {
        "name": "digits",
        "namespace": "ml",
        "labels": {"app.kubernetes.io/managed-by": "inferwatch-export"},
    }
    spec = obj["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digits",
    }
    assert spec["minReplicaCount"] == 1
    assert spec["maxReplicaCount"] == 8
    assert spec["fallback"] == {"failureThreshold": 3, "replicas": 8}
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": "http://prom:9090",
        "query": 'max(inferwatch_recommended_replicas{model="digits"})',
        "threshold": "1",
        "ignoreNullValues": "false",
    }
    parse(trigger["metadata"]["query"])


def test_hpa_scales_on_cpu_and_the_advice() -> None:
    hpa = horizontal_pod_autoscaler(Deployment(name="d", model="m"), min_replicas=2, max_replicas=5)
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    cpu, external = hpa["spec"]["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    assert external["external"]["metric"] == {
        "name": "inferwatch_recommended_replicas",
        "selector": {"matchLabels": {"model": "m"}},
    }
    assert external["external"]["target"] == {"type": "AverageValue", "averageValue": "1"}


def _grafana_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def test_every_grafana_panel_expr_parses_with_inferwatch_promql() -> None:
    exprs = _grafana_exprs()
    assert len(exprs) == sum(len(p.queries) for p in PANELS) >= 20
    for expr in exprs:
        # Grafana puts a window for $__rate_interval; $model sits inside quotes as it is.
        parse(expr.replace("$__rate_interval", "1m"))


def test_grafana_panels_cover_the_built_in_dashboards_series() -> None:
    """Every series the built-in overview charts is charted in Grafana too."""
    source = APP_JS.read_text(encoding="utf-8")
    overview = source[
        source.index("async function refresh(") : source.index("async function fillDriftTable(")
    ]
    names = set(re.findall(r"\b(?:inferwatch|process|system|gpu)_[a-z_]+[a-z]\b", overview))
    names |= {m + ":upper" for m in ("latency_p99", "request_rate")}
    assert "inferwatch_inferences_total" in names
    grafana = " ".join(_grafana_exprs())
    missing = sorted(n for n in names if n not in grafana)
    assert not missing, f"series of the built-in dashboard missing in Grafana: {missing}"


def test_grafana_dashboard_shape() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["model"]["type"] == "query"
    assert "label_values(inferwatch_inferences_total, model)" in variables["model"]["definition"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    inference_exprs = [
        t["expr"]
        for p in board["panels"]
        for t in p.get("targets", [])
        if "inferwatch_inferences_total" in t["expr"]
    ]
    assert inference_exprs and all('model="$model"' in e for e in inference_exprs)
