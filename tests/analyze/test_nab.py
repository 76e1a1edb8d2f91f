"""The NAB scorer: weights, probation, threshold sweep and normalisation."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from inferwatch._errors import ConfigError
from inferwatch.analyze.nab import (
    REWARD_LOW_FN_RATE,
    STANDARD,
    LabelledFile,
    probationary_rows,
    row_weights,
    scaled_sigmoid,
    score_corpus,
    window_rows,
)


def test_scaled_sigmoid_matches_nab() -> None:
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert scaled_sigmoid(3.5) == -1.0


def test_probation_is_fifteen_percent_capped_at_750() -> None:
    assert probationary_rows(100) == 15
    assert probationary_rows(10_000) == 750


def test_detection_at_window_left_edge_earns_full_tp() -> None:
    w = row_weights(100, [(50, 59)], STANDARD)
    assert w[50] == pytest.approx(1.0)
    assert 0 < w[59] < 0.3 < w[55]
    assert w[10] == pytest.approx(-0.11)
    # just after the window a false alarm costs little; far after, the full fp
    assert -0.11 < w[60] < 0
    assert w[99] == pytest.approx(-0.11, abs=1e-3)


def test_never_firing_scores_zero_and_perfect_scores_100() -> None:
    n = 100
    never = LabelledFile("a", [0.0] * n, [(50, 59)])
    assert score_corpus([never]).score == pytest.approx(0.0)
    perfect = [0.0] * n
    perfect[50] = 1.0
    r = score_corpus([LabelledFile("a", perfect, [(50, 59)])])
    assert r.score == pytest.approx(100.0)
    assert r.threshold == 1.0
    assert r.detected_windows == 1


def test_false_positives_and_late_detection_lower_the_score() -> None:
    scores = [0.0] * 100
    scores[55] = 0.9
    scores[30] = 0.9
    r = score_corpus([LabelledFile("a", scores, [(50, 59)])])
    assert 0 < r.score < 100
    assert r.false_positives == 1


def test_probationary_detections_are_ignored() -> None:
    scores = [0.0] * 100
    scores[5] = 1.0  # inside the first 15 rows
    scores[50] = 0.5
    r = score_corpus([LabelledFile("a", scores, [(50, 59)])])
    assert r.score == pytest.approx(100.0)


def test_missed_window_costs_fn_weight_per_profile() -> None:
    scores = [0.0] * 100
    scores[80] = 1.0
    files = [LabelledFile("a", scores, [(20, 29)]), LabelledFile("b", [0.0] * 100, [(40, 49)])]
    assert score_corpus(files, REWARD_LOW_FN_RATE).score == pytest.approx(0.0)


def test_scores_outside_unit_interval_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"row 20 has score 1\.5"):
        score_corpus([LabelledFile("a", [0.0] * 20 + [1.5] + [0.0] * 79, [])])


def test_window_rows_maps_label_timestamps_to_rows() -> None:
    ts = [datetime(2014, 4, 10, 0, m) for m in range(0, 50, 5)]
    assert window_rows(ts, [("2014-04-10 00:10:00.000000", "2014-04-10 00:20:00")]) == [(2, 4)]
    with pytest.raises(ConfigError, match="does not start and end"):
        window_rows(ts, [("2014-04-10 00:11:00", "2014-04-10 00:20:00")])
