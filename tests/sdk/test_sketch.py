from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch.sdk.sketch import GAMMA, QuantileSketch, bucket_key, bucket_upper

values = st.floats(min_value=1e-6, max_value=1e4, allow_nan=False, allow_infinity=False)
value_lists = st.lists(values, min_size=1, max_size=300)


def sketch_of(xs: list[float]) -> QuantileSketch:
    sk = QuantileSketch()
    for x in xs:
        sk.add(x)
    return sk


def exact_quantile(xs: list[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[math.floor(q * (len(ordered) - 1))]


@given(value_lists, value_lists, value_lists)
def test_merge_is_associative(a: list[float], b: list[float], c: list[float]) -> None:
    left = sketch_of(a)
    left.merge(sketch_of(b))
    left.merge(sketch_of(c))
    bc = sketch_of(b)
    bc.merge(sketch_of(c))
    right = sketch_of(a)
    right.merge(bc)
    assert left == right


@given(value_lists, value_lists)
def test_merge_equals_sketch_of_concatenation(a: list[float], b: list[float]) -> None:
    merged = sketch_of(a)
    merged.merge(sketch_of(b))
    assert merged == sketch_of(a + b)
    assert merged.min == min(a + b)
    assert merged.max == max(a + b)


@settings(max_examples=200)
@given(value_lists, st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.999]))
def test_quantile_within_relative_error_bound(xs: list[float], q: float) -> None:
    estimate = sketch_of(xs).quantile(q)
    exact = exact_quantile(xs, q)
    bound = (GAMMA - 1) / (GAMMA + 1) + 1e-12
    assert abs(estimate - exact) <= bound * exact


@given(values)
def test_value_falls_inside_its_bucket(x: float) -> None:
    k = bucket_key(x)
    assert bucket_upper(k - 1) < x * (1 + 1e-12)
    assert x <= bucket_upper(k) * (1 + 1e-12)


@given(value_lists)
def test_cumulative_buckets_are_monotone_and_end_at_count(xs: list[float]) -> None:
    buckets = sketch_of(xs).cumulative_buckets()
    bounds = [le for le, _ in buckets]
    counts = [c for _, c in buckets]
    assert bounds == sorted(bounds)
    assert len(set(bounds)) == len(bounds)
    assert counts == sorted(counts)
    assert bounds[-1] == math.inf
    assert counts[-1] == len(xs)


@given(value_lists)
def test_each_occupied_bucket_has_its_lower_neighbour_exported(xs: list[float]) -> None:
    sk = sketch_of(xs)
    exported = {le for le, _ in sk.cumulative_buckets()}
    for k in sk.buckets:
        assert bucket_upper(k) in exported
        assert bucket_upper(k - 1) in exported


@given(st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=2000))
def test_numpy_and_python_folds_agree(ns: list[int]) -> None:
    as_list = QuantileSketch()
    as_list.add_ns(list(ns))  # a list of >= 256 takes the numpy path
    as_iter = QuantileSketch()
    as_iter.add_ns(iter(ns))
    assert as_list == as_iter
    assert as_list.min == as_iter.min
    assert as_list.max == as_iter.max


def test_add_ns_counts_seconds() -> None:
    sk = QuantileSketch()
    sk.add_ns([1_000_000, 2_000_000, 3_000_000])
    assert sk.count == 3
    assert sk.sum == pytest.approx(0.006)
    assert sk.quantile(0.5) == pytest.approx(0.002, rel=0.006)


def test_zero_and_negative_values_go_to_the_zero_bucket() -> None:
    sk = QuantileSketch()
    sk.add(0.0)
    sk.add(-1.0)
    sk.add(1.0)
    assert sk.zero_count == 2
    assert sk.quantile(0.0) <= 0.0
    assert sk.cumulative_buckets()[0] == (1e-9, 2.0)


def test_nan_is_ignored() -> None:
    sk = QuantileSketch()
    sk.add(math.nan)
    assert sk.count == 0
    assert math.isnan(sk.quantile(0.5))


def test_dict_round_trip_preserves_everything() -> None:
    rng = random.Random(1)
    sk = sketch_of([rng.lognormvariate(-3, 1) for _ in range(1000)] + [0.0])
    back = QuantileSketch.from_dict(sk.to_dict())
    assert back == sk
    assert (back.min, back.max) == (sk.min, sk.max)


def test_quantile_of_lognormal_is_within_one_percent() -> None:
    rng = random.Random(7)
    xs = [rng.lognormvariate(-3, 0.8) for _ in range(50_000)]
    sk = sketch_of(xs)
    for q in (0.5, 0.9, 0.99, 0.999):
        assert sk.quantile(q) == pytest.approx(exact_quantile(xs, q), rel=0.01)
