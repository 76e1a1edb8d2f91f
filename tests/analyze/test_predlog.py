"""The prediction log, against both back ends (SQLite file, real PostgreSQL server)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from inferwatch import ConfigError
from inferwatch.analyze.predlog import (
    LabelRow,
    PostgresPredictionLog,
    PredictionLog,
    PredictionRow,
    SQLitePredictionLog,
    open_prediction_log,
)

M, V = "fraud", "3"


@pytest.fixture
def log(log_target: str) -> PredictionLog:
    opened = open_prediction_log(log_target)
    yield opened  # type: ignore[misc]
    opened.close()


def pred(rid: str, at: float = 100.0, value: str | float = "cat", **kw: object) -> PredictionRow:
    return PredictionRow(rid, at, value, **kw)  # type: ignore[arg-type]


def labels(log: PredictionLog, *rows: tuple[str, str | float], now: float = 200.0,
           cutoff: float = 0.0) -> list[str]:  # fmt: skip
    return list(
        log.write_labels(M, V, [LabelRow(r, v, now) for r, v in rows], now=now, cutoff=cutoff)
    )


def test_a_label_after_its_prediction_is_joined_once(log: PredictionLog) -> None:
    assert log.write_predictions(M, V, [pred("a", score=0.9, features_json='{"x": [1, 2]}')]) == 1
    assert labels(log, ("a", "dog")) == ["stored"]
    [joined] = log.claim(M, V)
    assert (joined.request_id, joined.prediction, joined.label) == ("a", "cat", "dog")
    assert (joined.score, joined.predicted_at, joined.labelled_at) == (0.9, 100.0, 200.0)
    assert log.claim(M, V) == []
    row = log.get(M, V, "a")
    assert row is not None and row.joined and row.features == {"x": [1, 2]}


def test_a_label_before_its_prediction_waits_and_joins_when_it_arrives(
    log: PredictionLog,
) -> None:
    assert labels(log, ("early", "dog")) == ["pending"]
    assert log.claim(M, V) == []
    assert log.write_predictions(M, V, [pred("early", at=210.0, value="dog")]) == 1
    [joined] = log.claim(M, V)
    assert (joined.prediction, joined.label, joined.predicted_at) == ("dog", "dog", 210.0)


def test_the_first_label_wins_and_repeats_are_duplicates(log: PredictionLog) -> None:
    log.write_predictions(M, V, [pred("a")])
    assert labels(log, ("a", "cat"), ("a", "dog")) == ["stored", "duplicate"]
    assert labels(log, ("a", "cow")) == ["duplicate"]
    assert labels(log, ("p", "cat"), ("p", "dog")) == ["pending", "duplicate"]
    [joined] = log.claim(M, V)
    assert joined.label == "cat"
    assert labels(log, ("a", "cow")) == ["duplicate"]


def test_the_first_prediction_of_a_request_id_wins(log: PredictionLog) -> None:
    assert log.write_predictions(M, V, [pred("a", value="cat"), pred("b")]) == 2
    assert log.write_predictions(M, V, [pred("a", value="dog"), pred("c")]) == 1
    row = log.get(M, V, "a")
    assert row is not None and row.prediction == "cat"


def test_a_label_for_a_prediction_older_than_the_cutoff_is_expired(log: PredictionLog) -> None:
    log.write_predictions(M, V, [pred("old", at=100.0), pred("new", at=300.0)])
    assert labels(log, ("old", "cat"), ("new", "cat"), cutoff=200.0) == ["expired", "stored"]


def test_purge_keeps_tombstones_then_deletes_them(log: PredictionLog) -> None:
    log.write_predictions(M, V, [pred("a", at=100.0, features_json="[1]"), pred("b", at=500.0)])
    assert log.purge(M, V, cutoff=200.0, tombstone_cutoff=0.0, pending_cutoff=0.0) == 0
    row = log.get(M, V, "a")
    assert row is not None and row.expired and row.features is None and row.prediction is None
    assert labels(log, ("a", "cat"), cutoff=0.0) == ["expired"]
    log.purge(M, V, cutoff=200.0, tombstone_cutoff=150.0, pending_cutoff=0.0)
    assert log.get(M, V, "a") is None
    assert log.get(M, V, "b") is not None


def test_purge_drops_pending_labels_past_their_ttl_and_counts_them(log: PredictionLog) -> None:
    labels(log, ("x", "cat"), now=100.0)
    labels(log, ("y", "cat"), now=300.0)
    assert log.purge(M, V, cutoff=0.0, tombstone_cutoff=0.0, pending_cutoff=200.0) == 1
    assert log.get(M, V, "x") is None
    assert log.get(M, V, "y") is not None


def test_models_and_versions_are_kept_apart(log: PredictionLog) -> None:
    log.write_predictions(M, V, [pred("a")])
    log.write_predictions(M, "4", [pred("a", value="dog")])
    assert log.write_labels(M, "4", [LabelRow("a", "dog", 1.0)], now=1.0, cutoff=0.0) == ["stored"]
    assert log.claim(M, V) == []
    [joined] = log.claim(M, "4")
    assert joined.prediction == "dog"


def test_labelled_returns_joined_rows_in_a_window(log: PredictionLog) -> None:
    log.write_predictions(M, V, [pred(str(i), at=float(i), value=1.5 * i) for i in range(5)])
    log.write_labels(
        M, V, [LabelRow(str(i), float(i), 10.0 + i) for i in range(5)], now=20.0, cutoff=0.0
    )
    log.claim(M, V)
    rows = log.labelled(M, V, since=11.0, until=13.0)
    assert [r.request_id for r in rows] == ["1", "2"]
    assert rows[1].prediction == 3.0 and rows[1].label == 2.0


def test_two_writers_racing_on_the_same_ids_join_each_exactly_once(log_target: str) -> None:
    first, second = open_prediction_log(log_target), open_prediction_log(log_target)
    n = 200
    claimed: list[list[str]] = [[], []]

    def predictions() -> None:
        for i in range(0, n, 10):
            first.write_predictions(M, V, [pred(str(j)) for j in range(i, i + 10)])
            claimed[0].extend(r.request_id for r in first.claim(M, V))

    def feedback() -> None:
        for i in range(n - 1, -1, -1):
            second.write_labels(M, V, [LabelRow(str(i), "cat", 1.0)], now=1.0, cutoff=0.0)
            claimed[1].extend(r.request_id for r in second.claim(M, V))

    threads = [threading.Thread(target=predictions), threading.Thread(target=feedback)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        both = claimed[0] + claimed[1]
        assert sorted(both) == sorted(str(i) for i in range(n))
    finally:
        first.close()
        second.close()


def test_the_log_survives_reopening(log_target: str) -> None:
    with open_prediction_log(log_target) as first:
        first.write_predictions(M, V, [pred("a")])
    with open_prediction_log(log_target) as again:
        assert labels(again, ("a", "cat")) == ["stored"]


def test_open_picks_the_back_end_from_the_target(tmp_path: Path, log_target: str) -> None:
    with open_prediction_log(log_target) as opened:
        expected = PostgresPredictionLog if "://" in log_target else SQLitePredictionLog
        assert isinstance(opened, expected)
        assert open_prediction_log(opened) is opened
    with open_prediction_log(f"sqlite:///{tmp_path}/x.db") as by_url:
        assert isinstance(by_url, SQLitePredictionLog) and by_url.path == f"{tmp_path}/x.db"


def test_a_password_is_not_shown(postgres_url: str) -> None:
    url = postgres_url.replace("inferwatch@", "inferwatch:s3cret@")
    with open_prediction_log(url) as opened:
        assert "s3cret" not in repr(opened)


@pytest.mark.parametrize(
    ("target", "needle"),
    [("mysql://host/db", "unsupported prediction log URL"), ("", "needs a path")],
)
def test_bad_targets_are_config_errors(target: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        open_prediction_log(target)
    assert info.value.field == "log"


def test_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SQLitePredictionLog(tmp_path / "nope" / "log.db")
