"""Guards: policies that act on live signals to protect a model service under pressure.

Three policies, each a frozen configuration value:

- :class:`Shed`: while a condition holds (``"gpu_memory_used_ratio > 0.8"``), reject a
  fraction of new requests (503 with ``Retry-After``), optionally ramping the fraction
  up over ``ramp_s``.
- :class:`CircuitBreaker`: when a condition holds for ``for_s`` (``"error_ratio > 0.2"``
  for 30 s), reject every request for ``open_s``, then let ``half_open_requests`` trial
  requests through: all succeed and the circuit closes, one fails and it opens again.
- :class:`AdaptiveBatchSize`: an AIMD controller for a dynamic-batching loop;
  :meth:`Guard.batch_size` grows by ``increase`` each ``interval_s`` while the latency
  signal is within ``latency_budget_s`` and is multiplied by ``decrease`` when it is not.

A :class:`Guard` binds one policy to a monitor's signals (see
:mod:`inferwatch.health.guard_signals`) and a clock; :meth:`inferwatch.Monitor.guard`
creates one, :meth:`inferwatch.Monitor.load_guards` reads them from YAML
(:func:`inferwatch.health.guard_file.parse_guard_file`). The decision logic
(:class:`ShedController`, :class:`CircuitController`, :class:`BatchController`) takes
values and times only, so it is tested with a :class:`~inferwatch.testing.FakeClock`.

Signals are read when the guard evaluates: at most every ``interval_s``, lazily from
:meth:`Guard.admit` (or :meth:`Guard.batch_size`) and at each scrape, so
``admit`` normally costs one clock read and a comparison. Every state change is
logged on the ``inferwatch.guard`` logger and exported:

- ``inferwatch_guard_state{model,version,guard}``: 0 closed / admitting all (batch:
  within budget), 1 open / shedding (batch: over budget), 2 half-open;
- ``inferwatch_guard_shed_ratio``: the share of new requests rejected now;
- ``inferwatch_guard_rejected_total``, ``inferwatch_guard_transitions_total{state}``;
- ``inferwatch_guard_batch_size`` (adaptive batch size guards);
- ``inferwatch_guard_signal_value{signal}``: the last value of the watched signal.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from inferwatch._errors import ConfigError, Rejected
from inferwatch.health.guard_signals import (
    WINDOW_SIGNALS,
    RecorderWindow,
    ResourceSignals,
    SignalValues,
    check_threshold,
    signal_kind,
)
from inferwatch.sdk.family import FamilySnapshot

if TYPE_CHECKING:
    from inferwatch.sdk.recorder import InferenceRecorder
    from inferwatch.sdk.registry import Registry

__all__ = [
    "AdaptiveBatchSize",
    "BatchController",
    "CircuitBreaker",
    "CircuitController",
    "Condition",
    "Guard",
    "GuardSet",
    "Policy",
    "Shed",
    "ShedController",
]

log = logging.getLogger("inferwatch.guard")

Operator = Literal[">", ">=", "<", "<="]
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
_CONDITION = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|>|<)\s*(\S+)\s*")

#: ``inferwatch_guard_state`` values.
CLOSED, OPEN, HALF_OPEN = 0, 1, 2
_STATE_NAMES = {
    "shed": ("admitting", "shedding", ""),
    "circuit": ("closed", "open", "half_open"),
    "batch": ("within_budget", "over_budget", ""),
}


def _number(value: object, name: str, *, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ConfigError(f"{name} must be a number, got {value!r}", field=name, value=value)
    if not low <= value <= high:
        bounds = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise ConfigError(f"{name} must be {bounds}, got {value!r}", field=name, value=value)
    return float(value)


def _integer(value: object, name: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(
            f"{name} must be an integer of at least {low}, got {value!r}", field=name, value=value
        )
    return value


@dataclass(frozen=True, slots=True)
class Condition:
    """``signal op threshold``, such as ``Condition("gpu_memory_used_ratio", ">", 0.8)``
    or ``Condition.parse("error_ratio > 0.2")``. A signal without a value (no GPU, too
    few requests in the window) never satisfies a condition."""

    signal: str
    op: Operator
    threshold: float

    def __post_init__(self) -> None:
        if not isinstance(self.signal, str) or not self.signal:
            raise ConfigError("a condition needs a signal name", field="signal", value=self.signal)
        if self.op not in _OPS:
            raise ConfigError(
                f"unknown operator {self.op!r}; use >, >=, < or <=", field="op", value=self.op
            )
        _number(self.threshold, "threshold", low=-math.inf)
        object.__setattr__(self, "threshold", float(self.threshold))

    @classmethod
    def parse(cls, text: str) -> Condition:
        """A condition from ``"signal > 0.8"`` (operators ``>``, ``>=``, ``<``, ``<=``)."""
        match = _CONDITION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigError(
                f"cannot read condition {text!r}: write it as 'signal > number', e.g. "
                "'gpu_memory_used_ratio > 0.8'",
                field="when",
                value=text,
            )
        signal, op, number = match.groups()
        try:
            threshold = float(number)
        except ValueError:
            raise ConfigError(
                f"threshold {number!r} in condition {text!r} is not a number",
                field="threshold",
                value=number,
            ) from None
        return cls(signal, op, threshold)  # type: ignore[arg-type]

    def validate(self, custom: Mapping[str, object] | None = None) -> None:
        """Raise :class:`ConfigError` for an unknown signal or a nonsense threshold."""
        check_threshold(self.signal, self.threshold, tuple(custom or ()))

    def holds(self, value: float | None) -> bool:
        return value is not None and _OPS[self.op](value, self.threshold)

    def __str__(self) -> str:
        return f"{self.signal} {self.op} {self.threshold:g}"


def _condition(value: Condition | str) -> Condition:
    if isinstance(value, Condition):
        return value
    return Condition.parse(value)


@dataclass(frozen=True, slots=True)
class Shed:
    """Reject ``fraction`` of new requests while ``when`` has held for ``for_s``.

    ``ramp_s``: grow the fraction linearly from 0 to ``fraction`` over this long
    (0: at once). ``retry_after_s``: the ``Retry-After`` a rejected client is given.
    ``min_requests``: latency and error-ratio signals need this many inferences in the
    window to count. Shedding stops as soon as the condition no longer holds.
    """

    when: Condition | str
    fraction: float = 1.0
    for_s: float = 0.0
    ramp_s: float = 0.0
    retry_after_s: float = 1.0
    min_requests: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _condition(self.when))
        _number(self.fraction, "fraction", low=0.0, high=1.0)
        if self.fraction == 0:
            raise ConfigError(
                "fraction must be above 0 (it is the share of requests shed)",
                field="fraction",
                value=self.fraction,
            )
        _number(self.for_s, "for_s")
        _number(self.ramp_s, "ramp_s")
        _number(self.retry_after_s, "retry_after_s")
        _integer(self.min_requests, "min_requests", low=1)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        assert isinstance(self.when, Condition)
        return (self.when,)


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """Open the circuit (reject everything) when ``when`` has held for ``for_s``.

    After ``open_s`` the circuit half-opens and admits ``half_open_requests`` trial
    requests: when that many succeed (and none fails) it closes; one error opens it
    again for another ``open_s``. Trial outcomes are read from the monitor's recorder,
    so the requests must go through ``@monitor.track`` (or ``monitor.inference()``).
    """

    when: Condition | str = "error_ratio > 0.2"
    for_s: float = 30.0
    open_s: float = 60.0
    half_open_requests: int = 5
    min_requests: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _condition(self.when))
        _number(self.for_s, "for_s")
        _number(self.open_s, "open_s")
        if self.open_s <= 0:
            raise ConfigError("open_s must be above 0", field="open_s", value=self.open_s)
        _integer(self.half_open_requests, "half_open_requests", low=1)
        _integer(self.min_requests, "min_requests", low=1)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        assert isinstance(self.when, Condition)
        return (self.when,)


@dataclass(frozen=True, slots=True)
class AdaptiveBatchSize:
    """Batch size for a dynamic-batching loop, adjusted every ``interval_s`` (AIMD).

    While ``signal`` (default the window's p99 latency) is at most ``latency_budget_s``
    the size grows by ``increase``; above it the size is multiplied by ``decrease``;
    always within ``min_size``..``max_size``. Starts at ``initial`` (default
    ``min_size``). Without enough inferences in the window the size stays.
    """

    latency_budget_s: float
    min_size: int = 1
    max_size: int = 64
    initial: int | None = None
    increase: int = 1
    decrease: float = 0.5
    interval_s: float = 5.0
    signal: str = "latency_p99_seconds"
    min_requests: int = 10

    def __post_init__(self) -> None:
        _number(self.latency_budget_s, "latency_budget_s")
        if self.latency_budget_s <= 0:
            raise ConfigError(
                "latency_budget_s must be above 0",
                field="latency_budget_s",
                value=self.latency_budget_s,
            )
        _integer(self.min_size, "min_size", low=1)
        _integer(self.max_size, "max_size", low=1)
        if self.min_size > self.max_size:
            raise ConfigError(
                f"min_size {self.min_size} is above max_size {self.max_size}",
                field="min_size",
                value=self.min_size,
            )
        if self.initial is not None:
            _integer(self.initial, "initial", low=1)
            if not self.min_size <= self.initial <= self.max_size:
                raise ConfigError(
                    f"initial {self.initial} is outside min_size..max_size "
                    f"({self.min_size}..{self.max_size})",
                    field="initial",
                    value=self.initial,
                )
        _integer(self.increase, "increase", low=1)
        _number(self.decrease, "decrease", low=0.0, high=1.0)
        if not 0 < self.decrease < 1:
            raise ConfigError(
                f"decrease must be above 0 and below 1 (the factor a size is cut by), "
                f"got {self.decrease!r}",
                field="decrease",
                value=self.decrease,
            )
        _number(self.interval_s, "interval_s")
        if self.interval_s <= 0:
            raise ConfigError(
                "interval_s must be above 0", field="interval_s", value=self.interval_s
            )
        _integer(self.min_requests, "min_requests", low=1)

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return (Condition(self.signal, ">", self.latency_budget_s),)


Policy = Shed | CircuitBreaker | AdaptiveBatchSize


# -- pure decision logic ---------------------------------------------------------------


@dataclass(slots=True)
class Transition:
    """A state change: ``old`` and ``new`` state codes and why."""

    old: int
    new: int
    reason: str


class _Held:
    """Whether a condition has held continuously for ``for_s``."""

    __slots__ = ("for_s", "since")

    def __init__(self, for_s: float) -> None:
        self.for_s = for_s
        self.since: float | None = None

    def update(self, now: float, holds: bool) -> bool:
        if not holds:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return now - self.since >= self.for_s


class ShedController:
    """The decisions of a :class:`Shed` policy from signal values and times.

    Rejections are spread evenly (an error-diffusion counter, no randomness): with a
    fraction of 0.25, exactly one request in four is rejected.
    """

    def __init__(self, policy: Shed) -> None:
        self.policy = policy
        self.state = CLOSED
        self.fraction = 0.0
        self._held = _Held(policy.for_s)
        self._started = 0.0
        self._debt = 0.0

    def update(self, now: float, values: SignalValues) -> Transition | None:
        cond = self.policy.conditions[0]
        value = values.get(cond.signal)
        held = self._held.update(now, cond.holds(value))
        change = None
        if held and self.state == CLOSED:
            self.state, self._started = OPEN, now
            change = Transition(CLOSED, OPEN, f"{cond.signal} = {value:g}, {cond}")
        elif not held and self.state == OPEN:
            self.state, self._debt = CLOSED, 0.0
            shown = "no value" if value is None else f"{value:g}"
            change = Transition(OPEN, CLOSED, f"{cond.signal} = {shown}, no longer {cond}")
        if self.state == OPEN:
            ramp = self.policy.ramp_s
            share = 1.0 if ramp <= 0 else min(1.0, (now - self._started) / ramp)
            # The first evaluation in a ramp already sheds something.
            self.fraction = self.policy.fraction * max(share, 1.0 / 64)
        else:
            self.fraction = 0.0
        return change

    def admit(self, now: float) -> float | None:
        """None to admit, else the seconds to put in ``Retry-After``."""
        fraction = self.fraction
        if fraction <= 0.0:
            return None
        self._debt += fraction
        if self._debt >= 1.0:
            self._debt -= 1.0
            return self.policy.retry_after_s
        return None


class CircuitController:
    """The decisions of a :class:`CircuitBreaker` from signal values, outcome totals
    (successes and errors counted so far) and times."""

    def __init__(self, policy: CircuitBreaker) -> None:
        self.policy = policy
        self.state = CLOSED
        self.open_until = -math.inf
        self._held = _Held(policy.for_s)
        self._base = (0.0, 0.0)
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def fraction(self) -> float:
        return 1.0 if self.state == OPEN else 0.0

    def update(
        self, now: float, values: SignalValues, totals: tuple[float, float]
    ) -> Transition | None:
        policy = self.policy
        cond = policy.conditions[0]
        if self.state == CLOSED:
            value = values.get(cond.signal)
            if self._held.update(now, cond.holds(value)):
                return self._open(now, CLOSED, f"{cond.signal} = {value:g}, {cond}")
            return None
        if self.state == OPEN:
            if now >= self.open_until:
                self.state, self._base, self._admitted = HALF_OPEN, totals, 0
                return Transition(
                    OPEN,
                    HALF_OPEN,
                    f"open for {policy.open_s:g}s, trying {policy.half_open_requests} requests",
                )
            return None
        successes = totals[0] - self._base[0]
        errors = totals[1] - self._base[1]
        if errors > 0:
            return self._open(now, HALF_OPEN, f"a trial request failed ({errors:g} errors)")
        if successes >= policy.half_open_requests:
            self.state = CLOSED
            self._held.since = None
            return Transition(HALF_OPEN, CLOSED, f"{successes:g} trial requests succeeded")
        return None

    def _open(self, now: float, old: int, reason: str) -> Transition:
        self.state, self.open_until = OPEN, now + self.policy.open_s
        self._held.since = None
        return Transition(old, OPEN, reason)

    def admit(self, now: float) -> float | None:
        state = self.state
        if state == CLOSED:
            return None
        if state == OPEN:
            return max(self.open_until - now, 1.0)
        with self._lock:
            if self._admitted < self.policy.half_open_requests:
                self._admitted += 1
                return None
        return 1.0


class BatchController:
    """The decisions of an :class:`AdaptiveBatchSize` policy from latency values."""

    def __init__(self, policy: AdaptiveBatchSize) -> None:
        self.policy = policy
        self.size = policy.initial if policy.initial is not None else policy.min_size
        self.state = CLOSED
        self.fraction = 0.0
        self._next = -math.inf

    def update(self, now: float, values: SignalValues) -> Transition | None:
        policy = self.policy
        if now < self._next:
            return None
        self._next = now + policy.interval_s
        latency = values.get(policy.signal)
        if latency is None:
            return None
        old_size, old_state = self.size, self.state
        if latency > policy.latency_budget_s:
            self.size = max(policy.min_size, int(self.size * policy.decrease))
            self.state = OPEN
        else:
            self.size = min(policy.max_size, self.size + policy.increase)
            self.state = CLOSED
        if self.size == old_size and self.state == old_state:
            return None
        relation = ">" if self.state == OPEN else "<="
        return Transition(
            old_state,
            self.state,
            f"{policy.signal} = {latency:g} {relation} budget {policy.latency_budget_s:g}: "
            f"batch size {old_size} -> {self.size}",
        )


# -- a policy bound to live signals ------------------------------------------------------


class Guard:
    """One policy acting on one monitor's live signals. Create with
    :meth:`inferwatch.Monitor.guard`.

    - :meth:`admit` raises :class:`~inferwatch.Rejected` (with ``retry_after``) when
      the guard turns the request away; :meth:`check` returns it instead.
    - :meth:`batch_size` gives the current size of an adaptive batch size guard.
    - :meth:`evaluate` reads the signals now (otherwise done lazily every
      ``interval_s``).
    Nothing here raises into the service except :meth:`admit`'s ``Rejected``: a failed
    evaluation is counted in ``inferwatch_internal_errors_total`` and the guard keeps
    its last decision.
    """

    def __init__(
        self,
        name: str,
        policy: Policy,
        *,
        recorder: InferenceRecorder,
        registry: Registry | None = None,
        window_s: float | None = None,
        interval_s: float | None = None,
        signals: Mapping[str, Callable[[], float]] | None = None,
        nvml: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
            raise ConfigError(
                f"guard name must be a non-empty word (letters, digits, _ . : -), got {name!r}",
                field="name",
                value=name,
            )
        if not isinstance(policy, (Shed, CircuitBreaker, AdaptiveBatchSize)):
            raise ConfigError(
                f"policy must be a Shed, CircuitBreaker or AdaptiveBatchSize, got {policy!r}",
                field="policy",
                value=policy,
            )
        custom = dict(signals or {})
        for fn_name, fn in custom.items():
            if not callable(fn):
                raise ConfigError(
                    f"signals[{fn_name!r}] must be a function returning a number, got {fn!r}",
                    field="signals",
                    value=fn,
                )
        for cond in policy.conditions:
            if isinstance(policy, AdaptiveBatchSize):
                kind = signal_kind(cond.signal, custom)
                if kind not in ("seconds", "custom"):
                    raise ConfigError(
                        f"signal of an adaptive batch size must be a latency, got "
                        f"{cond.signal!r} ({kind})",
                        field="signal",
                        value=cond.signal,
                    )
            else:
                cond.validate(custom)
        batching = isinstance(policy, AdaptiveBatchSize)
        if interval_s is None:
            interval_s = policy.interval_s if isinstance(policy, AdaptiveBatchSize) else 1.0
        if window_s is None:
            window_s = interval_s if batching else max(10.0, interval_s)
        self.interval_s = _number(interval_s, "interval_s")
        self.window_s = _number(window_s, "window_s")
        if self.window_s <= 0:
            raise ConfigError("window_s must be above 0", field="window_s", value=window_s)
        self.name = name
        self.policy = policy
        self.kind: Literal["shed", "circuit", "batch"] = "batch"
        if isinstance(policy, Shed):
            self.kind = "shed"
        elif isinstance(policy, CircuitBreaker):
            self.kind = "circuit"
        self.model, self.version = recorder.labels
        self._clock = clock
        self._registry = registry
        self._window = RecorderWindow(recorder, self.window_s)
        self._window.sample(clock())  # the first window starts now
        self._resources = ResourceSignals(nvml=nvml, custom=custom, registry=registry, clock=clock)
        self._watched = tuple(dict.fromkeys(c.signal for c in policy.conditions))
        self._resource_names = [s for s in self._watched if s not in WINDOW_SIGNALS or s in custom]
        self._controller: ShedController | CircuitController | BatchController
        if isinstance(policy, Shed):
            self._controller = ShedController(policy)
        elif isinstance(policy, CircuitBreaker):
            self._controller = CircuitController(policy)
        else:
            self._controller = BatchController(policy)
        self._lock = threading.Lock()
        self._next_eval = -math.inf
        self._reason = f"guard {name}"
        self.rejected = 0
        self.transitions: dict[str, int] = {}
        self.last_values: SignalValues = {}

    # -- decisions ------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The state's name: ``closed``/``open``/``half_open`` (circuit),
        ``admitting``/``shedding`` (shed), ``within_budget``/``over_budget`` (batch)."""
        return _STATE_NAMES[self.kind][self._controller.state]

    @property
    def state_code(self) -> int:
        """``inferwatch_guard_state``: 0 closed, 1 open (shedding, over budget), 2 half-open."""
        return self._controller.state

    @property
    def shed_ratio(self) -> float:
        """The share of new requests rejected now (1 while a circuit is open)."""
        return self._controller.fraction

    def check(self) -> Rejected | None:
        """None to admit the request, else the :class:`~inferwatch.Rejected` to answer
        with (not raised). Never raises."""
        try:
            now = self._clock()
            if now >= self._next_eval:
                self._evaluate(now, force=False)
            controller = self._controller
            if isinstance(controller, BatchController):
                return None
            if isinstance(controller, CircuitController) and controller.state == HALF_OPEN:
                self._watch_trials(now)
            retry_after = controller.admit(now)
        except Exception as exc:
            if self._registry is not None:
                self._registry.internal_error("guard", exc)
            return None
        if retry_after is None:
            return None
        self.rejected += 1
        return Rejected(self._reason, retry_after=retry_after)

    def admit(self) -> None:
        """Return to admit the request; raise :class:`~inferwatch.Rejected` (with
        ``retry_after`` in seconds) to turn it away. Raised inside ``@monitor.track``
        code, it is counted as outcome ``rejected``."""
        rejection = self.check()
        if rejection is not None:
            raise rejection

    def batch_size(self) -> int:
        """The batch size to use now (adaptive batch size guards only)."""
        controller = self._controller
        if not isinstance(controller, BatchController):
            raise ConfigError(
                f"guard {self.name!r} is a {self.kind} guard; batch_size() needs an "
                "AdaptiveBatchSize policy",
                field="policy",
                value=self.policy,
            )
        try:
            now = self._clock()
            if now >= self._next_eval:
                self._evaluate(now, force=False)
        except Exception as exc:
            if self._registry is not None:
                self._registry.internal_error("guard", exc)
        return controller.size

    def evaluate(self) -> None:
        """Read the signals and update the decision now."""
        try:
            self._evaluate(self._clock(), force=True)
        except Exception as exc:
            if self._registry is not None:
                self._registry.internal_error("guard", exc)

    def _evaluate(self, now: float, *, force: bool) -> None:
        if not self._lock.acquire(blocking=force):
            return  # another thread is evaluating; use the last decision
        try:
            if not force and now < self._next_eval:
                return
            window = self._window
            window.sample(now)
            values = window.values(self.policy.min_requests)
            values.update(self._resources.read(self._resource_names))
            self.last_values = {name: values.get(name) for name in self._watched}
            controller = self._controller
            if isinstance(controller, CircuitController):
                change = controller.update(now, values, window.totals())
            else:
                change = controller.update(now, values)
            self._next_eval = now + self.interval_s
            if isinstance(controller, CircuitController) and controller.state == OPEN:
                self._next_eval = min(self._next_eval, controller.open_until)
            if change is not None:
                self._changed(now, change)
        finally:
            self._lock.release()

    def _watch_trials(self, now: float) -> None:
        """In half-open state, read the trial requests' outcomes (a fold, no snapshot)."""
        controller = self._controller
        assert isinstance(controller, CircuitController)
        if not self._lock.acquire(blocking=False):
            return
        try:
            if controller.state == HALF_OPEN:
                change = controller.update(now, {}, self._window.live_totals())
                if change is not None:
                    self._changed(now, change)
        finally:
            self._lock.release()

    def _changed(self, now: float, change: Transition) -> None:
        names = _STATE_NAMES[self.kind]
        old, new = names[change.old], names[change.new]
        if new != old:
            self.transitions[new] = self.transitions.get(new, 0) + 1
        if isinstance(self._controller, CircuitController) and change.new == CLOSED:
            self._window.restart(now)  # the errors that opened it must not reopen it
        if change.new != CLOSED and self.kind != "batch":
            self._reason = f"guard {self.name} {new}: {change.reason}"
        level = logging.WARNING if change.new == OPEN and self.kind != "batch" else logging.INFO
        log.log(
            level,
            "guard %s (model %s, version %s): %s -> %s: %s",
            self.name,
            self.model,
            self.version,
            old,
            new,
            change.reason,
            extra={
                "guard": self.name,
                "model": self.model,
                "version": self.version,
                "previous_state": old,
                "state": new,
                "reason": change.reason,
            },
        )

    def close(self) -> None:
        """Release what the guard holds (NVML, when it read a GPU signal)."""
        self._resources.close()

    def __repr__(self) -> str:
        return f"Guard({self.name!r}, {self.policy!r}, state={self.state!r})"


@dataclass
class GuardSet:
    """The guards of one monitor: admission for all of them at once, and their series.

    :meth:`check` is what the ASGI/WSGI middleware calls before a request reaches the
    app; it counts a rejection as outcome ``rejected`` of the monitor's inferences
    (the model is never called).
    """

    recorder: InferenceRecorder
    guards: dict[str, Guard] = field(default_factory=dict)

    def add(self, guard: Guard) -> Guard:
        if guard.name in self.guards:
            raise ConfigError(
                f"a guard named {guard.name!r} already exists on this monitor",
                field="name",
                value=guard.name,
            )
        self.guards[guard.name] = guard
        return guard

    def remove(self, name: str) -> None:
        guard = self.guards.pop(name, None)
        if guard is not None:
            guard.close()

    def __iter__(self) -> Iterator[Guard]:
        return iter(list(self.guards.values()))

    def __len__(self) -> int:
        return len(self.guards)

    def __getitem__(self, name: str) -> Guard:
        return self.guards[name]

    def check(self, *, count: bool = True) -> Rejected | None:
        """The first guard's rejection, or None to admit. With ``count``, a rejection is
        recorded as an inference with outcome ``rejected``. Never raises."""
        for guard in list(self.guards.values()):
            rejection = guard.check()
            if rejection is not None:
                if count:
                    self.recorder.rejected.append(0)
                return rejection
        return None

    def admit(self) -> None:
        """Raise :class:`~inferwatch.Rejected` when any guard turns the request away."""
        rejection = self.check(count=False)
        if rejection is not None:
            raise rejection

    def collect(self) -> list[FamilySnapshot]:
        """``inferwatch_guard_*`` families (each guard evaluated first when due)."""
        labels = ("model", "version", "guard")
        state = FamilySnapshot(
            "inferwatch_guard_state",
            "Guard state: 0 closed or admitting (batch: within budget), 1 open or shedding "
            "(batch: over budget), 2 half-open.",
            "gauge",
            labels,
            merge="all",
        )
        ratio = FamilySnapshot(
            "inferwatch_guard_shed_ratio",
            "Share of new requests the guard rejects now, 0 to 1.",
            "gauge",
            labels,
            unit="ratio",
            merge="all",
        )
        rejected = FamilySnapshot(
            "inferwatch_guard_rejected_total",
            "Requests the guard turned away.",
            "counter",
            labels,
        )
        transitions = FamilySnapshot(
            "inferwatch_guard_transitions_total",
            "Guard state changes, by the state entered.",
            "counter",
            (*labels, "state"),
        )
        batch = FamilySnapshot(
            "inferwatch_guard_batch_size",
            "Batch size an adaptive batch size guard advises now.",
            "gauge",
            labels,
            merge="all",
        )
        signal = FamilySnapshot(
            "inferwatch_guard_signal_value",
            "The last value of the signal a guard watches (absent while it has none).",
            "gauge",
            (*labels, "signal"),
            merge="all",
        )
        for guard in list(self.guards.values()):
            lv = (guard.model, guard.version, guard.name)
            if guard._clock() >= guard._next_eval:
                guard.evaluate()
            state.samples[lv] = float(guard.state_code)
            rejected.samples[lv] = float(guard.rejected)
            if guard.kind != "batch":
                ratio.samples[lv] = guard.shed_ratio
            else:
                batch.samples[lv] = float(guard.batch_size())
            for name, count in guard.transitions.items():
                transitions.samples[(*lv, name)] = float(count)
            for name, value in guard.last_values.items():
                if value is not None:
                    signal.samples[(*lv, name)] = value
        return [f for f in (state, ratio, rejected, transitions, batch, signal) if f.samples]
