"""The demo service shows readiness failing when its canary fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inferwatch import Monitor
from inferwatch.demo import DigitsData, create_app
from inferwatch.testing import FakeClock


def test_demo_readiness_fails_when_the_canary_misclassifies(
    monitor: Monitor, clock: FakeClock, asgi_client: Callable[[Any], Any]
) -> None:
    app = create_app(monitor=monitor, seed=0)
    classifier = app.state.classifier
    data: DigitsData = classifier.data
    rows, labels = data.x_test[:5], data.y_test[:5]
    broken = {"on": False}

    def canary(batch: Any) -> Any:
        proba = classifier.predict_proba(batch)
        return proba[:, ::-1] if broken["on"] else proba  # "corrupted weights"

    def right_labels(proba: Any) -> bool:
        predicted = classifier.classes[proba.argmax(axis=1)].tolist()
        if predicted != labels.tolist():
            raise ValueError(f"expected {labels.tolist()}, predicted {predicted}")
        return True

    monitor.readiness(canary=canary, samples=[rows], validator=right_labels, clock=clock)
    client = asgi_client(app)
    assert client.get("/readyz").status_code == 200
    broken["on"] = True
    clock.advance(10)
    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.json()["checks"][1]["reason"]
    assert reason.startswith(f"sample 0: validator rejected the output: expected {labels.tolist()}")
