"""Collectors: sources of metrics read at collection time, not on the hot path.

A collector is any object with a ``collect()`` method returning
:class:`~inferwatch.sdk.family.FamilySnapshot` values (the :class:`Collector`
protocol). The built-in ones cover this process (:class:`ProcessCollector`), the host
(:class:`SystemCollector`), NVIDIA GPUs through NVML (:class:`GPUCollector`) and
PyTorch's CUDA allocator (:class:`TorchCUDACollector`); :func:`default_collectors`
returns one of each. Every collector is cheap, never sleeps and never raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from inferwatch.collectors.gpu import GPUCollector
from inferwatch.collectors.process import ProcessCollector
from inferwatch.collectors.system import SystemCollector
from inferwatch.collectors.torch_cuda import TorchCUDACollector
from inferwatch.sdk.family import FamilySnapshot

__all__ = [
    "Collector",
    "GPUCollector",
    "ProcessCollector",
    "SystemCollector",
    "TorchCUDACollector",
    "default_collectors",
]


@runtime_checkable
class Collector(Protocol):
    """Anything that yields metric families when asked; implement it to add a source.

    ``collect`` is called on every scrape, from any thread: keep it fast, do not
    block, and do not raise (leave out what cannot be read).
    """

    def collect(self) -> Iterable[FamilySnapshot]: ...


def default_collectors() -> list[Collector]:
    """One process, system, GPU and torch-CUDA collector: what a Monitor registers.

    The GPU collector touches NVML only on its first collect and reports
    ``gpu_available 0`` where there is no GPU; the torch collector yields nothing
    unless the service itself imported torch and initialised CUDA.
    """
    return [ProcessCollector(), SystemCollector(), GPUCollector(), TorchCUDACollector()]
