"""Cost: what each model costs, per 1,000 inferences, how busy it is, and how to right-size.

Prices come from a YAML file (:func:`load_prices`)::

    currency: USD
    gpu_hour:                     # price of one GPU hour, by GPU type
      a10g: 1.10
    instance_types:               # price per hour and capacity of one instance
      c6i.large:  {hourly: 0.085, cpus: 2, memory_gib: 4}
      c6i.xlarge: {hourly: 0.17,  cpus: 4, memory_gib: 8}
      g5.xlarge:  {hourly: 0.40,  cpus: 4, memory_gib: 16, gpus: 1, gpu_type: a10g}
    models:                       # what each model runs on
      digits: {instance_type: c6i.xlarge, replicas: 2, selector: 'job="inferwatch"'}
    default: {instance_type: c6i.large}   # models found in the store but not listed

An instance's price per hour is ``hourly`` plus ``gpus`` times its GPU type's
``gpu_hour``. A model naming an instance type (or GPU type) that the file does not list
is rejected with a :class:`~inferwatch._errors.ConfigError` naming it, the file and line.

:func:`cost_report` reads the series through PromQL (an
:class:`~inferwatch.promql.engine.Engine` over the store): inferences from
``inferwatch_inferences_total``, CPU from ``process_cpu_seconds_total``, memory from
``process_resident_memory_bytes``, GPU from ``gpu_utilization_ratio`` and
``gpu_memory_used_ratio`` (restricted by the model's ``selector``, label matchers
without braces). It returns per model the cost over the time it was seen in the window
(from the first to the last sample of its inference or process series; an idle but
running model still costs), the cost per 1,000
inferences, utilisation percentiles, and a right-sizing verdict (``too_big``,
``too_small`` or ``ok``) with the figures that justify it and the cheapest listed
instance type that fits the observed p95 at ``target_utilization``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from inferwatch._errors import ConfigError

if TYPE_CHECKING:
    from inferwatch.promql.engine import Engine

__all__ = [
    "CostReport",
    "InstanceType",
    "ModelCost",
    "ModelPlacement",
    "Prices",
    "Utilization",
    "cost_report",
    "load_prices",
    "parse_prices",
]

GIB = 1024**3


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceType:
    """One instance type: ``hourly`` price, ``cpus``, ``memory_bytes``, ``gpus`` of
    ``gpu_type``."""

    name: str
    hourly: float
    cpus: float
    memory_bytes: float
    gpus: int = 0
    gpu_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPlacement:
    """Where a model runs: ``instance_type``, ``replicas`` and the label ``selector``
    (PromQL matchers without braces) of its resource series."""

    instance_type: str
    replicas: int = 1
    selector: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """A validated price config; build with :func:`parse_prices` or :func:`load_prices`."""

    currency: str = "USD"
    gpu_hour: dict[str, float] = field(default_factory=dict)
    instance_types: dict[str, InstanceType] = field(default_factory=dict)
    models: dict[str, ModelPlacement] = field(default_factory=dict)
    default: ModelPlacement | None = None

    def hourly(self, instance_type: str) -> float:
        """Price per hour of one instance of ``instance_type``, GPUs included."""
        it = self.instance_types[instance_type]
        gpu = self.gpu_hour.get(it.gpu_type, 0.0) if it.gpu_type else 0.0
        return it.hourly + it.gpus * gpu

    def placements(self, models_seen: Iterable[str] = ()) -> dict[str, ModelPlacement]:
        """Where each priced model runs: those of ``models``, plus each of
        ``models_seen`` not listed there, placed as ``default`` (when there is one)."""
        out = dict(self.models)
        if self.default is not None:
            for model in models_seen:
                if model:
                    out.setdefault(model, self.default)
        return out


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _error(source: str, node: Node, field_: str, message: str, value: object) -> ConfigError:
    return ConfigError(f"{source}:{_line(node)}: {field_}: {message}", field=field_, value=value)


def _mapping(source: str, node: Node, field_: str) -> dict[str, tuple[Node, Node]]:
    if not isinstance(node, MappingNode):
        raise _error(source, node, field_, "must be a mapping", getattr(node, "value", None))
    out: dict[str, tuple[Node, Node]] = {}
    for key, value in node.value:
        if not isinstance(key, ScalarNode):
            raise _error(source, key, field_, "keys must be strings", None)
        if key.value in out:
            raise _error(source, key, f"{field_}.{key.value}", "given twice", key.value)
        out[key.value] = (key, value)
    return out


def _scalar(source: str, node: Node, field_: str) -> Any:
    if not isinstance(node, ScalarNode):
        raise _error(source, node, field_, "must be a single value", None)
    return yaml.safe_load(node.value) if node.style is None else node.value


def _number(source: str, node: Node, field_: str, *, integer: bool = False) -> float:
    value = _scalar(source, node, field_)
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and integer and not isinstance(value, int):
        ok = False
    if not ok or not math.isfinite(value) or value < 0:
        kind = "an integer" if integer else "a number"
        raise _error(source, node, field_, f"must be {kind} >= 0, not {value!r}", value)
    return float(value)


def _check_keys(
    source: str, items: dict[str, tuple[Node, Node]], field_: str, allowed: set[str]
) -> None:
    for name, (key, _) in items.items():
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise _error(source, key, f"{field_}.{name}", f"unknown field (known: {known})", name)


def _placement(
    source: str, node: Node, field_: str, types: dict[str, InstanceType]
) -> ModelPlacement:
    items = _mapping(source, node, field_)
    _check_keys(source, items, field_, {"instance_type", "replicas", "selector"})
    if "instance_type" not in items:
        raise _error(source, node, f"{field_}.instance_type", "is required", None)
    _key, value = items["instance_type"]
    name = str(_scalar(source, value, f"{field_}.instance_type"))
    if name not in types:
        known = ", ".join(sorted(types)) or "none"
        raise _error(
            source,
            value,
            f"{field_}.instance_type",
            f"unknown instance type {name!r} (instance_types lists: {known})",
            name,
        )
    replicas = 1
    if "replicas" in items:
        r = _number(source, items["replicas"][1], f"{field_}.replicas", integer=True)
        if r < 1:
            raise _error(source, items["replicas"][1], f"{field_}.replicas", "must be >= 1", r)
        replicas = int(r)
    selector = ""
    if "selector" in items:
        selector = str(_scalar(source, items["selector"][1], f"{field_}.selector") or "")
        selector = selector.strip().removeprefix("{").removesuffix("}")
    return ModelPlacement(instance_type=name, replicas=replicas, selector=selector)


def parse_prices(text: str, source: str = "<prices>") -> Prices:
    """Validate a price config given as YAML text; ``source`` names it in errors."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = int(mark.line) + 1 if mark is not None else 0
        raise ConfigError(f"{source}:{line}: not valid YAML: {exc.problem}", value=text) from None
    if root is None:
        raise ConfigError(f"{source}: empty price config", value=text)
    top = _mapping(source, root, "prices")
    _check_keys(
        source, top, "prices", {"currency", "gpu_hour", "instance_types", "models", "default"}
    )
    currency = str(_scalar(source, top["currency"][1], "currency")) if "currency" in top else "USD"
    gpu_hour: dict[str, float] = {}
    if "gpu_hour" in top:
        for name, (_, value) in _mapping(source, top["gpu_hour"][1], "gpu_hour").items():
            gpu_hour[name] = _number(source, value, f"gpu_hour.{name}")
    if "instance_types" not in top:
        raise _error(source, root, "instance_types", "is required", None)
    types: dict[str, InstanceType] = {}
    for name, (_, node) in _mapping(source, top["instance_types"][1], "instance_types").items():
        f = f"instance_types.{name}"
        items = _mapping(source, node, f)
        _check_keys(source, items, f, {"hourly", "cpus", "memory_gib", "gpus", "gpu_type"})
        for required in ("hourly", "cpus", "memory_gib"):
            if required not in items:
                raise _error(source, node, f"{f}.{required}", "is required", None)
        gpu_type: str | None = None
        if "gpu_type" in items:
            gnode = items["gpu_type"][1]
            gpu_type = str(_scalar(source, gnode, f"{f}.gpu_type"))
            if gpu_type not in gpu_hour:
                known = ", ".join(sorted(gpu_hour)) or "none"
                raise _error(
                    source,
                    gnode,
                    f"{f}.gpu_type",
                    f"unknown GPU type {gpu_type!r} (gpu_hour lists: {known})",
                    gpu_type,
                )
        cpus = _number(source, items["cpus"][1], f"{f}.cpus")
        memory = _number(source, items["memory_gib"][1], f"{f}.memory_gib")
        for k, v in (("cpus", cpus), ("memory_gib", memory)):
            if v <= 0:
                raise _error(source, items[k][1], f"{f}.{k}", "must be > 0", v)
        types[name] = InstanceType(
            name=name,
            hourly=_number(source, items["hourly"][1], f"{f}.hourly"),
            cpus=cpus,
            memory_bytes=memory * GIB,
            gpus=int(_number(source, items["gpus"][1], f"{f}.gpus", integer=True))
            if "gpus" in items
            else 0,
            gpu_type=gpu_type,
        )
    models: dict[str, ModelPlacement] = {}
    if "models" in top:
        for name, (_, node) in _mapping(source, top["models"][1], "models").items():
            models[name] = _placement(source, node, f"models.{name}", types)
    default = _placement(source, top["default"][1], "default", types) if "default" in top else None
    return Prices(
        currency=currency, gpu_hour=gpu_hour, instance_types=types, models=models, default=default
    )


def load_prices(path: str | Path) -> Prices:
    """Read and validate a price config file; errors name the file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}", value=str(p)) from None
    return parse_prices(text, str(p))


@dataclass(frozen=True, slots=True)
class Utilization:
    """Percentiles (0..1) of one resource over the window, per replica's capacity."""

    p50: float
    p95: float
    max: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCost:
    """Cost, utilisation and right-sizing of one model over the report's window."""

    model: str
    instance_type: str
    replicas: int
    hourly: float
    seconds: float
    cost: float
    inferences: float
    cost_per_1000: float | None
    cpu: Utilization | None
    memory: Utilization | None
    gpu: Utilization | None
    gpu_memory: Utilization | None
    verdict: str
    reasons: list[str]
    suggested_instance_type: str | None
    suggested_hourly: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CostReport:
    """The whole report: window (seconds since the epoch), currency, models, total cost."""

    start: float
    end: float
    currency: str
    models: list[ModelCost]
    total_cost: float
    total_inferences: float

    @property
    def cost_per_1000(self) -> float | None:
        """Cost per 1,000 inferences over all models (None without inferences)."""
        if self.total_inferences <= 0:
            return None
        return self.total_cost / self.total_inferences * 1000

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        out = asdict(self)
        out["cost_per_1000"] = self.cost_per_1000
        return out


def _selector(metric: str, selector: str, model: str | None = None) -> str:
    parts = [p for p in (selector, f'model="{model}"' if model else "") if p]
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def _range_values(engine: Engine, query: str, start: float, end: float, step: float) -> list[float]:
    from inferwatch.promql.value import RangeSeries

    result = engine.range_query(query, int(start * 1000), int(end * 1000), int(step * 1000))
    values: list[float] = []
    if isinstance(result.value, list):
        for s in result.value:
            if isinstance(s, RangeSeries):
                values.extend(float(v) for v in s.values if math.isfinite(v))
    return values


def _seen_seconds(
    engine: Engine, selectors: list[str], start: float, end: float, step: float
) -> float:
    """Seconds from the first to the last sample of any of ``selectors`` in the window."""
    window = f"{int(end - start)}s:{max(int(step), 1)}s"
    first = math.inf
    last = -math.inf
    for sel in selectors:
        lo = _range_or_none(engine, f"min(min_over_time(timestamp({sel})[{window}]))", end)
        hi = _range_or_none(engine, f"max(max_over_time(timestamp({sel})[{window}]))", end)
        # the subquery's steps are aligned to multiples of ``step``: samples after the
        # last one are seen by an evaluation at ``end`` itself
        now = _range_or_none(engine, f"max(timestamp({sel}))", end)
        for v in (lo, hi, now):
            if v is not None and start - step <= v <= end:
                first = min(first, v)
                last = max(last, v)
    if not math.isfinite(first):
        return 0.0
    return max(0.0, min(end, last + step) - max(start, first))


def _range_or_none(engine: Engine, query: str, at: float) -> float | None:
    result = engine.instant_query(query, int(at * 1000))
    if isinstance(result.value, list) and result.value:
        v = getattr(result.value[0], "v", math.nan)
        return float(v) if math.isfinite(v) else None
    return None


def _percentiles(values: list[float]) -> Utilization | None:
    if not values:
        return None
    v = sorted(values)

    def q(p: float) -> float:
        pos = p * (len(v) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (pos - lo)

    return Utilization(q(0.5), q(0.95), v[-1])


def _scalar_value(engine: Engine, query: str, at: float) -> float:
    result = engine.instant_query(query, int(at * 1000))
    value = result.value
    if isinstance(value, list):
        total = sum(s.v for s in value if hasattr(s, "v") and math.isfinite(s.v))
        return float(total)
    v = getattr(value, "v", 0.0)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else 0.0


def _right_size(
    prices: Prices,
    current: InstanceType,
    cpu: Utilization | None,
    memory: Utilization | None,
    gpu: Utilization | None,
    *,
    low: float,
    high: float,
    target: float,
) -> tuple[str, list[str], InstanceType | None]:
    reasons: list[str] = []
    observed = [(n, u) for n, u in (("CPU", cpu), ("memory", memory), ("GPU", gpu)) if u]
    if not observed:
        return "unknown", ["no CPU, memory or GPU series in the window"], None
    hot = [(n, u) for n, u in observed if u.p95 > high]
    if hot:
        verdict = "too_small"
        reasons = [f"{n} p95 {u.p95:.0%} > {high:.0%} of {_capacity(current, n)}" for n, u in hot]
    elif all(u.p95 < low for _, u in observed):
        verdict = "too_big"
        reasons = [
            f"{n} p95 {u.p95:.0%} < {low:.0%} of {_capacity(current, n)}" for n, u in observed
        ]
    else:
        return "ok", [f"{n} p95 {u.p95:.0%}" for n, u in observed], None
    need_cpus = (cpu.p95 * current.cpus / target) if cpu else 0.0
    need_mem = (memory.p95 * current.memory_bytes / target) if memory else 0.0
    need_gpus = math.ceil(gpu.p95 * current.gpus / target - 1e-9) if gpu and current.gpus else 0
    if current.gpus and gpu and gpu.p95 > 0:
        need_gpus = max(need_gpus, 1)
    fits = [
        it
        for it in prices.instance_types.values()
        if it.cpus >= need_cpus
        and it.memory_bytes >= need_mem
        and it.gpus >= need_gpus
        and (need_gpus == 0 or it.gpu_type == current.gpu_type)
    ]
    fits.sort(key=lambda it: (prices.hourly(it.name), it.name))
    best = fits[0] if fits else None
    if best is None:
        reasons.append("no listed instance type is big enough")
    elif best.name == current.name:
        best = None
    else:
        cpu_at = f"CPU {need_cpus * target / best.cpus:.0%}" if cpu else ""
        mem_at = f"memory {need_mem * target / best.memory_bytes:.0%}" if memory else ""
        at = ", ".join(x for x in (cpu_at, mem_at) if x)
        reasons.append(
            f"{best.name} ({best.cpus:g} CPUs, {best.memory_bytes / GIB:g} GiB"
            f"{f', {best.gpus} GPUs' if best.gpus else ''}) would run at p95 {at}"
        )
    return verdict, reasons, best


def _capacity(it: InstanceType, resource: str) -> str:
    if resource == "CPU":
        return f"{it.cpus:g} CPUs"
    if resource == "memory":
        return f"{it.memory_bytes / GIB:g} GiB"
    return f"{it.gpus} GPUs"


def cost_report(
    engine: Engine,
    prices: Prices,
    *,
    start: float,
    end: float,
    step: float = 60.0,
    low: float = 0.3,
    high: float = 0.85,
    target_utilization: float = 0.6,
) -> CostReport:
    """Cost, utilisation and right-sizing for every priced model over ``[start, end]``.

    Models are those listed in ``prices.models``, plus, when ``prices.default`` is set,
    every ``model`` of ``inferwatch_inferences_total`` in the store. ``low``/``high``:
    p95 utilisations below all of which an instance is too big, above any of which it is
    too small; a suggested type runs the observed p95 at ``target_utilization``.
    """
    if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
        raise ConfigError(
            f"the window must have end > start, not {start}..{end}", field="end", value=end
        )
    if not (math.isfinite(step) and step > 0):
        raise ConfigError(f"step must be > 0 seconds, not {step!r}", field="step", value=step)
    window = end - start
    step = max(step, math.ceil(window / 10_000))  # a range query holds 11,000 points at most
    models_seen: list[str] = []
    if prices.default is not None:
        result = engine.instant_query(
            f"count by (model) (last_over_time(inferwatch_inferences_total[{int(window)}s]))",
            int(end * 1000),
        )
        if isinstance(result.value, list):
            models_seen = [dict(getattr(s, "labels", ())).get("model", "") for s in result.value]
    placements = prices.placements(models_seen)
    rate_window = f"{max(int(step * 2), 60)}s"
    models: list[ModelCost] = []
    for model, place in sorted(placements.items()):
        it = prices.instance_types[place.instance_type]
        hourly = prices.hourly(it.name)
        seen = _seen_seconds(
            engine,
            [
                _selector("inferwatch_inferences_total", "", model),
                _selector("process_cpu_seconds_total", place.selector),
            ],
            start,
            end,
            step,
        )
        cost = hourly * place.replicas * seen / 3600
        inferences = _scalar_value(
            engine,
            f"sum(increase({_selector('inferwatch_inferences_total', '', model)}[{int(window)}s]))",
            end,
        )
        sel = place.selector
        n = place.replicas
        cpu = _percentiles(
            [
                v / (n * it.cpus)
                for v in _range_values(
                    engine,
                    f"sum(rate({_selector('process_cpu_seconds_total', sel)}[{rate_window}]))",
                    start,
                    end,
                    step,
                )
            ]
        )
        memory = _percentiles(
            [
                v / (n * it.memory_bytes)
                for v in _range_values(
                    engine,
                    f"sum({_selector('process_resident_memory_bytes', sel)})",
                    start,
                    end,
                    step,
                )
            ]
        )
        gpu = gpu_mem = None
        if it.gpus:
            gpu = _percentiles(
                _range_values(
                    engine, f"avg({_selector('gpu_utilization_ratio', sel)})", start, end, step
                )
            )
            gpu_mem = _percentiles(
                _range_values(
                    engine, f"avg({_selector('gpu_memory_used_ratio', sel)})", start, end, step
                )
            )
        verdict, reasons, better = _right_size(
            prices, it, cpu, memory, gpu, low=low, high=high, target=target_utilization
        )
        models.append(
            ModelCost(
                model=model,
                instance_type=it.name,
                replicas=n,
                hourly=hourly,
                seconds=seen,
                cost=cost,
                inferences=inferences,
                cost_per_1000=cost / inferences * 1000 if inferences > 0 else None,
                cpu=cpu,
                memory=memory,
                gpu=gpu,
                gpu_memory=gpu_mem,
                verdict=verdict,
                reasons=reasons,
                suggested_instance_type=better.name if better else None,
                suggested_hourly=prices.hourly(better.name) if better else None,
            )
        )
    return CostReport(
        start=start,
        end=end,
        currency=prices.currency,
        models=models,
        total_cost=sum(m.cost for m in models),
        total_inferences=sum(m.inferences for m in models),
    )
