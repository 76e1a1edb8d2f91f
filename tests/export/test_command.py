"""``inferwatch export``: the files it writes pass promtool and amtool, and fit together."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from inferwatch.cli import app
from inferwatch.config import load_config
from inferwatch.demo.stack import RULES_FILE
from inferwatch.promql.engine import parse

EXAMPLES = Path(__file__).parents[2] / "examples"

CONFIG = """\
listen: 127.0.0.1:9191
auth:
  bearer_token: s3cret
storage: {retention: 7d}
prometheus:
  global: {scrape_interval: 2s}
  rule_files: [rules/*.yml]
  scrape_configs:
    - job_name: digits
      static_configs: [{targets: ["127.0.0.1:8000"]}]
alertmanager:
  route:
    receiver: team
    group_wait: 1s
    routes:
      - matchers: ['severity="critical"']
        receiver: oncall-dingtalk
      - matchers: ['severity="warning"']
        receiver: both
  receivers:
    - name: team
      webhook_configs: [{url: "http://127.0.0.1:5001/hook", send_resolved: true}]
    - name: oncall-dingtalk
      dingtalk_configs: [{webhook_url: "https://oapi.dingtalk.com/robot/send?access_token=x"}]
    - name: both
      slack_configs: [{api_url: "https://hooks.slack.com/services/x", channel: "#ml"}]
      feishu_configs: [{webhook_url: "https://open.feishu.cn/open-apis/bot/v2/hook/x"}]
probes: [probes.yml]
baselines: [baselines.yml]
prices: prices.yml
scaling:
  interval: 30s
  models:
    digits: {capacity_rps: 50, min_replicas: 2, max_replicas: 12}
deployment:
  name: digits
  namespace: ml
  image: ghcr.io/example/digits:latest
  model: digits
"""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH; run scripts/setup (Debian: prometheus, "
            "prometheus-alertmanager)",
            pytrace=False,
        )
    return path


def _check(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _export(*args: str) -> str:
    result = CliRunner().invoke(app, ["export", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config")
    for name in ("prices.yml", "probes.yml", "baselines.yml"):
        shutil.copyfile(EXAMPLES / name, root / name)
    (root / "rules").mkdir()
    for name in ("model-serving.yml", "model-quality.yml"):
        shutil.copyfile(EXAMPLES / "rules" / name, root / "rules" / name)
    path = root / "inferwatch.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture(scope="module")
def stack(config_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("stack")
    output = _export("--config", str(config_file), "--out", str(out))
    assert "prometheus/prometheus.yml" in output
    return out


def test_prometheus_config_passes_promtool(stack: Path) -> None:
    _check(_tool("promtool"), "check", "config", str(stack / "prometheus" / "prometheus.yml"))
    rules = sorted((stack / "prometheus" / "rules").glob("*.yml"))
    assert [r.name for r in rules] == ["model-quality.yml", "model-serving.yml"]
    _check(_tool("promtool"), "check", "rules", *map(str, rules))


def test_rule_files_are_copied_byte_for_byte(stack: Path, config_file: Path) -> None:
    config = _load(stack / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["rules/model-quality.yml", "rules/model-serving.yml"]
    for name in ("model-quality.yml", "model-serving.yml"):
        copy = stack / "prometheus" / "rules" / name
        assert copy.read_bytes() == (config_file.parent / "rules" / name).read_bytes()


def test_prometheus_config_keeps_jobs_and_sends_alerts_to_both(stack: Path) -> None:
    config = _load(stack / "prometheus" / "prometheus.yml")
    assert config["global"] == {"scrape_interval": "2s", "evaluation_interval": "1s"}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["digits"] == {
        "job_name": "digits",
        "static_configs": [{"targets": ["127.0.0.1:8000"]}],
    }
    federate = jobs["inferwatch-federate"]
    assert federate["static_configs"] == [{"targets": ["127.0.0.1:9191"]}]
    assert federate["authorization"] == {"type": "Bearer", "credentials": "s3cret"}
    assert federate["honor_labels"] is True
    managers = config["alerting"]["alertmanagers"]
    assert [m["static_configs"][0]["targets"] for m in managers] == [
        ["127.0.0.1:9093"],
        ["127.0.0.1:9191"],
    ]
    assert "&id" not in (stack / "prometheus" / "prometheus.yml").read_text()


def test_alertmanager_config_passes_amtool_with_standard_receivers_only(stack: Path) -> None:
    path = stack / "alertmanager" / "alertmanager.yml"
    output = _check(_tool("amtool"), "check-config", str(path))
    assert "SUCCESS" in output
    config = _load(path)
    kinds = {key for r in config["receivers"] for key in r if key != "name"}
    assert kinds == {"webhook_configs", "slack_configs"}
    assert config["route"]["routes"][0]["receiver"] == "handled-by-inferwatch"


def test_inferwatch_server_config_loads_with_native_receivers(stack: Path) -> None:
    cfg = load_config(stack / "inferwatch" / "inferwatch.yaml")
    assert (cfg.listen_host, cfg.listen_port) == ("127.0.0.1", 9191)
    assert cfg.auth is not None and cfg.auth.bearer_token == "s3cret"
    assert cfg.prometheus.rule_files == ()
    assert cfg.scaling["digits"].max_replicas == 12
    assert [Path(p).name for p in cfg.baseline_files] == ["baselines.yml"]
    assert cfg.deployment is not None and cfg.deployment.namespace == "ml"
    am = cfg.alertmanager_config()
    kinds = {i.kind for r in am.receivers.values() for i in r.integrations}
    assert kinds == {"dingtalk", "feishu"}
    assert am.route.receiver == "handled-by-alertmanager"


def test_kubernetes_manifests_have_the_required_fields(stack: Path) -> None:
    keda = _load(stack / "kubernetes" / "keda-scaledobject.yaml")
    assert keda["apiVersion"] == "keda.sh/v1alpha1" and keda["kind"] == "ScaledObject"
    assert keda["metadata"]["name"] == "digits" and keda["metadata"]["namespace"] == "ml"
    spec = keda["spec"]
    assert spec["scaleTargetRef"]["name"] == "digits"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 12)
    assert spec["fallback"]["replicas"] >= spec["minReplicaCount"] >= 1
    trigger = spec["triggers"][0]
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"]["query"] == 'max(inferwatch_recommended_replicas{model="digits"})'
    assert trigger["metadata"]["ignoreNullValues"] == "false"
    assert trigger["metadata"]["threshold"] == "1"
    hpa = _load(stack / "kubernetes" / "hpa.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2" and hpa["kind"] == "HorizontalPodAutoscaler"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 12)
    assert {m["type"] for m in hpa["spec"]["metrics"]} == {"Resource", "External"}


def test_grafana_files_fit_together(stack: Path) -> None:
    board = json.loads((stack / "grafana" / "dashboards" / "inferwatch.json").read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            parse(target["expr"].replace("$__rate_interval", "1m"))
    datasources = _load(stack / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://127.0.0.1:9091"
    assert board["templating"]["list"][0]["current"]["value"] == source["uid"]
    providers = _load(stack / "grafana" / "provisioning" / "dashboards" / "inferwatch.yml")
    compose = _load(stack / "docker-compose.yml")
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == providers["providers"][0]["options"]["path"]


def test_compose_references_existing_files(stack: Path) -> None:
    compose = _load(stack / "docker-compose.yml")
    services = compose["services"]
    assert {"prometheus", "alertmanager", "grafana", "inferwatch", "digits"} <= set(services)
    assert services["digits"]["image"] == "ghcr.io/example/digits:latest"
    for name, service in services.items():
        if "build" in service:
            assert (stack / service["build"] / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            host = volume.split(":", 1)[0]
            if host.startswith("./"):
                assert (stack / host).exists(), f"{name} mounts missing {host}"
            else:
                assert host in compose["volumes"], f"{name} uses undeclared volume {host}"
    commands = {name: service.get("command", []) for name, service in services.items()}
    assert "--config.file=/etc/prometheus/prometheus.yml" in commands["prometheus"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in commands["alertmanager"]
    assert commands["inferwatch"][-1] == "/etc/inferwatch/inferwatch.yaml"
    assert "docker compose up" in (stack / "README.md").read_text()


def test_demo_stack_without_config(tmp_path: Path) -> None:
    _export("--out", str(tmp_path), "--target", "127.0.0.1:8123", "--webhook", "http://h:1/x")
    _check(_tool("promtool"), "check", "config", str(tmp_path / "prometheus" / "prometheus.yml"))
    _check(_tool("amtool"), "check-config", str(tmp_path / "alertmanager" / "alertmanager.yml"))
    rules = tmp_path / "prometheus" / "rules" / "rules.yml"
    assert rules.read_bytes() == RULES_FILE.read_bytes()
    config = _load(tmp_path / "prometheus" / "prometheus.yml")
    targets = [job["static_configs"][0]["targets"] for job in config["scrape_configs"]]
    assert targets == [["127.0.0.1:8123"], ["127.0.0.1:8123"]]
    receivers = _load(tmp_path / "alertmanager" / "alertmanager.yml")["receivers"]
    assert receivers[0]["webhook_configs"][0]["url"] == "http://h:1/x"
    services = _load(tmp_path / "docker-compose.yml")["services"]
    assert services["demo"]["command"][:5] == ["demo", "--host", "127.0.0.1", "--port", "8123"]
    assert not (tmp_path / "inferwatch" / "inferwatch.yaml").exists()


def test_bad_config_fails_with_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "inferwatch.yaml"
    bad.write_text("listen: 127.0.0.1:9090\nstorage:\n  retention: 15x\n")
    result = CliRunner().invoke(app, ["export", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert f"{bad}:3: storage.retention" in result.output
    assert not (tmp_path / "o").exists()


def test_out_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("")
    result = CliRunner().invoke(app, ["export", "--out", str(out)])
    assert result.exit_code == 1
    assert "exists and is not a directory" in result.output


def test_bad_address_is_an_error() -> None:
    result = CliRunner().invoke(app, ["export", "--out", "/nonexistent", "--alertmanager", "x"])
    assert result.exit_code == 1
    assert "--alertmanager: not a host:port address (got 'x')" in result.output


def test_plain_prometheus_file_keeps_its_other_sections(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_bytes((EXAMPLES / "rules" / "memory-leak.yml").read_bytes())
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 15s, external_labels: {cluster: a}}\n"
        "rule_files: [rules.yml]\n"
        "remote_write: [{url: 'http://127.0.0.1:9/write'}]\n"
        "scrape_configs:\n"
        "  - job_name: triton\n"
        "    static_configs: [{targets: ['127.0.0.1:8002']}]\n"
    )
    out = tmp_path / "out"
    _export("--config", str(config), "--out", str(out), "--webhook", "http://127.0.0.1:9/x")
    _check(_tool("promtool"), "check", "config", str(out / "prometheus" / "prometheus.yml"))
    _check(_tool("amtool"), "check-config", str(out / "alertmanager" / "alertmanager.yml"))
    exported = _load(out / "prometheus" / "prometheus.yml")
    assert exported["remote_write"] == [{"url": "http://127.0.0.1:9/write"}]
    assert exported["global"]["external_labels"] == {"cluster": "a"}
    assert exported["global"]["evaluation_interval"] == "1s"
    assert exported["rule_files"] == ["rules/rules.yml"]
    # No deployment: no Kubernetes manifests, said so.
    assert not (out / "kubernetes").exists()
    assert "no `deployment`" in (out / "README.md").read_text()


def test_alertmanager_templates_are_copied_beside_each_config(tmp_path: Path) -> None:
    (tmp_path / "tmpl").mkdir()
    template = (
        '{{ define "slack.ml.title" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}\n'
    )
    (tmp_path / "tmpl" / "ml.tmpl").write_text(template)
    (tmp_path / "alertmanager.yml").write_text(
        "templates: [tmpl/*.tmpl]\n"
        "route: {receiver: chat}\n"
        "receivers:\n"
        "  - name: chat\n"
        "    slack_configs: [{api_url: 'http://127.0.0.1:9/s', channel: '#x', "
        "title: '{{ template \"slack.ml.title\" . }}'}]\n"
        "    wecom_configs: [{webhook_url: 'http://127.0.0.1:9/w'}]\n"
    )
    config = tmp_path / "inferwatch.yaml"
    config.write_text("alertmanager: alertmanager.yml\n")
    out = tmp_path / "out"
    _export("--config", str(config), "--out", str(out))
    path = out / "alertmanager" / "alertmanager.yml"
    assert "1 templates" in _check(_tool("amtool"), "check-config", str(path))
    assert _load(path)["templates"] == ["templates/ml.tmpl"]
    assert (out / "alertmanager" / "templates" / "ml.tmpl").read_text() == template
    assert (out / "inferwatch" / "templates" / "ml.tmpl").read_text() == template
    native = load_config(out / "inferwatch" / "inferwatch.yaml").alertmanager_config()
    assert [i.kind for i in native.receivers["chat"].integrations] == ["wecom"]
