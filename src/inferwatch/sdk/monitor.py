"""The user's entry point: :class:`Monitor`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from inferwatch._errors import ConfigError
from inferwatch.sdk.family import MergeMode
from inferwatch.sdk.metrics import Counter, Gauge, Histogram
from inferwatch.sdk.registry import Registry, default_registry
from inferwatch.sdk.track import BatchSize, Inference, wrap

if TYPE_CHECKING:
    import os

    from inferwatch.analyze.drift import DriftDetector
    from inferwatch.analyze.predlog import PredictionLog
    from inferwatch.analyze.profile import FeatureKind, ReferenceProfile
    from inferwatch.analyze.quality import FeedbackOutcome, QualityTracker, Task
    from inferwatch.health.checks import Readiness
    from inferwatch.health.probe import JSONCheck, ProbeRunner
    from inferwatch.server.metrics_server import MetricsServer

F = TypeVar("F", bound=Callable[..., Any])
_DEFAULT_LOCK = threading.Lock()


class Monitor:
    """Monitoring for one model version.

    ::

        monitor = Monitor(model="digits", version="1")

        @monitor.track
        def predict(x): ...

    Every ``Monitor`` records into a :class:`~inferwatch.sdk.registry.Registry`: by
    default the process-wide one, so several models in one process share one
    ``/metrics``. Pass ``registry=`` to keep them apart (tests do).
    """

    def __init__(self, model: str, version: str = "", *, registry: Registry | None = None):
        if not isinstance(model, str) or not model:
            raise ConfigError("Monitor(model=...) must be a non-empty string", field="model")
        if not isinstance(version, str):
            raise ConfigError(
                f"Monitor(version=...) must be a string, got {version!r}", field="version"
            )
        self.model = model
        self.version = version
        self.registry = registry if registry is not None else default_registry()
        self._recorder = self.registry.inference_recorder(model, version)
        self._quality: QualityTracker | None = None
        self._drift: DriftDetector | None = None
        # Join the worker group now, so siblings find this worker before any scrape.
        self.registry.worker_group()

    @overload
    def track(self, fn: F, /) -> F: ...

    @overload
    def track(self, /, *, batch_size: BatchSize = None) -> Callable[[F], F]: ...

    def track(self, fn: F | None = None, /, *, batch_size: BatchSize = None) -> Any:
        """Decorate a model call (sync, async, generator or async generator).

        ``batch_size`` is an int, or a function of the call's first argument (after
        ``self``) such as ``len``, that gives the number of items in the call.
        """

        def decorate(f: F) -> F:
            wrapped: F = wrap(f, self._recorder, self.registry, batch_size)  # type: ignore[assignment]
            return wrapped

        if fn is None:
            return decorate
        return decorate(fn)

    def inference(self, *, batch_size: int | None = None) -> Inference:
        """A context manager (sync or async) that times one inference; see :class:`Inference`."""
        return Inference(self._recorder, batch_size)

    def record_rejected(self, count: int = 1) -> None:
        """Count requests rejected before reaching the model (for example by a queue limit)."""
        for _ in range(count):
            self._recorder.rejected.append(0)
        self._recorder.maybe_fold()

    def instrument(
        self,
        app: Any,
        *,
        metrics_path: str | None = "/metrics",
        healthz_path: str | None = "/healthz",
        readyz_path: str | None = "/readyz",
    ) -> Any:
        """Add per-route HTTP metrics to a web app and serve ``metrics_path``, liveness on
        ``healthz_path`` and readiness (see :meth:`readiness`) on ``readyz_path``.

        Works with ASGI apps (FastAPI, Starlette, or any ASGI callable) and Flask (WSGI).
        For FastAPI/Starlette/Flask the app is changed in place and returned; for any
        other ASGI callable the wrapped app is returned and must be served instead.
        Pass ``None`` for a path to leave it to the app. Requests to these paths are not
        counted in the HTTP metrics.
        """
        from inferwatch.sdk.asgi import instrument_asgi
        from inferwatch.sdk.wsgi import instrument_flask, is_flask

        paths: dict[str, Any] = {
            "metrics_path": metrics_path,
            "healthz_path": healthz_path,
            "readyz_path": readyz_path,
            "readiness": self._readiness() if readyz_path is not None else None,
        }
        if is_flask(app):
            return instrument_flask(app, self.registry, **paths)
        return instrument_asgi(app, self.registry, **paths)

    def readiness(
        self,
        *,
        canary: Callable[..., Any] | None = None,
        samples: Sequence[Any] | None = None,
        validator: Callable[[Any], object] | None = None,
        latency_budget_s: float | None = None,
        canary_timeout_s: float | None = None,
        requires_gpu: bool = False,
        cache_s: float = 10.0,
        model_loaded: bool | Callable[[], bool] | None = None,
        nvml: Any | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Readiness:
        """Configure what ``/readyz`` checks (replacing an earlier configuration).

        - ``canary``: the model call (sync or async), run as ``canary(sample)`` on each of
          ``samples`` (or ``canary()`` once without samples); a sync one on its own
          thread, never on the event loop. It is given up after ``canary_timeout_s``
          (default: twice the budget, at least 5 s).
        - ``validator(output)``: truthy to accept; falsy or an exception to reject (the
          exception's message is the reason ``/readyz`` shows).
        - ``latency_budget_s``: the most the whole canary run may take.
        - ``requires_gpu``: NVML must report a GPU (``nvml=FakeNVML(...)`` in tests).
        - ``cache_s``: how long a result is reused, so probes do not run the model often.
        - ``model_loaded``: a bool, or a callable asked at each evaluation and scrape;
          or call :meth:`set_model_loaded`.

        Returns the :class:`~inferwatch.health.Readiness`; its ``check()`` evaluates
        readiness outside a web app.
        """
        return self._readiness().configure(
            canary=canary,
            samples=samples,
            validator=validator,
            latency_budget_s=latency_budget_s,
            canary_timeout_s=canary_timeout_s,
            requires_gpu=requires_gpu,
            cache_s=cache_s,
            model_loaded=model_loaded,
            nvml=nvml,
            clock=clock,
        )

    def set_model_loaded(self, loaded: bool = True) -> None:
        """Say whether the model is loaded (``inferwatch_model_loaded``; ``/readyz`` fails
        while it is not). ``/readyz`` re-evaluates at once, ignoring the cache."""
        self._readiness().set_model_loaded(loaded)

    def probe(
        self,
        name: str,
        url: str,
        *,
        method: str = "GET",
        body: bytes | str | Mapping[str, Any] | Sequence[Any] | None = None,
        headers: Mapping[str, str] | None = None,
        interval_s: float = 15.0,
        timeout_s: float = 5.0,
        expected_status: Sequence[int] = (200,),
        checks: Sequence[JSONCheck] = (),
        labels: Mapping[str, str] | None = None,
    ) -> ProbeRunner:
        """Probe a remote model endpoint every ``interval_s`` from a background thread.

        See :class:`~inferwatch.health.Probe` for the arguments. The probes of one
        monitor share one :class:`~inferwatch.health.ProbeRunner`, registered in its
        registry (``probe_success{probe=name}``, ...) and started on the first call;
        it is returned (call ``stop()`` on it to end probing).
        """
        from inferwatch.health.probe import Probe, ProbeRunner

        probe = Probe(
            name,
            url,
            method=method,
            body=body,
            headers=dict(headers or {}),
            interval_s=interval_s,
            timeout_s=timeout_s,
            expected_status=expected_status,
            checks=checks,
            labels=dict(labels or {}),
        )
        candidate = ProbeRunner()
        runner: ProbeRunner = self.__dict__.setdefault("_probe_runner", candidate)
        if runner is candidate:
            self.registry.register(runner)
        runner.add(probe)
        return runner.start()

    def _readiness(self) -> Readiness:
        """This monitor's readiness checks, created and registered on first use."""
        readiness: Readiness | None = self.__dict__.get("_readiness_state")
        if readiness is None:
            from inferwatch.health.checks import Readiness

            candidate = Readiness(model=self.model, version=self.version)
            readiness = self.__dict__.setdefault("_readiness_state", candidate)
            if readiness is candidate:
                self.registry.register(candidate)
        return readiness

    # -- quality from delayed labels ---------------------------------------------------

    def quality(
        self,
        *,
        log: str | os.PathLike[str] | PredictionLog = "inferwatch-predictions.db",
        task: Task = "classification",
        classes: Sequence[object] = (),
        retention_s: float = 7 * 86400.0,
        pending_ttl_s: float = 3600.0,
    ) -> QualityTracker:
        """Configure where :meth:`log_prediction` and :meth:`feedback` keep predictions
        and how labels are read; replaces (and closes) an earlier configuration.

        ``log``: a SQLite file, or a ``postgresql://`` URL that several replicas share
        (a label given to any replica is then joined and counted exactly once).
        ``task``: ``classification`` (accuracy, confusion matrix, per-class precision,
        recall, F1 through ``examples/rules/model-quality.yml``) or ``regression`` (MAE,
        RMSE, MAPE). ``retention_s``: how long a prediction waits for its label.
        ``pending_ttl_s``: how long a label waits for a prediction not yet logged.
        Without a call, the first :meth:`log_prediction` uses the defaults.
        """
        from inferwatch.analyze.quality import QualityTracker

        tracker = QualityTracker(
            self.model,
            self.version,
            log=log,
            task=task,
            classes=classes,
            retention_s=retention_s,
            pending_ttl_s=pending_ttl_s,
            registry=self.registry,
        )
        old, self._quality = self._quality, tracker
        if old is not None:
            old.close()
        return tracker

    def log_prediction(
        self,
        request_id: object,
        prediction: object,
        score: object = None,
        features: Mapping[str, object] | None = None,
    ) -> None:
        """Log one prediction for the label that may come later (:meth:`feedback`).

        ``score``: the confidence (a number, or per-class scores: the largest counts).
        ``features``: stored with the prediction (JSON), and watched for drift when
        :meth:`drift` was called (with ``prediction``). A fraction of a microsecond on
        the request path: the log is written by a background thread. Never raises.
        """
        try:
            tracker = self._quality
            if tracker is None:
                tracker = self._default_quality()
            tracker.log_prediction(request_id, prediction, score, features)
        except Exception as exc:
            self.registry.internal_error("quality", exc)
        detector = self._drift
        if detector is not None and features is not None:
            detector.observe(features, prediction)  # never raises

    def feedback(self, request_id: object, label: object, *, at: object = None) -> FeedbackOutcome:
        """Give the true label of an earlier prediction (minutes or days later).

        Returns ``joined``, ``pending`` (no prediction with that id yet; joined when it
        comes), ``duplicate`` (the first label stands) or ``expired``; none of them is
        an error. A label of the wrong type for the task raises
        :class:`~inferwatch.ConfigError` naming the field. ``at``: when the label became
        known (default now), for ``inferwatch_label_delay_seconds``.
        """
        tracker = self._quality if self._quality is not None else self._default_quality()
        return tracker.feedback(request_id, label, at=at)

    # -- drift -------------------------------------------------------------------------

    def drift(
        self,
        reference: ReferenceProfile | None = None,
        *,
        features: Mapping[str, FeatureKind] | None = None,
        prediction: FeatureKind | None = None,
        **options: Any,
    ) -> DriftDetector:
        """Watch features and predictions for drift against ``reference``; replaces an
        earlier configuration.

        ``reference``: a profile of the training data
        (:meth:`ReferenceProfile.from_data <inferwatch.analyze.profile.ReferenceProfile.from_data>`,
        or loaded from the JSON saved beside the model). Without one, give ``features``
        (name -> ``"numeric"`` / ``"categorical"``) and the first production rows become
        the reference. ``options``: the other arguments of
        :class:`~inferwatch.analyze.drift.DriftDetector` (``window``, ``min_rows``,
        ``numeric_test``, ``alpha``, ...). Rows come from :meth:`log_prediction`'s
        ``features``, or from ``observe`` / ``observe_batch`` on the detector returned.
        Exports ``inferwatch_drift_*{feature}``; alert on them with ordinary rules.
        """
        from inferwatch.analyze.drift import DriftDetector

        detector = DriftDetector(
            self.model,
            self.version,
            reference=reference,
            features=features,
            prediction=prediction,
            registry=self.registry,
            **options,
        )
        old, self._drift = self._drift, detector
        if old is not None:
            self.registry.unregister(old)
        return detector

    def _default_quality(self) -> QualityTracker:
        with _DEFAULT_LOCK:  # two first calls at once make one tracker
            if self._quality is None:
                self.quality()
        assert self._quality is not None
        return self._quality

    def serve_metrics(self, port: int = 9108, addr: str = "127.0.0.1") -> MetricsServer:
        """Serve ``/metrics`` from a background thread (for scripts and batch workers).

        Listens on loopback by default; pass ``addr="0.0.0.0"`` for a Prometheus on
        another host. ``port=0`` picks a free port (see ``server.port``).
        """
        from inferwatch.server.metrics_server import MetricsServer

        return MetricsServer(self.registry, port=port, addr=addr).start()

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Counter:
        """A user-defined counter in this monitor's registry."""
        return self.registry.counter(name, documentation, labelnames)

    def gauge(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        multiprocess_mode: MergeMode = "all",
    ) -> Gauge:
        """A user-defined gauge in this monitor's registry."""
        return self.registry.gauge(
            name, documentation, labelnames, multiprocess_mode=multiprocess_mode
        )

    def histogram(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float] | None = None,
    ) -> Histogram:
        """A user-defined histogram (log sketch without ``buckets``) in this registry."""
        return self.registry.histogram(name, documentation, labelnames, buckets=buckets)

    def __repr__(self) -> str:
        return f"Monitor(model={self.model!r}, version={self.version!r})"
