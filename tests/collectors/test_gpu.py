from __future__ import annotations

import logging
import os

import pytest

from inferwatch.collectors import Collector, default_collectors
from inferwatch.collectors.gpu import RETRY_INTERVAL_S, GPUCollector
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.testing.nvml import FakeGPU, FakeNVML

GiB = 2**30
LOGGER = "inferwatch.collectors.gpu"
H100 = ("0", "GPU-aaaa", "NVIDIA H100 80GB HBM3")
L4 = ("1", "GPU-bbbb", "NVIDIA L4")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def gpus() -> list[FakeGPU]:
    return [
        FakeGPU(
            name="NVIDIA H100 80GB HBM3",
            uuid="GPU-aaaa",
            utilization=75,
            memory_utilization=40,
            memory_used=20 * GiB,
            memory_total=80 * GiB,
            temperature=61,
            power_mw=350_000,
            power_limit_mw=700_000,
            processes=[(1234, 10 * GiB), (5678, None)],
            ecc_corrected=3,
            ecc_uncorrected=1,
        ),
        FakeGPU(
            name="NVIDIA L4",
            uuid="GPU-bbbb",
            utilization=10,
            memory_utilization=5,
            memory_used=6 * GiB,
            memory_total=24 * GiB,
            temperature=45,
            power_mw=30_500,
            power_limit_mw=72_000,
        ),
    ]


@pytest.fixture
def fake(gpus: list[FakeGPU]) -> FakeNVML:
    return FakeNVML(gpus=gpus)


def _families(collector: GPUCollector) -> dict[str, FamilySnapshot]:
    return {f.name: f for f in collector.collect()}


def _samples(collector: GPUCollector, name: str) -> dict[tuple[str, ...], object]:
    return dict(_families(collector)[name].samples)


def test_two_gpus_are_reported_available(fake: FakeNVML) -> None:
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_available"].samples == {(): 1.0}
    assert fams["gpu_count"].samples == {(): 2.0}


def test_series_are_labelled_with_index_uuid_and_name(fake: FakeNVML) -> None:
    fam = _families(GPUCollector(nvml=fake))["gpu_memory_used_bytes"]
    assert fam.labelnames == ("gpu", "uuid", "name")
    assert set(fam.samples) == {H100, L4}


def test_utilization_percentages_become_ratios(fake: FakeNVML) -> None:
    collector = GPUCollector(nvml=fake)
    assert _samples(collector, "gpu_utilization_ratio") == {H100: 0.75, L4: 0.10}
    assert _samples(collector, "gpu_memory_utilization_ratio") == {H100: 0.40, L4: 0.05}


def test_memory_used_total_and_used_ratio(fake: FakeNVML) -> None:
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_memory_used_bytes"].samples == {H100: 20 * GiB, L4: 6 * GiB}
    assert fams["gpu_memory_total_bytes"].samples == {H100: 80 * GiB, L4: 24 * GiB}
    assert fams["gpu_memory_used_ratio"].samples == {H100: 0.25, L4: 0.25}


def test_temperature_in_celsius_and_power_in_watts(fake: FakeNVML) -> None:
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_temperature_celsius"].samples == {H100: 61.0, L4: 45.0}
    assert fams["gpu_power_watts"].samples == {H100: 350.0, L4: 30.5}
    assert fams["gpu_power_limit_watts"].samples == {H100: 700.0, L4: 72.0}


def test_process_memory_per_pid_leaves_out_unknown_sizes(fake: FakeNVML) -> None:
    fam = _families(GPUCollector(nvml=fake))["gpu_process_memory_used_bytes"]
    assert fam.labelnames == ("gpu", "uuid", "pid")
    assert fam.samples == {("0", "GPU-aaaa", "1234"): 10 * GiB}


def test_ecc_errors_are_counted_by_type(fake: FakeNVML) -> None:
    fam = _families(GPUCollector(nvml=fake))["gpu_ecc_errors_total"]
    assert fam.type == "counter"
    assert fam.samples == {
        ("0", "GPU-aaaa", "corrected"): 3.0,
        ("0", "GPU-aaaa", "uncorrected"): 1.0,
        ("1", "GPU-bbbb", "corrected"): 0.0,
        ("1", "GPU-bbbb", "uncorrected"): 0.0,
    }


def test_readings_are_live_after_mutating_the_fake_gpu(fake: FakeNVML, gpus: list[FakeGPU]) -> None:
    collector = GPUCollector(nvml=fake)
    collector.collect()
    gpus[0].memory_used = 78 * GiB
    gpus[1].temperature = 88
    fams = _families(collector)
    assert fams["gpu_memory_used_bytes"].samples[H100] == 78 * GiB
    assert fams["gpu_memory_used_ratio"].samples[H100] == pytest.approx(78 / 80)
    assert fams["gpu_temperature_celsius"].samples[L4] == 88.0


def test_unsupported_reading_is_left_out_while_others_are_present(
    fake: FakeNVML, gpus: list[FakeGPU]
) -> None:
    gpus[1].unsupported = {"power", "ecc"}
    fams = _families(GPUCollector(nvml=fake))
    assert set(fams["gpu_power_watts"].samples) == {H100}
    assert {k[0] for k in fams["gpu_ecc_errors_total"].samples} == {"0"}
    assert set(fams["gpu_power_limit_watts"].samples) == {H100, L4}
    assert set(fams["gpu_temperature_celsius"].samples) == {H100, L4}


def test_family_with_no_supported_reading_is_left_out(fake: FakeNVML, gpus: list[FakeGPU]) -> None:
    for gpu in gpus:
        gpu.unsupported = {"temperature"}
    assert "gpu_temperature_celsius" not in _families(GPUCollector(nvml=fake))


def test_mig_devices_report_memory_under_their_parent_gpu(
    fake: FakeNVML, gpus: list[FakeGPU]
) -> None:
    gpus[0].mig_devices = [
        FakeGPU(name="3g.40gb", uuid="MIG-1111", memory_used=5 * GiB, memory_total=40 * GiB),
        None,  # an index without a MIG device: NVML answers NotFound
        FakeGPU(name="1g.10gb", uuid="MIG-2222", memory_used=1 * GiB, memory_total=10 * GiB),
    ]
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_mig_memory_used_bytes"].labelnames == ("gpu", "mig", "uuid", "name")
    assert fams["gpu_mig_memory_used_bytes"].samples == {
        ("0", "0", "MIG-1111", "3g.40gb"): 5 * GiB,
        ("0", "2", "MIG-2222", "1g.10gb"): 1 * GiB,
    }
    assert fams["gpu_mig_memory_total_bytes"].samples == {
        ("0", "0", "MIG-1111", "3g.40gb"): 40 * GiB,
        ("0", "2", "MIG-2222", "1g.10gb"): 10 * GiB,
    }


def test_no_mig_series_when_mig_is_disabled(fake: FakeNVML) -> None:
    fams = _families(GPUCollector(nvml=fake))
    assert "gpu_mig_memory_used_bytes" not in fams
    assert "gpu_mig_memory_total_bytes" not in fams


def test_xid_events_are_counted_per_gpu(fake: FakeNVML) -> None:
    collector = GPUCollector(nvml=fake)
    assert _samples(collector, "gpu_xid_errors_total") == {
        ("0", "GPU-aaaa"): 0.0,
        ("1", "GPU-bbbb"): 0.0,
    }
    fake.inject_xid(1, 79)
    fake.inject_xid(1, 48)
    fake.inject_xid(0, 13)
    assert _samples(collector, "gpu_xid_errors_total") == {
        ("0", "GPU-aaaa"): 1.0,
        ("1", "GPU-bbbb"): 2.0,
    }


def test_xid_totals_are_cumulative_across_collects(fake: FakeNVML) -> None:
    collector = GPUCollector(nvml=fake)
    collector.collect()
    fake.inject_xid(0, 79)
    collector.collect()
    assert _samples(collector, "gpu_xid_errors_total")[("0", "GPU-aaaa")] == 1.0
    fake.inject_xid(0, 79)
    fake.inject_xid(0, 31)
    assert _samples(collector, "gpu_xid_errors_total")[("0", "GPU-aaaa")] == 3.0


def test_no_xid_series_for_a_gpu_without_event_support(fake: FakeNVML, gpus: list[FakeGPU]) -> None:
    gpus[1].unsupported = {"xid_events"}
    assert set(_samples(GPUCollector(nvml=fake), "gpu_xid_errors_total")) == {("0", "GPU-aaaa")}


def test_every_family_is_a_host_reading_taken_locally(fake: FakeNVML) -> None:
    assert {f.merge for f in GPUCollector(nvml=fake).collect()} == {"local"}


def test_no_driver_reports_only_gpu_available_0_and_count_0() -> None:
    fams = _families(GPUCollector(nvml=FakeNVML.without_driver()))
    assert {name: f.samples for name, f in fams.items()} == {
        "gpu_available": {(): 0.0},
        "gpu_count": {(): 0.0},
    }


def test_no_driver_logs_one_info_line_over_many_collects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    collector = GPUCollector(nvml=FakeNVML.without_driver(), clock=clock)
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    for _ in range(10):
        collector.collect()
        clock.now += RETRY_INTERVAL_S
    assert [(r.name, r.levelno) for r in caplog.records] == [(LOGGER, logging.INFO)]


def test_nvml_init_is_retried_at_most_once_per_interval() -> None:
    clock = FakeClock()
    fake = FakeNVML.without_driver()
    collector = GPUCollector(nvml=fake, clock=clock)
    for _ in range(5):
        collector.collect()
        clock.now += 10
    assert fake.init_calls == 1
    clock.now += RETRY_INTERVAL_S
    collector.collect()
    collector.collect()
    assert fake.init_calls == 2


def test_driver_appearing_later_is_picked_up_after_the_interval(gpus: list[FakeGPU]) -> None:
    clock = FakeClock()
    fake = FakeNVML(gpus=gpus, init_error=FakeNVML.without_driver().init_error)
    collector = GPUCollector(nvml=fake, clock=clock)
    assert _samples(collector, "gpu_available") == {(): 0.0}
    fake.init_error = None
    assert _samples(collector, "gpu_available") == {(): 0.0}
    clock.now += RETRY_INTERVAL_S
    assert _samples(collector, "gpu_available") == {(): 1.0}
    assert _samples(collector, "gpu_count") == {(): 2.0}


def test_no_gpus_reports_available_0_with_nvml_initialised() -> None:
    fake = FakeNVML(gpus=[])
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_available"].samples == {(): 0.0}
    assert fams["gpu_count"].samples == {(): 0.0}
    assert fake.initialized


def test_unexpected_exception_in_a_reading_never_raises(
    fake: FakeNVML, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(handle: object, sensor: int) -> int:
        raise RuntimeError("driver bug")

    monkeypatch.setattr(fake, "nvmlDeviceGetTemperature", broken)
    collector = GPUCollector(nvml=fake)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    for _ in range(3):
        fams = _families(collector)
    assert "gpu_temperature_celsius" not in fams
    assert set(fams["gpu_memory_used_bytes"].samples) == {H100, L4}
    assert len(caplog.records) == 1


def test_unexpected_exception_everywhere_still_returns_gpu_available(
    fake: FakeNVML, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> object:
        raise RuntimeError("boom")

    for name in ("nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex", "nvmlEventSetCreate"):
        monkeypatch.setattr(fake, name, broken)
    fams = _families(GPUCollector(nvml=fake))
    assert fams["gpu_available"].samples == {(): 0.0}


def test_close_shuts_nvml_down_and_next_collect_initialises_again(fake: FakeNVML) -> None:
    collector = GPUCollector(nvml=fake)
    collector.collect()
    collector.close()
    assert not fake.initialized
    assert _samples(collector, "gpu_available") == {(): 1.0}
    assert fake.init_calls == 2


def test_nvml_is_initialised_again_in_a_forked_child(
    fake: FakeNVML, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = GPUCollector(nvml=fake)
    collector.collect()
    child_pid = os.getpid() + 1
    monkeypatch.setattr(os, "getpid", lambda: child_pid)
    assert _samples(collector, "gpu_available") == {(): 1.0}
    assert fake.init_calls == 2


def test_fake_nvml_raises_pynvml_error_classes(fake: FakeNVML, gpus: list[FakeGPU]) -> None:
    pynvml = pytest.importorskip("pynvml")
    gpus[0].unsupported = {"power"}
    fake.nvmlInit()
    with pytest.raises(pynvml.NVMLError_NotSupported):
        fake.nvmlDeviceGetPowerUsage(gpus[0])


def test_fake_gpu_rejects_unknown_unsupported_names() -> None:
    with pytest.raises(ValueError, match="powr"):
        FakeGPU(unsupported={"powr"})


def test_real_pynvml_reports_what_the_driver_reports() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        expected = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        expected = 0  # no driver or library: the case on CI machines without a GPU
    fams = _families(GPUCollector())
    assert fams["gpu_available"].samples == {(): 1.0 if expected else 0.0}
    assert fams["gpu_count"].samples == {(): float(expected)}
    if not expected:
        assert set(fams) == {"gpu_available", "gpu_count"}


def test_default_collectors_are_collectors_and_collect_without_warnings(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="inferwatch")
    collectors = default_collectors()
    assert len(collectors) == 4
    for collector in collectors:
        assert isinstance(collector, Collector)
        list(collector.collect())
    assert caplog.records == []
