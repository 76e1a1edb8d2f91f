from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from inferwatch import Monitor, Rejected
from tests.sdk.support import MV, Samples, outcome

Read = Callable[[str], Samples]


def test_sync_calls_are_counted_as_success(monitor: Monitor, read: Read) -> None:
    @monitor.track
    def predict(x: int) -> int:
        return x * 2

    assert [predict(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert read("inferwatch_inferences_total")[outcome("success")] == 5
    assert read("inferwatch_inference_duration_seconds")[MV].count == 5
    assert read("inferwatch_inference_items_total")[MV] == 5


def test_exception_is_counted_with_its_type_and_propagates(monitor: Monitor, read: Read) -> None:
    @monitor.track
    def predict(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    with pytest.raises(ValueError, match="negative"):
        predict(-1)
    predict(1)
    totals = read("inferwatch_inferences_total")
    assert totals[outcome("error", "ValueError")] == 1
    assert totals[outcome("success")] == 1
    assert read("inferwatch_inference_duration_seconds")[MV].count == 2


def test_rejected_is_counted_as_rejected_not_error(monitor: Monitor, read: Read) -> None:
    @monitor.track
    def predict() -> None:
        raise Rejected("queue full", retry_after=1.0)

    with pytest.raises(Rejected):
        predict()
    totals = read("inferwatch_inferences_total")
    assert totals == {outcome("rejected"): 1}


def test_async_function_is_timed_across_awaits(monitor: Monitor, read: Read) -> None:
    @monitor.track
    async def predict(x: int) -> int:
        await asyncio.sleep(0.02)
        return x

    assert asyncio.run(predict(3)) == 3
    sketch = read("inferwatch_inference_duration_seconds")[MV]
    assert sketch.count == 1
    assert sketch.min >= 0.019


def test_cancelled_async_call_is_an_error(monitor: Monitor, read: Read) -> None:
    @monitor.track
    async def predict() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(predict())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert read("inferwatch_inferences_total") == {outcome("error", "CancelledError"): 1}


def test_generator_is_timed_until_exhausted(monitor: Monitor, read: Read) -> None:
    @monitor.track
    def stream(n: int) -> Iterator[int]:
        for i in range(n):
            time.sleep(0.005)
            yield i

    gen = stream(3)
    assert read("inferwatch_inferences_total")[outcome("success")] == 0
    assert list(gen) == [0, 1, 2]
    assert read("inferwatch_inferences_total")[outcome("success")] == 1
    assert read("inferwatch_inference_duration_seconds")[MV].min >= 0.014


def test_generator_closed_early_is_success_and_error_midway_is_error(
    monitor: Monitor, read: Read
) -> None:
    @monitor.track
    def stream() -> Iterator[int]:
        yield 1
        yield 2
        raise KeyError("boom")

    early = stream()
    next(early)
    early.close()
    with pytest.raises(KeyError):
        list(stream())
    totals = read("inferwatch_inferences_total")
    assert totals[outcome("success")] == 1
    assert totals[outcome("error", "KeyError")] == 1


def test_generator_return_value_is_preserved(monitor: Monitor) -> None:
    @monitor.track
    def gen() -> Iterator[int]:
        yield 1
        return 42  # type: ignore[misc]

    def outer() -> Iterator[int]:
        result = yield from gen()
        assert result == 42
        yield result

    assert list(outer()) == [1, 42]


def test_async_generator_is_timed(monitor: Monitor, read: Read) -> None:
    @monitor.track
    async def tokens(n: int) -> AsyncIterator[str]:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"t{i}"

    async def consume() -> list[str]:
        return [t async for t in tokens(4)]

    assert asyncio.run(consume()) == ["t0", "t1", "t2", "t3"]
    assert read("inferwatch_inferences_total")[outcome("success")] == 1


def test_batch_size_from_len_counts_items(monitor: Monitor, read: Read) -> None:
    @monitor.track(batch_size=len)
    def predict(batch: list[int]) -> list[int]:
        return batch

    predict([1, 2, 3])
    predict(batch=[1] * 10)
    assert read("inferwatch_inference_items_total")[MV] == 13
    batches = read("inferwatch_inference_batch_size")[MV]
    assert batches.count == 2
    assert batches.sum == 13


def test_batch_size_skips_self_on_methods(monitor: Monitor, read: Read) -> None:
    class Model:
        @monitor.track(batch_size=len)
        def predict(self, batch: list[int]) -> int:
            return len(batch)

    assert Model().predict([1, 2]) == 2
    assert read("inferwatch_inference_items_total")[MV] == 2


def test_failing_batch_size_never_breaks_the_call(monitor: Monitor, read: Read) -> None:
    @monitor.track(batch_size=len)
    def predict(x: int) -> int:
        return x + 1

    assert predict(1) == 2  # len(1) raises TypeError inside inferwatch
    assert read("inferwatch_inferences_total")[outcome("success")] == 1
    assert read("inferwatch_internal_errors_total") == {(("component", "batch_size"),): 1}


def test_in_flight_counts_running_calls(monitor: Monitor, read: Read) -> None:
    entered = threading.Barrier(4)
    release = threading.Event()

    @monitor.track
    def predict() -> None:
        entered.wait()
        release.wait(5)

    threads = [threading.Thread(target=predict) for _ in range(3)]
    for t in threads:
        t.start()
    entered.wait()
    assert read("inferwatch_inferences_in_flight")[MV] == 3
    release.set()
    for t in threads:
        t.join()
    assert read("inferwatch_inferences_in_flight")[MV] == 0


def test_explicit_form_splits_queue_and_compute(monitor: Monitor, read: Read) -> None:
    with monitor.inference(batch_size=8) as inf:
        time.sleep(0.02)
        inf.mark_queued_done()
        time.sleep(0.01)
    queue = read("inferwatch_inference_queue_duration_seconds")[MV]
    compute = read("inferwatch_inference_compute_duration_seconds")[MV]
    total = read("inferwatch_inference_duration_seconds")[MV]
    assert queue.min >= 0.019
    assert compute.min >= 0.009
    assert total.sum == pytest.approx(queue.sum + compute.sum, rel=1e-6)
    assert read("inferwatch_inference_items_total")[MV] == 8


def test_explicit_form_reject_and_error(monitor: Monitor, read: Read) -> None:
    with monitor.inference() as inf:
        inf.reject()
    with pytest.raises(RuntimeError), monitor.inference():
        raise RuntimeError("x")
    totals = read("inferwatch_inferences_total")
    assert totals[outcome("rejected")] == 1
    assert totals[outcome("error", "RuntimeError")] == 1


def test_explicit_form_works_with_async_with(monitor: Monitor, read: Read) -> None:
    async def handle() -> None:
        async with monitor.inference() as inf:
            inf.set_batch_size(4)

    asyncio.run(handle())
    assert read("inferwatch_inference_items_total")[MV] == 4


def test_concurrent_threads_lose_no_counts(monitor: Monitor, read: Read) -> None:
    @monitor.track
    def predict(x: int) -> int:
        return x

    def work() -> None:
        for i in range(20_000):
            predict(i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    # Collect concurrently with the writers: folds must not drop racing appends.
    while any(t.is_alive() for t in threads):
        read("inferwatch_inferences_total")
    for t in threads:
        t.join()
    assert read("inferwatch_inferences_total")[outcome("success")] == 80_000
    assert read("inferwatch_inference_duration_seconds")[MV].count == 80_000


def test_record_rejected_counts_without_a_call(monitor: Monitor, read: Read) -> None:
    monitor.record_rejected(3)
    assert read("inferwatch_inferences_total")[outcome("rejected")] == 3


def test_wrapped_function_keeps_its_name_and_doc(monitor: Monitor) -> None:
    @monitor.track
    def predict(x: Any) -> Any:
        """Predict things."""
        return x

    assert predict.__name__ == "predict"
    assert predict.__doc__ == "Predict things."


def test_buffers_stay_bounded_when_nobody_collects(monitor: Monitor) -> None:
    from inferwatch.sdk.recorder import FOLD_THRESHOLD

    @monitor.track
    def fails() -> None:
        raise ValueError

    @monitor.track
    def stream() -> Iterator[int]:
        yield 1

    rec = monitor._recorder
    for _ in range(2 * FOLD_THRESHOLD):
        with monitor.inference() as inf:
            inf.mark_queued_done()
        with pytest.raises(ValueError):
            fails()
        list(stream())
    limit = FOLD_THRESHOLD + 0x4000 * 3
    for buf in (rec.ok, rec.errors, rec.queue, rec.compute):
        assert len(buf) < limit
    totals = sum(rec.outcomes.values()) + len(rec.ok) + len(rec.errors)
    assert totals == 6 * FOLD_THRESHOLD
