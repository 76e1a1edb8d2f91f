"""The result cache of ``@monitor.track(cache=...)``: hits, misses, evictions, expiry."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from inferwatch import ConfigError, Monitor
from inferwatch.sdk.cache import UNCACHEABLE, Cache, default_key
from inferwatch.testing import FakeClock
from tests.sdk.support import MV, Samples, outcome

Read = Callable[[str], Samples]


def requests(read: Read, cache: str) -> dict[str, float]:
    return {
        dict(key)["result"]: float(value)
        for key, value in read("inferwatch_cache_requests_total").items()
        if dict(key)["cache"] == cache
    }


def evictions(read: Read, cache: str) -> dict[str, float]:
    return {
        dict(key)["reason"]: float(value)
        for key, value in read("inferwatch_cache_evictions_total").items()
        if dict(key)["cache"] == cache
    }


def gauge(read: Read, name: str, cache: str) -> float:
    return float(read(name)[(("cache", cache), *MV)])


class Model:
    """A deterministic model that counts how often it really runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: Any) -> Any:
        self.calls += 1
        return ("prediction", repr(x))


def test_repeated_inputs_hit_and_the_model_runs_once(monitor: Monitor, read: Read) -> None:
    model = Model()
    predict = monitor.track(cache=Cache(maxsize=8), batch_size=1)(model)
    first = predict([1.0, 2.0])
    assert predict([1.0, 2.0]) is first
    predict([1.0, 3.0])
    assert model.calls == 2
    assert requests(read, "Model") == {"hit": 1, "miss": 2, "uncacheable": 0}
    assert gauge(read, "inferwatch_cache_size", "Model") == 2
    assert gauge(read, "inferwatch_cache_max_size", "Model") == 8


def test_hits_are_counted_as_successful_inferences(monitor: Monitor, read: Read) -> None:
    predict = monitor.track(cache=True)(Model())
    for _ in range(3):
        predict("same")
    assert read("inferwatch_inferences_total") == {outcome("success"): 3}
    assert read("inferwatch_inference_duration_seconds")[MV].count == 3


def test_least_recently_used_entries_are_evicted_for_size(monitor: Monitor, read: Read) -> None:
    model = Model()
    predict = monitor.track(cache=Cache(maxsize=2, name="lru"))(model)
    predict(1)
    predict(2)
    predict(1)  # 1 is now the most recently used
    predict(3)  # evicts 2
    predict(1)
    predict(2)
    assert model.calls == 4
    assert requests(read, "lru") == {"hit": 2, "miss": 4, "uncacheable": 0}
    assert evictions(read, "lru") == {"size": 2, "expired": 0}
    assert gauge(read, "inferwatch_cache_size", "lru") == 2


def test_entries_expire_after_their_ttl(monitor: Monitor, read: Read) -> None:
    clock = FakeClock()
    model = Model()
    predict = monitor.track(cache=Cache(maxsize=16, ttl=60, timer=clock, name="ttl"))(model)
    predict("a")
    predict("b")
    clock.advance(59)
    predict("a")
    assert model.calls == 2
    clock.advance(1)  # "a" and "b" were stored 60 s ago: both expired now
    assert gauge(read, "inferwatch_cache_size", "ttl") == 0
    assert evictions(read, "ttl") == {"size": 0, "expired": 2}
    predict("a")
    assert model.calls == 3
    assert requests(read, "ttl") == {"hit": 1, "miss": 3, "uncacheable": 0}


def test_numpy_arrays_are_keyed_by_dtype_shape_and_bytes(monitor: Monitor) -> None:
    model = Model()
    predict = monitor.track(cache=True)(model)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    predict(a)
    predict(a.copy())
    predict(np.asfortranarray(a))  # same values, another memory layout
    assert model.calls == 1
    predict(a.astype(np.float64))
    predict(a.reshape(3, 2))
    predict(a + 1)
    assert model.calls == 4


def test_keys_keep_equal_looking_values_of_other_types_apart() -> None:
    assert default_key(1) != default_key(1.0) != default_key(True)
    assert default_key([1, 2]) != default_key((1, 2))
    assert default_key({"a": [1]}) == default_key({"a": [1]})
    assert default_key(1, k=2) == default_key(1, k=2) != default_key(1, k=3)
    assert default_key(np.array([object()])) is UNCACHEABLE


def test_unhashable_arguments_skip_the_cache_and_are_counted(monitor: Monitor, read: Read) -> None:
    class Frame:
        __hash__ = None  # type: ignore[assignment]

    model = Model()
    predict = monitor.track(cache=Cache(name="c"))(model)
    frame = Frame()
    predict(frame)
    predict(frame)
    assert model.calls == 2
    assert requests(read, "c") == {"hit": 0, "miss": 0, "uncacheable": 2}
    assert read("inferwatch_inferences_total") == {outcome("success"): 2}


def test_a_key_function_chooses_what_identifies_a_call(monitor: Monitor, read: Read) -> None:
    model = Model()

    def by_user(request: dict[str, Any]) -> Any:
        return request.get("user", UNCACHEABLE)

    predict = monitor.track(cache=Cache(key=by_user, name="k"))(model)
    predict({"user": 1, "noise": 0.1})
    predict({"user": 1, "noise": 0.2})
    predict({"anonymous": True})
    assert model.calls == 2
    assert requests(read, "k") == {"hit": 1, "miss": 1, "uncacheable": 1}


def test_a_failing_key_function_leaves_the_call_uncached(monitor: Monitor, read: Read) -> None:
    def broken(x: int) -> int:
        raise KeyError("bug in key")

    predict = monitor.track(cache=Cache(key=broken, name="b"))(lambda x: x * 2)
    assert predict(2) == 4
    assert requests(read, "b")["uncacheable"] == 1


def test_exceptions_are_not_cached(monitor: Monitor, read: Read) -> None:
    attempts = []

    @monitor.track(cache=Cache(name="flaky"))
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise RuntimeError("transient")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert len(attempts) == 2
    assert read("inferwatch_inferences_total")[outcome("error", "RuntimeError")] == 1


def test_async_results_are_awaited_before_being_cached(monitor: Monitor, read: Read) -> None:
    calls = []

    @monitor.track(cache=Cache(name="a"))
    async def predict(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return x * 10

    async def main() -> list[int]:
        return [await predict(1), await predict(1), await predict(2)]

    assert asyncio.run(main()) == [10, 10, 20]
    assert calls == [1, 2]
    assert requests(read, "a") == {"hit": 1, "miss": 2, "uncacheable": 0}


def test_methods_are_cached_per_instance(monitor: Monitor) -> None:
    class Classifier:
        def __init__(self, bias: int) -> None:
            self.bias = bias

        @monitor.track(cache=Cache(name="method"))
        def predict(self, x: int) -> int:
            return x + self.bias

    assert Classifier(1).predict(1) == 2
    assert Classifier(5).predict(1) == 6


def test_concurrent_calls_are_all_counted(monitor: Monitor, read: Read) -> None:
    predict = monitor.track(cache=Cache(maxsize=50, name="threads"))(lambda x: x)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(500):
                assert predict((seed * i) % 97) == (seed * i) % 97
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    counts = requests(read, "threads")
    assert counts["hit"] + counts["miss"] == 8 * 500
    assert gauge(read, "inferwatch_cache_size", "threads") <= 50


def test_generators_cannot_be_cached(monitor: Monitor) -> None:
    def stream(n: int) -> Iterator[int]:
        yield from range(n)

    with pytest.raises(ConfigError) as info:
        monitor.track(cache=True)(stream)
    assert info.value.field == "cache"


def test_one_cache_serves_one_function(monitor: Monitor) -> None:
    cache = Cache()
    monitor.track(cache=cache)(lambda x: x)
    with pytest.raises(ConfigError, match="its own Cache"):
        monitor.track(cache=cache)(lambda x: x)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"maxsize": 0}, "maxsize"),
        ({"maxsize": 1.5}, "maxsize"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "60"}, "ttl"),
        ({"key": "user"}, "key"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_cache_settings_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Cache(**kwargs)
    assert info.value.field == field


def test_track_rejects_a_cache_of_the_wrong_type(monitor: Monitor) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.track(cache={"maxsize": 3})(lambda x: x)  # type: ignore[arg-type]
    assert info.value.field == "cache"


def test_caches_of_the_same_name_add_up(monitor: Monitor, read: Read) -> None:
    square = monitor.track(cache=Cache(maxsize=4))(lambda x: x * x)
    double = monitor.track(cache=Cache(maxsize=4))(lambda x: x * 2)
    square(3)
    double(3)
    double(3)
    name = "test_caches_of_the_same_name_add_up.<lambda>"  # "<locals>." is left out
    assert requests(read, name) == {"hit": 1, "miss": 2, "uncacheable": 0}
    assert gauge(read, "inferwatch_cache_max_size", name) == 8


def test_a_single_scalar_key_differs_from_other_call_shapes() -> None:
    assert default_key("a") == default_key("a") != default_key(("a",))
    assert default_key(1) != default_key(True) != default_key(1.0)
    assert default_key("a") != default_key("a", "b") != default_key(a="a")
