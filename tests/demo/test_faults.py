"""The demo's injected faults, caught by the monitoring: a bad model drops accuracy (from
delayed labels) and fails readiness; an upstream input change shows as feature drift."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from inferwatch import Monitor
from inferwatch.demo import DigitsData, create_app


def _snapshot(monitor: Monitor, name: str) -> dict[tuple[str, ...], Any]:
    for family in monitor.registry.snapshot():
        if family.name == name:
            return dict(family.samples)
    return {}


def _predict_and_label(client: Any, digits: DigitsData, start: int, count: int) -> None:
    rows = digits.x_test[start : start + count]
    answer = client.post("/predict", json={"instances": rows.tolist()}).json()
    labels = [
        {"request_id": rid, "label": int(y)}
        for rid, y in zip(answer["request_ids"], digits.y_test[start : start + count], strict=True)
    ]
    assert client.post("/feedback", json={"labels": labels}).json()["joined"] == count


def _correct(monitor: Monitor) -> tuple[float, float]:
    counts = _snapshot(monitor, "inferwatch_labels_total")
    return counts.get(("digits", "1", "true"), 0.0), counts.get(("digits", "1", "false"), 0.0)


def _drifted(monitor: Monitor) -> set[str]:
    detected = _snapshot(monitor, "inferwatch_drift_detected")
    return {key[2] for key, value in detected.items() if value == 1.0}


def test_a_bad_model_drops_accuracy_and_fails_readiness(
    monitor: Monitor, asgi_client: Callable[[Any], Any], digits: DigitsData
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    assert client.get("/readyz").status_code == 200
    _predict_and_label(client, digits, 0, 200)
    right, wrong = _correct(monitor)
    assert right + wrong == 200 and right / 200 > 0.93

    assert client.post("/faults", json={"model": True}).json()["model"] is True
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "misclassified" in ready.text
    _predict_and_label(client, digits, 200, 200)
    right2, wrong2 = _correct(monitor)
    assert right2 + wrong2 == 400 and (right2 - right) / 200 < 0.1

    assert client.post("/faults", json={"model": False}).json()["model"] is False
    assert client.get("/readyz").status_code == 200


def test_an_upstream_input_change_shows_as_drift_of_the_pixels(
    monitor: Monitor, asgi_client: Callable[[Any], Any], digits: DigitsData
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    _predict_and_label(client, digits, 0, 200)
    clean = _drifted(monitor)
    assert len(clean) <= 3, clean  # a few false alarms among 64 pixels at alpha 0.01

    monitor2 = Monitor("digits", "1", registry=type(monitor.registry)(
        collectors=[], include_default_registry=False, multiprocess=False))  # fmt: skip
    client2 = asgi_client(create_app(monitor=monitor2, seed=0))
    client2.post("/faults", json={"input_drift": True})
    _predict_and_label(client2, digits, 0, 200)
    drifted = _drifted(monitor2)
    assert len(drifted) >= 60, drifted  # nearly every pixel, and the predictions
    right, wrong = _correct(monitor2)
    assert right / (right + wrong) < 0.9  # and accuracy falls with it


def test_model_errors_open_the_circuit_and_requests_get_503_with_retry_after(
    monitor: Monitor, asgi_client: Callable[[Any], Any], digits: DigitsData
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    client.post("/faults", json={"errors": True})
    rows = {"instances": digits.x_test[:1].tolist()}
    statuses: list[int] = []
    deadline = time.monotonic() + 15  # the breaker wants errors held for 2 s
    while 503 not in statuses and time.monotonic() < deadline:
        statuses.append(client.post("/predict", json=rows).status_code)
        time.sleep(0.05)
    assert statuses[0] == 500 and statuses[-1] == 503, statuses
    shed = client.post("/predict", json=rows)
    assert shed.status_code == 503 and int(shed.headers["retry-after"]) > 0
    assert _snapshot(monitor, "inferwatch_guard_state")[("digits", "1", "model-errors")] == 1.0
    assert (
        _snapshot(monitor, "inferwatch_guard_rejected_total")[("digits", "1", "model-errors")] >= 2
    )


def test_a_shadow_candidate_is_compared_with_the_model_off_the_request_path(
    monitor: Monitor, asgi_client: Callable[[Any], Any], digits: DigitsData
) -> None:
    app = create_app(monitor=monitor, seed=0)
    client = asgi_client(app)
    for start in range(0, 200, 2):
        rows = digits.x_test[start : start + 2].tolist()
        assert client.post("/predict", json={"instances": rows}).status_code == 200
    assert app.state.shadow.join(timeout=30)
    requests = _snapshot(monitor, "inferwatch_shadow_requests_total")
    mirrored = sum(v for k, v in requests.items() if k[-1] == "ok")
    assert 20 <= mirrored <= 80  # half of the 100 calls, sampled
    compared = _snapshot(monitor, "inferwatch_shadow_comparisons_total")
    agree = sum(v for k, v in compared.items() if k[-1] == "true")
    disagree = sum(v for k, v in compared.items() if k[-1] == "false")
    assert agree + disagree == mirrored
    assert 0.5 < agree / mirrored < 1.0  # naive Bayes agrees on most calls, not all


def test_post_faults_changes_only_the_keys_given(
    monitor: Monitor, asgi_client: Callable[[Any], Any]
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    client.post("/faults", json={"leak": True})
    answer = client.post("/faults", json={"latency": True}).json()
    assert {k for k, on in answer.items() if on} == {"leak", "latency"}
    assert client.post("/faults", json={"leak": False}).json()["latency"] is True
    assert not any(client.request("DELETE", "/faults").json().values())


def test_get_faults_lists_every_fault_as_a_boolean(client: Any) -> None:
    faults = client.get("/faults").json()
    assert faults == dict.fromkeys(
        ("latency", "errors", "input_drift", "model", "leak", "gpu"), False
    )


def test_an_unknown_fault_is_422_naming_it(client: Any) -> None:
    response = client.post("/faults", json={"erors": True})
    assert response.status_code == 422
    assert response.json()["message"].startswith("erors: ")


def test_the_gpu_fault_without_a_gpu_is_409(client: Any) -> None:
    response = client.post("/faults", json={"gpu": True})
    assert response.status_code == 409
    assert client.get("/faults").json()["gpu"] is False


def test_the_latency_fault_slows_every_inference(
    monitor: Monitor,
    asgi_client: Callable[[Any], Any],
    digits: DigitsData,
    metric_value: Callable[..., float | None],
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    client.post("/faults", json={"latency": True})
    rows = {"instances": digits.x_test[:1].tolist()}
    for _ in range(3):
        assert client.post("/predict", json=rows).status_code == 200
    text = client.get("/metrics").text
    total = metric_value(text, "inferwatch_inference_duration_seconds_sum", model="digits")
    count = metric_value(text, "inferwatch_inference_duration_seconds_count", model="digits")
    assert count == 3 and total is not None and total / count >= 0.3


def test_the_circuit_breaker_never_sheds_faults_or_metrics(
    monitor: Monitor, asgi_client: Callable[[Any], Any], digits: DigitsData
) -> None:
    client = asgi_client(create_app(monitor=monitor, seed=0))
    client.post("/faults", json={"errors": True})
    rows = {"instances": digits.x_test[:1].tolist()}
    deadline = time.monotonic() + 15
    while client.post("/predict", json=rows).status_code != 503:
        assert time.monotonic() < deadline, "the circuit did not open"
        time.sleep(0.05)
    assert client.post("/faults", json={"errors": False}).status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/demo").status_code == 200
