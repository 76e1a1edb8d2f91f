"""The demo service: a real scikit-learn digit classifier behind FastAPI, monitored.

::

    from inferwatch.demo import create_app, run_demo

    app = create_app()          # an ASGI app: serve it with any ASGI server
    run_demo(port=8000)         # or: uvicorn, a traffic generator and the URLs, until Ctrl-C

The model is a logistic regression trained at start-up on the 8x8 digits bundled with
scikit-learn (no download), so ``/predict`` gives real answers and ``/metrics`` shows
real latencies. ``GET /sample`` hands out rows of the held-out test split, in the very
shape ``POST /predict`` accepts::

    curl -s localhost:8000/sample?n=3 | curl -s -H 'content-type: application/json' \\
        -d @- localhost:8000/predict
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import numpy.typing as npt
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AllowInfNan, BaseModel, Field, Strict

from inferwatch.sdk.monitor import Monitor

if TYPE_CHECKING:
    import uvicorn

    from inferwatch.scrape import ScrapeManager
    from inferwatch.tsdb.store import Store

#: Pixels per digit image (8x8, row by row, intensities 0..16).
N_FEATURES = 64
#: Most rows one ``/predict`` call accepts.
MAX_INSTANCES = 256

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Pixel = Annotated[float, Strict(), AllowInfNan(False)]
Instance = Annotated[
    list[Pixel],
    Field(
        min_length=N_FEATURES,
        max_length=N_FEATURES,
        description="64 pixel intensities (0..16) of an 8x8 image, row by row.",
    ),
]


class PredictRequest(BaseModel):
    """The body of ``POST /predict``; unknown fields (such as ``labels``) are ignored."""

    instances: Annotated[list[Instance], Field(min_length=1, max_length=MAX_INSTANCES)]
    probabilities: bool = Field(
        default=False, description="Also return each row's class probabilities."
    )


class PredictResponse(BaseModel):
    """The answer of ``POST /predict``: one predicted digit per row."""

    predictions: list[int]
    probabilities: list[list[float]] | None = None
    model: str
    version: str


class SampleResponse(BaseModel):
    """Rows of the test split with their true digits; POST it to ``/predict`` as it is."""

    instances: list[list[float]]
    labels: list[int]
    indices: list[int]


@dataclass(frozen=True, slots=True)
class DigitsData:
    """The digits data set split into a training and a held-out test part."""

    x_train: FloatArray
    y_train: IntArray
    x_test: FloatArray
    y_test: IntArray


def load_digits_split(seed: int = 0, test_size: float = 0.25) -> DigitsData:
    """Load scikit-learn's bundled digits (no network) and split them, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return DigitsData(
        x_train=np.asarray(x_train, dtype=np.float64),
        y_train=np.asarray(y_train, dtype=np.int64),
        x_test=np.asarray(x_test, dtype=np.float64),
        y_test=np.asarray(y_test, dtype=np.int64),
    )


class DigitsClassifier:
    """A standardised logistic regression on the digits; trains in well under a second."""

    def __init__(self, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.data = load_digits_split(seed)
        self._pipeline: Any = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        )
        self._pipeline.fit(self.data.x_train, self.data.y_train)
        self.classes: IntArray = np.asarray(self._pipeline.classes_, dtype=np.int64)
        self.test_accuracy = float(self._pipeline.score(self.data.x_test, self.data.y_test))

    def predict_proba(self, rows: FloatArray) -> FloatArray:
        """Class probabilities, one row per input row, columns in :attr:`classes` order."""
        return np.asarray(self._pipeline.predict_proba(rows), dtype=np.float64)


def _field_path(loc: Sequence[int | str]) -> str:
    """``("body", "instances", 3, 5)`` -> ``instances[3][5]``."""
    parts = list(loc)
    source = str(parts.pop(0)) if parts and parts[0] in ("body", "query", "path") else ""
    if not parts:
        return source or "request"
    text = source if isinstance(parts[0], int) else ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body plus a one-line ``message`` naming each bad field and index.

    The offending ``input`` is left out of ``detail``: it may be a NaN, which JSON
    cannot carry, or hundreds of rows.
    """
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    message = "; ".join(f"{_field_path(e.get('loc', ()))}: {e.get('msg', '')}" for e in errors)
    return JSONResponse(
        status_code=422, content={"message": message, "detail": jsonable_encoder(errors)}
    )


def create_app(
    *, monitor: Monitor | None = None, seed: int = 0, store: Store | None = None
) -> FastAPI:
    """The demo FastAPI app, with its model trained and ``/metrics`` mounted.

    ``monitor`` defaults to ``Monitor(model="digits", version="1")`` in the process-wide
    registry; pass one with its own registry to keep counts apart (as tests do).
    ``seed`` fixes the train/test split and the sampling of ``/sample``. With a
    ``store``, the Prometheus HTTP API over it is mounted at ``/api/v1`` (Grafana can
    use the demo as a Prometheus data source), with the monitor's metric metadata.
    """
    monitor = monitor if monitor is not None else Monitor(model="digits", version="1")
    classifier = DigitsClassifier(seed)
    data = classifier.data
    rng = random.Random(seed)
    rng_lock = threading.Lock()

    @monitor.track(batch_size=len)
    def infer(rows: FloatArray) -> FloatArray:
        return classifier.predict_proba(rows)

    app = FastAPI(
        title="inferwatch demo: digits",
        description="A scikit-learn digit classifier, monitored by inferwatch.",
        version=monitor.version or "0",
    )
    app.add_exception_handler(RequestValidationError, _validation_error)

    urls = {
        "predict": "POST /predict  {'instances': [[64 floats], ...]}",
        "sample": "GET /sample?n=5",
        "sample_by_index": "GET /sample/{index}",
        "metrics": "GET /metrics",
        "docs": "GET /docs",
    }
    if store is not None:
        from inferwatch.server.api import PrometheusAPI, registry_metadata

        api = PrometheusAPI(store, metadata=registry_metadata(monitor.registry))
        app.mount("/api/v1", api)
        urls["query"] = "GET /api/v1/query?query=inferwatch_inferences_total"

    @app.get("/")
    def index() -> dict[str, Any]:
        """What this service is and the URLs it answers."""
        return {
            "service": "inferwatch demo",
            "model": monitor.model,
            "version": monitor.version,
            "test_accuracy": round(classifier.test_accuracy, 4),
            "urls": urls,
        }

    @app.post("/predict", response_model_exclude_none=True)
    def predict(body: PredictRequest) -> PredictResponse:
        """Predict the digit of each 8x8 image (64 pixel values, row by row)."""
        proba = infer(np.asarray(body.instances, dtype=np.float64))
        labels = classifier.classes[proba.argmax(axis=1)]
        return PredictResponse(
            predictions=[int(v) for v in labels],
            probabilities=proba.round(6).tolist() if body.probabilities else None,
            model=monitor.model,
            version=monitor.version,
        )

    def sample_of(indices: list[int]) -> SampleResponse:
        return SampleResponse(
            instances=data.x_test[indices].tolist(),
            labels=[int(v) for v in data.y_test[indices]],
            indices=indices,
        )

    @app.get("/sample")
    def sample(n: Annotated[int, Query(ge=1, le=MAX_INSTANCES)] = 5) -> SampleResponse:
        """``n`` random rows of the held-out test split with their true labels."""
        with rng_lock:
            indices = rng.sample(range(len(data.y_test)), min(n, len(data.y_test)))
        return sample_of(indices)

    @app.get("/sample/{index}")
    def sample_by_index(index: int) -> SampleResponse:
        """Row ``index`` of the held-out test split with its true label."""
        if not 0 <= index < len(data.y_test):
            raise HTTPException(
                status_code=404,
                detail=f"index must be in 0..{len(data.y_test) - 1}, got {index}",
            )
        return sample_of([index])

    app.state.classifier = classifier
    app.state.monitor = monitor
    monitor.instrument(app)
    return app


class TrafficGenerator:
    """Background load for a running demo: POSTs random test rows to ``url``.

    Requests leave at about ``rate`` per second (exponential gaps), each with 1 to
    ``max_batch`` rows. Failed requests are ignored: the point is live numbers on
    ``/metrics``, not a load test.
    """

    def __init__(
        self,
        url: str,
        rows: FloatArray,
        *,
        rate: float = 4.0,
        max_batch: int = 8,
        seed: int = 0,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.url = url
        self.rows = rows
        self.rate = rate
        self.max_batch = max_batch
        self.sent = 0
        self._ready = ready
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inferwatch-demo-traffic")
        self._thread.daemon = True

    def start(self) -> TrafficGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the request in flight (if any) to end."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stopping.wait(self._rng.expovariate(self.rate)):
            if self._ready():
                self._post_one()

    def _post_one(self) -> None:
        size = self._rng.randint(1, self.max_batch)
        picks = [self._rng.randrange(len(self.rows)) for _ in range(size)]
        body = json.dumps({"instances": self.rows[picks].tolist()}).encode()
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            self.sent += 1
        except (OSError, urllib.error.URLError):
            pass


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on ``host:port`` (``port=0``: a free one)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _url_host(host: str) -> str:
    """The host to put in a URL that reaches a server bound to ``host`` from here."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def run_demo(
    host: str = "127.0.0.1",
    port: int = 8000,
    traffic: bool = True,
    *,
    rate: float = 4.0,
    monitor: Monitor | None = None,
    echo: Callable[[str], None] | None = None,
    db: str | None = None,
) -> None:
    """Serve the demo with uvicorn until Ctrl-C (or SIGTERM), then return.

    With ``db`` (a file path) the process's own metrics are collected every 5 s
    straight into the embedded store in that file (no HTTP round trip), which keeps
    them across restarts, and the Prometheus HTTP API over them answers at
    ``/api/v1`` (``/api/v1/query``, ``/api/v1/query_range``, ...).

    With ``traffic`` a background thread sends about ``rate`` requests per second of
    real test rows to ``/predict``, so ``/metrics`` moves on its own. ``port=0`` picks
    a free port. The URLs are printed (through ``echo``) before serving starts.
    """
    import uvicorn

    say = echo if echo is not None else _print
    sock = _bind(host, port)
    base = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    monitor = monitor if monitor is not None else Monitor(model="digits", version="1")
    store = _open_store(db, monitor) if db else None
    try:
        app = create_app(monitor=monitor, store=store)
    except BaseException:
        if store is not None:
            store.close()
        sock.close()
        raise
    classifier: DigitsClassifier = app.state.classifier
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    generator: TrafficGenerator | None = None
    if traffic:
        generator = TrafficGenerator(
            f"{base}/predict",
            classifier.data.x_test,
            rate=rate,
            ready=lambda: bool(server.started),
        )
    say(f"inferwatch demo: digits classifier, test accuracy {classifier.test_accuracy:.3f}")
    say(f"  predict  POST {base}/predict")
    say(f"  sample   GET  {base}/sample?n=3")
    say(f"  metrics  GET  {base}/metrics")
    say(f"  docs     GET  {base}/docs")
    if store is not None:
        say(f"  query    GET  {base}/api/v1/query?query=inferwatch_inferences_total")
    say("  traffic: " + (f"about {rate:g} requests/s in the background" if traffic else "off"))
    manager = _collect_into(store, monitor) if store is not None else None
    if store is not None:
        say(f"  store    {db} (this process's metrics every 5 s; kept across restarts)")
    say("Press Ctrl-C to stop.")
    with _quiet_signal_exit(server):
        if generator is not None:
            generator.start()
        try:
            server.run(sockets=[sock])
        finally:
            if generator is not None:
                generator.stop()
            if manager is not None:
                manager.stop()
            if store is not None:
                store.close()
            sock.close()


def _open_store(db: str, monitor: Monitor) -> Store:
    """Open the store, with its own metrics in the monitor's registry."""
    from inferwatch.tsdb.store import Store

    store = Store(db)
    store.start_maintenance()
    monitor.registry.register(store)
    return store


def _collect_into(store: Store, monitor: Monitor) -> ScrapeManager:
    """Start collecting the monitor's registry into the store every 5 s."""
    from inferwatch.scrape import ScrapeManager

    manager = ScrapeManager(store, registry=monitor.registry, registry_interval=5.0)
    manager.start()
    return manager


def _print(line: str) -> None:
    print(line, flush=True)


@contextlib.contextmanager
def _quiet_signal_exit(server: uvicorn.Server) -> Iterator[None]:
    """Make SIGINT/SIGTERM end :func:`run_demo` by returning, not by a crash.

    While it serves, uvicorn handles these signals itself: it shuts down gracefully, then
    raises the signal again for the handler that was there before, which is this one.
    That second delivery is ignored; a signal before uvicorn took over stops the start.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not server.should_exit:
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
