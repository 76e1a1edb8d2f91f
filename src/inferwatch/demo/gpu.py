"""The GPU the demo shows: the host's own through NVML, or a simulated one.

::

    gpu = DemoGPU.detect()            # real when NVML reports a GPU, else simulated
    registry.register(gpu.collector)  # gpu_* series on /metrics
    gpu.set_pressure(True)            # the ``gpu`` fault (simulated GPU only)

The simulated GPU goes through :class:`~inferwatch.testing.nvml.FakeNVML` and the real
:class:`~inferwatch.collectors.GPUCollector`, so its series are exactly those a real GPU
gives. Idle, it hovers around 30% busy, 30% of its memory and 45 °C; under pressure
(the ``gpu`` fault) it is 100% busy, 97% full and at 90 °C.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterable
from typing import Any

from inferwatch.collectors.gpu import GPUCollector
from inferwatch.sdk.family import FamilySnapshot
from inferwatch.testing.nvml import FakeGPU, FakeNVML

__all__ = ["DemoGPU", "nvml_reports_a_gpu"]

#: Memory of the simulated GPU: 24 GiB, like an NVIDIA L4.
FAKE_MEMORY_BYTES = 24 * 2**30


def nvml_reports_a_gpu() -> bool:
    """Whether NVML (nvidia-ml-py) is installed, loads, and reports at least one GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return False
    try:
        return int(pynvml.nvmlDeviceGetCount()) > 0
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


class _SimulatedCollector:
    """The GPU collector over the fake NVML, with the simulated readings moved first."""

    def __init__(self, gpu: DemoGPU, collector: GPUCollector) -> None:
        self._gpu = gpu
        self._collector = collector

    def collect(self) -> Iterable[FamilySnapshot]:
        self._gpu.tick()
        return self._collector.collect()


class DemoGPU:
    """One GPU for the demo's ``gpu_*`` series; see the module docstring.

    ``simulated``: use a fake GPU (``True``), the host's (``False``). Build it with
    :meth:`detect` to choose by what NVML finds. ``seed`` fixes the idle jitter.
    """

    def __init__(self, *, simulated: bool, seed: int = 0) -> None:
        self.simulated = simulated
        self.pressure = False
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.fake: FakeGPU | None = None
        self.collector: Any
        if simulated:
            self.fake = FakeGPU(
                name="NVIDIA Fake GPU (inferwatch demo)",
                uuid="GPU-00000000-inferwatch-demo",
                memory_total=FAKE_MEMORY_BYTES,
                power_limit_mw=72_000,
            )
            self.collector = _SimulatedCollector(self, GPUCollector(nvml=FakeNVML([self.fake])))
        else:
            self.collector = GPUCollector()
        self.tick()

    @classmethod
    def detect(cls, *, seed: int = 0) -> DemoGPU:
        """The host's GPU when NVML reports one, else a simulated GPU."""
        return cls(simulated=not nvml_reports_a_gpu(), seed=seed)

    @property
    def name(self) -> str:
        """What the demo prints about this GPU."""
        if self.fake is None:
            return "this host's GPU (NVML)"
        return f"{self.fake.name}, simulated through inferwatch.testing.FakeNVML"

    def set_pressure(self, on: bool) -> None:
        """Start or stop the ``gpu`` fault; only a simulated GPU can be pressed."""
        if self.fake is None:
            raise RuntimeError(
                "the gpu fault drives the demo's simulated GPU, and this host has a real "
                "one; run `inferwatch demo --fake-gpu` to use the simulated GPU"
            )
        with self._lock:
            self.pressure = on
        self.tick()

    def tick(self) -> None:
        """Move the simulated readings (called before every collect)."""
        gpu = self.fake
        if gpu is None:
            return
        with self._lock:
            jitter = self._rng.uniform(-1.0, 1.0)
            if self.pressure:
                gpu.utilization = 100
                gpu.memory_utilization = 85
                gpu.memory_used = int(gpu.memory_total * 0.97)
                gpu.temperature = 90
                gpu.power_mw = 71_000
            else:
                gpu.utilization = round(30 + 8 * jitter)
                gpu.memory_utilization = round(12 + 4 * jitter)
                gpu.memory_used = int(gpu.memory_total * (0.30 + 0.01 * jitter))
                gpu.temperature = round(45 + 2 * jitter)
                gpu.power_mw = round(30_000 + 4_000 * jitter)
