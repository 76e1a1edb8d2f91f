"""The server's analyzers: baselines, scaling advice and cost, written to the store.

:class:`Analyzers` runs on a background thread every evaluation interval:

- baselines (:class:`~inferwatch.analyze.baseline.BaselineEvaluator`) append
  ``<name>:upper``, ``<name>:lower`` and ``<name>:anomaly_score``;
- scaling advice (:class:`~inferwatch.analyze.scaling.ScalingAdvisor`), every scaling
  interval, appends ``inferwatch_recommended_replicas{model}`` and
  ``inferwatch_recommended_replicas_reason{model,reason}``;
- prices (:func:`~inferwatch.analyze.cost.load_prices`) append
  ``inferwatch_model_cost_per_hour{model,instance_type,currency}``: the hourly price
  of all the model's replicas (the instance type's price with its GPUs, times the
  replicas). Models listed under ``models:`` get theirs; with a ``default:``
  placement, every other model seen in ``inferwatch_inferences_total`` gets its price.

A failure never stops the loop: it is counted through ``errors`` (the registry's
``internal_error``) or logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from inferwatch.tsdb.labels import METRIC_NAME, Labels, make_labels

if TYPE_CHECKING:
    from inferwatch.analyze.baseline import BaselineEvaluator, ErrorCounter
    from inferwatch.analyze.cost import Prices
    from inferwatch.analyze.scaling import ScalingAdvisor, ScalingPolicy
    from inferwatch.promql import Engine
    from inferwatch.sdk.family import FamilySnapshot
    from inferwatch.tsdb.store import Store

log = logging.getLogger("inferwatch.server")

COST_METRIC = "inferwatch_model_cost_per_hour"
_MODELS_QUERY = "count by (model) (inferwatch_inferences_total)"


def snapshot_samples(families: Sequence[FamilySnapshot]) -> list[tuple[Labels, float]]:
    """Gauge and counter snapshots as store samples (``__name__`` plus their labels)."""
    out: list[tuple[Labels, float]] = []
    for family in families:
        for key, value in family.samples.items():
            if isinstance(value, int | float):
                labels = {
                    METRIC_NAME: family.name,
                    **dict(zip(family.labelnames, key, strict=True)),
                }
                out.append((make_labels(labels), float(value)))
    return out


def cost_samples(prices: Prices, models_seen: Sequence[str] = ()) -> list[tuple[Labels, float]]:
    """``inferwatch_model_cost_per_hour`` for every model of ``prices`` (and, with a
    default placement, for each of ``models_seen`` not listed)."""
    out = []
    for model, placement in sorted(prices.placements(models_seen).items()):
        labels = {
            METRIC_NAME: COST_METRIC,
            "model": model,
            "instance_type": placement.instance_type,
            "currency": prices.currency,
        }
        out.append(
            (make_labels(labels), prices.hourly(placement.instance_type) * placement.replicas)
        )
    return out


class Analyzers:
    """Baselines, scaling advice and cost for one store; see the module docstring."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        *,
        baseline_files: Sequence[str] = (),
        prices_file: str | None = None,
        scaling: Mapping[str, ScalingPolicy] | None = None,
        scaling_interval_s: float = 15.0,
        interval_s: float = 1.0,
        errors: ErrorCounter | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from inferwatch.analyze.baseline import BaselineEvaluator, load_baseline_rules
        from inferwatch.analyze.cost import load_prices
        from inferwatch.analyze.scaling import ScalingAdvisor

        self.store = store
        self.engine = engine
        self.interval_s = interval_s
        self.scaling_interval_s = scaling_interval_s
        self.errors = errors
        self.clock = clock
        rules = [rule for file in baseline_files for rule in load_baseline_rules(file)]
        self.baselines: BaselineEvaluator | None = (
            BaselineEvaluator(rules, engine=engine, storage=store, errors=errors) if rules else None
        )
        self.prices: Prices | None = load_prices(prices_file) if prices_file else None
        self.advisor: ScalingAdvisor | None = (
            ScalingAdvisor(scaling, clock=clock, on_error=self._error) if scaling else None
        )
        self._next_scaling = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether there is anything to run."""
        return any(x is not None for x in (self.baselines, self.prices, self.advisor))

    def _error(self, component: str, exc: BaseException) -> None:
        if self.errors is not None:
            self.errors.internal_error(component, exc)
        else:
            log.warning("%s failed: %r", component, exc)

    def run_once(self, now: float | None = None) -> None:
        """One round: baselines and cost, and scaling when its interval has passed."""
        t = self.clock() if now is None else now
        ts_ms = round(t * 1000)
        if self.baselines is not None:
            self.baselines.eval(t)  # counts its own errors
        if self.advisor is not None and t >= self._next_scaling:
            self._next_scaling = t + self.scaling_interval_s
            try:
                self.advisor.evaluate(self.engine, t)
                samples = snapshot_samples(self.advisor.collect())
                if samples:
                    self.store.append(ts_ms, samples)
            except Exception as exc:
                self._error("scaling", exc)
        if self.prices is not None:
            try:
                seen: list[str] = []
                if self.prices.default is not None:
                    result = self.engine.instant_query(_MODELS_QUERY, ts_ms)
                    if isinstance(result.value, list):
                        seen = [dict(s.labels).get("model", "") for s in result.value]
                self.store.append(ts_ms, cost_samples(self.prices, seen))
            except Exception as exc:
                self._error("cost", exc)

    def collect(self) -> list[FamilySnapshot]:
        """The scaling advice's families (for the server's ``/metrics``)."""
        return self.advisor.collect() if self.advisor is not None else []

    def start(self) -> None:
        """Run :meth:`run_once` every ``interval_s`` on a daemon thread."""
        if self._thread is not None or not self.active:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval_s):
                try:
                    self.run_once()
                except Exception as exc:  # never end the loop
                    self._error("analyzers", exc)

        self._thread = threading.Thread(target=loop, name="inferwatch-analyzers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for the round in progress."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None


__all__ = ["COST_METRIC", "Analyzers", "cost_samples", "snapshot_samples"]
