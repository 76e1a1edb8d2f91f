"""Structured logs: JSON lines per inference, alert and probe, on real files."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from inferwatch import ConfigError, Monitor, Registry, Rejected
from inferwatch.sdk import logs
from inferwatch.sdk.logs import (
    INFERENCE_LOGGER,
    is_secret_key,
    log_alert_change,
    log_context,
    log_probe_result,
    parse_traceparent,
    redact_text,
)
from tests.sdk.support import Samples
from tests.support import serve_asgi

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def clean_logging() -> Iterator[None]:
    yield
    logs.shutdown()
    for name in logs.LOGGER_NAMES:
        logger = logging.getLogger(name)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def inferences(path: Path) -> list[dict[str, Any]]:
    return [r for r in read_lines(path) if r.get("event") == "inference"]


def test_each_inference_is_one_json_line_with_its_fields(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path)

    @monitor.track(batch_size=len)
    def predict(rows: list[int]) -> int:
        if not rows:
            raise ValueError("empty")
        return sum(rows)

    before = time.time()
    assert predict([1, 2, 3]) == 6
    with pytest.raises(ValueError):
        predict([])
    handle.flush()
    ok, failed = inferences(path)
    assert ok["model"] == "m" and ok["version"] == "1"
    assert ok["outcome"] == "success" and ok["error_type"] is None
    assert ok["batch_size"] == 3
    assert ok["latency_seconds"] >= 0
    assert ok["level"] == "INFO" and ok["logger"] == INFERENCE_LOGGER
    assert ok["time"].endswith("Z")
    assert ok["trace_id"] is None and ok["span_id"] is None
    assert len(ok["request_id"]) == 32
    assert failed["outcome"] == "error" and failed["error_type"] == "ValueError"
    assert failed["level"] == "WARNING"
    assert failed["request_id"] != ok["request_id"]
    from inferwatch.sdk.logsearch import record_time

    when = record_time(ok)
    assert when is not None and before - 1 <= when <= time.time() + 1


def test_async_generator_and_explicit_forms_are_logged(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path)

    @monitor.track
    async def predict(x: int) -> int:
        return x

    @monitor.track
    def stream(n: int) -> Iterator[int]:
        yield from range(n)

    assert asyncio.run(predict(1)) == 1
    assert list(stream(2)) == [0, 1]
    with monitor.inference(batch_size=4):
        pass
    with monitor.inference() as inf:
        inf.reject()
    with pytest.raises(Rejected), monitor.inference():
        raise Rejected("queue full")
    handle.flush()
    records = inferences(path)
    assert [r["outcome"] for r in records] == [
        "success",
        "success",
        "success",
        "rejected",
        "rejected",
    ]
    assert records[2]["batch_size"] == 4


def test_log_context_gives_request_id_trace_and_fields(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path)
    predict = monitor.track(lambda x: x)
    with (
        log_context(request_id="req-1", traceparent=TRACEPARENT, tenant="acme"),
        log_context(step="rerank"),
    ):
        predict(1)
    handle.flush()
    [record] = inferences(path)
    assert record["request_id"] == "req-1"
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert record["span_id"] == "00f067aa0ba902b7"
    assert record["tenant"] == "acme" and record["step"] == "rerank"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (TRACEPARENT, ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")),
        (
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"),
        ),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", None),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", None),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", None),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_traceparent_is_parsed_per_the_w3c_spec(
    header: str, expected: tuple[str, str] | None
) -> None:
    assert parse_traceparent(header) == expected


@pytest.fixture
def served(monitor: Monitor) -> Iterator[str]:
    """An instrumented FastAPI app (sync and async endpoints) under a real uvicorn."""
    app = FastAPI()

    @monitor.track
    def predict(x: int) -> int:
        return x * 2

    @app.get("/sync/{x}")
    def sync_endpoint(x: int) -> dict[str, int]:
        return {"y": predict(x)}

    @app.get("/async/{x}")
    async def async_endpoint(x: int) -> dict[str, int]:
        with monitor.inference():
            return {"y": x * 3}

    monitor.instrument(app)
    with serve_asgi(app) as url:
        yield url


def test_traceparent_and_request_id_come_from_a_real_http_request(
    served: str, monitor: Monitor, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path)
    headers = {"traceparent": TRACEPARENT, "x-request-id": "abc-123"}
    with httpx.Client(base_url=served, timeout=10) as client:
        assert client.get("/sync/2", headers=headers).json() == {"y": 4}
        assert client.get("/async/2", headers={"traceparent": TRACEPARENT}).json() == {"y": 6}
        assert client.get("/sync/5").json() == {"y": 10}
    handle.flush()
    first, second, third = inferences(path)
    assert first["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert first["span_id"] == "00f067aa0ba902b7"
    assert first["request_id"] == "abc-123"
    assert second["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert second["request_id"] != "abc-123"
    assert third["trace_id"] is None


def test_traceparent_reaches_the_inference_through_flask(
    registry: Registry, tmp_path: Path
) -> None:
    flask = pytest.importorskip("flask")
    monitor = Monitor("m", "1", registry=registry)
    app = flask.Flask(__name__)

    @monitor.track
    def predict(x: int) -> int:
        return x + 1

    @app.get("/p/<int:x>")
    def endpoint(x: int) -> dict[str, int]:
        return {"y": predict(x)}

    monitor.instrument(app)
    handle = monitor.logs(tmp_path / "app.log")
    response = app.test_client().get("/p/1", headers={"traceparent": TRACEPARENT})
    assert response.get_json() == {"y": 2}
    handle.flush()
    [record] = inferences(tmp_path / "app.log")
    assert record["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_files_rotate_by_size_keeping_the_backups(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path, max_bytes=2_000, backups=2)
    predict = monitor.track(lambda x: x)
    for i in range(60):
        predict(i)
        if i % 10 == 9:
            handle.flush()
    handle.flush()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["app.log", "app.log.1", "app.log.2"]
    for name in names:
        assert (tmp_path / name).stat().st_size <= 2_000
        for record in read_lines(tmp_path / name):
            assert record["event"] == "inference"


def test_secrets_and_personal_fields_are_redacted(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path, redact=["customer_note"], personal=["email"], salt="pepper")
    predict = monitor.track(lambda x: x)
    fields = {
        "email": "alice@example.com",
        "api_key": "k-123",
        "Authorization": "anything",
        "customer_note": "call me",
        "max_tokens": 256,
        "prompt": "use Bearer abcdefghijklmnopqrstuvwxyz please",
        "callback": "https://bob:hunter2@example.com/hook?token=s3cr3t&x=1",
        "nested": {"password": "pw", "ok": "fine"},
    }
    with log_context(**fields):
        predict(1)
    with log_context(email="alice@example.com"):
        predict(2)
    handle.flush()
    first, second = inferences(path)
    assert first["email"].startswith("pii:") and len(first["email"]) == 20
    assert first["email"] == second["email"]  # the same person matches across lines
    assert "alice" not in path.read_text()
    assert first["api_key"] == "[REDACTED]"
    assert first["Authorization"] == "[REDACTED]"
    assert first["customer_note"] == "[REDACTED]"
    assert first["max_tokens"] == 256
    assert first["prompt"] == "use Bearer [REDACTED] please"
    assert first["callback"] == "https://bob:[REDACTED]@example.com/hook?token=[REDACTED]&x=1"
    assert first["nested"] == {"password": "[REDACTED]", "ok": "fine"}


def test_user_handlers_see_redacted_records_too(monitor: Monitor, tmp_path: Path) -> None:
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    logging.getLogger(INFERENCE_LOGGER).addHandler(capture)
    try:
        handle = monitor.logs(None)
        predict = monitor.track(lambda x: x)
        with log_context(token="t0k3n"):
            predict(1)
        handle.flush()
    finally:
        logging.getLogger(INFERENCE_LOGGER).removeHandler(capture)
    [record] = seen
    assert record.outcome == "success"  # type: ignore[attr-defined]
    assert record.token == "[REDACTED]"  # type: ignore[attr-defined]
    assert "outcome=success" in record.getMessage()


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("X-Auth-Token", True),
        ("accessToken", True),
        ("api_key", True),
        ("x-api-key", True),
        ("client_secret", True),
        ("max_tokens", False),
        ("prompt_tokens", False),
        ("author", False),
        ("keyboard", False),
    ],
)
def test_secret_field_names_are_matched_on_words(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_credential_like_values_are_replaced() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P"
    assert redact_text(f"got {jwt} ok") == "got [REDACTED] ok"
    assert redact_text("AKIAIOSFODNN7EXAMPLE") == "[REDACTED]"
    assert redact_text("ghp_" + "a" * 36) == "[REDACTED]"
    assert redact_text("sk-" + "b" * 40) == "[REDACTED]"
    assert redact_text("password=hunter2&user=bob") == "password=[REDACTED]&user=bob"
    assert redact_text("nothing to see") == "nothing to see"


def test_fields_json_cannot_encode_are_written_as_strings(monitor: Monitor, tmp_path: Path) -> None:
    class Point:
        def __str__(self) -> str:
            return "Point(1, 2)"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no str")

    path = tmp_path / "app.log"
    handle = monitor.logs(path)
    predict = monitor.track(lambda x: x)
    with log_context(point=Point(), broken=Broken(), tags={"a"}, raw=b"bytes"):
        predict(1)
    handle.flush()
    [record] = inferences(path)
    assert record["point"] == "Point(1, 2)"
    assert record["broken"] == "<unprintable Broken>"
    assert record["tags"] == ["a"]
    assert record["raw"] == "bytes"


def test_a_failing_log_handler_never_reaches_the_model_service(
    monitor: Monitor, tmp_path: Path, read: Callable[[str], Samples]
) -> None:
    class Exploding(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            raise RuntimeError("filter bug")

    exploding = Exploding()
    logger = logging.getLogger(INFERENCE_LOGGER)
    handle = monitor.logs(tmp_path / "app.log")
    logger.addFilter(exploding)
    try:
        predict = monitor.track(lambda x: x + 1)
        assert predict(1) == 2
        handle.flush()
    finally:
        logger.removeFilter(exploding)
    assert read("inferwatch_internal_errors_total") == {(("component", "logs"),): 1.0}
    assert (
        read("inferwatch_inferences_total")[
            (("error_type", ""), ("model", "m"), ("outcome", "success"), ("version", "1"))
        ]
        == 1.0
    )


def test_records_past_the_buffer_are_dropped_and_counted(
    monitor: Monitor, tmp_path: Path, read: Callable[[str], Samples], monkeypatch: Any
) -> None:
    handle = monitor.logs(tmp_path / "app.log")
    monkeypatch.setattr(logs, "MAX_PENDING", 0)
    predict = monitor.track(lambda x: x)
    for i in range(3):
        assert predict(i) == i
    handle.flush()
    assert inferences(tmp_path / "app.log") == []
    assert read("inferwatch_log_records_dropped_total") == {(("model", "m"), ("version", "1")): 3.0}


def test_nothing_is_buffered_until_logs_are_configured(monitor: Monitor, tmp_path: Path) -> None:
    predict = monitor.track(lambda x: x)
    predict(1)
    assert logs.SWITCH.on is False and logs.WRITER.pending == []
    handle = monitor.logs(tmp_path / "app.log")  # decorated earlier: logged from now on
    predict(2)
    handle.close()
    assert logs.SWITCH.on is False
    predict(3)
    assert [r["outcome"] for r in inferences(tmp_path / "app.log")] == ["success"]


def test_only_monitors_that_configured_logs_are_logged(registry: Registry, tmp_path: Path) -> None:
    logged = Monitor("logged", "1", registry=registry)
    quiet = Monitor("quiet", "1", registry=registry)
    handle = logged.logs(tmp_path / "app.log")
    logged.track(lambda x: x)(1)
    quiet.track(lambda x: x)(1)
    handle.flush()
    assert [r["model"] for r in inferences(tmp_path / "app.log")] == ["logged"]


def test_alert_changes_and_probe_results_are_logged(monitor: Monitor, tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handle = monitor.logs(path)
    log_alert_change(
        alertname="HighLatency",
        state="firing",
        previous_state="pending",
        labels={"severity": "page", "model": "m"},
        value=1.7,
        active_at=1_700_000_000.0,
    )
    log_probe_result(
        probe="canary",
        url="https://user:pw@model.internal/predict",
        success=False,
        duration_seconds=0.25,
        status_code=500,
        failure="status",
    )
    handle.flush()
    alert, probe = read_lines(path)
    assert alert["event"] == "alert_state_change" and alert["logger"] == "inferwatch.alerts"
    assert alert["level"] == "WARNING"
    assert (alert["alertname"], alert["state"], alert["previous_state"]) == (
        "HighLatency",
        "firing",
        "pending",
    )
    assert alert["labels"] == {"severity": "page", "model": "m"}
    assert alert["active_at"] == "2023-11-14T22:13:20.000000Z"
    assert probe["event"] == "probe_result" and probe["success"] is False
    assert probe["status_code"] == 500
    assert probe["url"] == "https://user:[REDACTED]@model.internal/predict"


def test_alert_and_probe_hooks_do_nothing_while_logging_is_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logging.getLogger("inferwatch.alerts").setLevel(logging.ERROR)
    log_alert_change(alertname="A", state="firing", previous_state="pending", labels={})
    log_probe_result(probe="p", url="http://x", success=True, duration_seconds=0.1)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_bytes": -1}, "max_bytes"),
        ({"backups": "2"}, "backups"),
        ({"redact": "password"}, "redact"),
        ({"personal": [""]}, "personal"),
        ({"level": "LOUD"}, "level"),
    ],
)
def test_bad_log_configuration_names_the_field(
    monitor: Monitor, tmp_path: Path, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.logs(tmp_path / "app.log", **kwargs)
    assert info.value.field == field
