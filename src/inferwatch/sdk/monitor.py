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
    from inferwatch.analyze.leak import MemoryGrowthCollector
    from inferwatch.analyze.predlog import PredictionLog
    from inferwatch.analyze.profile import FeatureKind, ReferenceProfile
    from inferwatch.analyze.quality import FeedbackOutcome, QualityTracker, Task
    from inferwatch.analyze.shadow import Shadow
    from inferwatch.health.checks import Readiness
    from inferwatch.health.guard import Guard, GuardSet, Policy
    from inferwatch.health.probe import JSONCheck, ProbeRunner
    from inferwatch.sdk.cache import Cache
    from inferwatch.sdk.logs import InferenceLogging
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
    def track(
        self, /, *, batch_size: BatchSize = None, cache: Cache | bool | None = None
    ) -> Callable[[F], F]: ...

    def track(
        self,
        fn: F | None = None,
        /,
        *,
        batch_size: BatchSize = None,
        cache: Cache | bool | None = None,
    ) -> Any:
        """Decorate a model call (sync, async, generator or async generator).

        ``batch_size`` is an int, or a function of the call's first argument (after
        ``self``) such as ``len``, that gives the number of items in the call.
        ``cache``: a :class:`~inferwatch.sdk.cache.Cache` (or ``True`` for
        ``Cache()``) to reuse the results of a deterministic sync or async function;
        a hit is counted as a successful inference with its own short latency.
        """

        def decorate(f: F) -> F:
            from inferwatch.sdk.cache import as_cache

            result_cache = as_cache(cache)
            wrapped: F = wrap(f, self._recorder, self.registry, batch_size, result_cache)  # type: ignore[assignment]
            if result_cache is not None:
                self._export_cache(result_cache, f)
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

    # -- guards: load shedding, circuit breaking, adaptive batch size --------------------

    def guard(
        self,
        name: str,
        policy: Policy,
        *,
        window_s: float | None = None,
        interval_s: float | None = None,
        signals: Mapping[str, Callable[[], float]] | None = None,
        nvml: Any | None = None,
        clock: Callable[[], float] | None = None,
    ) -> Guard:
        """Add a guard acting on this model's live signals (see :mod:`inferwatch.health.guard`).

        ``policy``: :class:`~inferwatch.health.guard.Shed`,
        :class:`~inferwatch.health.guard.CircuitBreaker` or
        :class:`~inferwatch.health.guard.AdaptiveBatchSize`. ``window_s``: the window of
        the latency and error-ratio signals (default 10 s; a batch guard's interval).
        ``interval_s``: how often signals are read (default 1 s). ``signals``: your own
        signals, name -> function returning a number. ``nvml``: for GPU signals
        (``FakeNVML`` in tests). An unknown signal or a nonsense threshold raises
        :class:`~inferwatch.ConfigError` naming the field, here, at start.

        Call :meth:`admit` (all guards) or ``guard.admit()`` before running the model,
        and ``guard.batch_size()`` in a batching loop; the web middleware answers
        requests the guards shed with 503 and ``Retry-After``.
        """
        import time

        from inferwatch.health.guard import Guard

        guard = Guard(
            name,
            policy,
            recorder=self._recorder,
            registry=self.registry,
            window_s=window_s,
            interval_s=interval_s,
            signals=signals,
            nvml=nvml,
            clock=clock if clock is not None else time.monotonic,
        )
        return self.guards.add(guard)

    def load_guards(
        self,
        path: str | os.PathLike[str],
        *,
        signals: Mapping[str, Callable[[], float]] | None = None,
        nvml: Any | None = None,
        clock: Callable[[], float] | None = None,
    ) -> list[Guard]:
        """Add the guards of a YAML file (``examples/guards.yml``); a bad file raises
        :class:`~inferwatch.ConfigError` naming ``file:line: field: reason``."""
        from inferwatch.health.guard_file import load_guard_file

        specs = load_guard_file(path, signals=tuple(signals or ()))
        return [
            self.guard(
                spec.name,
                spec.policy,
                window_s=spec.window_s,
                interval_s=spec.interval_s,
                signals=signals,
                nvml=nvml,
                clock=clock,
            )
            for spec in specs
        ]

    @property
    def guards(self) -> GuardSet:
        """This monitor's guards (created empty on first use, and registered)."""
        guards: GuardSet | None = self.__dict__.get("_guard_set")
        if guards is None:
            from inferwatch.health.guard import GuardSet

            candidate = GuardSet(self._recorder)
            guards = self.__dict__.setdefault("_guard_set", candidate)
            if guards is candidate:
                self.registry.register(candidate)
        return guards

    def admit(self) -> None:
        """Raise :class:`~inferwatch.Rejected` (with ``retry_after``) when a guard turns
        the request away. Call it first thing inside ``@monitor.track`` code so that the
        request counts as ``rejected``; it costs a clock read per guard when nothing is due.
        """
        guards: GuardSet | None = self.__dict__.get("_guard_set")
        if guards is not None and guards.guards:
            guards.admit()

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
            "admission": self.guards,
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

    # -- shadow models and memory growth -----------------------------------------------

    def shadow(
        self,
        candidate: Callable[..., Any],
        *,
        sample_rate: float = 0.1,
        compare: Callable[[Any, Any], object] | None = None,
        name: str | None = None,
        queue_size: int = 1000,
        workers: int = 1,
        timeout_s: float = 5.0,
        max_stuck: int = 4,
        record: str | os.PathLike[str] | None = None,
    ) -> Shadow:
        """Mirror ``sample_rate`` of this model's calls to ``candidate``, off the request
        path, and export how they compare (``inferwatch_shadow_*{model, version, candidate}``).

        Decorate the primary with the result (outermost)::

            @monitor.shadow(model_v2.predict, name="v2", sample_rate=0.1)
            @monitor.track
            def predict(x): ...

        or call ``shadow.mirror(args, result=..., latency_s=...)`` by hand. See
        :class:`~inferwatch.analyze.shadow.Shadow` for the arguments and the policy for
        a full queue and a failing or hung candidate; ``record`` is a JSON-lines file for
        ``inferwatch shadow report``. Call ``close()`` on it to stop mirroring.
        """
        from inferwatch.analyze.shadow import Shadow

        shadow = Shadow(
            candidate,
            model=self.model,
            version=self.version,
            name=name,
            sample_rate=sample_rate,
            compare=compare,
            queue_size=queue_size,
            workers=workers,
            timeout_s=timeout_s,
            max_stuck=max_stuck,
            record=record,
            registry=self.registry,
        )
        self.registry.register(shadow)
        return shadow

    def memory_growth(
        self,
        *,
        period_s: float = 5.0,
        window_s: float = 600.0,
        gpu: bool = True,
        nvml: Any | None = None,
        start: bool = True,
    ) -> MemoryGrowthCollector:
        """Export the trend of process RSS and GPU memory (leak detection):
        ``process_memory_growth_bytes_per_second`` and
        ``gpu_memory_growth_bytes_per_second{gpu}``, the Theil-Sen slope of samples taken
        every ``period_s`` over the last ``window_s``. ``start``: sample from a daemon
        thread (otherwise at each scrape). Alert with ``examples/rules/memory-leak.yml``.
        """
        from inferwatch.analyze.leak import MemoryGrowthCollector

        collector = MemoryGrowthCollector(period_s=period_s, window_s=window_s, gpu=gpu, nvml=nvml)
        self.registry.register(collector)
        return collector.start() if start else collector

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

    # -- structured logs and result cache -----------------------------------------------

    def logs(
        self,
        path: str | os.PathLike[str] | None = "inferwatch.log",
        *,
        max_bytes: int = 50 * 1024 * 1024,
        backups: int = 5,
        redact: Sequence[str] = (),
        personal: Sequence[str] = (),
        salt: bytes | str | None = None,
        level: int | str = "INFO",
        propagate: bool = True,
    ) -> InferenceLogging:
        """Write one JSON line per inference of this model, per alert state change and
        per probe result, through the ``logging`` loggers ``inferwatch.inference``,
        ``inferwatch.alerts`` and ``inferwatch.probes``.

        ``path``: the JSON-lines file, rotated past ``max_bytes`` (0: never) keeping
        ``backups`` old files (``FILE.1`` newest); ``None`` for no file, only the
        handlers you add. ``redact``: more field names to replace by ``[REDACTED]``
        (names like ``password``/``token``/``api_key`` always are, and so are values
        that look like credentials). ``personal``: field names (for example given to
        :func:`~inferwatch.sdk.logs.log_context`) whose values are replaced by
        ``pii:`` and a salted hash (``salt``: random per process unless given).
        ``propagate``: also pass records to the root logger's handlers. Formatting
        happens on a background thread; the request pays about a microsecond. Search
        the files with ``inferwatch logs search``. Returns the
        :class:`~inferwatch.sdk.logs.InferenceLogging` (``flush()``, ``close()``).
        """
        from inferwatch.sdk.logs import configure

        return configure(
            self._recorder,
            self.registry,
            path=path,
            max_bytes=max_bytes,
            backups=backups,
            redact=redact,
            personal=personal,
            salt=salt,
            level=level,
            propagate=propagate,
        )

    def _export_cache(self, cache: Cache, fn: Callable[..., Any]) -> None:
        """Bind a ``@track(cache=...)`` cache to ``fn`` and export its series."""
        from inferwatch.sdk.cache import CacheCollector

        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        name = name.replace("<locals>.", "")
        cache.bind(self.model, self.version, name)
        candidate = CacheCollector()
        collector: CacheCollector = self.__dict__.setdefault("_cache_collector", candidate)
        if collector is candidate:
            self.registry.register(collector)
        collector.caches.append(cache)

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
