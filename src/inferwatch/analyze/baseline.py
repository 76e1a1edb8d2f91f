"""Baselines (dynamic thresholds): a series' learned normal range, written back as series.

A :class:`BaselineRule` names a PromQL expression, like a recording rule. Each time
:class:`BaselineEvaluator` runs (every rule-group interval, say) it evaluates the
expression through the PromQL engine, feeds every resulting series to its own online
:class:`~inferwatch.analyze.baseline_detector.Detector`, and appends three series per
input series to the store, with the input's labels:

- ``<name>:upper`` and ``<name>:lower``: the normal range (absent until the detector has
  enough history, never NaN);
- ``<name>:anomaly_score``: how unusual the value is, in ``[0, 1]``.

Alert rules are then ordinary PromQL, here and in a real Prometheus that scrapes or
remote-reads the same series, for example::

    latency_p99 > on(model) latency_p99:upper

Rule files are YAML (see ``examples/baselines.yml``)::

    baselines:
      - name: latency_p99
        expr: histogram_quantile(0.99, sum by (model, le) (rate(x_bucket[5m])))
        labels: {team: ml}
        detector: {k: 4, min_history: 30}
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from inferwatch._errors import ConfigError
from inferwatch.analyze.baseline_detector import Detector, DetectorConfig, Point
from inferwatch.promql import Engine, Sample
from inferwatch.tsdb.labels import METRIC_NAME, STALE_NAN, Labels, make_labels
from inferwatch.tsdb.series import AppendResult

log = logging.getLogger("inferwatch.analyze.baseline")

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
SUFFIXES = ("upper", "lower", "anomaly_score")


class BaselineStorage(Protocol):
    """Where baseline series are written: the store, or anything with its ``append``."""

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult: ...


class ErrorCounter(Protocol):
    """Counts internal failures (``Registry.internal_error``)."""

    def internal_error(self, component: str, exc: BaseException) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineRule:
    """Learn the normal range of every series ``expr`` returns; write ``<name>:*`` series."""

    name: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)
    detector: DetectorConfig = field(default_factory=DetectorConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _METRIC_NAME.match(self.name):
            raise ConfigError(
                f"baseline name must be a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), "
                f"got {self.name!r}",
                field="name",
                value=self.name,
            )
        if not isinstance(self.expr, str) or not self.expr.strip():
            raise ConfigError(
                f"baseline {self.name!r} needs a PromQL expr, got {self.expr!r}",
                field="expr",
                value=self.expr,
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineRule:
        """Build a rule from a parsed YAML mapping: ``name``, ``expr``, ``labels``, ``detector``."""
        known = {"name", "expr", "labels", "detector"}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"unknown baseline field {key!r}; expected one of {sorted(known)}",
                    field=str(key),
                    value=data[key],
                )
        labels = data.get("labels") or {}
        if not isinstance(labels, Mapping):
            raise ConfigError("labels must be a mapping", field="labels", value=labels)
        det = data.get("detector") or {}
        if not isinstance(det, Mapping):
            raise ConfigError("detector must be a mapping", field="detector", value=det)
        names = {f.name for f in fields(DetectorConfig)}
        for key in det:
            if key not in names:
                raise ConfigError(
                    f"unknown detector setting {key!r}; expected one of {sorted(names)}",
                    field=f"detector.{key}",
                    value=det[key],
                )
        return cls(
            name=data.get("name"),  # type: ignore[arg-type]  # checked in __post_init__
            expr=data.get("expr"),  # type: ignore[arg-type]
            labels={str(k): str(v) for k, v in labels.items()},
            detector=DetectorConfig(**det),
        )


def load_baseline_rules(path: str | Path) -> list[BaselineRule]:
    """Read a baselines YAML file (a top-level ``baselines:`` list); errors name the file."""
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{p}: cannot read baselines: {exc}", field="file", value=str(p)) from exc
    items = doc.get("baselines") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError(
            f"{p}: expected a top-level 'baselines:' list", field="baselines", value=doc
        )
    out = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ConfigError(
                f"{p}: baselines[{i}] is not a mapping", field="baselines", value=item
            )
        try:
            rule = BaselineRule.from_dict(item)
        except ConfigError as exc:
            raise ConfigError(
                f"{p}: baselines[{i}]: {exc}", field=exc.field, value=exc.value
            ) from exc
        if rule.name in seen:
            raise ConfigError(
                f"{p}: baseline {rule.name!r} defined twice", field="name", value=rule.name
            )
        seen.add(rule.name)
        out.append(rule)
    return out


class BaselineEvaluator:
    """Runs baseline rules: query, update each series' detector, append the results.

    Call :meth:`eval` with the evaluation time at every interval (the rule manager's or
    the server's loop). A failing rule is counted through ``errors`` (the registry's
    ``internal_error``) and logged; the other rules go on. Series that disappear get a
    staleness marker, as recording rules' do.
    """

    def __init__(
        self,
        rules: Sequence[BaselineRule],
        *,
        engine: Engine,
        storage: BaselineStorage,
        errors: ErrorCounter | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.engine = engine
        self.storage = storage
        self.errors = errors
        self._detectors: list[dict[Labels, Detector]] = [{} for _ in self.rules]
        self._previous: list[set[Labels]] = [set() for _ in self.rules]

    def eval(self, ts: float) -> int:
        """Evaluate every rule at ``ts`` (Unix seconds); return how many samples were written."""
        ts_ms = round(ts * 1000)
        written = 0
        for i, rule in enumerate(self.rules):
            try:
                samples = self._eval_rule(i, rule, ts, ts_ms)
                gone = self._previous[i] - {lb for lb, _ in samples}
                out = samples + [(lb, STALE_NAN) for lb in sorted(gone)]
                if out:
                    self.storage.append(ts_ms, out)
                self._previous[i] = {lb for lb, _ in samples}
                written += len(samples)
            except Exception as exc:  # one bad rule never stops the others
                log.warning("baseline %s failed: %s", rule.name, exc)
                if self.errors is not None:
                    self.errors.internal_error("baseline", exc)
        return written

    def _eval_rule(
        self, i: int, rule: BaselineRule, ts: float, ts_ms: int
    ) -> list[tuple[Labels, float]]:
        result = self.engine.instant_query(rule.expr, ts_ms)
        vector: list[Sample]
        if result.result_type == "vector":
            assert isinstance(result.value, list)
            vector = [s for s in result.value if isinstance(s, Sample)]
        elif result.result_type == "scalar":
            vector = [Sample((), ts_ms, float(result.value.v))]  # type: ignore[union-attr]
        else:
            raise ConfigError(
                f"baseline {rule.name!r}: expr gives a {result.result_type}, not a vector",
                field="expr",
                value=rule.expr,
            )
        detectors = self._detectors[i]
        out: list[tuple[Labels, float]] = []
        for sample in vector:
            key = tuple((k, v) for k, v in sample.labels if k != METRIC_NAME)
            detector = detectors.get(key)
            if detector is None:
                detector = detectors[key] = Detector(rule.detector)
            point = detector.update(ts, sample.v)
            out.extend(_series(rule, key, point))
        return out

    def point_count(self) -> int:
        """How many series the evaluator is learning (all rules together)."""
        return sum(len(d) for d in self._detectors)


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    from datetime import UTC, datetime

    t = datetime.fromisoformat(text.strip())
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


def score_csv(
    input_path: str | Path, output_path: str | Path, config: DetectorConfig | None = None
) -> int:
    """Score a ``timestamp,value`` CSV row by row into ``timestamp,value,score``.

    Timestamps are Unix seconds or ISO 8601 (UTC when no zone is given), in order. The
    detector sees each row once, before any later row (no look-ahead). A bad row raises
    :class:`ConfigError` naming ``file:line`` and the field. Returns the rows written.
    """
    import csv
    import math

    src = Path(input_path)
    detector = Detector(config)
    rows = 0
    with src.open(newline="") as fin, Path(output_path).open("w", newline="") as fout:
        reader = csv.reader(fin)
        writer = csv.writer(fout)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["timestamp", "value"]:
            raise ConfigError(
                f"{src}:1: header must be 'timestamp,value', got {header!r}",
                field="header",
                value=header,
            )
        writer.writerow(["timestamp", "value", "score"])
        last = -math.inf
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise ConfigError(f"{src}:{line}: value: missing", field="value", value=row)
            try:
                t = _parse_time(row[0])
            except ValueError:
                raise ConfigError(
                    f"{src}:{line}: timestamp: {row[0]!r} is not Unix seconds or ISO 8601",
                    field="timestamp",
                    value=row[0],
                ) from None
            if t < last:
                raise ConfigError(
                    f"{src}:{line}: timestamp: {row[0]!r} is earlier than the row before",
                    field="timestamp",
                    value=row[0],
                )
            last = t
            try:
                v = float(row[1]) if row[1].strip() else math.nan
            except ValueError:
                raise ConfigError(
                    f"{src}:{line}: value: {row[1]!r} is not a number",
                    field="value",
                    value=row[1],
                ) from None
            point = detector.update(t, v)
            writer.writerow([row[0], row[1], f"{point.score:.6f}"])
            rows += 1
    return rows


def _series(rule: BaselineRule, key: Labels, point: Point) -> list[tuple[Labels, float]]:
    if point.upper is None or point.lower is None:
        return []
    base = dict(key)
    base.update(rule.labels)
    out = []
    for suffix, value in zip(SUFFIXES, (point.upper, point.lower, point.score), strict=True):
        out.append((make_labels({**base, METRIC_NAME: f"{rule.name}:{suffix}"}), value))
    return out


__all__ = [
    "SUFFIXES",
    "BaselineEvaluator",
    "BaselineRule",
    "BaselineStorage",
    "ErrorCounter",
    "load_baseline_rules",
    "score_csv",
]
