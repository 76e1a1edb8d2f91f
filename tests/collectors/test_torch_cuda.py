from __future__ import annotations

import logging
import sys
import types
from typing import Any

import pytest

from inferwatch.collectors.torch_cuda import TorchCUDACollector
from inferwatch.sdk.family import FamilySnapshot

MiB = 2**20
STATS: dict[int, dict[str, Any]] = {
    0: {
        "allocated_bytes.all.current": 300 * MiB,
        "reserved_bytes.all.current": 512 * MiB,
        "allocated_bytes.all.peak": 450 * MiB,
        "num_alloc_retries": 2,
        "num_ooms": 1,
    },
    1: {
        "allocated_bytes.all.current": 10 * MiB,
        "reserved_bytes.all.current": 20 * MiB,
        "allocated_bytes.all.peak": 15 * MiB,
        "num_alloc_retries": 0,
        "num_ooms": 0,
    },
}


class FakeCuda:
    def __init__(self) -> None:
        self.available = True
        self.initialized = True
        self.stats = STATS
        self.calls: list[int] = []

    def is_available(self) -> bool:
        return self.available

    def is_initialized(self) -> bool:
        return self.initialized

    def device_count(self) -> int:
        return len(self.stats)

    def memory_stats(self, device: int) -> dict[str, Any]:
        self.calls.append(device)
        return self.stats[device]


@pytest.fixture
def cuda(monkeypatch: pytest.MonkeyPatch) -> FakeCuda:
    fake_cuda = FakeCuda()
    torch = types.ModuleType("torch")
    torch.cuda = fake_cuda  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    return fake_cuda


def _families() -> dict[str, FamilySnapshot]:
    return {f.name: f for f in TorchCUDACollector().collect()}


def test_yields_nothing_when_torch_is_not_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert list(TorchCUDACollector().collect()) == []


def test_never_imports_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    TorchCUDACollector().collect()
    assert "torch" not in sys.modules


def test_yields_nothing_when_cuda_is_unavailable(cuda: FakeCuda) -> None:
    cuda.available = False
    assert list(TorchCUDACollector().collect()) == []


def test_yields_nothing_until_cuda_is_initialised(cuda: FakeCuda) -> None:
    cuda.initialized = False
    assert list(TorchCUDACollector().collect()) == []
    assert cuda.calls == []


def test_memory_bytes_per_device_come_from_memory_stats(cuda: FakeCuda) -> None:
    fams = _families()
    assert fams["pytorch_cuda_memory_allocated_bytes"].samples == {
        ("0",): 300 * MiB,
        ("1",): 10 * MiB,
    }
    assert fams["pytorch_cuda_memory_reserved_bytes"].samples == {
        ("0",): 512 * MiB,
        ("1",): 20 * MiB,
    }
    assert fams["pytorch_cuda_memory_max_allocated_bytes"].samples == {
        ("0",): 450 * MiB,
        ("1",): 15 * MiB,
    }


def test_alloc_retries_and_ooms_are_counters(cuda: FakeCuda) -> None:
    fams = _families()
    assert fams["pytorch_cuda_alloc_retries_total"].type == "counter"
    assert fams["pytorch_cuda_alloc_retries_total"].samples == {("0",): 2.0, ("1",): 0.0}
    assert fams["pytorch_cuda_ooms_total"].type == "counter"
    assert fams["pytorch_cuda_ooms_total"].samples == {("0",): 1.0, ("1",): 0.0}


def test_families_are_labelled_by_device_and_kept_per_worker(cuda: FakeCuda) -> None:
    fams = _families().values()
    assert len(fams) == 5
    assert {f.labelnames for f in fams} == {("device",)}
    assert {f.merge for f in fams} == {"all"}


def test_a_missing_stat_is_left_out(cuda: FakeCuda) -> None:
    cuda.stats = {0: {"allocated_bytes.all.current": 1.0}}
    assert set(_families()) == {"pytorch_cuda_memory_allocated_bytes"}


def test_an_error_in_memory_stats_is_logged_once_and_never_raised(
    cuda: FakeCuda, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(device: int) -> dict[str, Any]:
        raise RuntimeError("CUDA error: device-side assert triggered")

    monkeypatch.setattr(cuda, "memory_stats", broken)
    collector = TorchCUDACollector()
    caplog.set_level(logging.WARNING, logger="inferwatch.collectors.torch_cuda")
    for _ in range(3):
        assert list(collector.collect()) == []
    assert len(caplog.records) == 1
