from __future__ import annotations

import os
import time

import psutil
import pytest

from inferwatch.collectors.system import SystemCollector
from inferwatch.sdk.family import FamilySnapshot


def _families(collector: SystemCollector | None = None) -> dict[str, FamilySnapshot]:
    return {f.name: f for f in (collector or SystemCollector()).collect()}


def _value(name: str, labels: tuple[str, ...] = ()) -> float:
    sample = _families()[name].samples[labels]
    assert isinstance(sample, float)
    return sample


def test_cpu_utilization_is_a_ratio_between_0_and_1() -> None:
    assert 0.0 <= _value("system_cpu_utilization_ratio") <= 1.0


def test_first_collect_measures_busy_time_since_construction() -> None:
    collector = SystemCollector()
    start = time.process_time()
    while time.process_time() - start < 0.1:
        sum(i * i for i in range(1000))
    ratio = _families(collector)["system_cpu_utilization_ratio"].samples[()]
    assert isinstance(ratio, float)
    assert ratio > 0.0


def test_cpu_count_is_the_logical_cpu_count() -> None:
    assert _value("system_cpu_count") == psutil.cpu_count(logical=True)


def test_memory_total_matches_psutil() -> None:
    assert _value("system_memory_total_bytes") == psutil.virtual_memory().total


def test_memory_available_is_positive_and_below_total() -> None:
    fams = _families()
    available = fams["system_memory_available_bytes"].samples[()]
    total = fams["system_memory_total_bytes"].samples[()]
    assert isinstance(available, float) and isinstance(total, float)
    assert 0 < available <= total


def test_memory_used_ratio_matches_psutil_percent() -> None:
    expected = psutil.virtual_memory().percent / 100
    assert _value("system_memory_used_ratio") == pytest.approx(expected, abs=0.05)


@pytest.mark.skipif(not hasattr(os, "getloadavg"), reason="no load average on this platform")
def test_load_average_has_1m_5m_15m_periods_from_getloadavg() -> None:
    fam = _families()["system_load_average"]
    assert fam.labelnames == ("period",)
    assert set(fam.samples) == {("1m",), ("5m",), ("15m",)}
    expected = os.getloadavg()
    for period, value in zip(("1m", "5m", "15m"), expected, strict=True):
        assert fam.samples[(period,)] == pytest.approx(value, abs=1.0)


def test_swap_used_matches_psutil() -> None:
    expected = psutil.swap_memory().used
    assert _value("system_swap_used_bytes") == pytest.approx(expected, abs=64 * 2**20)


def test_every_family_is_a_host_reading_taken_locally() -> None:
    fams = SystemCollector().collect()
    assert {f.merge for f in fams} == {"local"}
    assert {f.type for f in fams} == {"gauge"}


def test_a_failing_reading_is_left_out_and_the_rest_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise OSError("no /proc/meminfo")

    monkeypatch.setattr(psutil, "swap_memory", broken)
    names = set(_families())
    assert "system_swap_used_bytes" not in names
    assert {"system_cpu_utilization_ratio", "system_memory_total_bytes"} <= names
