"""Guards read from YAML: the example file, and errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch import ConfigError, Monitor
from inferwatch.health.guard import AdaptiveBatchSize, CircuitBreaker, Condition, Shed
from inferwatch.health.guard_file import load_guard_file, parse_guard_file
from inferwatch.testing import FakeClock, FakeNVML

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "guards.yml"


def test_example_file_loads() -> None:
    specs = load_guard_file(EXAMPLE)
    assert [s.name for s in specs] == ["gpu-memory", "errors", "batch"]
    shed, circuit, batch = (s.policy for s in specs)
    assert shed == Shed(
        Condition("gpu_memory_used_ratio", ">", 0.8),
        fraction=0.5,
        for_s=10,
        ramp_s=30,
        retry_after_s=5,
    )
    assert circuit == CircuitBreaker(
        "error_ratio > 0.2", for_s=30, open_s=60, half_open_requests=5, min_requests=10
    )
    assert specs[1].window_s == 10
    assert batch == AdaptiveBatchSize(
        1.0, min_size=1, max_size=64, initial=8, increase=1, decrease=0.5, interval_s=5
    )


def test_monitor_loads_guards_from_the_file(monitor: Monitor, clock: FakeClock) -> None:
    guards = monitor.load_guards(EXAMPLE, nvml=FakeNVML(gpus=[]), clock=clock)
    assert [g.name for g in guards] == ["gpu-memory", "errors", "batch"]
    assert guards[2].batch_size() == 8
    monitor.admit()


def problems(text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_guard_file(text, file="guards.yml", **kwargs)  # type: ignore[arg-type]
    return info.value


def test_unknown_signal_names_file_line_and_field() -> None:
    err = problems("guards:\n  - name: g\n    shed:\n      when: gpu_mem_ratio > 0.8\n")
    assert str(err).startswith("guards.yml:4: guards[0].shed.when: unknown signal 'gpu_mem_ratio'")
    assert err.field == "guards[0].shed.when"
    assert err.value == "gpu_mem_ratio"


def test_user_signals_are_known_when_given() -> None:
    text = "guards:\n  - name: q\n    shed: {when: queue_depth > 100}\n"
    assert parse_guard_file(text, signals=["queue_depth"])[0].name == "q"


def test_every_problem_is_reported_with_its_line() -> None:
    err = problems(
        "guards:\n"
        "  - name: a\n"
        "    shed:\n"
        "      when: gpu_memory_used_ratio > 80\n"  # 4: a ratio above 1
        "      fraction: 2\n"  # 5
        "  - name: b\n"
        "    circuit_breaker:\n"
        "      open: soon\n"  # 8
        "      colour: red\n"  # 9
        "  - name: c\n"
        "    adaptive_batch_size:\n"
        "      latency_budget: 1s\n"
        "      min: 8\n"  # 13
        "      max: 4\n"
    )
    lines = str(err).splitlines()
    assert lines[0].startswith(
        "guards.yml:4: guards[0].shed.when: gpu_memory_used_ratio is a ratio"
    )
    assert (
        lines[1] == "guards.yml:5: guards[0].shed.fraction: fraction must be from 0 to 1, got 2.0"
    )
    assert lines[2].startswith("guards.yml:8: guards[1].circuit_breaker.open: invalid duration")
    assert lines[3] == "guards.yml:9: field colour not found in type circuit_breaker"
    assert lines[4].startswith("guards.yml:13: guards[2].adaptive_batch_size.min: min_size 8")
    assert len(lines) == 5
    assert err.field == "guards[0].shed.when"
    assert err.value == 80.0


def test_a_guard_needs_exactly_one_policy() -> None:
    err = problems("guards:\n  - name: a\n")
    assert str(err) == (
        "guards.yml:2: guards[0]: a guard needs one of shed, circuit_breaker, adaptive_batch_size"
    )
    err = problems(
        "guards:\n  - name: a\n    shed: {when: in_flight > 5}\n    circuit_breaker: {}\n"
    )
    assert "a guard has one policy" in str(err)


def test_duplicate_names_and_yaml_errors() -> None:
    err = problems(
        "guards:\n  - {name: a, circuit_breaker: {}}\n  - {name: a, circuit_breaker: {}}\n"
    )
    assert str(err) == "guards.yml:3: guards[1].name: duplicate guard name 'a' (first at line 2)"
    err = problems("guards: [\n")
    assert str(err).startswith("guards.yml:2: yaml:")


def test_batch_signal_must_be_a_latency() -> None:
    err = problems(
        "guards:\n  - name: b\n    adaptive_batch_size: {latency_budget: 1s, signal: error_ratio}\n"
    )
    assert "guards.yml:3: guards[0].adaptive_batch_size.signal: must be a latency" in str(err)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read guard file"):
        load_guard_file(tmp_path / "missing.yml")
