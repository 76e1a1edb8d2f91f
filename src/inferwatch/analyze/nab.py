"""Scoring an anomaly detector the way the Numenta Anomaly Benchmark (NAB) does.

A detector gives every row of a file a score in ``[0, 1]``; a row is a detection when
its score reaches a threshold. Rows inside a labelled anomaly window earn up to the
true-positive weight (most at the window's left edge, only the earliest detection of a
window counts); detections outside every window cost up to the false-positive weight
(less just after a window ends); a window with no detection costs the false-negative
weight. One threshold is chosen for the whole corpus by sweeping every distinct score,
and the best total is normalised so that 100 is perfect and 0 is a detector that never
fires. The first ``min(floor(0.15 * N), 750)`` rows of a file are probationary and not
scored.

Use :func:`score_corpus` with one :class:`LabelledFile` per data file::

    files = [LabelledFile(name, scores, windows=[(120, 180)])]
    result = score_corpus(files, STANDARD)
    result.score, result.threshold
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from inferwatch._errors import ConfigError


@dataclass(frozen=True, slots=True)
class Profile:
    """NAB's weights for a true positive, a false negative and a false positive."""

    name: str
    tp: float
    fn: float
    fp: float


STANDARD = Profile("standard", 1.0, 1.0, 0.11)
REWARD_LOW_FP_RATE = Profile("reward_low_FP_rate", 1.0, 1.0, 0.22)
REWARD_LOW_FN_RATE = Profile("reward_low_FN_rate", 1.0, 2.0, 0.11)
PROFILES = (STANDARD, REWARD_LOW_FP_RATE, REWARD_LOW_FN_RATE)


@dataclass(frozen=True, slots=True)
class LabelledFile:
    """One file's detector scores (one per row, in order) and its anomaly windows.

    ``windows`` holds ``(first_row, last_row)`` index pairs, both ends inclusive, sorted
    and not overlapping.
    """

    name: str
    scores: Sequence[float]
    windows: Sequence[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class NabResult:
    """The corpus score under one profile at the best threshold."""

    profile: str
    score: float
    threshold: float
    raw: float
    perfect: float
    null: float
    detected_windows: int
    windows: int
    false_positives: int


def scaled_sigmoid(x: float) -> float:
    """NAB's ``S(x) = 2 / (1 + exp(5x)) - 1``, with ``S(x) = -1`` for ``x > 3``."""
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def probationary_rows(n: int) -> int:
    """How many leading rows of an ``n``-row file are not scored."""
    return min(math.floor(0.15 * n), 750)


def row_weights(n: int, windows: Sequence[tuple[int, int]], profile: Profile) -> list[float]:
    """What a detection at each row is worth (window rows: positive, others: negative)."""
    out = [0.0] * n
    s_minus_one = scaled_sigmoid(-1.0)
    prev: tuple[int, int] | None = None
    k = 0
    for i in range(n):
        while k < len(windows) and windows[k][1] < i:
            prev = windows[k]
            k += 1
        if k < len(windows) and windows[k][0] <= i <= windows[k][1]:
            a, b = windows[k]
            w = b - a + 1
            out[i] = profile.tp * scaled_sigmoid(-(b - i + 1) / w) / s_minus_one
        elif prev is None:
            out[i] = -profile.fp
        else:
            a, b = prev
            width = max(b - a, 1)
            out[i] = profile.fp * scaled_sigmoid(abs(b - i) / width)
    return out


def score_corpus(files: Sequence[LabelledFile], profile: Profile = STANDARD) -> NabResult:
    """Sweep every distinct score as the threshold; return the best normalised score."""
    # Events: (score, weight, window id or -1); window ids are global across files.
    events: list[tuple[float, float, int]] = []
    n_windows = 0
    for f in files:
        n = len(f.scores)
        weights = row_weights(n, f.windows, profile)
        window_of = [-1] * n
        for j, (a, b) in enumerate(f.windows):
            if not 0 <= a <= b < n:
                raise ConfigError(
                    f"{f.name}: window {(a, b)} is outside the file's {n} rows",
                    field="windows",
                    value=(a, b),
                )
            for i in range(a, b + 1):
                window_of[i] = n_windows + j
        n_windows += len(f.windows)
        for i in range(probationary_rows(n), n):
            s = float(f.scores[i])
            if not 0.0 <= s <= 1.0:
                raise ConfigError(
                    f"{f.name}: row {i} has score {s!r}, outside [0, 1]",
                    field="scores",
                    value=s,
                )
            events.append((s, weights[i], window_of[i]))
    events.sort(key=lambda e: -e[0])
    best_window = [-profile.fn] * n_windows
    total = -profile.fn * n_windows
    fp_count = 0
    best = (total, 1.0 + 1e-9, 0, 0)  # never firing: threshold above every score
    detected = 0
    i = 0
    while i < len(events):
        threshold = events[i][0]
        while i < len(events) and events[i][0] == threshold:
            _, weight, window = events[i]
            if window < 0:
                total += weight
                fp_count += 1
            elif weight > best_window[window]:
                if best_window[window] == -profile.fn:
                    detected += 1
                total += weight - best_window[window]
                best_window[window] = weight
            i += 1
        if total > best[0]:
            best = (total, threshold, detected, fp_count)
    perfect = n_windows * profile.tp
    null = -n_windows * profile.fn
    raw, threshold, det, fps = best
    span = perfect - null
    score = 100.0 * (raw - null) / span if span > 0 else 0.0
    return NabResult(profile.name, score, threshold, raw, perfect, null, det, n_windows, fps)


def load_windows(labels_file: Path) -> dict[str, list[tuple[str, str]]]:
    """NAB's ``combined_windows.json``: data file path -> ``[start, end]`` timestamps."""
    raw = json.loads(labels_file.read_text())
    return {k: [(str(a), str(b)) for a, b in v] for k, v in raw.items()}


def window_rows(
    timestamps: Sequence[datetime], windows: Sequence[tuple[str, str]]
) -> list[tuple[int, int]]:
    """Turn timestamp windows into inclusive row index pairs of ``timestamps``."""
    index = {t: i for i, t in enumerate(timestamps)}
    out = []
    for a, b in windows:
        ta, tb = datetime.fromisoformat(a), datetime.fromisoformat(b)
        if ta not in index or tb not in index:
            raise ConfigError(
                f"window ({a}, {b}) does not start and end on rows of the file",
                field="windows",
                value=(a, b),
            )
        out.append((index[ta], index[tb]))
    return out


__all__ = [
    "PROFILES",
    "REWARD_LOW_FN_RATE",
    "REWARD_LOW_FP_RATE",
    "STANDARD",
    "LabelledFile",
    "NabResult",
    "Profile",
    "load_windows",
    "probationary_rows",
    "row_weights",
    "scaled_sigmoid",
    "score_corpus",
    "window_rows",
]
