"""NAB standard score of inferwatch's baseline detector beside a windowed-Gaussian baseline.

Both detectors see every file of ``../shared/data/nab`` row by row (no look-ahead, one
configuration for every file, no per-file tuning) and are scored by
``inferwatch.analyze.nab`` (NAB's method: probationary rows, scaled-sigmoid window
weights, one threshold swept over the whole corpus, normalised 0 = never fires,
100 = perfect) under the three NAB profiles.

- ``inferwatch``: ``inferwatch.analyze.baseline_detector.Detector`` with its defaults.
- ``windowed_gaussian``: NAB's windowed Gaussian (the published "rolling z-score"):
  mean and standard deviation of up to the last 6400 values, refreshed every 100
  values; score ``1 - 0.5 * erfc(|z| / sqrt(2))``.

``us_per_sample`` is the wall time of the detector's per-row calls (the file reading
and the scoring excluded) divided by the rows, in this one process.

Usage: python bench/nab.py [--quick] [--data DIR]
``--quick`` scores the artificial files and the first 6 AWS files only.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from inferwatch.analyze.baseline_detector import Detector
from inferwatch.analyze.nab import PROFILES, LabelledFile, load_windows, score_corpus, window_rows

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"


class WindowedGaussian:
    """NAB's windowed Gaussian detector (rolling mean/std z-score)."""

    def __init__(self, window: int = 6400, step: int = 100) -> None:
        self.window, self.step = window, step
        self.data: list[float] = []
        self.buffer: list[float] = []
        self.mean, self.std = 0.0, 1.0
        self.total = self.total_sq = 0.0

    def _refresh(self) -> None:
        n = len(self.data)
        self.mean = self.total / n
        var = max(self.total_sq / n - self.mean * self.mean, 0.0)
        self.std = math.sqrt(var) or 1e-6

    def update(self, _ts: float, value: float) -> float:
        score = 0.0
        if self.data:
            z = abs(value - self.mean) / self.std
            score = 1.0 - 0.5 * math.erfc(z / math.sqrt(2.0))
        if len(self.data) < self.window:
            self.data.append(value)
            self.total += value
            self.total_sq += value * value
            self._refresh()
        else:
            self.buffer.append(value)
            if len(self.buffer) == self.step:
                self.data = self.data[self.step :] + self.buffer
                self.buffer = []
                self.total = math.fsum(self.data)
                self.total_sq = math.fsum(x * x for x in self.data)
                self._refresh()
        return score


def _read(path: Path) -> tuple[list[datetime], list[float]]:
    ts, vs = [], []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ts.append(datetime.fromisoformat(row["timestamp"]))
            vs.append(float(row["value"]))
    return ts, vs


def _files(
    data: Path, quick: bool
) -> Iterator[tuple[str, list[datetime], list[float], list[tuple[int, int]]]]:
    windows = load_windows(data / "labels" / "combined_windows.json")
    names = sorted(str(p.relative_to(data / "data")) for p in (data / "data").rglob("*.csv"))
    if quick:
        aws = [n for n in names if n.startswith("realAWS")][:6]
        names = [n for n in names if not n.startswith("realAWS")] + aws
    for name in names:
        ts, vs = _read(data / "data" / name)
        yield name, ts, vs, window_rows(ts, windows.get(name, []))


def _run(
    make: Callable[[], Callable[[float, float], float]],
    corpus: list[tuple[str, list[datetime], list[float], list[tuple[int, int]]]],
) -> dict[str, object]:
    files = []
    elapsed = 0.0
    rows = 0
    for name, ts, vs, wins in corpus:
        update = make()
        secs = [t.timestamp() for t in ts]
        started = time.perf_counter()
        scores = [update(t, v) for t, v in zip(secs, vs, strict=True)]
        elapsed += time.perf_counter() - started
        rows += len(vs)
        files.append(LabelledFile(name, scores, wins))
    out: dict[str, object] = {"us_per_sample": round(elapsed / rows * 1e6, 3), "rows": rows}
    for profile in PROFILES:
        r = score_corpus(files, profile)
        out[f"{profile.name}_score"] = round(r.score, 2)
        if profile.name == "standard":
            out["threshold"] = r.threshold
            out["detected_windows"] = r.detected_windows
            out["windows"] = r.windows
            out["false_positives"] = r.false_positives
    return out


def _ours() -> Callable[[float, float], float]:
    detector = Detector()

    def update(t: float, v: float) -> float:
        return detector.update(t, v).score

    return update


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset of the files")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the NAB data folder")
    args = parser.parse_args()
    corpus = list(_files(args.data, args.quick))
    ours = _run(_ours, corpus)
    print("inferwatch", ours)
    peer = _run(lambda: WindowedGaussian().update, corpus)
    print("windowed_gaussian", peer)
    print(json.dumps({"files": len(corpus), "inferwatch": ours, "windowed_gaussian": peer}))


if __name__ == "__main__":
    main()
