from __future__ import annotations

import os
from collections.abc import Iterable

import prometheus_client
import pytest

from inferwatch import FamilySnapshot, Monitor, Registry
from inferwatch.exposition import render


class Broken:
    def collect(self) -> Iterable[FamilySnapshot]:
        raise RuntimeError("sensor fell off")


def test_failing_collector_is_counted_and_others_still_collected(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register(Broken())
    registry.gauge("g", "G.").set(1)
    for _ in range(3):
        names = {f.name for f in registry.snapshot()}
    assert "g" in names
    errors = next(f for f in registry.snapshot() if f.name == "inferwatch_internal_errors_total")
    assert errors.samples[("collector:Broken",)] == 4
    assert len([r for r in caplog.records if "sensor fell off" in r.getMessage()]) == 1


def test_default_prometheus_client_metrics_are_included() -> None:
    user_metric = prometheus_client.Counter("legacy_jobs_total", "Jobs from old code.")
    try:
        user_metric.inc(7)
        registry = Registry(collectors=[], multiprocess=False)
        body, _ = render(registry)
        assert b"legacy_jobs_total 7.0" in body
    finally:
        prometheus_client.REGISTRY.unregister(user_metric)


def test_inferwatch_families_take_precedence_over_default_registry_duplicates() -> None:
    from inferwatch.collectors import ProcessCollector

    registry = Registry(collectors=[ProcessCollector()], multiprocess=False)
    body, _ = render(registry)
    # prometheus_client's default registry also has process_* metrics: exactly one wins.
    assert body.count(b"# TYPE process_resident_memory_bytes gauge") == 1


def test_fork_child_starts_from_zero(registry: Registry) -> None:
    monitor = Monitor("forked", "1", registry=registry)

    @monitor.track
    def predict() -> None:
        pass

    for _ in range(5):
        predict()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            predict()
            fam = next(f for f in registry.snapshot() if f.name == "inferwatch_inferences_total")
            os.write(write_fd, str(fam.samples[("forked", "1", "success", "")]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        child_count = pipe.read()
    os.waitpid(pid, 0)
    assert float(child_count) == 1.0
    parent = next(f for f in registry.snapshot() if f.name == "inferwatch_inferences_total")
    assert parent.samples[("forked", "1", "success", "")] == 5.0


def test_monitor_rejects_bad_model_names() -> None:
    from inferwatch import ConfigError

    with pytest.raises(ConfigError, match="model"):
        Monitor("")
    with pytest.raises(ConfigError, match="version"):
        Monitor("m", 1)  # type: ignore[arg-type]
