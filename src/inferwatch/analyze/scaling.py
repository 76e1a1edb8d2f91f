"""Autoscaling advice: how many replicas a model service needs, and why.

:class:`ReplicaAdvisor` is pure logic: it takes :class:`ScalingSignals` (request rate,
queue depth, GPU utilisation, the replicas running now) and a time, and returns an
:class:`Advice`. The replicas needed come from the requests per second one replica
serves at the latency objective (``ScalingPolicy.capacity_rps``, measured with the load
tester, or learned from observed latency-versus-load pairs by :func:`learn_capacity`),
from the queue depth per replica, and from GPU utilisation; the largest need wins and
names the reason.

It is reactive and predictive: a :class:`SeasonalForecaster` learns the daily shape of
the request rate, and once it has seen a full season the advice covers the highest rate
forecast over the next ``horizon_s`` seconds, so scale-up starts before a known daily
peak instead of after it. Scale-up waits ``scale_up_cooldown_s`` after a change;
scale-down takes the highest need over a ``stabilization_s`` window, ignores drops
smaller than ``tolerance`` and waits ``scale_down_cooldown_s``, so the advice does not
flap. Missing or NaN signals keep the current advice: an empty query never drops a
service to its minimum (the KEDA null-means-zero pitfall).

:class:`ScalingAdvisor` holds one advisor per model, is a collector (register it with a
registry) exporting ``inferwatch_recommended_replicas{model}`` and
``inferwatch_recommended_replicas_reason{model,reason} 1``, and can read its signals
with PromQL over the store (:meth:`ScalingAdvisor.evaluate`).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from inferwatch._errors import ConfigError, InferwatchError
from inferwatch.sdk.family import FamilySnapshot

if TYPE_CHECKING:
    from inferwatch.promql.engine import Engine

__all__ = [
    "Advice",
    "ReplicaAdvisor",
    "ScalingAdvisor",
    "ScalingPolicy",
    "ScalingQueries",
    "ScalingSignals",
    "SeasonalForecaster",
    "learn_capacity",
]

#: Reasons an advice can carry, as the ``reason`` label of the exported series.
REASONS = (
    "request_rate",
    "forecast",
    "queue_depth",
    "gpu_utilization",
    "min_replicas",
    "max_replicas",
    "stabilizing",
    "cooldown",
    "no_data",
)


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v >= 0 else None


def _positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"{name} must be a positive number, not {value!r}", field=name, value=value
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingPolicy:
    """How the advice is computed for one model service.

    ``capacity_rps``: requests per second one replica serves within the latency
    objective; ``target_utilization`` (0..1] of it is planned, the rest is headroom.
    ``queue_per_replica``: the queue depth (in-flight requests) one replica may hold.
    ``gpu_target``: the GPU utilisation (0..1] to plan for. Each is optional; a signal
    without its setting is not used.
    ``horizon_s``: how far ahead the forecast looks (at least a new replica's start-up
    time); 0 turns prediction off. ``season_s``: the period of the traffic pattern.
    """

    min_replicas: int = 1
    max_replicas: int = 100
    capacity_rps: float | None = None
    target_utilization: float = 0.8
    queue_per_replica: float | None = None
    gpu_target: float | None = None
    scale_up_cooldown_s: float = 30.0
    scale_down_cooldown_s: float = 300.0
    stabilization_s: float = 300.0
    tolerance: float = 0.1
    horizon_s: float = 600.0
    season_s: float = 86400.0
    season_bins: int = 288

    def __post_init__(self) -> None:
        if not isinstance(self.min_replicas, int) or self.min_replicas < 0:
            raise ConfigError(
                f"min_replicas must be an integer >= 0, not {self.min_replicas!r}",
                field="min_replicas",
                value=self.min_replicas,
            )
        if not isinstance(self.max_replicas, int) or self.max_replicas < max(1, self.min_replicas):
            raise ConfigError(
                f"max_replicas must be an integer >= max(1, min_replicas), "
                f"not {self.max_replicas!r}",
                field="max_replicas",
                value=self.max_replicas,
            )
        _positive("capacity_rps", self.capacity_rps)
        _positive("queue_per_replica", self.queue_per_replica)
        for name in ("target_utilization", "gpu_target"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and 0 < v <= 1):
                raise ConfigError(f"{name} must be in (0, 1], not {v!r}", field=name, value=v)
        for name in ("scale_up_cooldown_s", "scale_down_cooldown_s", "stabilization_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be >= 0 seconds, not {v!r}", field=name, value=v)
        if not (math.isfinite(self.tolerance) and 0 <= self.tolerance < 1):
            raise ConfigError(
                f"tolerance must be in [0, 1), not {self.tolerance!r}",
                field="tolerance",
                value=self.tolerance,
            )
        if not (math.isfinite(self.horizon_s) and self.horizon_s >= 0):
            raise ConfigError(
                f"horizon_s must be >= 0 seconds, not {self.horizon_s!r}",
                field="horizon_s",
                value=self.horizon_s,
            )
        _positive("season_s", self.season_s, allow_none=False)
        if not isinstance(self.season_bins, int) or self.season_bins < 1:
            raise ConfigError(
                f"season_bins must be an integer >= 1, not {self.season_bins!r}",
                field="season_bins",
                value=self.season_bins,
            )


@dataclass(frozen=True, slots=True)
class ScalingSignals:
    """What the advisor sees at one moment; ``None`` or NaN means "not known now".

    ``request_rate`` is requests per second for the whole service, ``queue_depth`` the
    requests waiting or in flight across replicas, ``gpu_utilization`` the mean over
    replicas in 0..1, ``current_replicas`` how many run now.
    """

    request_rate: float | None = None
    queue_depth: float | None = None
    gpu_utilization: float | None = None
    current_replicas: float | None = None


@dataclass(frozen=True, slots=True)
class Advice:
    """The advice: ``replicas`` to run, the ``reason``, and the raw ``desired`` count
    before cooldown and stabilisation, computed at ``at`` (seconds)."""

    replicas: int
    reason: str
    desired: int
    at: float


class SeasonalForecaster:
    """A seasonal profile of a rate, learned online, with a level correction.

    The season (a day by default) is cut into ``bins``; each bin keeps an exponentially
    weighted mean of the values seen in it. The forecast for a coming window is the
    highest profile value in it, scaled by how the recent level compares with the
    profile (clamped to [0.5, 2]). It forecasts nothing (``None``) until a whole season
    has been seen, and never looks ahead of the values given.
    """

    def __init__(self, season_s: float = 86400.0, bins: int = 288, *, alpha: float = 0.3) -> None:
        self.season_s = season_s
        self.bins = bins
        self.alpha = alpha
        self._width = season_s / bins
        self._profile: list[float | None] = [None] * bins
        self._first: float | None = None
        self._level = 1.0
        self._bin = -1
        self._sum = 0.0
        self._count = 0

    def _index(self, t: float) -> int:
        return int((t % self.season_s) // self._width) % self.bins

    def observe(self, t: float, value: float) -> None:
        """Add the value seen at time ``t`` (seconds); non-finite values are skipped."""
        if not math.isfinite(value) or value < 0:
            return
        if self._first is None:
            self._first = t
        b = self._index(t)
        if b != self._bin:
            self._fold()
            self._bin = b
        self._sum += value
        self._count += 1
        expected = self._profile[b]
        if expected is not None and expected > 0:
            ratio = min(max(value / expected, 0.5), 2.0)
            self._level += 0.05 * (ratio - self._level)

    def _fold(self) -> None:
        if self._bin < 0 or self._count == 0:
            return
        mean = self._sum / self._count
        old = self._profile[self._bin]
        self._profile[self._bin] = mean if old is None else old + self.alpha * (mean - old)
        self._sum = 0.0
        self._count = 0

    def ready(self, t: float) -> bool:
        """Whether a whole season has been seen by time ``t``."""
        return self._first is not None and t - self._first >= self.season_s

    def forecast(self, t: float, horizon_s: float) -> float | None:
        """The highest rate expected in ``(t, t + horizon_s]``, or None without a season."""
        if horizon_s <= 0 or not self.ready(t):
            return None
        steps = max(1, math.ceil(horizon_s / self._width))
        start = self._index(t)
        values = [self._profile[(start + i) % self.bins] for i in range(1, steps + 1)]
        known = [v for v in values if v is not None]
        if not known:
            return None
        return max(known) * min(max(self._level, 0.5), 2.0)


def learn_capacity(
    pairs: Iterable[tuple[float, float]],
    objective_s: float,
    *,
    bins: int = 10,
    min_pairs: int = 20,
) -> float | None:
    """Requests/s per replica at which latency reaches ``objective_s``, from observations.

    ``pairs`` are ``(requests_per_second_per_replica, latency_seconds)``, for example a
    p99 latency and a per-replica rate read at the same moments. They are grouped into
    ``bins`` by load; the latency-versus-load curve is the running maximum of the
    median latency per group, and the capacity is where it crosses the objective
    (interpolated). Where the objective was never exceeded, the highest load observed
    is returned (the curve is not extrapolated). ``None`` when there are fewer than
    ``min_pairs`` usable pairs, or when even the lightest load misses the objective.
    """
    _positive("objective_s", objective_s, allow_none=False)
    clean = sorted(
        (load, lat)
        for load, lat in pairs
        if math.isfinite(load) and math.isfinite(lat) and load >= 0 and lat >= 0
    )
    if len(clean) < max(min_pairs, 1):
        return None
    size = max(1, len(clean) // max(bins, 1))
    points: list[tuple[float, float]] = []
    for i in range(0, len(clean), size):
        group = clean[i : i + size]
        loads = sorted(p[0] for p in group)
        lats = sorted(p[1] for p in group)
        points.append((loads[len(loads) // 2], lats[len(lats) // 2]))
    envelope: list[tuple[float, float]] = []
    worst = 0.0
    for load, lat in points:
        worst = max(worst, lat)
        envelope.append((load, worst))
    if envelope[0][1] > objective_s:
        return None
    for (l0, t0), (l1, t1) in itertools.pairwise(envelope):
        if t1 > objective_s:
            if t1 == t0:
                return l0
            return l0 + (l1 - l0) * (objective_s - t0) / (t1 - t0)
    return clean[-1][0]


class ReplicaAdvisor:
    """The replica advice for one model service; see the module docstring.

    Call :meth:`update` with the signals at a time (default: ``clock()``) and get the
    :class:`Advice`. ``initial`` is the advice before any signal (default: nothing, so
    the first update with no data keeps the replicas running now, or the minimum).
    """

    def __init__(
        self,
        policy: ScalingPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        initial: int | None = None,
    ) -> None:
        self.policy = policy if policy is not None else ScalingPolicy()
        self._clock = clock
        self.forecaster = SeasonalForecaster(self.policy.season_s, self.policy.season_bins)
        self._advice: Advice | None = None
        if initial is not None:
            self._advice = Advice(self._clamp(initial), "no_data", initial, clock())
        self._window: deque[tuple[float, int]] = deque()
        self._last_change: float | None = None

    @property
    def advice(self) -> Advice | None:
        """The latest advice, or None before the first update."""
        return self._advice

    def _clamp(self, n: int) -> int:
        return min(max(n, self.policy.min_replicas), self.policy.max_replicas)

    def needs(self, signals: ScalingSignals, now: float) -> list[tuple[int, str]]:
        """The replicas each available signal asks for, with its reason (no state kept)."""
        p = self.policy
        out: list[tuple[int, str]] = []
        rate = _finite(signals.request_rate)
        current = _finite(signals.current_replicas)
        if current is None and self._advice is not None:
            current = float(self._advice.replicas)
        if rate is not None and p.capacity_rps is not None:
            per_replica = p.capacity_rps * p.target_utilization
            out.append((math.ceil(rate / per_replica - 1e-9), "request_rate"))
            ahead = self.forecaster.forecast(now, p.horizon_s)
            if ahead is not None and ahead > rate:
                out.append((math.ceil(ahead / per_replica - 1e-9), "forecast"))
        queue = _finite(signals.queue_depth)
        if queue is not None and p.queue_per_replica is not None:
            out.append((math.ceil(queue / p.queue_per_replica - 1e-9), "queue_depth"))
        gpu = _finite(signals.gpu_utilization)
        if gpu is not None and p.gpu_target is not None and current is not None and current > 0:
            out.append(
                (math.ceil(current * min(gpu, 1.0) / p.gpu_target - 1e-9), "gpu_utilization")
            )
        return out

    def update(self, signals: ScalingSignals, now: float | None = None) -> Advice:
        """Take the signals seen at ``now`` and return the advice."""
        p = self.policy
        t = self._clock() if now is None else now
        needs = self.needs(signals, t)
        rate = _finite(signals.request_rate)
        if rate is not None:
            self.forecaster.observe(t, rate)
        previous = self._advice
        if not needs:
            if previous is not None:
                self._advice = Advice(previous.replicas, "no_data", previous.desired, t)
            else:
                current = _finite(signals.current_replicas)
                n = self._clamp(int(current) if current is not None else p.min_replicas)
                self._advice = Advice(n, "no_data", n, t)
            return self._advice
        desired, reason = max(needs)
        clamped = self._clamp(desired)
        if clamped != desired:
            reason = "min_replicas" if clamped > desired else "max_replicas"
        self._window.append((t, clamped))
        while self._window and self._window[0][0] < t - p.stabilization_s:
            self._window.popleft()
        if previous is None:
            current = _finite(signals.current_replicas)
            start = self._clamp(int(current)) if current is not None else clamped
            previous = Advice(start, reason, clamped, t)
            if current is None:
                self._last_change = t
                self._advice = previous
                return previous
        since = math.inf if self._last_change is None else t - self._last_change
        have = previous.replicas
        if clamped > have:
            if since >= p.scale_up_cooldown_s:
                return self._set(Advice(clamped, reason, clamped, t), changed=True)
            return self._set(Advice(have, "cooldown", clamped, t), changed=False)
        if clamped < have:
            floor = max(d for _, d in self._window)
            if floor >= have or have - floor < p.tolerance * have:
                return self._set(Advice(have, "stabilizing", clamped, t), changed=False)
            if since < p.scale_down_cooldown_s:
                return self._set(Advice(have, "cooldown", clamped, t), changed=False)
            return self._set(Advice(floor, reason, clamped, t), changed=True)
        return self._set(Advice(have, reason, clamped, t), changed=False)

    def _set(self, advice: Advice, *, changed: bool) -> Advice:
        if changed:
            self._last_change = advice.at
        self._advice = advice
        return advice


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalingQueries:
    """PromQL that reads the signals from the store, one value per ``model`` label.

    A query whose result has no ``model`` label applies to every model. ``None``
    leaves the signal out.
    """

    request_rate: str | None = "sum by (model) (rate(inferwatch_inferences_total[2m]))"
    queue_depth: str | None = "sum by (model) (inferwatch_inferences_in_flight)"
    gpu_utilization: str | None = "avg(gpu_utilization_ratio)"
    current_replicas: str | None = None


@dataclass(slots=True)
class _Model:
    advisor: ReplicaAdvisor
    last: Advice | None = None
    extra: dict[str, float] = field(default_factory=dict)


class ScalingAdvisor:
    """Replica advice for several models, exported as series; a collector.

    ``policies`` maps a model name to its :class:`ScalingPolicy`. Feed it with
    :meth:`observe` (signals you read yourself) or :meth:`evaluate` (PromQL over the
    store through an :class:`~inferwatch.promql.engine.Engine`). ``on_error`` is called
    with ``(component, exc)`` when evaluation fails (pass ``registry.internal_error``);
    failures never raise out of :meth:`evaluate` and keep the last advice.
    """

    def __init__(
        self,
        policies: Mapping[str, ScalingPolicy],
        *,
        queries: ScalingQueries | None = None,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        if not policies:
            raise ConfigError("policies must name at least one model", field="policies", value={})
        self.queries = queries if queries is not None else ScalingQueries()
        self._clock = clock
        self._on_error = on_error
        self._lock = threading.Lock()
        self._models = {
            name: _Model(ReplicaAdvisor(policy, clock=clock)) for name, policy in policies.items()
        }

    def observe(self, model: str, signals: ScalingSignals, now: float | None = None) -> Advice:
        """Update one model's advice from signals; raises ConfigError for an unknown model."""
        entry = self._models.get(model)
        if entry is None:
            raise ConfigError(f"no scaling policy for model {model!r}", field="model", value=model)
        with self._lock:
            entry.last = entry.advisor.update(signals, now)
            return entry.last

    def advice(self, model: str) -> Advice | None:
        """The latest advice for ``model`` (None before the first update)."""
        entry = self._models.get(model)
        return None if entry is None else entry.last

    def evaluate(self, engine: Engine, now: float | None = None) -> dict[str, Advice]:
        """Read every signal with PromQL at ``now`` and update every model's advice."""
        t = self._clock() if now is None else now
        values: dict[str, dict[str, float]] = {}
        for signal in ("request_rate", "queue_depth", "gpu_utilization", "current_replicas"):
            query = getattr(self.queries, signal)
            if query is None:
                continue
            try:
                values[signal] = _per_model(engine, query, int(t * 1000), self._models)
            except (InferwatchError, ValueError, ArithmeticError) as exc:
                if self._on_error is not None:
                    self._on_error("scaling", exc)
        out: dict[str, Advice] = {}
        for model in self._models:
            signals = ScalingSignals(**{s: v.get(model) for s, v in values.items()})
            out[model] = self.observe(model, signals, t)
        return out

    def collect(self) -> list[FamilySnapshot]:
        """``inferwatch_recommended_replicas{model}`` and its ``..._reason`` info gauge."""
        replicas = FamilySnapshot(
            "inferwatch_recommended_replicas",
            "Replicas the model service should run, from inferwatch's autoscaling advice.",
            "gauge",
            ("model",),
            merge="max",
        )
        reasons = FamilySnapshot(
            "inferwatch_recommended_replicas_reason",
            "Why the advice is what it is: 1 for the current reason of each model.",
            "gauge",
            ("model", "reason"),
            merge="max",
        )
        with self._lock:
            for model, entry in self._models.items():
                if entry.last is None:
                    continue
                replicas.samples[(model,)] = float(entry.last.replicas)
                reasons.samples[(model, entry.last.reason)] = 1.0
        return [replicas, reasons]


def _per_model(engine: Engine, query: str, time_ms: int, models: Iterable[str]) -> dict[str, float]:
    from inferwatch.promql.value import Sample, Scalar

    result = engine.instant_query(query, time_ms)
    out: dict[str, float] = {}
    value = result.value
    if isinstance(value, Scalar):
        return dict.fromkeys(models, value.v)
    if not isinstance(value, list):
        return out
    samples: Sequence[Sample] = [s for s in value if isinstance(s, Sample)]
    for s in samples:
        labels = dict(s.labels)
        if "model" in labels:
            out[labels["model"]] = s.v
        elif len(samples) == 1:
            return dict.fromkeys(models, s.v)
    return out
