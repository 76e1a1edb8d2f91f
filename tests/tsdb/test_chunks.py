from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferwatch.tsdb.chunks import ChunkError, decode, encode
from inferwatch.tsdb.labels import STALE_NAN

special = st.sampled_from([float("nan"), STALE_NAN, float("inf"), float("-inf"), -0.0, 0.0])
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), special)


def bits(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float64).view(np.uint64)


@st.composite
def series(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=1, max_value=300))
    gaps = draw(st.lists(st.integers(1, 10**7), min_size=n, max_size=n))
    start = draw(st.integers(-(10**12), 10**13))
    ts = start + np.cumsum(np.array(gaps, dtype=np.int64))
    vals = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    return ts, vals


@given(series())
def test_round_trip_is_bit_exact(data: tuple[np.ndarray, np.ndarray]) -> None:
    ts, vals = data
    t2, v2 = decode(encode(ts, vals))
    assert np.array_equal(t2, ts)
    assert np.array_equal(bits(v2), bits(vals))


@given(
    st.lists(st.integers(0, 10**6), min_size=2, max_size=200),
    st.integers(1, 10**4),
)
def test_counter_with_resets_round_trips(increments: list[int], reset_every: int) -> None:
    counter = np.cumsum(increments).astype(np.float64)
    counter[::reset_every] = 0.0  # resets to zero
    ts = np.arange(counter.size, dtype=np.int64) * 15_000
    t2, v2 = decode(encode(ts, counter))
    assert np.array_equal(v2, counter)
    assert np.array_equal(t2, ts)


def test_regular_decimal_series_is_small() -> None:
    ts = 1_700_000_000_000 + np.arange(720, dtype=np.int64) * 5000
    counter = np.cumsum(np.random.default_rng(0).poisson(20, 720)).astype(np.float64)
    constant = np.full(720, 42.0)
    assert len(encode(ts, counter)) / 720 < 2.0
    assert len(encode(ts, constant)) / 720 < 0.2


def test_negative_zero_keeps_its_sign() -> None:
    ts = np.array([1, 2], dtype=np.int64)
    _, v = decode(encode(ts, np.array([-0.0, 1.0])))
    assert np.signbit(v[0])


def test_corrupt_bytes_raise_chunk_error() -> None:
    good = encode(np.array([1, 2, 3], dtype=np.int64), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ChunkError):
        decode(good[:-3])
    with pytest.raises(ChunkError):
        decode(b"X" + good[1:])


def test_empty_or_mismatched_input_is_refused() -> None:
    with pytest.raises(ValueError):
        encode(np.array([], dtype=np.int64), np.array([]))
    with pytest.raises(ValueError):
        encode(np.array([1], dtype=np.int64), np.array([1.0, 2.0]))
