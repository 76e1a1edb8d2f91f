from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from scipy.spatial.distance import jensenshannon

from inferwatch import ConfigError, Registry
from inferwatch.analyze.drift import (
    KS_KSTWO_MAX_N,
    PSI_EPSILON,
    DriftDetector,
    chi2_test,
    js_distance,
    ks_pvalue,
    ks_test,
    psi,
)
from inferwatch.analyze.profile import (
    PREDICTION,
    CategoricalSketch,
    NumericSketch,
    ReferenceProfile,
    categorical_column,
)
from inferwatch.exposition import render
from inferwatch.testing import FakeClock

Sampler = Callable[[np.random.Generator, int], np.ndarray]

DISTRIBUTIONS: dict[str, Sampler] = {
    "normal": lambda rng, n: rng.standard_normal(n),
    "negative_lognormal": lambda rng, n: -rng.lognormal(2.0, 1.0, n),
    "mixed_sign_t": lambda rng, n: rng.standard_t(2, n) * 100,
    "ties_rounded": lambda rng, n: np.round(rng.normal(0, 2, n), 1),
    "discrete_ints": lambda rng, n: rng.poisson(4, n).astype(np.float64) - 3,
}


def sketches(ref: np.ndarray, cur: np.ndarray, bins: int = 1000) -> tuple[NumericSketch, ...]:
    r = NumericSketch.from_values(ref, bins=bins)
    c = r.empty_like()
    c.add(cur)
    return r, c


# -- statistics against scipy -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("shift", [0.0, 0.2])
def test_ks_statistic_brackets_scipy_within_the_stated_bound(name: str, shift: float) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{name}/{shift}".encode()))
    sample = DISTRIBUTIONS[name]
    ref = sample(rng, 20_000)
    cur = sample(rng, 4_000) + shift * np.std(ref)
    exact = stats.ks_2samp(ref, cur, method="asymp")
    result = ks_test(*sketches(ref, cur))
    assert result.statistic <= exact.statistic + 1e-12
    assert exact.statistic <= result.upper_bound + 1e-12
    # The stated bound, for continuous data: with 1000 reference-quantile bins the exact
    # statistic is within 0.01 of ours (about the largest share of either sample in one
    # bin). With ties the bound is looser (a tied value's whole mass sits in one bin) but
    # the statistic itself is then close to exact: every frequent value is an edge.
    if name not in ("ties_rounded", "discrete_ints"):
        assert result.upper_bound - result.statistic <= 0.01
    assert abs(result.statistic - exact.statistic) <= 0.005


@pytest.mark.parametrize("name", ["discrete_ints", "ties_rounded"])
def test_ks_is_exact_when_every_value_lies_on_an_edge(name: str) -> None:
    rng = np.random.default_rng(7)
    ref = DISTRIBUTIONS[name](rng, 3_000)
    cur = DISTRIBUTIONS[name](rng, 2_000) + 1
    cur = cur[np.isin(cur, ref)]  # only values the reference has: each is an edge
    exact = stats.ks_2samp(ref, cur, method="asymp")
    result = ks_test(*sketches(ref, cur))
    assert result.statistic == pytest.approx(exact.statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(exact.pvalue, rel=1e-9, abs=1e-300)


def test_ks_pvalue_is_scipys_for_the_two_sample_sizes() -> None:
    for d, n, m in [(0.05, 1000, 800), (0.02, 3000, 12000), (0.1, 50, 70)]:
        en = round(n * m / (n + m))
        assert en <= KS_KSTWO_MAX_N
        assert ks_pvalue(d, n, m) == pytest.approx(stats.kstwo.sf(d, en), rel=1e-12)


def test_ks_pvalue_above_the_kstwo_range_stays_within_two_percent() -> None:
    n = m = 2 * 12_000  # en = 12000, past KS_KSTWO_MAX_N
    for p in (0.5, 0.05, 0.01, 0.001):
        d = stats.kstwo.isf(p, 12_000)
        assert ks_pvalue(d, n, m) == pytest.approx(p, rel=0.02)


def test_chi2_equals_scipy_chisquare_against_reference_proportions() -> None:
    rng = np.random.default_rng(11)
    cats = ["a", "b", "c", "d", "e"]
    ref_counts, _ = categorical_column(
        rng.choice(cats, 5000, p=[0.4, 0.3, 0.15, 0.1, 0.05]).tolist()
    )
    ref = CategoricalSketch.from_counts(ref_counts, top_k=10)
    cur = ref.empty_like()
    cur_counts, _ = categorical_column(
        rng.choice(cats, 1200, p=[0.35, 0.3, 0.2, 0.1, 0.05]).tolist()
    )
    cur.add_counts(cur_counts)
    stat, pvalue = chi2_test(ref, cur)
    observed = cur.counts[:-1]
    expected = ref.counts[:-1] / ref.count * cur.count
    exact = stats.chisquare(observed, expected)
    assert stat == pytest.approx(exact.statistic, rel=1e-9)
    assert pvalue == pytest.approx(exact.pvalue, rel=1e-9)


def test_chi2_with_an_unseen_category_smooths_the_reference() -> None:
    ref = CategoricalSketch.from_counts({"a": 60, "b": 40}, top_k=2)
    cur = ref.empty_like()
    cur.add_counts({"a": 50, "b": 40, "new": 10})
    stat, pvalue = chi2_test(ref, cur)
    smoothed = np.array([60.5, 40.5, 0.5])
    exact = stats.chisquare([50, 40, 10], smoothed / smoothed.sum() * 100)
    assert stat == pytest.approx(exact.statistic, rel=1e-9)
    assert pvalue == pytest.approx(exact.pvalue, rel=1e-9)
    assert np.isfinite(stat) and pvalue < 1e-6


def test_js_distance_equals_scipy_base_2() -> None:
    ref = CategoricalSketch.from_counts({"a": 500, "b": 300, "c": 200, "d": 1}, top_k=3)
    cur = ref.empty_like()
    cur.add_counts({"a": 100, "b": 300, "x": 50})
    expected = jensenshannon(ref.counts, cur.counts, base=2)
    assert js_distance(ref, cur) == pytest.approx(expected, rel=1e-12)
    same = ref.copy()
    assert js_distance(ref, same) == pytest.approx(0.0, abs=1e-7)
    disjoint = CategoricalSketch(["a", "b"])
    disjoint.add_counts({"zzz": 10})
    assert js_distance(CategoricalSketch.from_counts({"a": 1, "b": 1}), disjoint) == 1.0


def direct_psi(ref: np.ndarray, cur: np.ndarray) -> float:
    """PSI from the raw data: reference deciles (inverted_cdf), bins (q_i-1, q_i]."""
    ordered = np.sort(ref)
    edges = ordered[[-(-k * ref.size // 10) - 1 for k in range(1, 10)]]
    r = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=10) / ref.size
    c = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=10) / cur.size
    r = np.where(r == 0, PSI_EPSILON, r)
    c = np.where(c == 0, PSI_EPSILON, c)
    return float(np.sum((c - r) * np.log(c / r)))


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("shift", [0.0, 0.5, 5.0])
def test_psi_equals_the_direct_computation_on_raw_data(name: str, shift: float) -> None:
    rng = np.random.default_rng(zlib.crc32(f"psi/{name}/{shift}".encode()))
    ref = DISTRIBUTIONS[name](rng, 10_000)
    cur = DISTRIBUTIONS[name](rng, 3_000) + shift * np.std(ref)
    assert psi(*sketches(ref, cur)) == pytest.approx(direct_psi(ref, cur), rel=1e-9, abs=1e-12)


# -- the detector -------------------------------------------------------------------------


def reference_data(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "x": rng.standard_normal(n),
        "y": rng.lognormal(0.0, 1.0, n),
        "z": rng.poisson(3, n).astype(np.float64),
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
    }


def make_detector(clock: FakeClock, **kwargs: object) -> DriftDetector:
    rng = np.random.default_rng(100)
    profile = ReferenceProfile.from_data(reference_data(rng, 20_000))
    return DriftDetector("clf", "2", reference=profile, clock=clock, **kwargs)  # type: ignore[arg-type]


def test_a_shifted_feature_drifts_and_the_unshifted_do_not() -> None:
    clock = FakeClock()
    detector = make_detector(clock)
    rng = np.random.default_rng(5)
    batch = reference_data(rng, 5_000)
    batch["x"] = batch["x"] + 0.3
    detector.observe_batch(batch)
    result = detector.statistics()
    assert result["x"].drifted is True
    assert result["x"].ks_pvalue is not None and result["x"].ks_pvalue < 1e-10
    assert {name for name, s in result.items() if s.drifted} == {"x"}
    assert result["x"].psi is not None and result["x"].psi > 0.05
    assert result["y"].psi is not None and result["y"].psi < 0.01


def test_a_shifted_category_mix_drifts() -> None:
    clock = FakeClock()
    detector = make_detector(clock)
    rng = np.random.default_rng(6)
    batch = reference_data(rng, 5_000)
    batch["color"] = rng.choice(["red", "green", "blue"], 5_000, p=[0.4, 0.3, 0.3])
    detector.observe_batch(batch)
    result = detector.statistics()["color"]
    assert result.drifted is True
    assert result.chi2_pvalue is not None and result.chi2_pvalue < 1e-10
    assert result.js_distance is not None and 0.05 < result.js_distance < 0.2


def test_false_alarm_rate_over_200_unshifted_windows_is_at_most_alpha() -> None:
    """200 one-hour windows of 500 rows drawn like the reference: 4 features each.

    At alpha = 0.01 this seed gives 5 alarms in 800 tests (0.625%); the KS side is
    conservative (its statistic is a lower bound), chi-squared is about exact.
    """
    clock = FakeClock()
    detector = make_detector(clock, alpha=0.01, window=3600.0, slices=4)
    rng = np.random.default_rng(8)
    alarms = tests = 0
    for _ in range(200):
        clock.advance(3600.0)
        detector.observe_batch(reference_data(rng, 500))
        result = detector.statistics()
        for name in ("x", "y", "z", "color"):
            assert result[name].window_rows == 500
            tests += 1
            alarms += bool(result[name].drifted)
    assert tests == 800
    assert alarms / tests <= detector.alpha
    assert alarms == 5


def test_the_window_drops_old_slices() -> None:
    clock = FakeClock(start=36_000.0)  # on a slice boundary
    detector = make_detector(clock, window=600.0, slices=6, min_rows=10)
    rng = np.random.default_rng(9)
    shifted = reference_data(rng, 1_000)
    shifted["x"] = shifted["x"] + 3
    detector.observe_batch(shifted)
    assert detector.statistics()["x"].drifted is True
    clock.advance(500.0)  # still within the 6 slices of 100 s
    detector.observe_batch(reference_data(rng, 1_000))
    assert detector.statistics()["x"].window_rows == 2_000
    clock.advance(100.0)  # the first slice has left the window
    result = detector.statistics()["x"]
    assert result.window_rows == 1_000
    assert result.drifted is False
    clock.advance(600.0)
    result = detector.statistics()["x"]
    assert result.window_rows == 0 and result.ks_statistic is None


def test_single_rows_go_into_the_slice_of_their_time() -> None:
    clock = FakeClock(start=0.0)
    detector = make_detector(clock, window=100.0, slices=10, min_rows=1)
    for _ in range(5):
        detector.observe({"x": 1.0, "y": 1.0, "z": 1.0, "color": "red"})
    clock.advance(95.0)
    for _ in range(3):
        detector.observe({"x": 1.0, "y": 1.0, "z": 1.0, "color": "red"})
    assert detector.statistics()["x"].window_rows == 8
    clock.advance(10.0)  # t=105: the slice [0, 10) is gone, [90, 100) stays
    assert detector.statistics()["x"].window_rows == 3


def test_statistics_wait_for_min_rows() -> None:
    clock = FakeClock()
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    detector = make_detector(clock, min_rows=50, registry=registry)
    rng = np.random.default_rng(10)
    detector.observe_batch(reference_data(rng, 49))
    body = render(registry)[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}
    assert not families["inferwatch_drift_ks_statistic"].samples
    assert not families["inferwatch_drift_detected"].samples
    rows = {s.labels["feature"]: s.value for s in families["inferwatch_drift_window_rows"].samples}
    assert rows == {"x": 49, "y": 49, "z": 49, "color": 49}
    clock.advance(5.0)
    detector.observe_batch(reference_data(rng, 1))
    assert detector.statistics()["x"].ks_statistic is not None


def test_collect_exports_series_per_feature_with_model_and_version() -> None:
    clock = FakeClock()
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    rng = np.random.default_rng(12)
    data = reference_data(rng, 5_000)
    profile = ReferenceProfile.from_data(data, predictions=rng.random(5_000))
    detector = DriftDetector("clf", "2", reference=profile, clock=clock, registry=registry)
    batch = reference_data(rng, 1_000)
    detector.observe_batch(batch, predictions=rng.random(1_000) + 0.5)
    detector.observe({"x": float("nan"), "y": float("inf"), "z": "seven"}, prediction=0.1)
    body = render(registry)[0].decode()
    families = {f.name: f for f in text_string_to_metric_families(body)}

    def by_feature(name: str) -> dict[str, float]:
        samples = families[name].samples
        assert all(s.labels["model"] == "clf" and s.labels["version"] == "2" for s in samples)
        return {s.labels["feature"]: s.value for s in samples}

    assert set(by_feature("inferwatch_drift_psi")) == {"x", "y", "z", PREDICTION}
    assert set(by_feature("inferwatch_drift_ks_pvalue")) == {"x", "y", "z", PREDICTION}
    assert set(by_feature("inferwatch_drift_ks_statistic")) == {"x", "y", "z", PREDICTION}
    assert set(by_feature("inferwatch_drift_chi2_statistic")) == {"color"}
    assert set(by_feature("inferwatch_drift_chi2_pvalue")) == {"color"}
    assert set(by_feature("inferwatch_drift_js_distance")) == {"color"}
    assert by_feature("inferwatch_drift_detected")[PREDICTION] == 1.0
    assert by_feature("inferwatch_drift_window_rows")["x"] == 1_000
    assert by_feature("inferwatch_drift_reference_rows")["x"] == 5_000
    assert by_feature("inferwatch_feature_missing")["color"] == 1
    invalid = {
        (s.labels["feature"], s.labels["reason"]): s.value
        for s in families["inferwatch_feature_invalid"].samples
    }
    assert invalid == {("x", "nan"): 1, ("y", "inf"): 1, ("z", "type"): 1}
    [rows] = families["inferwatch_drift_rows"].samples
    assert rows.value == 1_001


def test_missing_nan_inf_and_wrong_types_are_counted_not_sketched() -> None:
    clock = FakeClock()
    detector = make_detector(clock, min_rows=1)
    detector.observe({"x": 1.0, "y": float("nan"), "z": -float("inf"), "color": None})
    detector.observe({"y": 2.0, "z": "3", "color": float("nan")})
    detector.observe_batch(
        {"x": [np.nan, 0.5], "y": np.array([np.inf, 1.0]), "color": ["red", ["x"]]}
    )
    assert detector.missing_counts() == {"x": 1, "y": 0, "z": 2, "color": 1}
    assert detector.invalid_counts() == {
        ("y", "nan"): 1,
        ("z", "inf"): 1,
        ("z", "type"): 1,
        ("color", "nan"): 1,
        ("x", "nan"): 1,
        ("y", "inf"): 1,
        ("color", "type"): 1,
    }
    window = detector.statistics()
    assert {n: s.window_rows for n, s in window.items()} == {
        "x": 2,
        "y": 2,
        "z": 0,
        "color": 1,
    }
    assert window["x"].psi is not None and np.isfinite(window["x"].psi)


def test_observe_batch_takes_rows_a_dataframe_and_a_2d_array_alike() -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(13)
    data = {k: v for k, v in reference_data(rng, 300).items() if k != "color"}
    frame = pd.DataFrame(data)
    rows = frame.to_dict("records")
    array = frame[["x", "y", "z"]].to_numpy()
    profile = ReferenceProfile.from_data(reference_data(np.random.default_rng(1), 1000))
    results = []
    for batch in (data, frame, rows, array):
        detector = DriftDetector(
            "m", "1", reference=profile, features={"x": "numeric", "y": "numeric", "z": "numeric"}
        )
        detector.observe_batch(batch)
        results.append({n: s.ks_statistic for n, s in detector.statistics().items()})
    assert results[0] == results[1] == results[2] == results[3]
    assert all(v is not None for v in results[0].values())


def test_observe_and_observe_batch_never_raise() -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    seen: list[BaseException] = []
    detector = make_detector(FakeClock(), registry=registry, on_error=seen.append)
    detector.observe(42)  # type: ignore[arg-type]
    detector.observe_batch(np.zeros((3, 7)))  # wrong number of columns
    detector.observe_batch({"x": [1.0, 2.0], "y": [1.0]})  # ragged columns
    detector.observe_batch(object())
    assert detector.internal_errors == 4
    assert len(seen) == 4
    body = render(registry)[0].decode()
    assert 'inferwatch_internal_errors_total{component="drift"} 4.0' in body


def test_cached_statistics_are_reused_within_cache_seconds() -> None:
    clock = FakeClock()
    detector = make_detector(clock, cache_seconds=5.0, min_rows=1)
    detector.observe({"x": 1.0, "y": 1.0, "z": 1.0, "color": "red"})
    first = detector.statistics()
    detector.observe({"x": 1.0, "y": 1.0, "z": 1.0, "color": "red"})
    assert detector.statistics() is first
    assert detector.missing_counts()["x"] == 0
    clock.advance(5.0)
    assert detector.statistics()["x"].window_rows == 2


def test_the_first_rows_become_the_reference_then_it_freezes() -> None:
    clock = FakeClock()
    detector = DriftDetector(
        "m",
        "1",
        features={"x": "numeric", "c": "categorical"},
        prediction="numeric",
        reference_rows=1_000,
        min_rows=10,
        clock=clock,
    )
    rng = np.random.default_rng(14)
    for v in rng.standard_normal(600):
        detector.observe({"x": float(v), "c": "a"}, prediction=float(v))
    assert detector.reference is None
    assert detector.statistics() == {}
    detector.observe_batch(
        {"x": rng.standard_normal(600) + 1.0, "c": ["b"] * 600},
        predictions=rng.standard_normal(600),
    )
    reference = detector.reference
    assert reference is not None
    assert reference.rows("x") == 1_000 and reference.rows(PREDICTION) == 1_000
    result = detector.statistics()
    assert result["x"].window_rows == 200  # the rows past the first 1000
    assert result["x"].drifted is True
    assert result["c"].window_rows == 200
    assert result[PREDICTION].window_rows == 200
    before = reference.to_json()
    detector.observe_batch({"x": rng.standard_normal(5000), "c": ["a"] * 5000})
    assert detector.reference is not None and detector.reference.to_json() == before


def test_a_reference_round_tripped_through_json_gives_the_same_statistics() -> None:
    rng = np.random.default_rng(15)
    profile = ReferenceProfile.from_data(reference_data(rng, 5_000))
    batch = reference_data(rng, 2_000)
    results = []
    for ref in (profile, ReferenceProfile.from_json(profile.to_json())):
        detector = DriftDetector("m", "1", reference=ref, clock=FakeClock())
        detector.observe_batch(batch)
        results.append(detector.statistics())
    assert results[0] == results[1]


def test_sketch_memory_does_not_grow_with_rows() -> None:
    clock = FakeClock()
    detector = make_detector(clock)
    rng = np.random.default_rng(16)
    detector.observe_batch(reference_data(rng, 1_000))
    size = detector.sketch_nbytes
    batch = reference_data(rng, 100_000)
    for _ in range(10):
        detector.observe_batch(batch)
    result = detector.statistics()
    assert result["x"].window_rows == 1_001_000
    assert detector.sketch_nbytes == size
    # the reference (3 numeric sketches of 1000 bins and one of 3 categories) and one slice
    assert size == 2 * (3 * 8 * 1999 + 4 * 8 + len("redgreenblue"))


def test_observe_from_many_threads_loses_nothing() -> None:
    clock = FakeClock()
    detector = make_detector(clock, buffer_rows=97, min_rows=1)
    row = {"x": 0.5, "y": 1.0, "z": 2.0, "color": "blue"}

    def work() -> None:
        for _ in range(5_000):
            detector.observe(row)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert detector.statistics()["color"].window_rows == 20_000
    assert detector.internal_errors == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 0}, "window"),
        ({"window": -5.0}, "window"),
        ({"slices": 0}, "slices"),
        ({"min_rows": 0}, "min_rows"),
        ({"alpha": 1.5}, "alpha"),
        ({"bins": 7}, "bins"),
        ({"top_k": 0}, "top_k"),
        ({"numeric_test": "t"}, "numeric_test"),
        ({"categorical_test": "g"}, "categorical_test"),
        ({"cache_seconds": -1}, "cache_seconds"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        DriftDetector("m", features={"x": "numeric"}, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field in str(info.value)


def test_bad_features_or_reference_raise_config_error() -> None:
    profile = ReferenceProfile.from_data({"x": [1.0, 2.0], "c": ["a", "b"]})
    cases: list[tuple[dict[str, object], str]] = [
        ({"features": {"x": "ordinal"}}, "features.x"),
        ({"features": {"x": "numeric"}, "prediction": "text"}, "prediction"),
        ({"features": {PREDICTION: "numeric"}}, "features"),
        ({}, "features"),
        ({"reference": profile, "features": {"x": "numeric", "w": "numeric"}}, "reference.w"),
        ({"reference": profile, "features": {"c": "numeric"}}, "reference.c"),
        ({"reference": profile, "prediction": "numeric"}, f"reference.{PREDICTION}"),
        ({"reference": {"x": 1}}, "reference"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as info:
            DriftDetector("m", **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field, kwargs


def test_psi_and_js_tests_can_decide_drift() -> None:
    clock = FakeClock()
    detector = make_detector(
        clock, numeric_test="psi", categorical_test="js", psi_threshold=0.1, js_threshold=0.05
    )
    rng = np.random.default_rng(17)
    batch = reference_data(rng, 3_000)
    batch["y"] = batch["y"] * 1.5
    batch["color"] = rng.choice(["red", "green", "blue"], 3_000, p=[0.2, 0.3, 0.5])
    detector.observe_batch(batch)
    result = detector.statistics()
    assert {n for n, s in result.items() if s.drifted} == {"y", "color"}
