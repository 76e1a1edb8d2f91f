"""The demo's packaged rules, baseline and generated configs, checked by the real tools
(promtool, amtool) and by inferwatch's own."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inferwatch._errors import ConfigError
from inferwatch.analyze.baseline import load_baseline_rules
from inferwatch.demo.stack import (
    BASELINES_FILE,
    RULES_FILE,
    ConsoleAlerts,
    alert_line,
    alertmanager_config,
    check_webhook_url,
    prometheus_config,
)
from inferwatch.sdk.logs import log_alert_change

RULES_TEST = RULES_FILE.with_name("rules.test.yml")
INFERWATCH = [sys.executable, "-m", "inferwatch"]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "command",
    [["promtool", "test", "rules"], [*INFERWATCH, "rules", "test"]],
    ids=["promtool", "inferwatch"],
)
def test_the_rule_unit_tests_pass(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        pytest.skip(f"{command[0]} is not installed")
    result = run([*command, RULES_TEST.name], RULES_FILE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_accepts_the_generated_prometheus_config(tmp_path: Path) -> None:
    config = prometheus_config(rule_files=(str(RULES_FILE),))
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run(["promtool", "check", "config", "prometheus.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("webhook", [None, "http://127.0.0.1:5001/hook"], ids=["none", "webhook"])
def test_amtool_accepts_the_generated_alertmanager_config(
    tmp_path: Path, webhook: str | None
) -> None:
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(webhook)))
    result = run(["amtool", "check-config", "alertmanager.yml"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_webhook_receiver_sends_resolved_alerts_at_once() -> None:
    config = alertmanager_config("http://127.0.0.1:5001/hook")
    assert config["receivers"][0]["webhook_configs"][0]["send_resolved"] is True
    assert (config["route"]["group_wait"], config["route"]["group_interval"]) == ("0s", "5s")


@pytest.mark.parametrize("url", ["127.0.0.1:5001/hook", "ftp://host/x", "http://"])
def test_a_webhook_that_is_not_an_http_url_is_refused_naming_the_option(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^--webhook: not an http\(s\) URL") as info:
        check_webhook_url(url)
    assert repr(url) in str(info.value)


def test_the_baseline_feeds_the_series_the_latency_alert_reads() -> None:
    (rule,) = load_baseline_rules(BASELINES_FILE)
    assert rule.name == "latency_p99"
    assert f"{rule.name}:upper" in RULES_FILE.read_text()


def test_an_alert_line_names_the_alert_its_labels_and_summary() -> None:
    labels = {"alertname": "HighErrorRatio", "model": "digits", "severity": "critical"}
    line = alert_line("FIRING", "HighErrorRatio", labels, "50% of the inferences fail")
    assert line == "ALERT FIRING HighErrorRatio model=digits: 50% of the inferences fail"


def test_the_console_prints_firing_and_resolved_but_not_pending() -> None:
    lines: list[str] = []
    handler = ConsoleAlerts(lines.append)
    logger = logging.getLogger("inferwatch.alerts")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        changes = [("inactive", "pending"), ("pending", "firing"), ("firing", "inactive")]
        for previous, state in changes:
            log_alert_change(
                alertname="GPUHot",
                state=state,
                previous_state=previous,
                labels={"alertname": "GPUHot", "gpu": "0", "severity": "critical"},
                annotations={"summary": "GPU 0 is at 90 °C"},
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert lines == [
        "ALERT FIRING GPUHot gpu=0: GPU 0 is at 90 °C",
        "ALERT RESOLVED GPUHot gpu=0: GPU 0 is at 90 °C",
    ]
