from __future__ import annotations

from typing import Any

import pytest

from inferwatch import ConfigError
from inferwatch.scrape import (
    Authorization,
    BasicAuth,
    RelabelConfig,
    ScrapeConfig,
    StaticConfig,
    parse_duration,
    parse_scrape_configs,
)


def job(**fields: Any) -> dict[str, Any]:
    return {"job_name": "triton", "static_configs": [{"targets": ["triton:8002"]}], **fields}


def test_a_minimal_job_gets_prometheus_defaults() -> None:
    [config] = parse_scrape_configs([job()])
    assert config == ScrapeConfig(
        job_name="triton",
        static_configs=(StaticConfig(targets=("triton:8002",), labels={}),),
        scrape_interval=60.0,
        scrape_timeout=10.0,
        metrics_path="/metrics",
        scheme="http",
        params={},
        basic_auth=None,
        authorization=None,
        honor_labels=False,
        honor_timestamps=True,
        metric_relabel_configs=(),
    )


def test_a_full_job_is_read_field_by_field() -> None:
    [config] = parse_scrape_configs(
        [
            {
                "job_name": "vllm",
                "scrape_interval": "15s",
                "scrape_timeout": "5s",
                "metrics_path": "/v1/metrics",
                "scheme": "https",
                "params": {"module": ["llm", "gpu"]},
                "basic_auth": {"username": "prom", "password": "s3cret"},
                "honor_labels": True,
                "honor_timestamps": False,
                "static_configs": [
                    {"targets": ["vllm-0:8000", "vllm-1:8000"], "labels": {"cluster": "a"}},
                    {"targets": ["[::1]:8000"], "labels": {"replica": 3}},
                ],
                "metric_relabel_configs": [
                    {"source_labels": ["__name__"], "regex": "vllm:.*", "action": "keep"},
                    {"regex": "model_name", "action": "LabelDrop"},
                ],
            }
        ]
    )
    assert config.scrape_interval == 15.0
    assert config.scrape_timeout == 5.0
    assert config.metrics_path == "/v1/metrics"
    assert config.scheme == "https"
    assert config.params == {"module": ("llm", "gpu")}
    assert config.basic_auth == BasicAuth(username="prom", password="s3cret")
    assert config.honor_labels and not config.honor_timestamps
    assert [s.targets for s in config.static_configs] == [
        ("vllm-0:8000", "vllm-1:8000"),
        ("[::1]:8000",),
    ]
    assert config.static_configs[1].labels == {"replica": "3"}
    assert config.metric_relabel_configs == (
        RelabelConfig(source_labels=("__name__",), regex="vllm:.*", action="keep"),
        RelabelConfig(regex="model_name", action="labeldrop"),
    )


def test_relabel_configs_default_like_prometheus() -> None:
    [config] = parse_scrape_configs(
        [job(metric_relabel_configs=[{"source_labels": ["a"], "target_label": "b"}])]
    )
    [rule] = config.metric_relabel_configs
    assert (rule.action, rule.separator, rule.regex, rule.replacement) == (
        "replace",
        ";",
        "(.*)",
        "$1",
    )


def test_default_interval_stands_in_for_the_global_section() -> None:
    [config] = parse_scrape_configs([job()], default_interval=5.0)
    assert config.scrape_interval == 5.0
    assert config.scrape_timeout == 5.0  # the 10s default timeout is capped at the interval


def test_the_default_timeout_is_capped_at_a_short_interval() -> None:
    [config] = parse_scrape_configs([job(scrape_interval="2s")])
    assert config.scrape_timeout == 2.0


def test_bearer_tokens_become_an_authorization_header() -> None:
    [a, b, c] = parse_scrape_configs(
        [
            job(job_name="a", bearer_token="t0k3n"),
            job(job_name="b", bearer_token_file="/run/secrets/token"),
            job(job_name="c", authorization={"type": "Token", "credentials": "xyz"}),
        ]
    )
    assert a.authorization == Authorization(credentials="t0k3n")
    assert b.authorization == Authorization(credentials_file="/run/secrets/token")
    assert c.authorization == Authorization(type="Token", credentials="xyz")


def test_no_scrape_configs_is_an_empty_list() -> None:
    assert parse_scrape_configs(None) == []
    assert parse_scrape_configs([]) == []


@pytest.mark.parametrize(
    ("configs", "path", "value"),
    [
        (
            [job(), job(job_name="b", static_configs=[{"targets": ["a:1", "b:2", "http://c:3"]}])],
            "scrape_configs[1].static_configs[0].targets[2]",
            "http://c:3",
        ),
        ([job(static_configs=[{"targets": ["c:3/metrics"]}])], None, "c:3/metrics"),
        ([job(scrape_intervall="15s")], "scrape_configs[0].scrape_intervall", "15s"),
        ([{"static_configs": []}], "scrape_configs[0].job_name", ""),
        ([job(), job()], "scrape_configs[1].job_name", "triton"),
        (["triton"], "scrape_configs[0]", "triton"),
        ([job(scrape_interval="15")], "scrape_configs[0].scrape_interval", "15"),
        ([job(scrape_interval=15)], "scrape_configs[0].scrape_interval", 15),
        ([job(scrape_interval="0s")], "scrape_configs[0].scrape_interval", "0s"),
        (
            [job(scrape_interval="10s", scrape_timeout="11s")],
            "scrape_configs[0].scrape_timeout",
            "11s",
        ),
        ([job(metrics_path="metrics")], "scrape_configs[0].metrics_path", "metrics"),
        ([job(scheme="ftp")], "scrape_configs[0].scheme", "ftp"),
        ([job(params={"module": "llm"})], "scrape_configs[0].params.module", "llm"),
        ([job(honor_labels="yes")], "scrape_configs[0].honor_labels", "yes"),
        (
            [job(static_configs=[{"targets": ["a:1"], "labels": {"bad-name": "x"}}])],
            "scrape_configs[0].static_configs[0].labels.bad-name",
            "bad-name",
        ),
        (
            [job(static_configs=[{"targets": ["a:1"], "labels": {"team": ["x"]}}])],
            "scrape_configs[0].static_configs[0].labels.team",
            ["x"],
        ),
        (
            [job(static_configs=[{"targets": "a:1"}])],
            "scrape_configs[0].static_configs[0].targets",
            "a:1",
        ),
        (
            [job(basic_auth={"username": "u", "passwd": "p"})],
            "scrape_configs[0].basic_auth.passwd",
            "p",
        ),
        (
            [job(bearer_token="a", authorization={"credentials": "b"})],
            "scrape_configs[0].bearer_token",
            None,
        ),
        (
            [job(authorization={"type": "Basic", "credentials": "b"})],
            "scrape_configs[0].authorization.type",
            "Basic",
        ),
        (
            [job(metric_relabel_configs=[{"action": "hashmod", "modulus": 2}])],
            "scrape_configs[0].metric_relabel_configs[0].modulus",
            2,
        ),
        (
            [job(metric_relabel_configs=[{"action": "hashmod"}])],
            "scrape_configs[0].metric_relabel_configs[0].action",
            "hashmod",
        ),
        (
            [
                job(
                    metric_relabel_configs=[
                        {"source_labels": ["a"], "regex": "(", "action": "keep"}
                    ]
                )
            ],
            "scrape_configs[0].metric_relabel_configs[0].regex",
            "(",
        ),
        (
            [job(metric_relabel_configs=[{"source_labels": ["a"]}])],
            "scrape_configs[0].metric_relabel_configs[0].target_label",
            "",
        ),
        (
            [job(metric_relabel_configs=[{"target_label": "-x", "source_labels": ["a"]}])],
            "scrape_configs[0].metric_relabel_configs[0].target_label",
            "-x",
        ),
        (
            [job(metric_relabel_configs=[{"source_labels": ["a-b"], "target_label": "x"}])],
            "scrape_configs[0].metric_relabel_configs[0].source_labels[0]",
            "a-b",
        ),
        (
            [
                job(
                    metric_relabel_configs=[
                        {"action": "labeldrop", "regex": "x", "source_labels": ["a"]}
                    ]
                )
            ],
            "scrape_configs[0].metric_relabel_configs[0].action",
            "labeldrop",
        ),
    ],
)
def test_every_error_names_the_field_path_and_the_value(
    configs: list[Any], path: str | None, value: object
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scrape_configs(configs, source="inferwatch.yml")
    message = str(info.value)
    assert message.startswith("inferwatch.yml: ")
    if path is not None:
        assert info.value.field == path
        assert f": {path}: " in message
    if value is not None:
        assert repr(value) in message


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="scheme"):
        parse_scrape_configs([job(scheme="gopher")])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("15s", 15.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1w", 604800.0),
        ("1y", 31536000.0),
        ("1h30m15s500ms", 5415.5),
        ("0", 0.0),
        ("0s", 0.0),
    ],
)
def test_parse_duration_reads_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "1.5s", "s", "15sec", "1m1h", "-1s", "1s1s", " 1s"])
def test_parse_duration_rejects_what_prometheus_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration(text)


def test_scrape_config_checks_its_timeout_when_built_in_code() -> None:
    with pytest.raises(ConfigError, match="scrape_timeout"):
        ScrapeConfig(job_name="x", scrape_interval=5.0, scrape_timeout=6.0)
