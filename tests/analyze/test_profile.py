from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferwatch import ConfigError
from inferwatch.analyze.profile import (
    OTHER,
    PREDICTION,
    CategoricalSketch,
    NumericSketch,
    ReferenceProfile,
    categorical_column,
    numeric_column,
)

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False)
# Few distinct values, so ties are common.
tied = st.sampled_from([-3.0, -1.5, 0.0, 0.0, 2.0, 7.25])


def test_edges_are_the_reference_quantiles_inverted_cdf() -> None:
    rng = np.random.default_rng(1)
    values = rng.standard_normal(50_000)
    sketch = NumericSketch.from_values(values, bins=100)
    ordered = np.sort(values)
    # sorted[ceil(k*n/bins) - 1] in exact integer arithmetic (np.quantile's inverted_cdf
    # computes k/bins*n in floating point and can land one rank higher).
    expected = [ordered[-(-k * values.size // 100) - 1] for k in range(1, 100)]
    assert sketch.edges.tolist() == expected
    assert sketch.count == values.size
    assert sketch.counts.size == 100
    n = 1 << 16  # here k/bins*n is exact in floating point
    sketch = NumericSketch.from_values(values[:n], bins=10)
    levels = np.arange(1, 10) / 10
    assert np.array_equal(sketch.edges, np.quantile(values[:n], levels, method="inverted_cdf"))


def test_reference_counts_equal_counting_the_values_through_add() -> None:
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 3, 10_000))  # integers: many ties
    ref = NumericSketch.from_values(values, bins=50)
    again = ref.empty_like()
    again.add(values)
    assert np.array_equal(ref.counts, again.counts)


@settings(max_examples=60, deadline=None)
@given(
    ref=st.lists(st.one_of(finite, tied), min_size=1, max_size=300),
    a=st.lists(st.one_of(finite, tied), max_size=200),
    b=st.lists(st.one_of(finite, tied), max_size=200),
)
def test_merge_of_sketches_equals_sketch_of_the_concatenation(
    ref: list[float], a: list[float], b: list[float]
) -> None:
    reference = NumericSketch.from_values(np.array(ref), bins=20)
    left, right, both = (reference.empty_like() for _ in range(3))
    left.add(np.array(a, dtype=np.float64))
    right.add(np.array(b, dtype=np.float64))
    both.add(np.array(a + b, dtype=np.float64))
    left.merge(right)
    assert np.array_equal(left.counts, both.counts)
    assert left.count == len(a) + len(b)


def test_bin_b_holds_values_above_the_previous_edge_up_to_its_own() -> None:
    sketch = NumericSketch(np.array([1.0, 2.0, 2.0, 3.0]))
    sketch.add(np.array([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0]))
    # bins: <=1 | (1,2] | (2,2] (always empty) | (2,3] | >3
    assert sketch.counts.tolist() == [2, 2, 0, 2, 1]


def test_merging_sketches_with_different_edges_is_refused() -> None:
    a = NumericSketch.from_values(np.arange(100.0), bins=10)
    b = NumericSketch.from_values(np.arange(1, 101.0), bins=10)
    with pytest.raises(ValueError, match="different edges"):
        a.merge(b)


def test_sketch_size_does_not_grow_with_rows() -> None:
    rng = np.random.default_rng(3)
    ref = NumericSketch.from_values(rng.standard_normal(10_000))
    window = ref.empty_like()
    window.add(rng.standard_normal(1_000))
    size = window.nbytes
    for _ in range(10):
        window.add(rng.standard_normal(100_000))
    assert window.count == 1_001_000
    assert window.nbytes == size == 8 * (2 * 1000 - 1)
    assert window.counts.size == 1000


def test_categorical_sketch_keeps_top_k_and_counts_the_rest_as_other() -> None:
    counts = {"a": 50, "b": 30, "c": 30, "d": 5, "e": 1}
    sketch = CategoricalSketch.from_counts(counts, top_k=3)
    assert sketch.categories == ("a", "b", "c")  # the tie b/c broken by name
    assert sketch.counts.tolist() == [50, 30, 30, 6]
    window = sketch.empty_like()
    window.add_counts({"a": 1, "zzz": 4})
    assert window.counts.tolist() == [1, 0, 0, 4]
    assert window.nbytes == sketch.nbytes


def test_categorical_merge_equals_counting_everything_once() -> None:
    ref = CategoricalSketch.from_counts({"x": 3, "y": 2}, top_k=1)
    a, b, both = ref.empty_like(), ref.empty_like(), ref.empty_like()
    a.add_counts({"x": 1, "y": 2})
    b.add_counts({"x": 4, "q": 1})
    both.add_counts({"x": 5, "y": 2, "q": 1})
    a.merge(b)
    assert a.counts.tolist() == both.counts.tolist() == [5, 3]
    with pytest.raises(ValueError, match="different categories"):
        a.merge(CategoricalSketch(["y"]))


def test_numeric_column_counts_missing_nan_inf_and_wrong_types() -> None:
    values, issues = numeric_column(
        [1.0, None, float("nan"), float("inf"), -float("inf"), "3", True, 2, [1], np.float32(4)]
    )
    assert values.tolist() == [1.0, 1.0, 2.0, 4.0]
    assert (issues.missing, issues.nan, issues.inf, issues.type) == (1, 1, 2, 2)
    assert issues.invalid() == {"nan": 1, "inf": 2, "type": 2}


def test_numeric_column_takes_numpy_arrays_of_any_numeric_dtype() -> None:
    values, issues = numeric_column(np.array([1, 2, 3], dtype=np.int16))
    assert values.dtype == np.float64 and values.tolist() == [1.0, 2.0, 3.0]
    values, issues = numeric_column(np.array([0.5, np.nan, np.inf]))
    assert values.tolist() == [0.5]
    assert (issues.nan, issues.inf) == (1, 1)
    values, issues = numeric_column(np.array(["a", "b"]))
    assert values.size == 0 and issues.type == 2
    values, issues = numeric_column(np.array([1.5, None, "x"], dtype=object))
    assert values.tolist() == [1.5]
    assert (issues.missing, issues.type) == (1, 1)


def test_numeric_column_reads_pandas_missing_values_as_missing() -> None:
    pd = pytest.importorskip("pandas")
    values, issues = numeric_column(pd.Series([1, pd.NA, None, 3], dtype=object))
    assert values.tolist() == [1.0, 3.0]
    assert issues.missing == 2


def test_categorical_column_names_values_alike_from_lists_and_arrays() -> None:
    from_list, _ = categorical_column([1, 2, 2, True, "a", 1.5])
    from_arrays = {}
    for arr in (np.array([1, 2, 2]), np.array([True]), np.array(["a"]), np.array([1.5])):
        counts, _ = categorical_column(arr)
        from_arrays.update(counts)
    assert from_list == from_arrays == {"1": 1, "2": 2, "True": 1, "a": 1, "1.5": 1}


def test_categorical_column_counts_missing_nan_and_unhashable() -> None:
    counts, issues = categorical_column(["a", None, float("nan"), float("inf"), {"x": 1}, "a"])
    assert counts == {"a": 2}
    assert (issues.missing, issues.nan, issues.inf, issues.type) == (1, 1, 1, 1)
    counts, issues = categorical_column(np.array([1.0, np.nan]))
    assert counts == {"1.0": 1} and issues.nan == 1


def test_profile_from_a_dict_of_columns_infers_kinds() -> None:
    profile = ReferenceProfile.from_data(
        {"age": [30, 41, 25], "city": ["a", "b", "a"], "score": np.array([0.1, 0.2, 0.3])},
        predictions=[0, 1, 1],
    )
    assert profile.kinds() == {
        "age": "numeric",
        "city": "categorical",
        "score": "numeric",
        PREDICTION: "numeric",
    }
    assert profile.rows("city") == 3


def test_profile_from_a_2d_array_needs_feature_names() -> None:
    data = np.arange(20.0).reshape(10, 2)
    profile = ReferenceProfile.from_data(data, feature_names=["x", "y"])
    assert profile.kinds() == {"x": "numeric", "y": "numeric"}
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_data(data)
    assert info.value.field == "feature_names"


def test_profile_from_a_dataframe_and_from_rows_agree() -> None:
    pd = pytest.importorskip("pandas")
    rows = [{"x": float(i), "c": "ab"[i % 2]} for i in range(100)]
    a = ReferenceProfile.from_data(pd.DataFrame(rows))
    b = ReferenceProfile.from_data(rows)
    assert a.to_json() == b.to_json()


def test_declared_kinds_are_checked() -> None:
    data = {"x": [1.0, 2.0]}
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_data(data, kinds={"x": "ordinal"})  # type: ignore[dict-item]
    assert info.value.field == "kinds.x" and info.value.value == "ordinal"
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_data(data, kinds={"y": "numeric"})
    assert info.value.field == "kinds.y"
    with pytest.raises(ConfigError, match="no valid value") as info:
        ReferenceProfile.from_data({"x": [None, float("nan")]}, kinds={"x": "numeric"})
    assert info.value.field == "reference.x"


def test_bins_must_be_a_multiple_of_ten() -> None:
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_data({"x": [1.0]}, bins=15)
    assert info.value.field == "bins" and info.value.value == 15


def test_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(4)
    profile = ReferenceProfile.from_data(
        {"x": rng.standard_normal(5000) * 1e-7, "c": rng.choice(["p", "q", "r"], 5000)},
        predictions=rng.random(5000),
        top_k=2,
    )
    loaded = ReferenceProfile.from_json(profile.to_json())
    assert loaded.kinds() == profile.kinds()
    for name, sketch in profile.sketches.items():
        other = loaded.sketches[name]
        assert np.array_equal(sketch.counts, other.counts)
        if isinstance(sketch, NumericSketch):
            assert isinstance(other, NumericSketch)
            assert np.array_equal(sketch.edges, other.edges)
        else:
            assert isinstance(other, CategoricalSketch)
            assert sketch.categories == other.categories
    assert loaded.to_json() == profile.to_json()
    assert OTHER not in profile.sketches["c"].categories  # type: ignore[union-attr]


def test_loading_a_broken_profile_names_the_field() -> None:
    good = json.loads(ReferenceProfile.from_data({"x": [1.0, 2.0], "c": ["a", "b"]}).to_json())
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_json("{nope")
    assert info.value.field == "reference"
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_json(json.dumps({**good, "format": "other"}))
    assert info.value.field == "reference.format"
    bad = json.loads(json.dumps(good))
    bad["features"]["x"]["counts"] = [1]
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_json(json.dumps(bad))
    assert info.value.field == "reference.features.x"
    bad = json.loads(json.dumps(good))
    bad["features"]["c"]["kind"] = "text"
    with pytest.raises(ConfigError) as info:
        ReferenceProfile.from_json(json.dumps(bad))
    assert info.value.field == "reference.features.c.kind"
