"""``inferwatch rules test``: unit tests for rule files, in ``promtool test rules`` format.

A test file names ``rule_files`` (relative to the test file), an
``evaluation_interval`` (default 1m), an optional ``group_eval_order`` and ``tests``.
Each test loads its ``input_series`` (the promtool series notation: ``1+2x10``, ``_``,
``stale``) one ``interval`` apart into an in-memory store, evaluates every group every
``evaluation_interval`` from time 0 to the largest ``eval_time``, and checks:

- ``alert_rule_test``: the firing alerts of ``alertname`` at ``eval_time`` (labels and
  templated annotations, compared as sets) are exactly ``exp_alerts``;
- ``promql_expr_test``: ``expr`` at ``eval_time`` returns exactly ``exp_samples``.

The semantics are promtool's (``cmd/promtool/unittest.go``): a rule evaluation error
ends the test, pending alerts do not count, values are compared exactly.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from inferwatch._duration import duration_ms
from inferwatch._errors import InferwatchError
from inferwatch.promql import Engine, Sample, Scalar
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.promql.promqltest import parse_series
from inferwatch.tsdb.labels import Labels
from inferwatch.tsdb.series import AppendResult

from .group import Group
from .model import AlertingRule, RuleGroup

_FILE_FIELDS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
_TEST_FIELDS = {
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "name",
}


class _Bad(Exception):
    """A test file that cannot be run; the message is what promtool prints."""


class _Storage(MemoryStorage):
    """The in-memory store, taking rule output like the real one."""

    def append(self, ts_ms: int, samples: Sequence[tuple[Labels, float]]) -> AppendResult:
        for labels, value in samples:
            self.add(labels, [ts_ms], [value])
        return AppendResult(accepted=len(samples))


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` (``1m0s``, ``1h30m0s``, ``1.5s``, ``0s``)."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return f"{sign}{_trim(ns / size)}{unit}"
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    s = _trim(rest / 1e9)
    if h:
        return f"{sign}{h}h{m}m{s}s"
    if m:
        return f"{sign}{m}m{s}s"
    return f"{sign}{s}s"


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def model_duration(ms: int) -> str:
    """Prometheus's ``model.Duration.String()`` (``5m``, ``1h30m``, ``1d``, ``0s``)."""
    if ms == 0:
        return "0s"
    out = ""
    for unit, size in (
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ):
        n, ms = divmod(ms, size)
        if n:
            out += f"{n}{unit}"
    return out


def _go_labels(labels: Mapping[str, str] | Labels) -> str:
    """``{a="1", b="2"}``, as Go's ``labels.Labels.String()``."""
    items = sorted(labels.items()) if isinstance(labels, Mapping) else list(labels)
    inner = ", ".join(f"{k}={_go_quote(v)}" for k, v in items)
    return "{" + inner + "}"


def _go_quote(value: str) -> str:
    from inferwatch.promql.goformat import go_quote

    return go_quote(value)


def _go_float(value: float) -> str:
    from inferwatch.promql.goformat import go_format_float

    return go_format_float(value)


def _duration(value: object, where: str) -> int:
    text = str(value)
    ms = duration_ms(text)
    if ms is None:
        raise _Bad(f'{where}: not a valid duration string: "{text}"')
    return ms


def _check_fields(data: object, allowed: set[str], where: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _Bad(f"{where}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise _Bad(f"{where}: field {key} not found")
    return data


@dataclass(slots=True)
class _Alert:
    labels: Labels
    annotations: Labels

    def text(self) -> str:
        return f"Labels:{_go_labels(self.labels)}\nAnnotations:{_go_labels(self.annotations)}"


def _alerts_text(alerts: list[_Alert]) -> str:
    if not alerts:
        return "[]"
    parts = [f"{i}:" + _indent("\n" + a.text(), "  ") for i, a in enumerate(alerts)]
    return "[\n" + ",\n".join(parts) + "\n]"


def _indent(text: str, prefix: str) -> str:
    return text.replace("\n", "\n" + prefix)


def _make_groups(
    specs: Sequence[RuleGroup],
    order: Sequence[str],
    storage: _Storage,
    engine: Engine,
    test: dict[str, Any],
) -> list[Group]:
    external_labels = {str(k): str(v) for k, v in (test.get("external_labels") or {}).items()}
    external_url = str(test.get("external_url") or "")
    groups = [
        Group(
            spec,
            storage=storage,
            engine=engine,
            interval_s=spec.interval_s or 60.0,
            query_offset_s=spec.query_offset_s or 0.0,
            external_labels=external_labels,
            external_url=external_url,
        )
        for spec in specs
    ]
    if order:
        rank = {name: i for i, name in enumerate(order)}
        groups.sort(key=lambda g: rank.get(g.name, 0))
    return groups


def _run_test(
    test: dict[str, Any], specs: list[RuleGroup], eval_ms: int, order: Sequence[str]
) -> list[str]:
    interval_ms = _duration(test.get("interval") or model_duration(eval_ms), "interval")
    storage = _Storage()
    for item in test.get("input_series") or []:
        series = str(item.get("series", ""))
        values = str(item.get("values", ""))
        try:
            labels, vals = parse_series(f"{series} {values}")
        except ValueError as exc:
            return [f"    input series {series!r}: {exc}"]
        ts = [i * interval_ms for i, v in enumerate(vals) if v is not None]
        vs = [v for v in vals if v is not None]
        if ts:
            storage.add(labels, ts, vs)
    engine = Engine(storage)
    groups = _make_groups(specs, order, storage, engine, test)
    test_name = str(test.get("name") or "")

    alert_tests: dict[int, list[dict[str, Any]]] = {}
    for case in test.get("alert_rule_test") or []:
        eval_time = _duration(case.get("eval_time", "0s"), "eval_time")
        if not case.get("alertname"):
            where = f" (in TestGroup {test_name})" if test_name else ""
            return [
                "an item under alert_rule_test misses required attribute alertname at "
                f"eval_time {model_duration(eval_time)}{where}"
            ]
        alert_tests.setdefault(eval_time, []).append(case)
    expr_tests = test.get("promql_expr_test") or []
    max_eval = max(
        [*alert_tests, *(_duration(c.get("eval_time", "0s"), "eval_time") for c in expr_tests), 0]
    )
    times = sorted(alert_tests)
    errors: list[str] = []
    current = 0
    ts_ms = 0
    while ts_ms <= max_eval:
        eval_errors = []
        for group in groups:
            group.eval(ts_ms / 1000)
            for rule, status in zip(group.rules, group.statuses, strict=True):
                if status.health == "err":
                    eval_errors.append(
                        f"    rule: {rule.name}, time: {go_duration(ts_ms / 1000)}, "
                        f"err: {status.last_error}"
                    )
        errors.extend(eval_errors)
        if eval_errors:
            return errors
        while current < len(times) and ts_ms <= times[current] < ts_ms + eval_ms:
            t = times[current]
            errors.extend(_check_alerts(groups, alert_tests[t], t, test_name))
            current += 1
        ts_ms += eval_ms

    for case in expr_tests:
        errors.extend(_check_expr(engine, case))
    return errors


def _check_alerts(
    groups: list[Group], cases: list[dict[str, Any]], t: int, test_name: str
) -> list[str]:
    names = {str(c["alertname"]) for c in cases}
    got: dict[str, list[_Alert]] = {}
    for group in groups:
        for i in sorted(group.machines):
            machine = group.machines[i]
            rule: AlertingRule = machine.rule
            if rule.alert not in names:
                continue
            got.setdefault(rule.alert, []).extend(
                _Alert(a.labels, tuple(sorted(a.annotations.items())))
                for a in machine.alerts()
                if a.state == "firing"
            )
    errors = []
    for case in cases:
        name = str(case["alertname"])
        expected = []
        for exp in case.get("exp_alerts") or []:
            lb = {str(k): str(v) for k, v in (exp.get("exp_labels") or {}).items()}
            lb["alertname"] = name
            ann = {str(k): str(v) for k, v in (exp.get("exp_annotations") or {}).items()}
            expected.append(
                _Alert(
                    tuple(sorted((k, v) for k, v in lb.items() if v)), tuple(sorted(ann.items()))
                )
            )
        have = sorted(got.get(name, []), key=lambda a: (a.labels, a.annotations))
        expected.sort(key=lambda a: (a.labels, a.annotations))
        if have != expected:
            prefix = f"    name: {test_name},\n" if test_name else ""
            exp_text = _indent(_alerts_text(expected), "            ")
            got_text = _indent(_alerts_text(have), "            ")
            errors.append(
                f"{prefix}    alertname: {name}, time: {model_duration(t)}, \n"
                f"        exp:{exp_text}, \n        got:{got_text}"
            )
    return errors


def _samples_text(samples: list[tuple[Labels, float]]) -> str:
    return ", ".join(f"{_go_labels(lb)} {_go_float(v)}" for lb, v in samples)


def _check_expr(engine: Engine, case: dict[str, Any]) -> list[str]:
    expr = str(case.get("expr", ""))
    t = _duration(case.get("eval_time", "0s"), "eval_time")
    where = f"    expr: {_go_quote(expr)}, time: {model_duration(t)}"
    try:
        result = engine.instant_query(expr, t)
    except InferwatchError as exc:
        return [f"{where}, err: {exc}"]
    got: list[tuple[Labels, float]]
    value = result.value
    if isinstance(value, Scalar):
        got = [((), float(value.v))]
    elif result.result_type == "vector" and isinstance(value, list):
        got = [(s.labels, s.v) for s in value if isinstance(s, Sample)]
    else:
        return [f"{where}, err: rule result is not a vector or scalar"]
    expected: list[tuple[Labels, float]] = []
    for sample in case.get("exp_samples") or []:
        text = str(sample.get("labels", ""))
        try:
            labels, _ = parse_series(text) if text else ((), [])
        except ValueError as exc:
            return [f"{where}, err: labels {_go_quote(text)}: {exc}"]
        expected.append((labels, float(sample.get("value", 0))))
    got.sort(key=lambda s: s[0])
    expected.sort(key=lambda s: s[0])
    if not _same_samples(expected, got):
        return [
            f"{where},\n        exp: {_samples_text(expected)}\n        got: {_samples_text(got)}"
        ]
    return []


def _same_samples(a: list[tuple[Labels, float]], b: list[tuple[Labels, float]]) -> bool:
    # Exact comparison, as promtool's reflect.DeepEqual (so NaN never equals NaN).
    return len(a) == len(b) and all(
        la == lb and va == vb and not math.isnan(va)
        for (la, va), (lb, vb) in zip(a, b, strict=True)
    )


def _load_rules(
    test_file: Path, patterns: Sequence[str], warn: Callable[[str], None]
) -> list[RuleGroup]:
    from inferwatch.rules.file import load_rule_files

    paths: list[str] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(test_file.parent / pattern)
        matched = sorted(glob.glob(full))
        if not matched:
            warn(f"  WARNING: no file match pattern {full}")
        paths.extend(matched)
    return load_rule_files(paths) if paths else []


def _ignore(line: str) -> None:
    pass


def run_file(path: str, warn: Callable[[str], None] = _ignore) -> list[str]:
    """Run one test file; return the failures (empty: it passed). A rule file pattern
    that matches nothing is only a warning, given to ``warn``, as in promtool."""
    test_file = Path(path)
    try:
        data = yaml.safe_load(test_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [str(exc)]
    try:
        top = _check_fields(data, _FILE_FIELDS, path)
        eval_ms = _duration(top.get("evaluation_interval") or "1m", "evaluation_interval")
        order = [str(g) for g in top.get("group_eval_order") or []]
        try:
            specs = _load_rules(test_file, [str(p) for p in top.get("rule_files") or []], warn)
        except InferwatchError as exc:
            return [str(exc)]
        if order:
            known = {s.name for s in specs}
            for name in order:
                if name not in known:
                    return [f"group name {name} given in group_eval_order not found in rule files"]
            for spec in specs:
                if spec.name not in order:
                    return [f"group name not listed in the group_eval_order: {spec.name}"]
        errors: list[str] = []
        for test in top.get("tests") or []:
            _check_fields(test, _TEST_FIELDS, path)
            errors.extend(_run_test(test, specs, eval_ms, order))
        return errors
    except _Bad as exc:
        return [str(exc)]


def test_command(files: Sequence[str], echo: Callable[[str], None]) -> int:
    """Run rule unit test ``files`` and print the results like promtool; 1 if any failed."""
    failed = False
    for path in files:
        echo(f"Unit Testing:  {path}")
        errors = run_file(path, echo)
        if errors:
            echo("  FAILED:")
            for error in errors:
                echo(error)
                echo("")
            failed = True
        else:
            echo("  SUCCESS")
        echo("")
    return 1 if failed else 0


# pytest must not collect the command as a test.
test_command.__test__ = False  # type: ignore[attr-defined]

__all__ = ["go_duration", "model_duration", "run_file", "test_command"]
