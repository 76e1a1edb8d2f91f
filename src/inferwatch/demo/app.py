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
import time
import urllib.error
import urllib.request
import uuid
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
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, StrictBool

from inferwatch._errors import ConfigError
from inferwatch.demo.gpu import DemoGPU
from inferwatch.health.guard import CircuitBreaker, Guard, GuardSet
from inferwatch.sdk.asgi import retry_after_header
from inferwatch.sdk.monitor import Monitor

if TYPE_CHECKING:
    import uvicorn

    from inferwatch.sdk.registry import Registry
    from inferwatch.tsdb.store import Store

#: Pixels per digit image (8x8, row by row, intensities 0..16).
N_FEATURES = 64
#: Most rows one ``/predict`` call accepts.
MAX_INSTANCES = 256
#: The feature names of the pixels, as the drift series label them.
PIXELS = tuple(f"pixel_{i}" for i in range(N_FEATURES))

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
    """The answer of ``POST /predict``: one predicted digit per row, and the request id
    of each row to give its true label with ``POST /feedback``."""

    predictions: list[int]
    probabilities: list[list[float]] | None = None
    request_ids: list[str]
    model: str
    version: str


class Label(BaseModel):
    """The true digit of one earlier prediction."""

    request_id: Annotated[str, Field(min_length=1, max_length=200)]
    label: Annotated[int, Strict(), Field(ge=0, le=9)]


class FeedbackRequest(BaseModel):
    """The body of ``POST /feedback``: true labels, minutes or days after the predictions."""

    labels: Annotated[list[Label], Field(min_length=1, max_length=10_000)]


class FeedbackResponse(BaseModel):
    """How many labels were joined with their prediction, waited for one, repeated one,
    or came after it expired."""

    joined: int = 0
    pending: int = 0
    duplicate: int = 0
    expired: int = 0


class Faults(BaseModel):
    """Faults to inject, to watch the monitoring catch them (``GET /faults``).

    ``latency``: every request takes about 300 ms more (``HighLatencyP99``,
    ``LatencyAboveBaseline``). ``errors``: the model raises: the error ratio climbs, the
    circuit breaker opens and requests are answered 503 with ``Retry-After`` until it
    closes (``HighErrorRatio``). ``input_drift``: every row is dimmed and offset before
    the model (as if an upstream preprocessing step changed): the pixel features drift,
    and accuracy falls with them (``InputDrift``). ``model``: the model answers the next
    digit (as if a bad model were deployed): accuracy falls and ``/readyz`` fails its
    canary (``LowAccuracy``, ``ModelNotReady``). ``leak``: every request keeps 1 MiB for
    good: ``process_memory_growth_bytes_per_second`` climbs (``MemoryLeak``). ``gpu``:
    the demo's simulated GPU is 97% full, 100% busy and at 90 °C (``GPUMemoryPressure``,
    ``GPUHot``).
    """

    latency: bool = False
    errors: bool = False
    input_drift: bool = False
    model: bool = False
    leak: bool = False
    gpu: bool = False


class FaultsUpdate(BaseModel):
    """The body of ``POST /faults``: the faults to turn on (true) or off (false); the
    ones left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    latency: StrictBool | None = None
    errors: StrictBool | None = None
    input_drift: StrictBool | None = None
    model: StrictBool | None = None
    leak: StrictBool | None = None
    gpu: StrictBool | None = None


#: How much longer each request takes under the ``latency`` fault, in seconds.
LATENCY_FAULT_S = 0.3


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


def _candidate(data: DigitsData) -> Any:
    """The shadow candidate: Gaussian naive Bayes on the same training rows."""
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB().fit(data.x_train, data.y_train)


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
    *,
    monitor: Monitor | None = None,
    seed: int = 0,
    store: Store | None = None,
    prediction_log: str = ":memory:",
    gpu: DemoGPU | None = None,
) -> FastAPI:
    """The demo FastAPI app, with its model trained and ``/metrics``, ``/healthz`` and
    ``/readyz`` mounted, its predictions logged for labels (``POST /feedback``) and its
    pixel features watched for drift against the training data.

    ``monitor`` defaults to ``Monitor(model="digits", version="1")`` in the process-wide
    registry; pass one with its own registry to keep counts apart (as tests do).
    ``seed`` fixes the train/test split and the sampling of ``/sample``. With a
    ``store``, the Prometheus HTTP API over it is mounted at ``/api/v1`` (Grafana can
    use the demo as a Prometheus data source), with the monitor's metric metadata.
    ``prediction_log``: the SQLite file (or ``postgresql://`` URL) of the prediction log.
    ``gpu``: the GPU the ``gpu`` fault presses (see :class:`~inferwatch.demo.gpu.DemoGPU`;
    without one, turning that fault on is answered 409).
    """
    from inferwatch.analyze.profile import ReferenceProfile

    monitor = monitor if monitor is not None else Monitor(model="digits", version="1")
    classifier = DigitsClassifier(seed)
    data = classifier.data
    rng = random.Random(seed)
    rng_lock = threading.Lock()
    faults = Faults()

    def preprocess(rows: FloatArray) -> FloatArray:
        """The input as the model sees it (dimmed and offset under ``input_drift``)."""
        return np.clip(rows * 0.5 + 4.0, 0.0, 16.0) if faults.input_drift else rows

    def model(rows: FloatArray) -> FloatArray:
        """The deployed model (answering the next digit under the ``model`` fault)."""
        if faults.latency:
            time.sleep(LATENCY_FAULT_S)
        if faults.errors:
            raise RuntimeError("injected fault: the model failed")
        proba = classifier.predict_proba(rows)
        return np.roll(proba, 1, axis=1) if faults.model else proba

    # A candidate model (naive Bayes, trained on the same rows) sees half the calls in
    # shadow: inferwatch_shadow_comparisons_total says how often it agrees.
    candidate = _candidate(data)
    shadow = monitor.shadow(
        candidate.predict_proba,
        name="naive-bayes",
        sample_rate=0.5,
        compare=lambda primary, other: bool(
            (primary.argmax(axis=1) == np.asarray(other).argmax(axis=1)).all()
        ),
    )
    # Errors above half of the calls for 2 s open the circuit for 10 s. The breaker guards
    # /predict only (not through monitor.guard(), whose middleware check covers every
    # path): /faults, the dashboard and the APIs must answer while the circuit is open.
    recorder = monitor.registry.inference_recorder(monitor.model, monitor.version)
    breaker = GuardSet(recorder)
    breaker.add(
        Guard(
            "model-errors",
            CircuitBreaker("error_ratio > 0.5", for_s=2.0, open_s=10.0, half_open_requests=3),
            recorder=recorder,
            registry=monitor.registry,
        )
    )
    monitor.registry.register(breaker)
    leaked: list[bytearray] = []

    @shadow
    @monitor.track(batch_size=len)
    def infer(rows: FloatArray) -> FloatArray:
        return model(rows)

    monitor.quality(log=prediction_log, classes=classifier.classes.tolist())
    monitor.drift(
        ReferenceProfile.from_data(
            data.x_train, feature_names=PIXELS, predictions=data.y_train.astype(str)
        ),
        window=60.0,
        slices=6,
    )
    # The canary: rows of the test split the clean model gets right must stay right.
    canary_rows = data.x_test[:40]
    right = classifier.classes[classifier.predict_proba(canary_rows).argmax(axis=1)]
    keep = right == data.y_test[:40]
    canary_rows, canary_labels = canary_rows[keep][:20], data.y_test[:40][keep][:20]

    def canary_passes(proba: FloatArray) -> bool:
        predicted = classifier.classes[proba.argmax(axis=1)]
        wrong = int((predicted != canary_labels).sum())
        if wrong:
            raise ValueError(f"{wrong} of {len(canary_labels)} known digits misclassified")
        return True

    monitor.readiness(
        canary=lambda rows: model(preprocess(rows)),
        samples=[canary_rows],
        validator=canary_passes,
        latency_budget_s=1.0,
        cache_s=5.0,
        model_loaded=True,
    )

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
        "feedback": "POST /feedback  {'labels': [{'request_id': ..., 'label': 3}]}",
        "faults": "POST /faults  {'errors': true}; GET /faults; DELETE /faults clears all",
        "metrics": "GET /metrics",
        "ready": "GET /readyz",
        "docs": "GET /docs",
    }
    if store is not None:
        from inferwatch.server.api import PrometheusAPI, registry_metadata

        api = PrometheusAPI(store, metadata=registry_metadata(monitor.registry))
        app.mount("/api/v1", api)
        urls["query"] = "GET /api/v1/query?query=inferwatch_inferences_total"

    @app.get("/demo")
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
        """Predict the digit of each 8x8 image (64 pixel values, row by row).

        Answered 503 with ``Retry-After`` while the circuit breaker is open."""
        rejection = breaker.check()
        if rejection is not None:
            headers = {"Retry-After": retry_after_header(rejection)}
            raise HTTPException(status_code=503, detail=str(rejection), headers=headers)
        rows = preprocess(np.asarray(body.instances, dtype=np.float64))
        if faults.leak:
            leaked.append(bytearray(1 << 20))
        try:
            proba = infer(rows)
        except RuntimeError as exc:
            raise HTTPException(status_code=500, detail=str(exc)) from None
        labels = classifier.classes[proba.argmax(axis=1)]
        ids = [uuid.uuid4().hex for _ in labels]
        scores = proba.max(axis=1).tolist()
        for rid, label, score, row in zip(ids, labels.tolist(), scores, rows.tolist(), strict=True):
            features = dict(zip(PIXELS, row, strict=True))
            monitor.log_prediction(rid, label, score=score, features=features)
        return PredictResponse(
            predictions=[int(v) for v in labels],
            probabilities=proba.round(6).tolist() if body.probabilities else None,
            request_ids=ids,
            model=monitor.model,
            version=monitor.version,
        )

    @app.post("/feedback")
    def feedback(body: FeedbackRequest) -> FeedbackResponse:
        """The true digits of earlier predictions, by the request ids ``/predict`` gave."""
        answer = FeedbackResponse()
        for item in body.labels:
            outcome = monitor.feedback(item.request_id, item.label)
            setattr(answer, outcome, getattr(answer, outcome) + 1)
        return answer

    @app.get("/faults")
    def get_faults() -> Faults:
        """The faults injected now."""
        return faults

    @app.post("/faults", responses={409: {"description": "No GPU for the gpu fault."}})
    def set_faults(body: FaultsUpdate) -> Faults:
        """Turn faults on or off (``{"errors": true}``); keys left out stay as they are."""
        changes = body.model_dump(exclude_none=True)
        if changes.get("gpu"):
            if gpu is None:
                raise HTTPException(status_code=409, detail="this demo app has no GPU to press")
            try:
                gpu.set_pressure(True)
            except RuntimeError as exc:
                raise HTTPException(status_code=409, detail=str(exc)) from None
        elif "gpu" in changes and gpu is not None and gpu.fake is not None:
            gpu.set_pressure(False)
        for name, on in changes.items():
            setattr(faults, name, on)
        monitor.set_model_loaded(True)  # re-run the canary at the next /readyz
        return faults

    @app.delete("/faults")
    def clear_faults() -> Faults:
        """Turn every fault off."""
        return set_faults(FaultsUpdate(**dict.fromkeys(Faults.model_fields, False)))

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
    app.state.shadow = shadow
    app.state.faults = faults
    app.state.set_faults = set_faults
    app.state.monitor = monitor
    monitor.instrument(app)
    return app


class TrafficGenerator:
    """Background load for a running demo: POSTs random test rows to ``url``.

    Requests leave at about ``rate`` per second (exponential gaps), each with 1 to
    ``max_batch`` rows. Failed requests are ignored: the point is live numbers on
    ``/metrics``, not a load test. With ``labels`` (the true digit of each row) and
    ``feedback_url``, the true labels of the answered rows follow ``label_delay_s``
    later, as the labels of a real service arrive after its predictions. With
    ``probe_url``, that URL is fetched every ``probe_every_s`` seconds, as an
    orchestrator probes readiness (so ``inferwatch_ready`` stays current).
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
        labels: IntArray | None = None,
        feedback_url: str | None = None,
        label_delay_s: float = 10.0,
        probe_url: str | None = None,
        probe_every_s: float = 5.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.url = url
        self.rows = rows
        self.rate = rate
        self.max_batch = max_batch
        self.sent = 0
        self.labelled = 0
        self.labels = labels
        self.feedback_url = feedback_url
        self.label_delay_s = label_delay_s
        self.probe_url = probe_url
        self.probe_every_s = probe_every_s
        self._next_probe = 0.0
        self._due: list[tuple[float, list[dict[str, Any]]]] = []
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
                self._send_due_labels()
                self._probe()

    def _probe(self) -> None:
        now = time.monotonic()
        if self.probe_url is None or now < self._next_probe:
            return
        self._next_probe = now + self.probe_every_s
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(self.probe_url, timeout=5) as response,
        ):
            response.read()

    def _post_one(self) -> None:
        size = self._rng.randint(1, self.max_batch)
        picks = [self._rng.randrange(len(self.rows)) for _ in range(size)]
        answer = _post_json(self.url, {"instances": self.rows[picks].tolist()})
        if answer is None:
            return
        self.sent += 1
        if self.labels is not None and self.feedback_url is not None:
            ids = answer.get("request_ids", [])
            items = [
                {"request_id": rid, "label": int(self.labels[i])}
                for rid, i in zip(ids, picks, strict=False)
            ]
            self._due.append((time.monotonic() + self.label_delay_s, items))

    def _send_due_labels(self) -> None:
        now = time.monotonic()
        items = [item for due, batch in self._due if due <= now for item in batch]
        if not items or self.feedback_url is None:
            return
        self._due = [(due, batch) for due, batch in self._due if due > now]
        if _post_json(self.feedback_url, {"labels": items}) is not None:
            self.labelled += len(items)


def _post_json(url: str, payload: object) -> Any:
    """POST ``payload`` as JSON; the decoded answer, or None when the request failed."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


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
    webhook: str | None = None,
    faults: Sequence[str] = (),
    fake_gpu: bool | None = None,
    interval_s: float = 2.0,
    on_start: Callable[[str], None] | None = None,
) -> None:
    """Serve the demo and its monitoring on one port until Ctrl-C (or SIGTERM), then return.

    One process serves the model (``/predict``, ``/metrics``, ``/faults``, ...) and an
    embedded inferwatch server (:class:`~inferwatch.demo.stack.DemoStack`): the
    dashboard at ``/``, the Prometheus API at ``/api/v1``, Alertmanager's at ``/api/v2``.
    The process's metrics are collected every ``interval_s`` seconds into the store in
    ``db`` (``None``: a temporary file), the packaged rules (``rules.yml``) and baseline
    (``baselines.yml``) are evaluated as often, and alerts that fire or resolve are
    printed (through ``echo``) and sent to ``webhook`` when given.

    With ``db`` the demo also writes one JSON line per inference to ``<db>.log``
    (``inferwatch logs search``). It samples its memory for leak detection
    (``process_memory_growth_bytes_per_second``). ``faults``: faults on from the start
    (``Faults`` field names, such as ``"errors"``). ``fake_gpu``: show a simulated GPU
    (``None``: only when NVML finds no GPU). The demo's registry is its own, with the
    GPU collector of that GPU; a ``monitor`` given gets the GPU collector registered.

    With ``traffic`` a background thread sends about ``rate`` requests per second of
    real test rows to ``/predict`` (and their true labels 10 s later), so the numbers
    move on their own. ``port=0`` picks a free port. The URLs are printed before serving
    starts; ``on_start`` is called with the base URL once the server answers.
    """
    import uvicorn

    from inferwatch.demo.stack import DemoStack, check_webhook_url

    say = echo if echo is not None else _print
    if webhook is not None:
        check_webhook_url(webhook)
    unknown = [name for name in faults if name not in Faults.model_fields]
    if unknown:
        raise ConfigError(
            f"--fault: unknown fault {unknown[0]!r}; choose from {', '.join(Faults.model_fields)}",
            field="fault",
            value=unknown[0],
        )
    sock = _bind(host, port)
    base = f"http://{_url_host(host)}:{sock.getsockname()[1]}"
    stack: DemoStack | None = None
    try:
        gpu = DemoGPU(simulated=True) if fake_gpu else DemoGPU.detect()
        if fake_gpu is False and gpu.simulated:
            gpu = DemoGPU(simulated=False)
        if monitor is None:
            monitor = Monitor(model="digits", version="1", registry=_demo_registry(gpu))
        else:
            monitor.registry.register(gpu.collector)
        app = create_app(monitor=monitor, gpu=gpu)
        stack = DemoStack(
            monitor.registry, db=db, webhook=webhook, echo=say, external_url=base,
            interval_s=interval_s,
        )  # fmt: skip
        app.mount("/", stack.app())
    except BaseException:
        if stack is not None:
            stack.stop()
        sock.close()
        raise
    classifier: DigitsClassifier = app.state.classifier
    growth = monitor.memory_growth(period_s=2.0, window_s=60.0)
    inference_log = monitor.logs(f"{db}.log") if db else None
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    generator: TrafficGenerator | None = None
    if traffic:
        generator = TrafficGenerator(
            f"{base}/predict",
            classifier.data.x_test,
            rate=rate,
            ready=lambda: bool(server.started),
            labels=classifier.data.y_test,
            feedback_url=f"{base}/feedback",
            probe_url=f"{base}/readyz",
        )
    if faults:
        _set_faults(app, {name: True for name in faults})
    say(f"inferwatch demo: digits classifier, test accuracy {classifier.test_accuracy:.3f}")
    say(f"  dashboard     {base}/")
    say(f"  predict       POST {base}/predict  (rows from GET {base}/sample?n=3)")
    say(f"  alerts        {base}/api/v1/alerts  (rules: {base}/api/v1/rules)")
    say(f"  query         {base}/api/v1/query?query=inferwatch_inferences_total")
    say(f"  alertmanager  {base}/api/v2/alerts")
    say(f"  metrics       {base}/metrics")
    say(f"  ready         {base}/readyz")
    say(f"  docs          {base}/docs")
    say(f"  gpu           {gpu.name}")
    flow = f"about {rate:g} requests/s, labels 10 s later" if traffic else "off"
    say(f"  traffic       {flow}")
    if webhook:
        say(f"  webhook       {webhook} (alerts that fire and resolve)")
    if db:
        say(f"  store         {db} (this process's metrics every {interval_s:g} s; kept)")
        say(f"  logs          {db}.log (inferwatch logs search {db}.log --outcome error)")
    on = [name for name, value in app.state.faults if value]
    say("  faults on     " + (", ".join(on) if on else "none"))
    url_option = "" if base == "http://127.0.0.1:8000" else f" --url {base}"
    say(
        f"Inject a fault: inferwatch fault errors{url_option}  (also latency, input-drift, "
        "model, leak, gpu; --off to stop, 'inferwatch fault clear' for all)"
    )
    say("Press Ctrl-C to stop.")
    with _quiet_signal_exit(server):
        stack.start()
        if generator is not None:
            generator.start()
        if on_start is not None:
            threading.Thread(
                target=_call_when_started, args=(server, on_start, base), daemon=True
            ).start()
        try:
            server.run(sockets=[sock])
        finally:
            if generator is not None:
                generator.stop()
            growth.stop()
            if inference_log is not None:
                inference_log.close()
            stack.stop()
            sock.close()


def _demo_registry(gpu: DemoGPU) -> Registry:
    """The demo's registry: process, system, the demo GPU's and torch-CUDA collectors."""
    from inferwatch.collectors import ProcessCollector, SystemCollector, TorchCUDACollector
    from inferwatch.sdk.registry import Registry

    return Registry(
        collectors=[ProcessCollector(), SystemCollector(), gpu.collector, TorchCUDACollector()]
    )


def _set_faults(app: FastAPI, changes: dict[str, bool]) -> None:
    """Turn faults on or off as ``POST /faults`` does, without a request."""
    try:
        app.state.set_faults(FaultsUpdate(**changes))
    except HTTPException as exc:
        raise ConfigError(f"--fault: {exc.detail}", field="fault") from None


def _call_when_started(server: uvicorn.Server, callback: Callable[[str], None], base: str) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.02)
    if server.started:
        callback(base)


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
