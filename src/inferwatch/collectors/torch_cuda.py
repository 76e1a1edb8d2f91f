"""PyTorch's own view of CUDA memory: allocated, reserved, peak, retries and OOMs.

NVML sees how much device memory a process holds; PyTorch's caching allocator knows
how much of it tensors use and how often allocation had to retry or failed.
:class:`TorchCUDACollector` reads ``torch.cuda.memory_stats`` at collection time, only
when the service has already imported torch and initialised CUDA: it never imports
torch itself, so it costs nothing in services that do not use it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from inferwatch.sdk.family import FamilySnapshot, MetricType

__all__ = ["TorchCUDACollector"]

logger = logging.getLogger(__name__)

# family name -> (memory_stats key, help, type, unit)
_FAMILIES: dict[str, tuple[str, str, MetricType, str]] = {
    "pytorch_cuda_memory_allocated_bytes": (
        "allocated_bytes.all.current",
        "Device memory held by tensors, as PyTorch's allocator counts it, in bytes.",
        "gauge",
        "bytes",
    ),
    "pytorch_cuda_memory_reserved_bytes": (
        "reserved_bytes.all.current",
        "Device memory reserved by PyTorch's caching allocator, in bytes.",
        "gauge",
        "bytes",
    ),
    "pytorch_cuda_memory_max_allocated_bytes": (
        "allocated_bytes.all.peak",
        "Peak device memory held by tensors since start or the last peak reset, in bytes.",
        "gauge",
        "bytes",
    ),
    "pytorch_cuda_alloc_retries_total": (
        "num_alloc_retries",
        "Allocations that succeeded only after freeing cached blocks (a sign of pressure).",
        "counter",
        "",
    ),
    "pytorch_cuda_ooms_total": (
        "num_ooms",
        "CUDA out-of-memory errors raised by PyTorch's allocator.",
        "counter",
        "",
    ),
}


class TorchCUDACollector:
    """Collects per-device memory statistics of PyTorch's CUDA caching allocator.

    Yields nothing unless ``torch`` is in ``sys.modules`` and CUDA is available and
    initialised in this process. Series are labelled ``device`` (the CUDA device
    index) and, being per-process, use ``merge="all"``. :meth:`collect` never raises.
    """

    def __init__(self) -> None:
        self._logged = False

    def collect(self) -> Iterable[FamilySnapshot]:
        """Read ``torch.cuda.memory_stats`` for every device, if torch uses CUDA here."""
        torch = sys.modules.get("torch")
        if torch is None:
            return []
        fams = {
            name: FamilySnapshot(name, doc, type_, ("device",), unit=unit, merge="all")
            for name, (_, doc, type_, unit) in _FAMILIES.items()
        }
        try:
            cuda = torch.cuda
            if not (cuda.is_initialized() and cuda.is_available()):
                return []
            for device in range(int(cuda.device_count())):
                stats = cuda.memory_stats(device)
                for name, (key, *_) in _FAMILIES.items():
                    value = stats.get(key)
                    if value is not None:
                        fams[name].samples[(str(device),)] = float(value)
        except Exception as exc:
            if not self._logged:
                self._logged = True
                logger.warning("cannot read torch.cuda.memory_stats: %r", exc, exc_info=True)
        return [f for f in fams.values() if f.samples]
