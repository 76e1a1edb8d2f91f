"""The registry: every source of metrics in one process, collected on demand.

A :class:`Registry` holds the SDK's inference and HTTP recorders, user metrics, the
resource collectors, and a view of prometheus_client's default registry (so metrics a
service already defines with prometheus_client keep appearing on ``/metrics``). It is
itself a prometheus_client collector: ``prometheus_client.generate_latest(registry)``
works, and so does registering it in another prometheus_client registry.

Under a multi-worker server (gunicorn, ``uvicorn --workers``) the registry joins the
worker group on its own and :meth:`Registry.collect` returns the merged view of all
workers (see :mod:`inferwatch.sdk.workers`).
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from inferwatch._errors import DuplicateMetricError
from inferwatch.sdk.family import FamilySnapshot, MergeMode
from inferwatch.sdk.metrics import Counter, Gauge, Histogram
from inferwatch.sdk.recorder import (
    HTTPRecorder,
    InferenceRecorder,
    http_families,
    inference_families,
)

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from inferwatch.collectors import Collector
    from inferwatch.sdk.workers import WorkerGroup

log = logging.getLogger("inferwatch")

_REGISTRIES: weakref.WeakSet[Registry] = weakref.WeakSet()
#: Distinct HTTP route templates kept; more are counted under ``<other>``.
MAX_ROUTES = 512


class Registry:
    """Everything one process exposes on ``/metrics``.

    ``collectors``: the resource collectors (default: process, system, GPU, PyTorch);
    pass ``[]`` for none. ``include_default_registry``: also expose the metrics of
    prometheus_client's default registry. ``multiprocess``: join the worker group of a
    multi-worker server (``None`` detects it, ``False`` never does).
    """

    def __init__(
        self,
        *,
        collectors: Sequence[Collector] | None = None,
        include_default_registry: bool = True,
        multiprocess: bool | None = None,
    ) -> None:
        if collectors is None:
            from inferwatch.collectors import default_collectors

            collectors = default_collectors()
        self._lock = threading.Lock()
        self._inference: dict[tuple[str, str], InferenceRecorder] = {}
        self._http: dict[tuple[str, str], HTTPRecorder] = {}
        self._sources: list[Collector] = list(collectors)
        self._metrics: dict[str, Counter | Gauge | Histogram] = {}
        self._internal_errors: dict[str, float] = {}
        self._logged_errors: set[tuple[str, str]] = set()
        self.include_default_registry = include_default_registry
        self.multiprocess = multiprocess
        self._group: WorkerGroup | None = None
        self._group_pid = -1
        _REGISTRIES.add(self)

    # -- recorders -----------------------------------------------------------------

    def inference_recorder(self, model: str, version: str) -> InferenceRecorder:
        """The recorder for one model version (created on first use)."""
        key = (model, version)
        rec = self._inference.get(key)
        if rec is None:
            with self._lock:
                rec = self._inference.setdefault(key, InferenceRecorder(model, version))
        return rec

    def http_recorder(self, method: str, route: str) -> HTTPRecorder:
        """The recorder for one HTTP method and route template (created on first use)."""
        key = (method, route)
        rec = self._http.get(key)
        if rec is None:
            with self._lock:
                if key not in self._http and len(self._http) >= MAX_ROUTES:
                    key = (method, "<other>")
                rec = self._http.setdefault(key, HTTPRecorder(*key))
        return rec

    # -- user metrics ----------------------------------------------------------------

    def _add_metric(self, metric: Counter | Gauge | Histogram) -> Any:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                if type(existing) is type(metric) and existing.labelnames == metric.labelnames:
                    return existing
                raise DuplicateMetricError(
                    f"metric {metric.name!r} is already registered as a "
                    f"{existing.type} with labels {existing.labelnames}",
                    metric=metric.name,
                )
            self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """A counter in this registry (the same object if already declared alike)."""
        result: Counter = self._add_metric(Counter(name, documentation, labelnames))
        return result

    def gauge(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        multiprocess_mode: MergeMode = "all",
    ) -> Gauge:
        """A gauge in this registry; see :class:`~inferwatch.sdk.metrics.Gauge`."""
        gauge = Gauge(name, documentation, labelnames, multiprocess_mode=multiprocess_mode)
        result: Gauge = self._add_metric(gauge)
        return result

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """A histogram in this registry; see :class:`~inferwatch.sdk.metrics.Histogram`."""
        result: Histogram = self._add_metric(
            Histogram(name, documentation, labelnames, buckets=buckets)
        )
        return result

    # -- collectors ------------------------------------------------------------------

    def register(self, source: Collector) -> None:
        """Add a source of metric families (anything with ``collect()``)."""
        with self._lock:
            self._sources.append(source)

    def unregister(self, source: Collector) -> None:
        with self._lock:
            self._sources.remove(source)

    # -- internal errors ---------------------------------------------------------------

    def internal_error(self, component: str, exc: BaseException) -> None:
        """Count a failure inside inferwatch and log it once per component and type."""
        try:
            self._internal_errors[component] = self._internal_errors.get(component, 0.0) + 1.0
            key = (component, type(exc).__name__)
            if key not in self._logged_errors:
                self._logged_errors.add(key)
                log.warning(
                    "inferwatch internal error in %s (counted in "
                    "inferwatch_internal_errors_total; logged once): %r",
                    component,
                    exc,
                )
        except Exception:  # pragma: no cover - the last line of defence
            pass

    # -- collection ------------------------------------------------------------------

    def snapshot(self) -> list[FamilySnapshot]:
        """This process's families, without other workers' (see :meth:`families`)."""
        families = inference_families(list(self._inference.values()))
        families.extend(http_families(list(self._http.values())))
        for metric in list(self._metrics.values()):
            families.extend(metric.collect())
        for source in list(self._sources):
            try:
                families.extend(source.collect())
            except Exception as exc:
                self.internal_error(f"collector:{type(source).__name__}", exc)
        errors = FamilySnapshot(
            "inferwatch_internal_errors_total",
            "Failures inside inferwatch's own machinery; the model service went on.",
            "counter",
            ("component",),
        )
        for component, count in self._internal_errors.items():
            errors.samples[(component,)] = count
        families.append(errors)
        return families

    def families(self) -> list[FamilySnapshot]:
        """All families to expose: merged across the worker group when there is one."""
        local = self.snapshot()
        group = self.worker_group()
        if group is None:
            return local
        try:
            return group.gather(local)
        except Exception as exc:
            self.internal_error("workers", exc)
            return local

    def worker_group(self) -> WorkerGroup | None:
        """The worker group this process belongs to, joined on first call after fork."""
        if self.multiprocess is False:
            return None
        pid = os.getpid()
        if self._group_pid != pid:
            self._group_pid = pid
            self._group = None
            try:
                from inferwatch.sdk.workers import WorkerGroup, detect_group_key

                key = detect_group_key(force=self.multiprocess is True)
                if key is not None:
                    self._group = WorkerGroup(key, self.snapshot)
            except Exception as exc:
                self.internal_error("workers", exc)
        return self._group

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol: every family as a ``Metric``."""
        from inferwatch.exposition.convert import to_metric

        names: set[str] = set()
        for fam in self.families():
            names.add(fam.name)
            yield to_metric(fam)
        if self.include_default_registry:
            yield from _default_registry_metrics(names)

    def reset_after_fork(self) -> None:
        """Forget this process's recordings (the parent keeps and reports its own)."""
        for rec in list(self._inference.values()):
            rec.reset()
        for hrec in list(self._http.values()):
            hrec.reset()
        self._lock = threading.Lock()


def _default_registry_metrics(skip: set[str]) -> Iterable[Metric]:
    """prometheus_client's default registry, minus families inferwatch already exposes."""
    from prometheus_client import REGISTRY

    for metric in REGISTRY.collect():
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        if name in skip or metric.name in skip:
            continue
        yield metric


def _after_fork_in_child() -> None:
    for registry in list(_REGISTRIES):
        registry.reset_after_fork()
        if registry._inference:
            registry.worker_group()


os.register_at_fork(after_in_child=_after_fork_in_child)

_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The one process-wide registry that :class:`~inferwatch.Monitor` uses by default."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Registry()
    return _default
