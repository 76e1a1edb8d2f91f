"""Guards read from YAML (``examples/guards.yml``), with every problem's line named.

::

    guards:
      - name: gpu-memory
        shed:
          when: gpu_memory_used_ratio > 0.8
          fraction: 0.5            # share of new requests rejected, 0 < f <= 1
          for: 10s                 # the condition must hold this long (default 0)
          ramp: 30s                # grow the fraction over this long (default 0)
          retry_after: 5s          # Retry-After given to rejected clients (default 1s)
      - name: errors
        window: 10s                # window of latency/error signals (default 10s)
        circuit_breaker:
          when: error_ratio > 0.2
          for: 30s
          open: 60s
          half_open_requests: 5
          min_requests: 10
      - name: batch
        adaptive_batch_size:
          latency_budget: 1s
          min: 1
          max: 64
          initial: 8
          increase: 1
          decrease: 0.5
          interval: 5s

Durations are Prometheus durations (``500ms``, ``15s``, ``1m``). Each guard has one of
``shed``, ``circuit_breaker`` or ``adaptive_batch_size``. An unknown signal, a
threshold that makes no sense for its signal (a negative latency, a ratio above 1),
``min`` above ``max`` and unknown keys are errors, all reported at once as
``file:line: field: reason``.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inferwatch._errors import ConfigError
from inferwatch.health.guard import AdaptiveBatchSize, CircuitBreaker, Condition, Policy, Shed
from inferwatch.health.guard_signals import signal_kind
from inferwatch.rules.yamlpos import FileProblems, config_document

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["GuardSpec", "load_guard_file", "parse_guard_file"]

_TOP = ("guards",)
_GUARD = ("name", "window", "interval", "shed", "circuit_breaker", "adaptive_batch_size")
_KINDS = ("shed", "circuit_breaker", "adaptive_batch_size")
# file key -> (Python argument, kind of value)
_SHED = {
    "when": ("when", "condition"),
    "fraction": ("fraction", "number"),
    "for": ("for_s", "duration0"),
    "ramp": ("ramp_s", "duration0"),
    "retry_after": ("retry_after_s", "duration"),
    "min_requests": ("min_requests", "int"),
}
_CIRCUIT = {
    "when": ("when", "condition"),
    "for": ("for_s", "duration0"),
    "open": ("open_s", "duration"),
    "half_open_requests": ("half_open_requests", "int"),
    "min_requests": ("min_requests", "int"),
}
_BATCH = {
    "latency_budget": ("latency_budget_s", "duration"),
    "signal": ("signal", "string"),
    "min": ("min_size", "int"),
    "max": ("max_size", "int"),
    "initial": ("initial", "int"),
    "increase": ("increase", "int"),
    "decrease": ("decrease", "number"),
    "interval": ("interval_s", "duration"),
    "min_requests": ("min_requests", "int"),
}
_FIELDS: dict[str, dict[str, tuple[str, str]]] = {
    "shed": _SHED,
    "circuit_breaker": _CIRCUIT,
    "adaptive_batch_size": _BATCH,
}
_CLASSES: dict[str, type[Shed] | type[CircuitBreaker] | type[AdaptiveBatchSize]] = {
    "shed": Shed,
    "circuit_breaker": CircuitBreaker,
    "adaptive_batch_size": AdaptiveBatchSize,
}


@dataclass(frozen=True, slots=True)
class GuardSpec:
    """One guard read from a file: give it to :meth:`inferwatch.Monitor.guard`."""

    name: str
    policy: Policy
    window_s: float | None = None
    interval_s: float | None = None
    line: int = 0


def load_guard_file(
    path: str | os.PathLike[str], *, signals: Collection[str] = ()
) -> list[GuardSpec]:
    """Read and validate a guard file; see :func:`parse_guard_file`."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{file}: cannot read guard file: {reason}", value=file) from None
    return parse_guard_file(text, file=file, signals=signals)


def parse_guard_file(
    text: str, *, file: str = "<string>", signals: Collection[str] = ()
) -> list[GuardSpec]:
    """Parse guards from YAML (see the module docstring for the format).

    ``signals``: names of user-defined signals the conditions may use besides the
    built-in ones. Raises :class:`ConfigError` listing every problem, one per line, as
    ``file:line: field: reason``; its ``field`` and ``value`` are the first problem's.
    """
    root = config_document(text, file)
    reader = _Reader(file, signals)
    specs = reader.read(root) if root is not None else []
    reader.raise_if_any()
    return specs


class _Reader(FileProblems):
    def __init__(self, file: str, signals: Collection[str]) -> None:
        super().__init__(file)
        self.signals = tuple(signals)

    def read(self, root: Node) -> list[GuardSpec]:
        return self.named_list(root, _TOP, "guard", self._guard, lambda spec: spec.name)

    def _guard(self, where: str, node: Node) -> GuardSpec | None:
        from inferwatch.rules.yamlpos import line_of

        fields = self.decoder.fields(node, "guard", _GUARD)
        if fields is None:
            return None
        ok = True
        name = None
        if "name" not in fields:
            self.problem(node, f"{where}.name", "a guard needs a name", None)
            ok = False
        else:
            name = self.decoder.string(fields["name"][1])
            ok = ok and bool(name)
        kinds = [k for k in _KINDS if k in fields]
        if len(kinds) != 1:
            reason = (
                f"a guard needs one of {', '.join(_KINDS)}"
                if not kinds
                else f"a guard has one policy; found {', '.join(kinds)}"
            )
            self.problem(node, f"{where}.{kinds[1]}" if kinds[1:] else where, reason, None)
            return None
        extra: dict[str, float | None] = {"window": None, "interval": None}
        for key in extra:
            if key in fields:
                extra[key] = self._duration(f"{where}.{key}", fields[key][1], zero=False)
                ok = ok and extra[key] is not None
        kind = kinds[0]
        policy = self._policy(f"{where}.{kind}", kind, fields[kind][1])
        if policy is None or not ok or not name:
            return None
        return GuardSpec(name, policy, extra["window"], extra["interval"], line_of(node))

    def _policy(self, where: str, kind: str, node: Node) -> Policy | None:
        known = _FIELDS[kind]
        fields = self.decoder.fields(node, kind, known)
        if fields is None:
            return None
        kwargs: dict[str, Any] = {}
        nodes: dict[str, Node] = {}
        ok = True
        if kind == "adaptive_batch_size" and "latency_budget" not in fields:
            self.problem(node, f"{where}.latency_budget", "an adaptive batch size needs one", None)
            ok = False
        if kind == "shed" and "when" not in fields:
            self.problem(node, f"{where}.when", "shedding needs a condition", None)
            ok = False
        for key, (_, value) in fields.items():
            arg, type_ = known[key]
            nodes[arg] = value
            field = f"{where}.{key}"
            parsed: Any
            if type_ == "condition":
                parsed = self._condition(field, value)
            elif type_ == "duration":
                parsed = self._duration(field, value, zero=False)
            elif type_ == "duration0":
                parsed = self._duration(field, value, zero=True)
            elif type_ == "int":
                parsed = self.decoder.integer(value)
            elif type_ == "number":
                parsed = self._number(field, value)
            else:
                parsed = self.decoder.string(value)
                if parsed is not None and arg == "signal":
                    try:
                        if signal_kind(parsed, self.signals) not in ("seconds", "custom"):
                            self.problem(value, field, "must be a latency signal", parsed)
                            parsed = None
                    except ConfigError as exc:
                        self.problem(value, field, str(exc), parsed)
                        parsed = None
            if parsed is None:
                ok = False
            else:
                kwargs[arg] = parsed
        # Even when a field failed, check the others (with stand-ins for the failed ones).
        if kind == "adaptive_batch_size":
            kwargs.setdefault("latency_budget_s", 1.0)
        elif kind == "shed":
            kwargs.setdefault("when", Condition("in_flight", ">", 0))
        try:
            policy: Policy = _CLASSES[kind](**kwargs)
        except ConfigError as exc:
            arg = exc.field or ""
            if arg == "threshold":
                arg = "when"
            key = next((k for k, (a, _) in known.items() if a == arg), arg)
            at = nodes.get(arg, node)
            self.problem(at, f"{where}.{key}", str(exc), exc.value)
            return None
        return policy if ok else None

    def _condition(self, field: str, node: Node) -> Condition | None:
        text = self.decoder.string(node)
        if text is None:
            return None
        try:
            cond = Condition.parse(text)
            cond.validate(dict.fromkeys(self.signals))
        except ConfigError as exc:
            self.problem(node, field, str(exc), exc.value)
            return None
        return cond

    def _duration(self, field: str, node: Node, *, zero: bool) -> float | None:
        from inferwatch._duration import duration_ms

        text = self.decoder.string(node)
        if text is None:
            return None
        ms = duration_ms(text)
        if ms is None or (ms == 0 and not zero):
            above = "" if zero else " above zero"
            self.problem(
                node,
                field,
                f"invalid duration {text!r}: use Prometheus units{above}, e.g. '15s', "
                "'1m30s', '500ms'",
                text,
            )
            return None
        return ms / 1000

    def _number(self, field: str, node: Node) -> float | None:
        from yaml.nodes import ScalarNode

        from inferwatch.rules.yamlpos import short_tag

        if short_tag(node) in ("!!int", "!!float"):
            try:
                return float(str(node.value).replace("_", ""))
            except ValueError:
                pass
        shown = str(node.value) if isinstance(node, ScalarNode) else "a list or map"
        self.problem(node, field, f"must be a number, got {shown!r}", shown)
        return None
