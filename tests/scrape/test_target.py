"""One scrape of a real HTTP server on loopback into a recording appender."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferwatch.scrape import ScrapeConfig, StaticConfig, Target, scrape_once
from inferwatch.scrape.config import Authorization, BasicAuth, RelabelConfig
from inferwatch.scrape.target import ACCEPT_HEADER, targets_from_config
from inferwatch.tsdb.labels import METRIC_NAME, Labels
from inferwatch.tsdb.series import AppendResult
from tests.scrape.support import (
    ExpositionServer,
    RecordingAppender,
    exposed_sample_count,
    fixture_text,
)

Serve = Callable[..., ExpositionServer]
T0 = 1_700_000_000_000
SYNTHETIC = {
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
}


def make_target(address: str, *, job_name: str = "triton", **fields: Any) -> Target:
    labels = fields.pop("labels", {})
    fields.setdefault("scrape_interval", 5.0)
    fields.setdefault("scrape_timeout", 2.0)
    config = ScrapeConfig(
        job_name=job_name,
        static_configs=(StaticConfig(targets=(address,), labels=labels),),
        **fields,
    )
    [target] = targets_from_config(config)
    return target


def data_names(appender: RecordingAppender, **labels: str) -> set[str]:
    return appender.names(**labels) - SYNTHETIC


def test_a_triton_scrape_stores_every_sample_with_job_and_instance(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    text = fixture_text("triton.txt")
    server = serve(body=text)
    target = make_target(server.address)
    result = scrape_once(target, appender, http_client, T0)

    assert (result.health, result.error) == ("up", "")
    where = {"job": "triton", "instance": server.address}
    assert appender.value("nv_inference_request_success", model="resnet50", **where) == 1234
    assert appender.value("nv_inference_queue_duration_us", model="bert_onnx", **where) == 20415
    gpu = "GPU-3c8d1e0f-7a2b-4c5d-9e6f-1b2c3d4e5f60"
    assert appender.value("nv_gpu_utilization", gpu_uuid=gpu, **where) == 0.12
    count = exposed_sample_count(text)
    assert len(appender.select(None, **where)) == count + len(SYNTHETIC)
    assert appender.value("up", **where) == 1.0
    assert appender.value("scrape_samples_scraped", **where) == count
    assert appender.value("scrape_samples_post_metric_relabeling", **where) == count
    assert appender.value("scrape_series_added", **where) == count
    assert 0 < appender.value("scrape_duration_seconds", **where) < 2
    assert all(ts == T0 for ts, _ in appender.calls)
    assert appender.rejected == 0


def test_the_samples_of_one_scrape_are_appended_in_one_call(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    text = fixture_text("triton.txt")
    server = serve(body=text)
    scrape_once(make_target(server.address), appender, http_client, T0)
    data_call, report_call = appender.calls
    assert len(data_call[1]) == exposed_sample_count(text)
    assert {dict(labels)[METRIC_NAME] for labels, _ in report_call[1]} == SYNTHETIC


def test_a_second_scrape_adds_no_series(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body=fixture_text("triton.txt"))
    target = make_target(server.address)
    scrape_once(target, appender, http_client, T0)
    result = scrape_once(target, appender, http_client, T0 + 15_000)
    assert result.series_added == 0
    assert appender.value("scrape_series_added", job="triton") == 0
    points = next(iter(appender.select("nv_cpu_utilization").values()))
    assert points == [(T0, 0.23), (T0 + 15_000, 0.23)]


def test_a_vllm_scrape_keeps_colon_names_and_histograms(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    text = fixture_text("vllm.txt")
    server = serve(body=text)
    result = scrape_once(make_target(server.address, job_name="vllm"), appender, http_client, T0)
    assert result.health == "up"
    assert result.samples_scraped == exposed_sample_count(text)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    assert appender.value("vllm:num_requests_waiting", model_name=model, job="vllm") == 3
    bucket = "vllm:time_to_first_token_seconds_bucket"
    assert appender.value(bucket, le="0.06", model_name=model) == 1046
    assert appender.value("vllm:request_success_total", finished_reason="length") == 37


def test_the_scrape_request_looks_like_prometheus(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\n")
    scrape_once(make_target(server.address, scrape_timeout=1.5), appender, http_client, T0)
    [request] = server.requests
    assert request.path == "/metrics"
    assert request.headers["accept"] == ACCEPT_HEADER
    assert request.headers["user-agent"].startswith("inferwatch/")
    assert request.headers["x-prometheus-scrape-timeout-seconds"] == "1.5"


@pytest.mark.parametrize(
    ("response", "timeout", "reason"),
    [
        ({"body": fixture_text("triton.txt")[:1500]}, 2.0, "invalid Prometheus text format"),
        ({"body": "this is not an exposition\n"}, 2.0, "invalid Prometheus text format"),
        ({"body": "<html>oops</html>", "content_type": "text/html"}, 2.0, "invalid"),
        (
            {
                "body": "# TYPE a counter\na_total 1\n",
                "content_type": "application/openmetrics-text",
            },
            2.0,
            "EOF",
        ),
        (
            {"status": 500, "body": "nv_gpu_utilization 1\n"},
            2.0,
            "HTTP status 500 Internal Server Error",
        ),
        ({"status": 404}, 2.0, "HTTP status 404"),
        ({"body": "x 1\n", "delay": 5.0}, 0.3, "context deadline exceeded"),
    ],
    ids=["truncated", "garbage", "html", "openmetrics-without-eof", "500", "404", "hanging"],
)
def test_a_failed_scrape_stores_up_0_and_keeps_the_error(
    serve: Serve,
    appender: RecordingAppender,
    http_client: httpx.Client,
    response: dict[str, Any],
    timeout: float,
    reason: str,
) -> None:
    server = serve(**response)
    target = make_target(server.address, scrape_timeout=timeout)
    result = scrape_once(target, appender, http_client, T0)

    assert result.health == "down"
    assert reason in result.error
    assert (target.health, target.last_error) == ("down", result.error)
    assert appender.names() == SYNTHETIC  # nothing of the body reached the store
    assert appender.value("up", job="triton", instance=server.address) == 0
    assert appender.value("scrape_samples_scraped") == 0
    assert result.duration_s < timeout + 1.0


def test_a_target_that_is_down_gets_up_0(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\n")
    address = server.address
    server.stop()
    result = scrape_once(make_target(address), appender, http_client, T0)
    assert result.health == "down"
    assert "ConnectError" in result.error
    assert appender.value("up", instance=address) == 0


@pytest.mark.parametrize(
    ("served", "configured", "health"),
    [
        (
            {"basic_auth": ("prom", "s3cret")},
            {"basic_auth": BasicAuth(username="prom", password="s3cret")},
            "up",
        ),
        (
            {"basic_auth": ("prom", "s3cret")},
            {"basic_auth": BasicAuth(username="prom", password="wrong")},
            "down",
        ),
        ({"basic_auth": ("prom", "s3cret")}, {}, "down"),
        ({"bearer_token": "t0k3n"}, {"authorization": Authorization(credentials="t0k3n")}, "up"),
        ({"bearer_token": "t0k3n"}, {"authorization": Authorization(credentials="other")}, "down"),
    ],
    ids=["basic", "basic-wrong-password", "basic-missing", "bearer", "bearer-wrong"],
)
def test_credentials_are_sent_and_checked_by_the_server(
    serve: Serve,
    appender: RecordingAppender,
    http_client: httpx.Client,
    served: dict[str, Any],
    configured: dict[str, Any],
    health: str,
) -> None:
    server = serve(body="x 1\n", **served)
    result = scrape_once(make_target(server.address, **configured), appender, http_client, T0)
    assert result.health == health
    if health == "down":
        assert "HTTP status 401" in result.error


def test_credential_files_are_read_at_scrape_time(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    server = serve(body="x 1\n", bearer_token="second")
    target = make_target(
        server.address, authorization=Authorization(credentials_file=str(token_file))
    )
    assert scrape_once(target, appender, http_client, T0).health == "down"
    token_file.write_text("second\n")
    assert scrape_once(target, appender, http_client, T0 + 1000).health == "up"
    token_file.unlink()
    result = scrape_once(target, appender, http_client, T0 + 2000)
    assert "cannot read credentials" in result.error


def test_params_and_metrics_path_make_the_url(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\n")
    target = make_target(
        server.address, metrics_path="/v2/metrics", params={"module": ("llm", "gpu"), "x": ("1",)}
    )
    assert scrape_once(target, appender, http_client, T0).health == "up"
    [request] = server.requests
    assert request.path == "/v2/metrics"
    assert request.query == {"module": ["llm", "gpu"], "x": ["1"]}


def test_target_labels_win_and_scraped_ones_are_exported(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body='x{job="other",instance="pod-1",exported_job="taken",zone="a"} 1\n')
    target = make_target(server.address, labels={"zone": "b"})
    scrape_once(target, appender, http_client, T0)
    [labels] = appender.select("x")
    assert dict(labels) == {
        METRIC_NAME: "x",
        "job": "triton",
        "instance": server.address,
        "zone": "b",
        "exported_instance": "pod-1",
        "exported_job": "taken",
        "exported_exported_job": "other",
        "exported_zone": "a",
    }


def test_honor_labels_keeps_the_scraped_labels(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body='x{job="federated",instance="pod-1"} 1\ny 2\n')
    target = make_target(server.address, honor_labels=True, labels={"zone": "b"})
    scrape_once(target, appender, http_client, T0)
    assert appender.value("x", job="federated", instance="pod-1", zone="b") == 1
    assert appender.value("y", job="triton", instance=server.address, zone="b") == 2
    assert appender.value("up", job="triton", instance=server.address) == 1


def test_metric_relabel_configs_apply_after_the_target_labels(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    text = fixture_text("triton.txt")
    server = serve(body=text)
    rules = (
        RelabelConfig(source_labels=("__name__",), regex="nv_inference_.*", action="keep"),
        RelabelConfig(source_labels=("model",), target_label="model_name"),
        RelabelConfig(regex="model", action="labeldrop"),
        RelabelConfig(source_labels=("job", "version"), separator="@", target_label="tag"),
    )
    target = make_target(server.address, metric_relabel_configs=rules)
    result = scrape_once(target, appender, http_client, T0)
    kept = sum(1 for line in text.splitlines() if line.startswith("nv_inference_"))
    assert (result.samples_scraped, result.samples_post_relabel) == (
        exposed_sample_count(text),
        kept,
    )
    assert appender.value("scrape_samples_scraped") == exposed_sample_count(text)
    assert appender.value("scrape_samples_post_metric_relabeling") == kept
    assert all(name.startswith("nv_inference_") for name in data_names(appender))
    value = appender.value("nv_inference_count", model_name="resnet50", tag="triton@1")
    assert value == 4936
    assert not appender.select(None, model="resnet50")


def test_a_series_that_disappears_gets_a_staleness_marker(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body='requests{model="a"} 1\nrequests{model="b"} 2\n')
    target = make_target(server.address)
    scrape_once(target, appender, http_client, T0)
    server.response.body = 'requests{model="a"} 3\n'
    result = scrape_once(target, appender, http_client, T0 + 5000)

    assert result.stale_markers == 1
    [stale] = appender.stale_series(T0 + 5000)
    assert dict(stale)["model"] == "b"
    assert appender.value("requests", model="a") == 3
    assert appender.value("up") == 1
    assert appender.rejected == 0  # each marker is written once


def test_repeated_scrapes_through_the_target_caches_store_what_each_body_says(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    # The parser's cache and the target's map of final label sets are reused from one
    # scrape to the next: values change, a series leaves and comes back, relabeling
    # keeps dropping what it dropped, and a new series mid-body is found.
    body = 'requests{model="a"} %s\nrequests{model="b"} %s\ndebug_x{model="a"} 9\n'
    server = serve(body=body % (1, 2))
    drop = (RelabelConfig(source_labels=("__name__",), regex="debug_.*", action="drop"),)
    target = make_target(server.address, metric_relabel_configs=drop)
    results = [scrape_once(target, appender, http_client, T0)]
    server.response.body = body % (3, 4)
    results.append(scrape_once(target, appender, http_client, T0 + 5000))
    assert appender.value("requests", model="a") == 3
    assert appender.value("requests", model="b") == 4
    server.response.body = 'requests{model="a"} 5\ndebug_x{model="a"} 9\n'
    results.append(scrape_once(target, appender, http_client, T0 + 10_000))
    assert {dict(s)["model"] for s in appender.stale_series(T0 + 10_000)} == {"b"}
    server.response.body = 'requests{model="a"} 6\nrequests{model="c"} 7\nrequests{model="b"} 8\n'
    results.append(scrape_once(target, appender, http_client, T0 + 15_000))
    server.response.body = 'requests{model="a"} 6\nrequests{model="c"} 7\nrequests{model="b"} 8\n'
    results.append(scrape_once(target, appender, http_client, T0 + 20_000))

    assert [r.stale_markers for r in results] == [0, 0, 1, 0, 0]
    assert [r.samples_post_relabel for r in results] == [2, 2, 1, 3, 3]
    assert [r.series_added for r in results] == [2, 0, 0, 1, 0]
    assert appender.names() - SYNTHETIC == {"requests"}
    assert appender.select("requests", model="b")[_only(appender, "b")][-2:] == [
        (T0 + 15_000, 8.0),
        (T0 + 20_000, 8.0),
    ]
    assert appender.value("requests", model="c") == 7
    assert all(dict(series)["job"] == "triton" for series in appender.select("requests"))


def _only(appender: RecordingAppender, model: str) -> Labels:
    [series] = appender.select("requests", model=model)
    return series


def test_a_failed_scrape_marks_every_series_of_the_last_one_stale_once(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body='requests{model="a"} 1\nrequests{model="b"} 2\n')
    target = make_target(server.address)
    scrape_once(target, appender, http_client, T0)
    server.response.status = 500
    failed = scrape_once(target, appender, http_client, T0 + 5000)
    assert failed.stale_markers == 2
    assert {dict(s)["model"] for s in appender.stale_series(T0 + 5000)} == {"a", "b"}
    # The synthetic series are never marked stale: they report the failure.
    assert appender.value("up") == 0

    again = scrape_once(target, appender, http_client, T0 + 10_000)
    assert again.stale_markers == 0

    server.response.status = 200
    back = scrape_once(target, appender, http_client, T0 + 15_000)
    assert back.health == "up"
    assert appender.value("requests", model="a") == 1
    assert not math.isnan(appender.value("requests", model="b"))
    assert appender.rejected == 0


def test_exposed_timestamps_are_honored_and_not_tracked_for_staleness(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body=f"federated 7 {T0 - 30_000}\nlocal 1\n")
    target = make_target(server.address)
    scrape_once(target, appender, http_client, T0)
    assert appender.select("federated")[next(iter(appender.select("federated")))] == [
        (T0 - 30_000, 7.0)
    ]
    server.response.body = "local 2\n"
    result = scrape_once(target, appender, http_client, T0 + 5000)
    assert result.stale_markers == 0


def test_exposed_timestamps_can_be_ignored(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body=f"federated 7 {T0 - 30_000}\n")
    scrape_once(make_target(server.address, honor_timestamps=False), appender, http_client, T0)
    [points] = appender.select("federated").values()
    assert points == [(T0, 7.0)]


def test_relabeling_away_the_metric_name_fails_the_scrape(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\n")
    rules = (RelabelConfig(regex="__name__", action="labeldrop"),)
    result = scrape_once(
        make_target(server.address, metric_relabel_configs=rules), appender, http_client, T0
    )
    assert result.health == "down"
    assert "__name__" in result.error
    assert appender.names() == SYNTHETIC


def test_an_openmetrics_answer_is_read_with_the_openmetrics_parser(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    body = "# TYPE requests counter\nrequests_total 5\nrequests_created 1.7e9\n# EOF\n"
    server = serve(body=body, content_type="application/openmetrics-text; version=1.0.0")
    scrape_once(make_target(server.address), appender, http_client, T0)
    assert data_names(appender) == {"requests_total"}


def test_duplicate_samples_are_rejected_but_the_scrape_is_up(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\nx 2\n")
    result = scrape_once(make_target(server.address), appender, http_client, T0)
    assert (result.health, result.rejected) == ("up", 1)
    assert appender.value("x") == 1


class BrokenAppender:
    def __init__(self) -> None:
        self.report: list[tuple[Labels, float]] = []

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult:
        if any(dict(labels)[METRIC_NAME] == "up" for labels, _ in samples):
            self.report = list(samples)
            return AppendResult(accepted=len(samples))
        raise OSError("disk full")


def test_a_store_failure_is_reported_as_a_failed_scrape(
    serve: Serve, http_client: httpx.Client
) -> None:
    server = serve(body="x 1\n")
    broken = BrokenAppender()
    target = make_target(server.address)
    result = scrape_once(target, broken, http_client, T0)
    assert result.health == "down"
    assert "disk full" in result.error
    assert dict((dict(labels)[METRIC_NAME], v) for labels, v in broken.report)["up"] == 0


def test_targets_get_job_instance_and_static_labels() -> None:
    config = ScrapeConfig(
        job_name="triton",
        scheme="https",
        params={"module": ("a", "b")},
        static_configs=(
            StaticConfig(targets=("gpu-0:8002", "gpu-1:8002"), labels={"zone": "eu"}),
            StaticConfig(
                targets=("gpu-2:8002",),
                labels={
                    "instance": "gpu-2",
                    "job": "triton-canary",
                    "__metrics_path__": "/alt",
                    "__param_module": "c",
                },
            ),
        ),
    )
    targets = targets_from_config(config)
    assert [(t.url, t.labels) for t in targets] == [
        (
            "https://gpu-0:8002/metrics?module=a&module=b",
            {"instance": "gpu-0:8002", "job": "triton", "zone": "eu"},
        ),
        (
            "https://gpu-1:8002/metrics?module=a&module=b",
            {"instance": "gpu-1:8002", "job": "triton", "zone": "eu"},
        ),
        ("https://gpu-2:8002/alt?module=c&module=b", {"instance": "gpu-2", "job": "triton-canary"}),
    ]
    assert all(t.job == "triton" for t in targets)


def test_start_offsets_are_stable_and_within_the_interval() -> None:
    config = ScrapeConfig(
        job_name="j",
        scrape_interval=15.0,
        static_configs=(StaticConfig(targets=tuple(f"h{i}:1" for i in range(20))),),
    )
    first = [t.offset() for t in targets_from_config(config)]
    assert first == [t.offset() for t in targets_from_config(config)]
    assert all(0 <= offset < 15 for offset in first)
    assert len(set(first)) > 15


def test_status_reports_the_last_scrape(
    serve: Serve, appender: RecordingAppender, http_client: httpx.Client
) -> None:
    server = serve(status=503)
    target = make_target(server.address)
    assert target.status().health == "unknown"
    scrape_once(target, appender, http_client, T0)
    status = target.status()
    assert (status.job, status.url, status.health) == (
        "triton",
        f"http://{server.address}/metrics",
        "down",
    )
    assert "503" in status.last_error
    assert status.last_scrape_ms == T0
    assert status.last_duration_s is not None and status.last_duration_s >= 0
    assert dict(status.labels) == {"job": "triton", "instance": server.address}
