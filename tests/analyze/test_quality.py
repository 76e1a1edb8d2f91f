"""Model quality from delayed labels: metrics against scikit-learn, the tracker end to end,
the recording rules evaluated by the PromQL engine over the exported counters."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn import metrics as skm

from inferwatch import ConfigError, Registry
from inferwatch.analyze.predlog import open_prediction_log
from inferwatch.analyze.quality import (
    ClassificationMetrics,
    QualityTracker,
    RegressionMetrics,
    RegressionSums,
    classification_metrics,
    confusion_matrix,
    metrics_from_rows,
    regression_metrics,
)
from inferwatch.exposition import render
from inferwatch.promql import Engine
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.rules.file import load_rule_files
from inferwatch.rules.group import Group
from inferwatch.rules.unittest import run_file
from inferwatch.scrape.parse import samples_from_families
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import Labels

ROOT = Path(__file__).parents[2]
RULES = ROOT / "examples" / "rules" / "model-quality.yml"
CLASSES = ["ant", "bee", "cat", "dog"]


def registry() -> Registry:
    return Registry(collectors=[], include_default_registry=False, multiprocess=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def make_tracker(tmp_path: Path, clock: FakeClock) -> Iterator[object]:
    made: list[QualityTracker] = []

    def make(**kw: object) -> QualityTracker:
        kw.setdefault("log", str(tmp_path / "predictions.db"))
        kw.setdefault("clock", clock)
        kw.setdefault("background", False)
        tracker = QualityTracker(str(kw.pop("model", "m")), str(kw.pop("version", "1")), **kw)  # type: ignore[arg-type]
        made.append(tracker)
        return tracker

    yield make
    for tracker in made:
        tracker.close()


def sample(tracker: QualityTracker, name: str, **labels: str) -> float:
    found = [
        value
        for fam in tracker.collect()
        if fam.name == name
        for key, value in fam.samples.items()
        if all(dict(zip(fam.labelnames, key, strict=True))[k] == v for k, v in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    assert isinstance(found[0], float)
    return found[0]


def assert_matches_sklearn(ours: ClassificationMetrics, y_true: list[str], y_pred: list[str]):  # type: ignore[no-untyped-def]
    labels = sorted(set(y_true) | set(y_pred))
    p, r, f, s = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    assert list(ours.per_class) == labels
    for i, c in enumerate(labels):
        got = ours.per_class[c]
        assert got.precision == pytest.approx(p[i]), c
        assert got.recall == pytest.approx(r[i]), c
        assert got.f1 == pytest.approx(f[i]), c
        assert got.support == s[i]
    for average in ("macro", "micro"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        assert getattr(ours, f"{average}_precision") == pytest.approx(p)
        assert getattr(ours, f"{average}_recall") == pytest.approx(r)
        assert getattr(ours, f"{average}_f1") == pytest.approx(f)
    assert ours.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert ours.count == len(y_true)


# -- the pure metrics -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_match_sklearn(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 300)
    # "dog" is never predicted and "eel" never actual: zero_division cases on both sides.
    y_true = [rng.choice(CLASSES) for _ in range(n)]
    y_pred = [rng.choice(["ant", "bee", "cat", "eel"]) for _ in range(n)]
    assert_matches_sklearn(classification_metrics(confusion_matrix(y_true, y_pred)), y_true, y_pred)


def test_classification_metrics_of_nothing_are_zero() -> None:
    empty = classification_metrics({("a", "a"): 0.0})
    assert (empty.count, empty.accuracy, empty.macro_f1, empty.per_class) == (0, 0, 0, {})


def test_class_names_unify_numbers_and_strings() -> None:
    assert confusion_matrix([1, "1", 1.0, np.int64(1), True], [1, 1, 1, 1, "True"]) == {
        ("1", "1"): 4.0,
        ("True", "True"): 1.0,
    }


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(10, 5, 200)
    y_true[np.abs(y_true) < 0.1] = 1.0
    y_pred = y_true + rng.normal(0, 2, 200)
    sums = RegressionSums()
    for a, p in zip(y_true, y_pred, strict=True):
        sums.add(float(a), float(p))
    ours = regression_metrics(sums)
    assert ours.mae == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert ours.rmse == pytest.approx(skm.root_mean_squared_error(y_true, y_pred))
    assert ours.mape == pytest.approx(skm.mean_absolute_percentage_error(y_true, y_pred))


def test_mape_leaves_out_zero_actuals() -> None:
    sums = RegressionSums()
    for a, p in [(0.0, 1.0), (2.0, 3.0), (4.0, 2.0)]:
        sums.add(a, p)
    ours = regression_metrics(sums)
    assert (ours.count, ours.mape_count, sums.zero_actual) == (3, 2, 1)
    assert ours.mape == pytest.approx(skm.mean_absolute_percentage_error([2, 4], [3, 2]))
    assert ours.mae == pytest.approx(4 / 3)


# -- the tracker ----------------------------------------------------------------------------


def test_feedback_right_after_the_prediction_joins_with_the_writer_running(
    tmp_path: Path,
) -> None:
    with QualityTracker("m", "1", log=str(tmp_path / "p.db"), flush_interval_s=3600) as tracker:
        tracker.log_prediction("r1", "cat", score={"cat": 0.7, "dog": 0.3})
        assert tracker.feedback("r1", "cat") == "joined"
        assert sample(tracker, "inferwatch_labels_total", correct="true") == 1
        writer = tracker._writer
        assert writer is not None and writer.daemon
    assert not writer.is_alive()


def test_labels_out_of_order_duplicated_or_never_count_each_prediction_once(
    make_tracker, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(classes=CLASSES, pending_ttl_s=600)
    rng = random.Random(7)
    truth = {f"r{i}": rng.choice(CLASSES) for i in range(200)}
    preds = {rid: (a if rng.random() < 0.7 else rng.choice(CLASSES)) for rid, a in truth.items()}
    ids = list(truth)
    early = ids[:30]  # labels that arrive before their predictions
    for rid in early:
        assert tracker.feedback(rid, truth[rid]) == "pending"
    for rid in ids:
        tracker.log_prediction(rid, preds[rid], score=rng.random())
        clock.advance(1)
    tracker.flush()
    late = ids[30:150]
    rng.shuffle(late)
    for rid in late:
        clock.advance(5)
        assert tracker.feedback(rid, truth[rid]) == "joined"
    for rid in ids[:20] + late[:10]:  # repeats, even with another label: the first wins
        assert tracker.feedback(rid, "dog") == "duplicate"
    assert tracker.feedback("ghost", "cat") == "pending"  # never gets a prediction
    clock.advance(601)
    assert tracker.purge() == 1

    labelled = early + late  # ids[150:] never get a label
    y_true = [truth[r] for r in labelled]
    y_pred = [preds[r] for r in labelled]
    ours = tracker.metrics()
    assert isinstance(ours, ClassificationMetrics)
    assert_matches_sklearn(ours, y_true, y_pred)
    assert sample(tracker, "inferwatch_predictions_logged_total") == 200
    assert sample(tracker, "inferwatch_feedback_unmatched_total", reason="duplicate") == 30
    assert sample(tracker, "inferwatch_feedback_unmatched_total", reason="unknown") == 1
    correct = sum(t == p for t, p in zip(y_true, y_pred, strict=True))
    assert sample(tracker, "inferwatch_labels_total", correct="true") == correct
    assert sample(tracker, "inferwatch_labels_total", correct="false") == 150 - correct
    for c in CLASSES:
        assert sample(tracker, "inferwatch_prediction_class_total", **{"class": c}) == sum(
            p == c for p in preds.values()
        )
    rows = tracker.log.labelled("m", "1")
    assert metrics_from_rows(rows, "classification") == ours


def test_a_label_for_an_expired_prediction_is_counted_not_raised(
    make_tracker, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(retention_s=3600)
    tracker.log_prediction("old", "cat")
    tracker.flush()
    clock.advance(3601)
    assert tracker.feedback("old", "cat") == "expired"
    tracker.purge()
    assert tracker.feedback("old", "cat") == "expired"  # a tombstone remembers it
    assert sample(tracker, "inferwatch_feedback_unmatched_total", reason="expired") == 2
    assert sample(tracker, "inferwatch_labels_total", correct="true") == 0


def test_regression_counters_and_label_delay(make_tracker, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(task="regression")
    pairs = [(10.0, 12.0), (0.0, 1.5), (-4.0, -3.0), (8.0, 8.0)]
    for i, (_, predicted) in enumerate(pairs):
        tracker.log_prediction(i, predicted, features={"x": np.arange(3)})
    clock.advance(30)
    for i, (actual, _) in enumerate(pairs):
        tracker.feedback(i, actual, at=clock() + 30 * i)
    ours = tracker.metrics()
    assert isinstance(ours, RegressionMetrics)
    assert ours.mae == pytest.approx(skm.mean_absolute_error(*zip(*pairs, strict=True)))
    assert sample(tracker, "inferwatch_regression_zero_actual_total") == 1
    assert sample(tracker, "inferwatch_regression_abs_error_total") == 4.5
    assert sample(tracker, "inferwatch_regression_squared_error_total") == 7.25
    assert sample(tracker, "inferwatch_regression_abs_relative_error_total") == 0.2 + 0.25
    assert sample(tracker, "inferwatch_labels_total", correct="") == 4
    [delay] = [f for f in tracker.collect() if f.name == "inferwatch_label_delay_seconds"]
    [hist] = delay.samples.values()
    assert hist.count == 4 and hist.sum == 30 + 60 + 90 + 120  # type: ignore[union-attr]
    stored = tracker.log.get("m", "1", "0")
    assert stored is not None and stored.features == {"x": [0, 1, 2]}


@pytest.mark.parametrize(
    ("task", "label", "needle"),
    [
        ("regression", "abc", "label: expected a finite number, got 'abc'"),
        ("regression", float("nan"), "label: expected a finite number"),
        ("regression", True, "label: expected a finite number"),
        ("classification", ["a"], "label: expected a class"),
        ("classification", float("nan"), "label: expected a class, got nan"),
        ("classification", None, "label: expected a class"),
    ],
)
def test_a_label_of_the_wrong_type_is_rejected_naming_the_field(
    make_tracker, task: str, label: object, needle: str
) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(task=task)
    with pytest.raises(ConfigError, match=needle) as info:
        tracker.feedback("r", label)
    assert info.value.field == "label"
    with pytest.raises(ConfigError) as bad_id:
        tracker.feedback(["r"], 1)
    assert bad_id.value.field == "request_id"


def test_bad_predictions_on_the_hot_path_are_counted_not_raised(make_tracker) -> None:  # type: ignore[no-untyped-def]
    reg = registry()
    tracker: QualityTracker = make_tracker(registry=reg)
    tracker.log_prediction("a", {"not": "a class"})
    tracker.log_prediction(None, "cat")
    tracker.log_prediction("b", "cat", score="high", features=object())
    tracker.flush()
    assert sample(tracker, "inferwatch_predictions_dropped_total", reason="invalid") == 2
    assert sample(tracker, "inferwatch_predictions_logged_total") == 1
    errors = [f for f in reg.snapshot() if f.name == "inferwatch_internal_errors_total"]
    assert errors[0].samples[("quality",)] == 4


def test_past_the_buffer_bound_predictions_are_dropped_and_counted(make_tracker) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(max_buffer=3)
    for i in range(5):
        tracker.log_prediction(i, "cat")
    tracker.flush()
    assert sample(tracker, "inferwatch_predictions_dropped_total", reason="buffer_full") == 2
    assert sample(tracker, "inferwatch_predictions_logged_total") == 3
    tracker.log_prediction(1, "cat")
    tracker.flush()
    assert sample(tracker, "inferwatch_predictions_dropped_total", reason="duplicate") == 1


def test_after_close_predictions_are_dropped_as_closed(make_tracker) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker()
    tracker.close()
    tracker.log_prediction("a", "cat")
    assert sample(tracker, "inferwatch_predictions_dropped_total", reason="closed") == 1


def test_classes_past_the_limit_count_as_other(make_tracker) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(max_classes=2)
    for i, c in enumerate(["a", "b", "c", "d"]):
        tracker.log_prediction(i, c)
    tracker.flush()
    assert sample(tracker, "inferwatch_prediction_class_total", **{"class": "__other__"}) == 2


def test_replicas_sharing_a_log_count_each_label_once(log_target: str, clock: FakeClock) -> None:
    shared = [open_prediction_log(log_target), open_prediction_log(log_target)]
    a, b = (
        QualityTracker("m", "1", log=log, clock=clock, background=False, classes=CLASSES)
        for log in shared
    )
    try:
        rng = random.Random(3)
        truth = {f"r{i}": rng.choice(CLASSES) for i in range(120)}
        preds = {r: rng.choice(CLASSES) for r in truth}

        def serve(tracker: QualityTracker, ids: list[str]) -> None:
            for rid in ids:
                tracker.log_prediction(rid, preds[rid])
            tracker.flush()

        def label(tracker: QualityTracker, ids: list[str]) -> None:
            for rid in ids:
                tracker.feedback(rid, truth[rid])

        ids = list(truth)
        threads = [
            threading.Thread(target=serve, args=(a, ids[:60])),
            threading.Thread(target=serve, args=(b, ids[60:])),
            threading.Thread(target=label, args=(a, ids[::2])),  # labels reach either
            threading.Thread(target=label, args=(b, ids[1::2])),  # replica, in any order
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for tracker in (a, b):
            tracker.flush()
        confusion: dict[tuple[str, str], float] = {}
        for tracker in (a, b):
            for key, value in tracker._confusion.items():
                confusion[key] = confusion.get(key, 0.0) + value
        y_true, y_pred = list(truth.values()), [preds[r] for r in truth]
        assert_matches_sklearn(classification_metrics(confusion), y_true, y_pred)
    finally:
        a.close()
        b.close()
        for log in shared:
            log.close()


# -- CSV import ------------------------------------------------------------------------------


def test_csv_import_reports_bad_rows_by_line_and_imports_the_good(
    make_tracker, tmp_path: Path, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker(task="regression", retention_s=1000)
    for i in range(4):
        tracker.log_prediction(f"r{i}", float(i))
    tracker.flush()
    clock.advance(60)
    path = tmp_path / "labels.csv"
    path.write_text(
        "request_id,label,timestamp,comment\n"
        "r0,1.5,,fine\n"
        "r1,abc,,bad label\n"
        f"r2,2,{clock() - 30},epoch time\n"
        ",3,,no id\n"
        "r3,4,2023-11-14T22:14:00Z,iso time\n"
        "r0,9,,repeat\n"
        "nope,1,,unknown\n"
        "r3,5,yesterday,bad time\n"
    )
    result = tracker.import_feedback_csv(path, batch_size=2)
    assert result.errors == [
        "labels.csv:3: label: expected a number, got 'abc'",
        "labels.csv:5: request_id: empty",
        "labels.csv:9: timestamp: expected seconds since the epoch or ISO 8601, got 'yesterday'",
    ]
    assert (result.rows, result.joined, result.duplicate, result.pending, result.invalid) == (
        8,
        3,
        1,
        1,
        3,
    )
    assert sample(tracker, "inferwatch_labels_total", correct="") == 3
    assert sample(tracker, "inferwatch_feedback_unmatched_total", reason="invalid") == 3
    assert tracker.log.get("m", "1", "r1").label is None  # type: ignore[union-attr]


def test_csv_without_the_needed_columns_is_a_config_error(make_tracker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tracker: QualityTracker = make_tracker()
    path = tmp_path / "labels.csv"
    path.write_text("id,label\nr1,cat\n")
    with pytest.raises(ConfigError, match=r"labels.csv:1: .*missing request_id") as info:
        tracker.import_feedback_csv(path)
    assert info.value.field == "request_id"


# -- exposition and rules -----------------------------------------------------------------


def test_several_trackers_in_one_registry_expose_one_family_each(make_tracker) -> None:  # type: ignore[no-untyped-def]
    reg = registry()
    cls: QualityTracker = make_tracker(model="digits", registry=reg, classes=["0", "1"])
    reg_: QualityTracker = make_tracker(model="price", task="regression", registry=reg)
    cls.log_prediction("a", 1, score=[0.2, 0.8])
    reg_.log_prediction("a", 2.5)
    cls.flush()
    reg_.flush()
    body, _ = render(reg)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    logged = families["inferwatch_predictions_logged"]
    assert {s.labels["model"]: s.value for s in logged.samples} == {"digits": 1, "price": 1}
    score = families["inferwatch_prediction_score"]
    [count] = [s for s in score.samples if s.name.endswith("_count")]
    assert count.value == 1 and count.labels == {"model": "digits", "version": "1"}
    assert "inferwatch_confusion" in families and "inferwatch_regression_abs_error" in families


class _Storage(MemoryStorage):
    def append(self, ts_ms: int, samples: list[tuple[Labels, float]]) -> None:
        for labels, value in samples:
            self.add(labels, [ts_ms], [value])


def test_recording_rules_over_the_exported_counters_match_sklearn(
    make_tracker, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    reg = registry()
    cls: QualityTracker = make_tracker(model="digits", registry=reg, classes=CLASSES)
    rgr: QualityTracker = make_tracker(model="price", task="regression", registry=reg)
    storage = _Storage()

    def scrape(t_ms: int) -> None:
        for labels, value, _ in samples_from_families(reg.collect()):
            storage.add(labels, [t_ms], [value])

    scrape(0)
    rng = random.Random(11)
    y_true: list[str] = []
    y_pred: list[str] = []
    r_true: list[float] = []
    r_pred: list[float] = []
    n = 0
    for minute in range(1, 11):
        for _ in range(40):
            n += 1
            actual = rng.choice(CLASSES[:3])  # "dog" is predicted, never actual
            predicted = actual if rng.random() < 0.6 else rng.choice(CLASSES)
            cls.log_prediction(n, predicted)
            value = rng.uniform(1, 50)
            rgr.log_prediction(n, value + rng.gauss(0, 3))
            if rng.random() < 0.75:  # some never get a label
                cls.feedback(n, actual)
                rgr.feedback(n, value)
                y_true.append(actual)
                y_pred.append(predicted)
                r_true.append(value)
                r_pred.append(rgr.log.get("price", "1", str(n)).prediction)  # type: ignore[union-attr, arg-type]
        cls.flush()
        rgr.flush()
        scrape(minute * 60_000)

    engine = Engine(storage)
    t = 10 * 60
    for spec in load_rule_files([str(RULES)]):
        if spec.name.endswith("-1h"):
            Group(spec, storage=storage, engine=engine, interval_s=60).eval(t)

    def query(expr: str) -> dict[str, float]:
        result = engine.instant_query(expr, t * 1000).value
        return {dict(s.labels).get("class", dict(s.labels)["model"]): s.v for s in result}  # type: ignore[union-attr]

    labels = sorted(set(y_true) | set(y_pred))
    p, r, f, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    for name, expected in (("precision", p), ("recall", r), ("f1", f)):
        got = query(f"model_class:inferwatch_{name}:ratio_rate1h")
        assert got == pytest.approx(dict(zip(labels, expected, strict=True)), rel=1e-9), name
    assert query("model:inferwatch_f1_macro:ratio_rate1h")["digits"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0), rel=1e-9
    )
    assert query("model:inferwatch_f1_micro:ratio_rate1h")["digits"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="micro", zero_division=0), rel=1e-9
    )
    assert query("model:inferwatch_accuracy:ratio_rate1h")["digits"] == pytest.approx(
        skm.accuracy_score(y_true, y_pred), rel=1e-9
    )
    assert query("model:inferwatch_label_coverage:ratio_rate1h") == pytest.approx(
        {"digits": len(y_true) / n, "price": len(y_true) / n}, rel=1e-9
    )
    assert query("model:inferwatch_regression_mae:rate1h")["price"] == pytest.approx(
        skm.mean_absolute_error(r_true, r_pred), rel=1e-9
    )
    assert query("model:inferwatch_regression_rmse:rate1h")["price"] == pytest.approx(
        skm.root_mean_squared_error(r_true, r_pred), rel=1e-9
    )
    assert query("model:inferwatch_regression_mape:ratio_rate1h")["price"] == pytest.approx(
        skm.mean_absolute_percentage_error(r_true, r_pred), rel=1e-9
    )
    assert not math.isnan(query("model:inferwatch_label_delay_seconds:p90_rate1h")["digits"])


def test_the_example_rule_unit_tests_pass_in_inferwatch() -> None:
    assert run_file(str(RULES.with_name("model-quality.test.yml"))) == []
