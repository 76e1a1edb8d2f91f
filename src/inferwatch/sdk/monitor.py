"""The user's entry point: :class:`Monitor`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from inferwatch._errors import ConfigError
from inferwatch.sdk.family import MergeMode
from inferwatch.sdk.metrics import Counter, Gauge, Histogram
from inferwatch.sdk.registry import Registry, default_registry
from inferwatch.sdk.track import BatchSize, Inference, wrap

if TYPE_CHECKING:
    from inferwatch.server.metrics_server import MetricsServer

F = TypeVar("F", bound=Callable[..., Any])


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

    def instrument(self, app: Any, *, metrics_path: str | None = "/metrics") -> Any:
        """Add per-route HTTP metrics to a web app and serve ``metrics_path`` on it.

        Works with ASGI apps (FastAPI, Starlette, or any ASGI callable) and Flask (WSGI).
        For FastAPI/Starlette/Flask the app is changed in place and returned; for any
        other ASGI callable the wrapped app is returned and must be served instead.
        """
        from inferwatch.sdk.asgi import instrument_asgi
        from inferwatch.sdk.wsgi import instrument_flask, is_flask

        if is_flask(app):
            return instrument_flask(app, self.registry, metrics_path=metrics_path)
        return instrument_asgi(app, self.registry, metrics_path=metrics_path)

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
