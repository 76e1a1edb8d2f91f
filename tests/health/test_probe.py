"""Synthetic probes against real loopback HTTP servers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from inferwatch import ConfigError, Registry
from inferwatch.exposition import render
from inferwatch.health import (
    JSONCheck,
    PathExists,
    Probe,
    ProbeRunner,
    ValueInRange,
    ValueMatches,
    evaluate_response,
    parse_json_path,
)
from tests.health.conftest import Answer, ModelServer
from tests.support import free_port

PREDICTION = {"predictions": [{"label": "cat", "score": 0.92}], "model": "pets-v2"}
CHECKS: list[JSONCheck] = [
    PathExists("$.predictions[0].label"),
    ValueInRange("$.predictions[0].score", 0, 1),
    ValueMatches("$.model", r"^pets-v\d+$"),
]


def run(*probes: Probe) -> dict[str, Any]:
    return dict(ProbeRunner(probes).run_once())


def test_probe_of_a_healthy_endpoint_succeeds(model_server: ModelServer) -> None:
    url = model_server.answer_json("/predict", PREDICTION)
    result = run(Probe("pets", url, checks=CHECKS))["pets"]
    assert result.success
    assert (result.status_code, result.failure, result.failed_checks) == (200, "", 0)
    assert result.duration_seconds > 0


def test_post_sends_json_body_and_headers(model_server: ModelServer) -> None:
    url = model_server.answer_json("/predict", PREDICTION)
    probe = Probe(
        "pets",
        url,
        method="post",
        body={"instances": [[1, 2]]},
        headers={"Authorization": "Bearer t0ken"},
    )
    assert run(probe)["pets"].success
    [seen] = model_server.seen
    assert seen.method == "POST"
    assert json.loads(seen.body) == {"instances": [[1, 2]]}
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["Authorization"] == "Bearer t0ken"


def test_slow_endpoint_times_out(model_server: ModelServer) -> None:
    model_server.answers["/slow"] = Answer(hang=True)
    probe = Probe("slow", model_server.url("/slow"), timeout_s=0.3, interval_s=1)
    result = run(probe)["slow"]
    assert not result.success
    assert (result.failure, result.status_code) == ("timeout", 0)
    assert result.reason == "no complete answer within 0.3s"
    assert result.duration_seconds >= 0.3 * 0.9


def test_endpoint_that_is_down_fails_with_connection(model_server: ModelServer) -> None:
    result = run(Probe("down", f"http://127.0.0.1:{free_port()}/predict"))["down"]
    assert (result.success, result.failure, result.status_code) == (False, "connection", 0)
    assert "ConnectError" in result.reason


def test_wrong_status_fails(model_server: ModelServer) -> None:
    url = model_server.answer_json("/predict", {"error": "overloaded"}, status=503)
    result = run(Probe("pets", url, checks=CHECKS))["pets"]
    assert (result.success, result.failure, result.status_code) == (False, "status", 503)
    assert result.reason == "status 503, expected 200"


def test_expected_status_may_list_several(model_server: ModelServer) -> None:
    url = model_server.answer_json("/predict", {}, status=202)
    assert run(Probe("p", url, expected_status=(200, 202)))["p"].success


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {"predictions": [], "model": "pets-v2"},
            "$.predictions[0].label not found: index [0] is out of range (length 0); "
            "$.predictions[0].score not found: index [0] is out of range (length 0)",
        ),
        (
            {"predictions": [{"label": "cat", "score": 1.7}], "model": "pets-v2"},
            "$.predictions[0].score is 1.7, outside [0, 1]",
        ),
        (
            {"predictions": [{"label": "cat", "score": "high"}], "model": "pets-v2"},
            '$.predictions[0].score is "high", not a number',
        ),
        (
            {"predictions": [{"label": "cat", "score": 0.5}], "model": "dogs-v1"},
            '$.model is "dogs-v1", which does not match /^pets-v\\d+$/',
        ),
    ],
)
def test_wrong_body_fails_the_checks(
    model_server: ModelServer, payload: dict[str, Any], reason: str
) -> None:
    url = model_server.answer_json("/predict", payload)
    result = run(Probe("pets", url, checks=CHECKS))["pets"]
    assert (result.success, result.failure, result.status_code) == (False, "check", 200)
    assert result.reason == reason
    assert result.failed_checks == reason.count(";") + 1


def test_non_json_body_fails(model_server: ModelServer) -> None:
    model_server.answers["/predict"] = Answer(200, b"<html>oops</html>", "text/html")
    result = run(Probe("pets", model_server.url("/predict"), checks=CHECKS))["pets"]
    assert (result.success, result.failure) == (False, "body")
    assert result.reason.startswith("body is not JSON") and "'<html>oops</html>'" in result.reason


def test_a_probe_without_checks_ignores_the_body(model_server: ModelServer) -> None:
    model_server.answers["/"] = Answer(200, b"not json", "text/plain")
    assert run(Probe("root", model_server.url("/")))["root"].success


def test_metrics_per_probe(
    model_server: ModelServer,
    metric_value: Callable[..., float | None],
    metric_label_values: Callable[[str, str, str], set[str]],
) -> None:
    ok_url = model_server.answer_json("/predict", PREDICTION)
    bad_url = model_server.answer_json("/broken", {"error": "x"}, status=500)
    runner = ProbeRunner(
        [
            Probe("ok", ok_url, checks=CHECKS, labels={"model": "pets", "version": "2"}),
            Probe("bad", bad_url),
        ]
    )
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    registry.register(runner)
    runner.run_once()
    runner.run_once()
    text = render(registry)[0].decode()
    ok = f'instance="{ok_url}",model="pets",probe="ok",version="2"'
    bad = f'instance="{bad_url}",model="",probe="bad",version=""'
    assert f"probe_success{{{ok}}} 1.0" in text
    assert f"probe_success{{{bad}}} 0.0" in text
    assert f"probe_http_status_code{{{bad}}} 500.0" in text
    assert f"probe_failed_checks{{{ok}}} 0.0" in text
    assert f"inferwatch_probe_runs_total{{{bad}}} 2.0" in text
    assert metric_value(text, "inferwatch_probe_failures_total", probe="bad") == 2.0
    assert metric_label_values(text, "inferwatch_probe_failures_total", "reason") == {"status"}
    assert f"probe_duration_seconds{{{ok}}}" in text


def test_background_runner_keeps_fast_probes_going_beside_a_hung_one(
    model_server: ModelServer,
) -> None:
    model_server.answers["/hang"] = Answer(hang=True)
    fast = model_server.answer_json("/predict", PREDICTION)
    runner = ProbeRunner(
        [
            Probe("hung", model_server.url("/hang"), interval_s=5, timeout_s=5),
            Probe("fast", fast, interval_s=0.1, timeout_s=0.1),
        ]
    )
    with runner:
        deadline = time.monotonic() + 10
        while sum(s.path == "/predict" for s in model_server.seen) < 3 or not (
            runner.results()["fast"].success
        ):
            assert time.monotonic() < deadline, "the fast probe was held up"
            time.sleep(0.01)
        assert "hung" not in runner.results()  # still waiting for its answer
    assert not runner.running


def test_probe_added_while_running_starts(model_server: ModelServer) -> None:
    url = model_server.answer_json("/predict", PREDICTION)
    with ProbeRunner() as runner:
        runner.add(Probe("late", url, interval_s=0.05, timeout_s=0.05))
        deadline = time.monotonic() + 10
        while "late" not in runner.results():
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_monitor_probe_registers_and_starts_a_runner(
    model_server: ModelServer, monitor: Any, registry: Registry
) -> None:
    url = model_server.answer_json("/predict", PREDICTION)
    runner = monitor.probe("pets", url, interval_s=1, timeout_s=1, checks=CHECKS)
    try:
        deadline = time.monotonic() + 10
        while "pets" not in runner.results():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert monitor.probe("other", url, interval_s=1, timeout_s=1) is runner
        names = {fam.name for fam in registry.snapshot() if fam.samples}
        assert {"probe_success", "probe_duration_seconds", "probe_http_status_code"} <= names
    finally:
        runner.stop()


def test_duplicate_probe_names_are_refused() -> None:
    runner = ProbeRunner([Probe("a", "http://127.0.0.1:1/")])
    with pytest.raises(ConfigError, match="already registered"):
        runner.add(Probe("a", "http://127.0.0.1:2/"))


# -- pure parts ------------------------------------------------------------------------


def test_json_path_syntax() -> None:
    assert parse_json_path("$") == ()
    assert parse_json_path("$.predictions[0].label") == ("predictions", 0, "label")
    assert parse_json_path('$.a[-1][\'b c\']["d\\"e"]') == ("a", -1, "b c", 'd"e')


@pytest.mark.parametrize("path", ["predictions.0", "$.", "$[x]", "$.a..b", "$['open"])
def test_bad_json_path_is_a_config_error(path: str) -> None:
    with pytest.raises(ConfigError) as info:
        PathExists(path)
    assert info.value.field == "path" and info.value.value == path


def test_evaluate_response_is_pure() -> None:
    probe = Probe("p", "http://x.example/", checks=[PathExists("$.ok")])
    assert evaluate_response(probe, 200, b'{"ok": null}') == ("", "", 0)
    kind, reason, failed = evaluate_response(probe, 200, b"[1]")
    assert (kind, failed) == ("check", 1)
    assert reason == "$.ok not found: step 1 looks up 'ok' in a array"


def test_regex_matches_non_strings_as_json() -> None:
    check = ValueMatches("$.n", r"^4\d$")
    assert check.check({"n": 42}) is None
    assert check.check({"n": 7}) == "$.n is 7, which does not match /^4\\d$/"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"url": "ftp://host/x"}, "url"),
        ({"url": "http:///nohost"}, "url"),
        ({"url": "http://host:99999/"}, "url"),
        ({"method": "FETCH"}, "method"),
        ({"timeout_s": 20, "interval_s": 10}, "timeout_s"),
        ({"interval_s": 0}, "interval_s"),
        ({"expected_status": (200, 700)}, "expected_status"),
        ({"headers": {"X": 1}}, "headers"),
        ({"labels": {"probe": "x"}}, "labels"),
        ({"checks": ["$.x"]}, "checks[0]"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_probe_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"name": "p", "url": "http://127.0.0.1/"} | kwargs
    with pytest.raises(ConfigError) as info:
        Probe(**args)
    assert info.value.field == field


def test_bad_regex_and_range_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="invalid regex") as info:
        ValueMatches("$.x", "([a-z")
    assert info.value.field == "regex"
    with pytest.raises(ConfigError, match="above max"):
        ValueInRange("$.x", 2, 1)
    with pytest.raises(ConfigError, match="min, max or both"):
        ValueInRange("$.x")


def test_each_probe_result_is_one_structured_log_record(
    model_server: ModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    ok_url = model_server.answer_json("/predict", PREDICTION)
    bad_url = model_server.answer_json("/busy", {"error": "overloaded"}, status=503)
    with caplog.at_level("INFO", logger="inferwatch.probes"):
        run(Probe("ok", ok_url, checks=CHECKS, labels={"model": "pets"}), Probe("busy", bad_url))
    records = {r.__dict__["probe"]: r for r in caplog.records if r.name == "inferwatch.probes"}
    assert set(records) == {"ok", "busy"}
    assert records["ok"].levelname == "INFO" and records["ok"].__dict__["success"] is True
    assert records["ok"].__dict__["labels"] == {"model": "pets"}
    busy = records["busy"]
    assert busy.levelname == "WARNING"
    assert (busy.__dict__["status_code"], busy.__dict__["failure"]) == (503, "status")
    assert busy.__dict__["url"] == bad_url
