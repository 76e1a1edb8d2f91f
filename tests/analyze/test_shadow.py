"""Shadow models: mirrored calls reach the candidate, never the primary's results.

Every "did not affect the primary" check counts: calls, results, and calls that
completed while the candidate was still blocked. No timing assertions.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from inferwatch import ConfigError, Monitor, Registry
from inferwatch.analyze.shadow import Shadow, read_records, summarize
from inferwatch.cli import app
from inferwatch.exposition import render


@pytest.fixture
def registry() -> Registry:
    return Registry(collectors=[], include_default_registry=False, multiprocess=False)


@pytest.fixture
def monitor(registry: Registry) -> Monitor:
    return Monitor("digits", "1", registry=registry)


@pytest.fixture
def shadows() -> Iterator[list[Shadow]]:
    made: list[Shadow] = []
    yield made
    for shadow in made:
        shadow.close(timeout=2.0)


def primary_model(x: int) -> int:
    return x * 2


def exported(registry: Registry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    body, _ = render(registry)
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[key] = sample.value
    return out


def series(
    registry: Registry, name: str, **labels: str
) -> float:  # the one sample of ``name`` matching ``labels``
    found = [
        value
        for key, value in exported(registry).get(name, {}).items()
        if labels.items() <= dict(key).items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds (a wait for background threads, not a timing test)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if check():
            return True
        done.wait(0.01)
    return check()


def test_a_slow_candidate_sees_every_call_and_the_primary_is_unchanged(
    monitor: Monitor, shadows: list[Shadow]
) -> None:
    seen: list[int] = []
    gate = threading.Event()

    def slow_candidate(x: int) -> int:
        gate.wait(10)  # slow: nothing is handled until the primary is done
        seen.append(x)
        return x * 2

    shadow = monitor.shadow(slow_candidate, name="v2", sample_rate=1.0, queue_size=1000)
    shadows.append(shadow)
    predict = shadow(monitor.track(primary_model))

    results = [predict(i) for i in range(200)]
    # All 200 primary calls returned while the candidate had not answered one.
    assert results == [primary_model(i) for i in range(200)]
    assert seen == []
    gate.set()
    assert shadow.join(timeout=10)
    assert sorted(seen) == list(range(200))
    counts = shadow.counts()
    assert counts["ok"] == 200
    assert counts["agree"] == 200
    assert counts["dropped"] == counts["error"] == counts["timeout"] == 0


def test_a_failing_candidate_is_counted_and_the_primary_is_unchanged(
    monitor: Monitor, registry: Registry, shadows: list[Shadow]
) -> None:
    calls = {"primary": 0}

    def primary(x: int) -> int:
        calls["primary"] += 1
        return x + 1

    def failing(x: int) -> int:
        raise ValueError("candidate broke")

    shadow = monitor.shadow(failing, name="broken", sample_rate=1.0)
    shadows.append(shadow)
    predict = shadow(monitor.track(primary))
    assert [predict(i) for i in range(50)] == list(range(1, 51))
    assert calls["primary"] == 50
    assert shadow.join(timeout=10)
    assert shadow.counts()["error"] == 50
    assert (
        series(registry, "inferwatch_shadow_requests_total", candidate="broken", result="error")
        == 50
    )
    assert (
        series(
            registry, "inferwatch_shadow_errors_total", role="candidate", error_type="ValueError"
        )
        == 50
    )
    assert series(registry, "inferwatch_shadow_comparisons_total", agree="true") == 0
    # The primary's own series count its 50 calls as successes.
    assert series(registry, "inferwatch_inferences_total", outcome="success") == 50


def test_a_hung_candidate_is_abandoned_and_never_blocks_the_primary(
    registry: Registry, shadows: list[Shadow]
) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def hung(x: int) -> int:
        started.release()
        release.wait(30)
        return x

    shadow = Shadow(
        hung,
        model="digits",
        version="1",
        name="hung",
        sample_rate=1.0,
        queue_size=5,
        timeout_s=0.05,
        max_stuck=2,
        registry=registry,
    )
    shadows.append(shadow)
    registry.register(shadow)
    predict = shadow(primary_model)

    results = [predict(i) for i in range(100)]
    assert results == [primary_model(i) for i in range(100)]
    # Two calls hang and are abandoned; then no more threads are started.
    assert started.acquire(timeout=10) and started.acquire(timeout=10)
    assert eventually(lambda: shadow.counts()["timeout"] == 2)
    assert shadow.stuck_threads() == 2
    # At most queue_size calls waited beside the two abandoned; the rest were dropped.
    assert shadow.counts()["dropped"] >= 100 - 5 - 2
    assert started.acquire(timeout=0.2) is False  # no third thread while two are stuck
    # More primary calls still return at once, while the candidate is stuck.
    assert [predict(i) for i in range(10)] == [primary_model(i) for i in range(10)]
    release.set()
    assert shadow.join(timeout=10)
    final = shadow.counts()
    assert final["ok"] + final["timeout"] + final["dropped"] == 110
    assert final["timeout"] == 2
    assert eventually(lambda: shadow.stuck_threads() == 0)
    assert series(registry, "inferwatch_shadow_stuck_threads", candidate="hung") == 0


def test_agreement_is_counted_with_the_default_and_a_given_comparison(
    monitor: Monitor, registry: Registry, shadows: list[Shadow]
) -> None:
    def candidate(x: int) -> int:
        return x * 2 if x % 4 else x * 2 + 1  # disagrees on every fourth input

    exact = monitor.shadow(candidate, name="exact", sample_rate=1.0)
    loose = monitor.shadow(
        candidate, name="loose", sample_rate=1.0, compare=lambda a, b: abs(a - b) <= 1
    )
    shadows.extend([exact, loose])
    predict = loose(exact(primary_model))
    for i in range(40):
        predict(i)
    assert exact.join(timeout=10) and loose.join(timeout=10)
    assert (
        series(registry, "inferwatch_shadow_comparisons_total", candidate="exact", agree="true")
        == 30
    )
    assert (
        series(registry, "inferwatch_shadow_comparisons_total", candidate="exact", agree="false")
        == 10
    )
    assert (
        series(registry, "inferwatch_shadow_comparisons_total", candidate="loose", agree="true")
        == 40
    )
    assert (
        series(
            registry, "inferwatch_shadow_latency_seconds_count", candidate="exact", role="primary"
        )
        == 40
    )
    assert (
        series(
            registry, "inferwatch_shadow_latency_seconds_count", candidate="exact", role="candidate"
        )
        == 40
    )


def test_numpy_answers_are_compared_element_wise(shadows: list[Shadow]) -> None:
    np = pytest.importorskip("numpy")
    shadow = Shadow(lambda x: np.array([x, 1]), model="m", sample_rate=1.0)
    shadows.append(shadow)
    shadow.mirror((3,), result=np.array([3, 1]), latency_s=0.001)
    shadow.mirror((4,), result=np.array([4, 2]), latency_s=0.001)
    shadow.mirror((5,), result=np.array([5, 1, 0]), latency_s=0.001)
    assert shadow.join(timeout=10)
    counts = shadow.counts()
    assert (counts["agree"], counts["disagree"]) == (1, 2)


def test_a_failing_primary_still_raises_and_is_counted_on_its_side(
    monitor: Monitor, registry: Registry, shadows: list[Shadow]
) -> None:
    def primary(x: int) -> int:
        if x < 0:
            raise KeyError(x)
        return x

    shadow = monitor.shadow(lambda x: x, name="v2", sample_rate=1.0)
    shadows.append(shadow)
    predict = shadow(primary)
    with pytest.raises(KeyError):
        predict(-1)
    assert predict(3) == 3
    assert shadow.join(timeout=10)
    assert (
        series(registry, "inferwatch_shadow_errors_total", role="primary", error_type="KeyError")
        == 1
    )
    # Only the call both sides answered is compared.
    assert shadow.counts()["agree"] == 1


def test_only_the_sampled_share_is_mirrored(shadows: list[Shadow]) -> None:
    mirrored: list[int] = []
    shadow = Shadow(lambda x: mirrored.append(x), model="m", sample_rate=0.25, rng=random.Random(7))
    shadows.append(shadow)
    predict = shadow(primary_model)
    for i in range(2000):
        predict(i)
    assert shadow.join(timeout=10)
    expected = random.Random(7)
    assert mirrored == [i for i in range(2000) if expected.random() < 0.25]


def test_an_async_primary_and_a_hung_async_candidate(
    monitor: Monitor, shadows: list[Shadow]
) -> None:
    async def primary(x: int) -> int:
        await asyncio.sleep(0)
        return x * 3

    async def candidate(x: int) -> int:
        if x == 0:
            await asyncio.sleep(3600)  # hangs: cancelled at the timeout
        return x * 3

    shadow = monitor.shadow(candidate, name="async", sample_rate=1.0, timeout_s=0.05)
    shadows.append(shadow)
    predict = shadow(primary)

    async def run() -> list[int]:
        return [await predict(i) for i in range(20)]

    assert asyncio.run(run()) == [i * 3 for i in range(20)]
    assert shadow.join(timeout=10)
    counts = shadow.counts()
    assert counts["timeout"] == 1
    assert counts["ok"] == 19 and counts["agree"] == 19
    assert eventually(lambda: shadow.stuck_threads() == 0)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"sample_rate": 1.5}, "sample_rate"),
        ({"sample_rate": "all"}, "sample_rate"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"queue_size": 0}, "queue_size"),
        ({"max_stuck": 0}, "max_stuck"),
        ({"compare": "=="}, "compare"),
    ],
)
def test_bad_options_are_rejected_naming_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Shadow(primary_model, model="m", **options)
    assert info.value.field == field
    assert field in str(info.value)


def test_a_candidate_that_is_not_callable_is_rejected() -> None:
    with pytest.raises(ConfigError) as info:
        Shadow(42, model="m")  # type: ignore[arg-type]
    assert info.value.field == "candidate"


def test_a_recorded_run_is_summarised_by_the_report_command(
    monitor: Monitor, tmp_path: Path, shadows: list[Shadow]
) -> None:
    record = tmp_path / "shadow.jsonl"

    def candidate(x: int) -> int:
        if x % 10 == 9:
            raise RuntimeError("nope")
        return x * 2 if x % 5 else -1  # disagrees on multiples of 5

    shadow = monitor.shadow(candidate, name="v2", sample_rate=1.0, record=record)
    shadows.append(shadow)
    predict = shadow(primary_model)
    for i in range(100):
        predict(i)
    assert shadow.join(timeout=10)
    shadow.close()

    records = read_records(record)
    assert len(records) == 100
    [summary] = summarize(records)
    assert (summary.model, summary.version, summary.candidate) == ("digits", "1", "v2")
    assert (summary.mirrored, summary.ok, summary.errors, summary.dropped) == (100, 90, 10, 0)
    assert summary.comparisons == 90
    assert summary.agreement_ratio == pytest.approx(70 / 90)  # 20 multiples of 5 differ
    assert summary.candidate_error_ratio == pytest.approx(0.1)
    assert summary.primary_p99_s is not None and summary.candidate_p99_s is not None

    result = CliRunner().invoke(app, ["shadow", "report", str(record), "--json"])
    assert result.exit_code == 0, result.output
    [printed] = json.loads(result.output)
    assert printed == json.loads(json.dumps(summary.to_dict()))

    table = CliRunner().invoke(app, ["shadow", "report", str(record)])
    assert table.exit_code == 0, table.output
    assert "77.78% of 90" in table.output
    assert "90 / 10 / 0" in table.output


def test_dropped_mirrors_are_recorded_and_reported(tmp_path: Path, shadows: list[Shadow]) -> None:
    record = tmp_path / "shadow.jsonl"
    gate = threading.Event()
    shadow = Shadow(
        lambda x: gate.wait(10) and x, model="m", sample_rate=1.0, queue_size=3, record=record
    )
    shadows.append(shadow)
    for i in range(20):
        shadow.mirror((i,), result=i, latency_s=0.001)
    gate.set()
    assert shadow.join(timeout=10)
    shadow.close()
    [summary] = summarize(read_records(record))
    assert summary.dropped == shadow.counts()["dropped"] == 17
    assert summary.ok == 3 and summary.mirrored == 20


def test_a_record_file_with_a_broken_line_is_named(tmp_path: Path) -> None:
    record = tmp_path / "shadow.jsonl"
    record.write_text('{"result": "ok"}\n{"result": \n')
    result = CliRunner().invoke(app, ["shadow", "report", str(record)])
    assert result.exit_code == 1
    assert "shadow.jsonl:2" in result.output


def test_several_workers_share_the_queue(shadows: list[Shadow]) -> None:
    both = threading.Barrier(2, timeout=10)
    threads: set[str] = set()

    def candidate(x: int) -> int:
        threads.add(threading.current_thread().name + str(id(threading.current_thread())))
        if x < 2:
            both.wait()  # the first two calls run at once, one on each worker
        return x * 2

    shadow = Shadow(candidate, model="m", sample_rate=1.0, workers=2)
    shadows.append(shadow)
    predict = shadow(primary_model)
    for i in range(20):
        predict(i)
    assert shadow.join(timeout=10)
    assert shadow.counts()["agree"] == 20
    assert len(threads) == 2
