from __future__ import annotations

import json
import math
import socket
from collections.abc import Callable
from typing import Any

import pytest

from inferwatch import Monitor
from inferwatch.demo import DigitsData, create_app

Client = Any  # tests/conftest.py's ASGIClient
MetricValue = Callable[..., float | None]
ROW = [0.0] * 64
JSON_HEADERS = {"content-type": "application/json"}


def predict(client: Client, rows: list[list[float]]) -> list[int]:
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200, response.text
    predictions: list[int] = response.json()["predictions"]
    return predictions


def test_predictions_on_held_out_rows_are_mostly_right(client: Client, digits: DigitsData) -> None:
    rows, labels = digits.x_test[:200].tolist(), digits.y_test[:200].tolist()
    predicted = [p for i in range(0, 200, 50) for p in predict(client, rows[i : i + 50])]
    accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)
    assert accuracy > 0.9


def test_predict_answers_with_model_and_version(client: Client) -> None:
    body = client.post("/predict", json={"instances": [ROW]}).json()
    assert (body["model"], body["version"], len(body["predictions"])) == ("digits", "1", 1)
    assert "probabilities" not in body


def test_probabilities_are_returned_when_asked(client: Client, digits: DigitsData) -> None:
    rows = digits.x_test[:3].tolist()
    body = client.post("/predict", json={"instances": rows, "probabilities": True}).json()
    assert [len(p) for p in body["probabilities"]] == [10, 10, 10]
    assert all(math.isclose(sum(p), 1.0, abs_tol=1e-4) for p in body["probabilities"])


def test_metrics_count_one_successful_inference_per_predict_call(
    client: Client, digits: DigitsData, metric_value: MetricValue
) -> None:
    for size in (1, 5, 10):
        predict(client, digits.x_test[:size].tolist())
    text = client.get("/metrics").text
    total = metric_value(text, "inferwatch_inferences_total", model="digits", outcome="success")
    assert total == 3


def test_metrics_count_every_row_sent_as_an_item(
    client: Client, digits: DigitsData, metric_value: MetricValue
) -> None:
    for size in (1, 5, 10):
        predict(client, digits.x_test[:size].tolist())
    text = client.get("/metrics").text
    assert metric_value(text, "inferwatch_inference_items_total", model="digits") == 16


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"instances": [ROW, ROW[:63]]}, "instances[1]"),
        ({"instances": [ROW, [*ROW[:5], "x", *ROW[6:]]]}, "instances[1][5]"),
        ({"instances": [[*ROW[:7], True, *ROW[8:]]]}, "instances[0][7]"),
        ({"instances": [[*ROW[:2], math.nan, *ROW[3:]]]}, "instances[0][2]"),
        ({"instances": "not a list"}, "instances"),
        ({"instances": []}, "instances"),
        ({"instances": [ROW] * 257}, "instances"),
        ({"rows": [ROW]}, "instances"),
    ],
    ids=["short-row", "string", "bool", "nan", "not-a-list", "empty", "too-many", "missing"],
)
def test_bad_input_is_422_naming_the_field_and_index(
    client: Client, body: dict[str, Any], where: str
) -> None:
    # json.dumps, not httpx's json=, so that NaN can be sent (Python's json reads it).
    content = json.dumps(body)
    response = client.post("/predict", content=content, headers=JSON_HEADERS)
    assert response.status_code == 422
    assert response.json()["message"].startswith(f"{where}: ")


def test_bad_input_does_not_reach_the_model(client: Client, metric_value: MetricValue) -> None:
    client.post("/predict", json={"instances": [ROW[:10]]})
    text = client.get("/metrics").text
    assert metric_value(text, "inferwatch_inference_items_total", model="digits") == 0


def test_http_route_label_is_the_route_template(client: Client, metric_value: MetricValue) -> None:
    for index in (3, 7):
        assert client.get(f"/sample/{index}").status_code == 200
    text = client.get("/metrics").text
    count = metric_value(text, "inferwatch_http_requests_total", route="/sample/{index}")
    assert count == 2


def test_http_route_label_never_holds_the_raw_path(
    client: Client, metric_label_values: Callable[[str, str, str], set[str]]
) -> None:
    client.get("/sample/3")
    client.get("/sample?n=2")
    routes = metric_label_values(
        client.get("/metrics").text, "inferwatch_http_requests_total", "route"
    )
    assert routes == {"/sample/{index}", "/sample"}


def test_sample_gives_test_rows_with_their_labels(client: Client, digits: DigitsData) -> None:
    body = client.get("/sample", params={"n": 4}).json()
    assert body["labels"] == [int(digits.y_test[i]) for i in body["indices"]]
    assert body["instances"] == [digits.x_test[i].tolist() for i in body["indices"]]


def test_sample_can_be_posted_to_predict_as_it_is(client: Client) -> None:
    sample = client.get("/sample", params={"n": 4}).json()
    response = client.post("/predict", json=sample)
    assert len(response.json()["predictions"]) == 4


def test_sample_index_outside_the_test_split_is_404(client: Client) -> None:
    response = client.get("/sample/100000")
    assert response.status_code == 404
    assert "index must be in 0..449" in response.json()["detail"]


def test_index_lists_the_urls(client: Client) -> None:
    urls = client.get("/demo").json()["urls"]
    assert {"predict", "sample", "metrics", "docs"} <= set(urls)


def test_model_reaches_high_accuracy_at_creation(monitor: Monitor) -> None:
    app = create_app(monitor=monitor)
    assert app.state.classifier.test_accuracy > 0.9


def test_app_creation_opens_no_network_connection(
    monitor: Monitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("create_app tried to connect to the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    create_app(monitor=monitor)
