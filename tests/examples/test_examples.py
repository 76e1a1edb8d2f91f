"""Each example runs, and its metrics show the calls it tracked.

The examples record into the process-wide registry (as a user's service would), so
these tests compare counts before and after the calls they make.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from inferwatch.exposition import render

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MetricValue = Callable[..., float | None]
Spawn = Callable[[Sequence[str]], Any]  # tests/conftest.py's spawn; returns a Spawned


def load_example(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """Import ``examples/<name>.py`` by path, as module ``example_<name>``."""
    module_name = f"example_{name}"
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, module_name, module)
    spec.loader.exec_module(module)
    return module


class Counts:
    """Success count and item count of one model, read from ``/metrics`` text."""

    def __init__(self, metric_value: MetricValue, model: str) -> None:
        self.metric_value = metric_value
        self.model = model

    def read(self, text: str, outcome: str = "success") -> tuple[float, float]:
        total = self.metric_value(
            text, "inferwatch_inferences_total", model=self.model, outcome=outcome
        )
        items = self.metric_value(text, "inferwatch_inference_items_total", model=self.model)
        return total or 0.0, items or 0.0


@pytest.mark.parametrize("name", ["fastapi_service", "flask_service", "batch_worker"])
def test_importing_an_example_starts_nothing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    threads = set(threading.enumerate())
    load_example(name, monkeypatch)
    assert set(threading.enumerate()) == threads


def test_fastapi_example_counts_tracked_calls(
    monkeypatch: pytest.MonkeyPatch,
    asgi_client: Callable[[Any], Any],
    metric_value: MetricValue,
) -> None:
    example = load_example("fastapi_service", monkeypatch)
    client = asgi_client(example.app)
    counts = Counts(metric_value, "sentiment")
    before = counts.read(client.get("/metrics").text)
    for texts in (["great, love it"], ["slow", "awful and broken", "nice"]):
        assert client.post("/predict", json={"texts": texts}).status_code == 200
    after = counts.read(client.get("/metrics").text)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 4)


def test_fastapi_example_counts_a_shed_batch_as_rejected(
    monkeypatch: pytest.MonkeyPatch,
    asgi_client: Callable[[Any], Any],
    metric_value: MetricValue,
) -> None:
    example = load_example("fastapi_service", monkeypatch)
    client = asgi_client(example.app)
    counts = Counts(metric_value, "sentiment")
    before, _ = counts.read(client.get("/metrics").text, outcome="rejected")
    response = client.post("/predict", json={"texts": ["ok"] * (example.MAX_BATCH + 1)})
    assert response.status_code == 503
    after, _ = counts.read(client.get("/metrics").text, outcome="rejected")
    assert after - before == 1


def test_flask_example_counts_tracked_calls(
    monkeypatch: pytest.MonkeyPatch, metric_value: MetricValue
) -> None:
    example = load_example("flask_service", monkeypatch)
    client = example.app.test_client()
    counts = Counts(metric_value, "house-price")
    before = counts.read(client.get("/metrics").get_data(as_text=True))
    for rows in ([[120, 3, 1995]], [[60, 1, 1970], [85, 2, 2001.5]]):
        response = client.post("/predict/house-price", json={"rows": rows})
        assert response.status_code == 200, response.get_data(as_text=True)
    after = counts.read(client.get("/metrics").get_data(as_text=True))
    assert (after[0] - before[0], after[1] - before[1]) == (2, 3)


def test_flask_example_labels_requests_with_the_route_template(
    monkeypatch: pytest.MonkeyPatch, metric_value: MetricValue
) -> None:
    example = load_example("flask_service", monkeypatch)
    client = example.app.test_client()

    def bad_requests() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        value = metric_value(
            text, "inferwatch_http_requests_total", route="/predict/<name>", status="422"
        )
        return value or 0.0

    before = bad_requests()
    # The WSGI middleware records a request when its body is closed, as servers do.
    with client.post("/predict/house-price", json={"rows": [[1, 2]]}) as response:
        assert response.status_code == 422
    assert bad_requests() - before == 1


def test_batch_worker_exits_after_its_iterations() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "batch_worker.py"), "--iterations", "3", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "processed 6 batches (96 items)" in result.stdout


def test_batch_worker_serves_metrics_of_every_batch(
    free_port: int,
    spawn: Spawn,
    wait_for_metrics: Callable[..., str],
    metric_value: MetricValue,
) -> None:
    args = ["--iterations", "5", "--workers", "2", "--batch-size", "4", "--linger", "60"]
    worker = spawn(
        [sys.executable, str(EXAMPLES / "batch_worker.py"), *args, "--port", str(free_port)]
    )
    counts = Counts(metric_value, "embedder")
    text = wait_for_metrics(
        f"http://127.0.0.1:{free_port}/metrics",
        until=lambda text: counts.read(text)[0] == 10,
        process=worker,
    )
    assert counts.read(text) == (10, 40)
    queued = metric_value(
        text, "inferwatch_inference_queue_duration_seconds_count", model="embedder"
    )
    assert queued == 10


def test_batch_worker_stops_cleanly_on_ctrl_c_while_lingering(
    free_port: int, spawn: Spawn, wait_for_metrics: Callable[..., str]
) -> None:
    args = ["--iterations", "1", "--linger", "60", "--port", str(free_port)]
    worker = spawn([sys.executable, str(EXAMPLES / "batch_worker.py"), *args])
    wait_for_metrics(
        f"http://127.0.0.1:{free_port}/metrics",
        until=lambda text: "serving" in worker.output(),
        process=worker,
    )
    worker.process.send_signal(signal.SIGINT)
    assert worker.process.wait(timeout=20) == 0


def test_pytorch_example_counts_tracked_calls(
    monkeypatch: pytest.MonkeyPatch, metric_value: MetricValue
) -> None:
    torch = pytest.importorskip("torch")
    example = load_example("pytorch_model", monkeypatch)
    counts = Counts(metric_value, "tiny-mlp")
    before = counts.read(render(example.monitor.registry)[0].decode())
    for rows in (4, 6):
        probabilities = example.predict(torch.randn(rows, example.N_FEATURES))
        assert tuple(probabilities.shape) == (rows, example.N_CLASSES)
    after = counts.read(render(example.monitor.registry)[0].decode())
    assert (after[0] - before[0], after[1] - before[1]) == (2, 10)


def test_pytorch_example_runs_as_a_script() -> None:
    pytest.importorskip("torch")
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "pytorch_model.py"), "--iterations", "3", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "ran 3 batches" in result.stdout
