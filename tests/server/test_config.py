"""The server's Prometheus configuration file."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from inferwatch import ConfigError
from inferwatch.server.config import (
    DEFAULT_INTERVAL_S,
    AlertmanagerTarget,
    load_server_config,
    parse_server_config,
)

FULL = """\
global:
  scrape_interval: 15s
  scrape_timeout: 5s
  evaluation_interval: 30s
  external_labels: {cluster: gpu-a, replica: "1"}
rule_files: ["rules/*.yml", /etc/abs.yml]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["am-1:9093", "am-2:9093"]}]
      path_prefix: /am/
      timeout: 3s
scrape_configs:
  - job_name: triton
    static_configs: [{targets: ["triton:8002"]}]
  - job_name: vllm
    scrape_interval: 2s
    static_configs: [{targets: ["vllm:8000"]}]
"""


def test_a_prometheus_config_is_read_with_its_intervals_and_targets(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(FULL)
    config = load_server_config(path)
    assert (config.scrape_interval_s, config.scrape_timeout_s) == (15.0, 5.0)
    assert config.evaluation_interval_s == 30.0
    assert config.external_labels == {"cluster": "gpu-a", "replica": "1"}
    assert config.rule_files == (str(tmp_path / "rules/*.yml"), "/etc/abs.yml")
    assert config.alertmanagers == (
        AlertmanagerTarget("http://am-1:9093/am", 3.0),
        AlertmanagerTarget("http://am-2:9093/am", 3.0),
    )
    triton, vllm = config.scrape_configs
    assert (triton.job_name, triton.scrape_interval, triton.scrape_timeout) == ("triton", 15.0, 5.0)
    assert (vllm.scrape_interval, vllm.scrape_timeout) == (2.0, 2.0)


def test_inferwatch_defaults_are_one_second_where_prometheus_has_one_minute() -> None:
    config = parse_server_config("scrape_configs: []\n")
    assert config.scrape_interval_s == config.evaluation_interval_s == DEFAULT_INTERVAL_S == 1.0
    assert config.scrape_timeout_s == 1.0  # never longer than the interval
    assert parse_server_config("").scrape_configs == ()


def test_prometheus_sections_inferwatch_does_not_use_are_logged_and_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "inferwatch.server"):
        config = parse_server_config("remote_write: [{url: 'http://x'}]\n", source="p.yml")
    assert config.scrape_configs == ()
    assert "p.yml: section 'remote_write' is not used by inferwatch" in caplog.text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scrape_confgs: []\n", "p.yml:1: scrape_confgs: unknown section"),
        ("global: {scrape_intervl: 1s}\n", "p.yml:1: global.scrape_intervl: unknown field"),
        ("global: {scrape_interval: 1x}\n", "p.yml:1: global.scrape_interval: invalid duration"),
        (
            "global: {scrape_interval: 1s, scrape_timeout: 2s}\n",
            "p.yml:1: global.scrape_timeout: 2s is longer than scrape_interval",
        ),
        ("rule_files: a.yml\n", "p.yml:1: rule_files: must be a list"),
        ("global: [1]\n", "p.yml:1: global: must be a mapping"),
        ("a: [\n", "p.yml:2: not valid YAML"),
        (
            "alerting: {alertmanagers: [{api_version: v1}]}\n",
            "p.yml:1: alerting.alertmanagers[0].api_version: only v2",
        ),
        (
            "alerting: {alertmanagers: [{timeout: soon}]}\n",
            "p.yml:1: alerting.alertmanagers[0].timeout: invalid duration",
        ),
        (
            "scrape_configs: [{job_name: a, scrape_interval: 1m}]\nglobal: {scrape_timeout: 5s}\n",
            None,
        ),
    ],
)
def test_mistakes_name_the_file_and_the_field(text: str, message: str | None) -> None:
    if message is None:  # a timeout alone was written for Prometheus's 1 m interval
        config = parse_server_config(text, source="p.yml")
        assert (config.scrape_interval_s, config.scrape_timeout_s) == (5.0, 5.0)
        assert config.scrape_configs[0].scrape_interval == 60
        return
    with pytest.raises(ConfigError) as err:
        parse_server_config(text, source="p.yml")
    assert message in str(err.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yml: cannot read"):
        load_server_config(tmp_path / "nope.yml")
