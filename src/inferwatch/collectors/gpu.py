"""NVIDIA GPU metrics through NVML (the ``pynvml`` module of nvidia-ml-py).

:class:`GPUCollector` reads utilisation, memory, temperature, power, per-process
memory, ECC and XID errors, and MIG device memory at collection time. On a host
without the library, the driver or a GPU it reports ``gpu_available 0`` and nothing
else, logs one INFO line once, and tries ``nvmlInit`` again at most once a minute.
GPU readings describe the host, so every family uses ``merge="local"``.

Per-GPU series carry ``gpu`` (the NVML index), ``uuid`` and ``name``; MIG series
carry ``gpu`` (the parent's index), ``mig`` (the MIG device index), ``uuid`` and
``name`` of the MIG device.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from inferwatch.sdk.family import FamilySnapshot, MetricType

__all__ = ["RETRY_INTERVAL_S", "GPUCollector"]

logger = logging.getLogger(__name__)

#: Seconds between two ``nvmlInit`` attempts while NVML is unavailable.
RETRY_INTERVAL_S = 60.0
# Bounds the work of one collect if a device floods the event set.
_MAX_EVENTS_PER_COLLECT = 1024

_GPU = ("gpu", "uuid", "name")
_MIG = ("gpu", "mig", "uuid", "name")
# name -> (help, type, labelnames, unit)
_FAMILIES: dict[str, tuple[str, MetricType, tuple[str, ...], str]] = {
    "gpu_available": ("1 if NVML is initialised and reports a GPU, else 0.", "gauge", (), ""),
    "gpu_count": ("Number of GPUs NVML reports.", "gauge", (), ""),
    "gpu_utilization_ratio": (
        "Share of time a kernel was running, 0 to 1.",
        "gauge",
        _GPU,
        "ratio",
    ),
    "gpu_memory_utilization_ratio": (
        "Share of time device memory was read or written, 0 to 1.",
        "gauge",
        _GPU,
        "ratio",
    ),
    "gpu_memory_used_bytes": ("Device memory in use, in bytes.", "gauge", _GPU, "bytes"),
    "gpu_memory_total_bytes": ("Total device memory, in bytes.", "gauge", _GPU, "bytes"),
    "gpu_memory_used_ratio": ("Share of device memory in use, 0 to 1.", "gauge", _GPU, "ratio"),
    "gpu_temperature_celsius": (
        "GPU core temperature, in degrees Celsius.",
        "gauge",
        _GPU,
        "celsius",
    ),
    "gpu_power_watts": ("Power drawn by the GPU, in watts.", "gauge", _GPU, "watts"),
    "gpu_power_limit_watts": ("Enforced power limit of the GPU, in watts.", "gauge", _GPU, "watts"),
    "gpu_process_memory_used_bytes": (
        "Device memory used by a compute process, in bytes.",
        "gauge",
        ("gpu", "uuid", "pid"),
        "bytes",
    ),
    "gpu_ecc_errors_total": (
        "ECC memory errors over the device's lifetime (aggregate counter), by type.",
        "counter",
        ("gpu", "uuid", "type"),
        "",
    ),
    "gpu_xid_errors_total": (
        "XID critical-error events seen since this process started collecting.",
        "counter",
        ("gpu", "uuid"),
        "",
    ),
    "gpu_mig_memory_used_bytes": ("MIG device memory in use, in bytes.", "gauge", _MIG, "bytes"),
    "gpu_mig_memory_total_bytes": ("Total MIG device memory, in bytes.", "gauge", _MIG, "bytes"),
}


class _NeverRaised(Exception):
    """Stands in for ``NVMLError`` when an injected nvml object lacks it."""


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


class GPUCollector:
    """Collects NVIDIA GPU readings through NVML; silent and cheap where there is none.

    ``nvml`` is ``pynvml`` or an object with its function names, such as
    :class:`inferwatch.testing.nvml.FakeNVML`; when ``None``, ``pynvml`` is imported on
    the first collect. ``clock`` paces the retries of ``nvmlInit``. A reading a device
    does not support is left out; :meth:`collect` never raises. Call :meth:`close` to
    release NVML early; it is otherwise held for the life of the process.
    """

    def __init__(
        self,
        nvml: Any | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_interval: float = RETRY_INTERVAL_S,
    ) -> None:
        self._given = nvml
        self._nvml: Any = None
        self._error: type[BaseException] = _NeverRaised
        self._clock = clock
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._ready = False
        self._pid = -1
        self._next_try = -math.inf
        self._announced = False
        self._logged: set[str] = set()
        self._event_set: Any = None
        self._xid_index: dict[str, int] = {}
        self._xid_totals: dict[str, float] = {}

    def collect(self) -> Iterable[FamilySnapshot]:
        """Read every GPU now and return the families that have samples."""
        fams = {
            name: FamilySnapshot(name, doc, type_, labels, unit=unit, merge="local")
            for name, (doc, type_, labels, unit) in _FAMILIES.items()
        }
        with self._lock:
            try:
                if self._ensure_ready():
                    self._collect_into(fams)
            except Exception as exc:
                self._log_unexpected("collect", exc)
        fams["gpu_available"].samples.setdefault((), 0.0)
        fams["gpu_count"].samples.setdefault((), 0.0)
        return [f for f in fams.values() if f.samples]

    def close(self) -> None:
        """Free the XID event set and shut NVML down; a later collect initialises again."""
        with self._lock:
            if self._ready:
                if self._event_set is not None:
                    self._call(self._nvml.nvmlEventSetFree, self._event_set)
                self._call(self._nvml.nvmlShutdown)
            self._reset(next_try=-math.inf)

    def _reset(self, *, next_try: float) -> None:
        self._ready = False
        self._next_try = next_try
        self._event_set = None
        self._xid_index.clear()
        self._xid_totals.clear()

    def _ensure_ready(self) -> bool:
        if self._ready and self._pid != os.getpid():
            # After fork: NVML state and event sets belong to the parent.
            self._reset(next_try=-math.inf)
        if self._ready:
            return True
        now = self._clock()
        if now < self._next_try:
            return False
        self._next_try = now + self._retry_interval
        nvml: Any = self._given
        try:
            if nvml is None:
                import pynvml

                nvml = pynvml
            nvml.nvmlInit()
        except Exception as exc:  # ImportError, NVMLError_LibraryNotFound, ...
            self._announce(f"NVML could not be initialised ({exc!r})")
            return False
        self._nvml = nvml
        self._error = getattr(nvml, "NVMLError", _NeverRaised)
        self._ready = True
        self._pid = os.getpid()
        self._register_xid_events()
        return True

    def _announce(self, reason: str) -> None:
        if not self._announced:
            self._announced = True
            logger.info("GPU metrics unavailable: %s; reporting gpu_available 0", reason)

    def _log_unexpected(self, where: str, exc: BaseException) -> None:
        if where not in self._logged:
            self._logged.add(where)
            logger.warning("GPU collector: unexpected error in %s: %r", where, exc, exc_info=exc)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, or None when NVML refuses (NotSupported, NotFound, ...)."""
        try:
            return fn(*args)
        except self._error:
            return None
        except Exception as exc:
            self._log_unexpected(getattr(fn, "__name__", repr(fn)), exc)
            return None

    def _register_xid_events(self) -> None:
        nvml = self._nvml
        xid_type = getattr(nvml, "nvmlEventTypeXidCriticalError", None)
        count = self._call(nvml.nvmlDeviceGetCount)
        if xid_type is None or not count:
            return
        event_set = self._call(nvml.nvmlEventSetCreate)
        if event_set is None:
            return
        for i in range(count):
            handle = self._call(nvml.nvmlDeviceGetHandleByIndex, i)
            if handle is None:
                continue
            uuid = _text(self._call(nvml.nvmlDeviceGetUUID, handle))
            try:
                nvml.nvmlDeviceRegisterEvents(handle, xid_type, event_set)
            except self._error:
                continue  # NotSupported on this device (or this platform)
            except Exception as exc:
                self._log_unexpected("nvmlDeviceRegisterEvents", exc)
                continue
            self._xid_index[uuid] = i
            self._xid_totals[uuid] = 0.0
        if self._xid_totals:
            self._event_set = event_set
        else:
            self._call(nvml.nvmlEventSetFree, event_set)

    def _drain_xid_events(self) -> None:
        nvml = self._nvml
        xid_type = nvml.nvmlEventTypeXidCriticalError
        for _ in range(_MAX_EVENTS_PER_COLLECT):
            try:
                data = nvml.nvmlEventSetWait_v2(self._event_set, 0)
            except self._error:
                return  # NVML_ERROR_TIMEOUT: the queue is empty
            except Exception as exc:
                self._log_unexpected("nvmlEventSetWait_v2", exc)
                return
            if not data.eventType & xid_type:
                continue
            uuid = _text(self._call(nvml.nvmlDeviceGetUUID, data.device))
            if uuid in self._xid_totals:
                self._xid_totals[uuid] += 1.0

    def _collect_into(self, fams: dict[str, FamilySnapshot]) -> None:
        nvml = self._nvml
        count = self._call(nvml.nvmlDeviceGetCount)
        if count is None:
            # NVML went away (driver unloaded, GPU lost): release it, init again later.
            self._call(nvml.nvmlShutdown)
            self._reset(next_try=self._clock() + self._retry_interval)
            self._announce("NVML stopped answering nvmlDeviceGetCount")
            return
        fams["gpu_available"].samples[()] = 1.0 if count > 0 else 0.0
        fams["gpu_count"].samples[()] = float(count)
        if count == 0:
            self._announce("NVML reports no GPU")
        for i in range(count):
            handle = self._call(nvml.nvmlDeviceGetHandleByIndex, i)
            if handle is not None:
                self._collect_device(fams, i, handle)
        if self._event_set is not None:
            self._drain_xid_events()
            for uuid, total in self._xid_totals.items():
                fams["gpu_xid_errors_total"].samples[(str(self._xid_index[uuid]), uuid)] = total

    def _collect_device(self, fams: dict[str, FamilySnapshot], index: int, handle: Any) -> None:
        nvml, call = self._nvml, self._call
        gpu = str(index)
        uuid = _text(call(nvml.nvmlDeviceGetUUID, handle))
        labels = (gpu, uuid, _text(call(nvml.nvmlDeviceGetName, handle)))

        util = call(nvml.nvmlDeviceGetUtilizationRates, handle)
        if util is not None:
            fams["gpu_utilization_ratio"].samples[labels] = util.gpu / 100.0
            fams["gpu_memory_utilization_ratio"].samples[labels] = util.memory / 100.0
        mem = call(nvml.nvmlDeviceGetMemoryInfo, handle)
        if mem is not None:
            fams["gpu_memory_used_bytes"].samples[labels] = float(mem.used)
            fams["gpu_memory_total_bytes"].samples[labels] = float(mem.total)
            if mem.total:
                fams["gpu_memory_used_ratio"].samples[labels] = mem.used / mem.total
        temp = call(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
        if temp is not None:
            fams["gpu_temperature_celsius"].samples[labels] = float(temp)
        power = call(nvml.nvmlDeviceGetPowerUsage, handle)
        if power is not None:
            fams["gpu_power_watts"].samples[labels] = power / 1000.0
        limit = call(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        if limit is not None:
            fams["gpu_power_limit_watts"].samples[labels] = limit / 1000.0

        procs: dict[tuple[str, ...], float] = {}
        for proc in call(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or ():
            if proc.usedGpuMemory is not None:
                key = (gpu, uuid, str(proc.pid))
                # A process in several MIG instances is listed once per instance.
                procs[key] = procs.get(key, 0.0) + float(proc.usedGpuMemory)
        fams["gpu_process_memory_used_bytes"].samples.update(procs)
        for kind, error_type in (
            ("corrected", nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
            ("uncorrected", nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        ):
            errors = call(
                nvml.nvmlDeviceGetTotalEccErrors, handle, error_type, nvml.NVML_AGGREGATE_ECC
            )
            if errors is not None:
                fams["gpu_ecc_errors_total"].samples[(gpu, uuid, kind)] = float(errors)

        mode = call(nvml.nvmlDeviceGetMigMode, handle)
        if mode is not None and mode[0] == nvml.NVML_DEVICE_MIG_ENABLE:
            self._collect_mig(fams, gpu, handle)

    def _collect_mig(self, fams: dict[str, FamilySnapshot], gpu: str, handle: Any) -> None:
        nvml, call = self._nvml, self._call
        for j in range(call(nvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
            mig = call(nvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, j)
            if mig is None:
                continue  # NVMLError_NotFound: no MIG device at this index
            mem = call(nvml.nvmlDeviceGetMemoryInfo, mig)
            if mem is None:
                continue
            labels = (
                gpu,
                str(j),
                _text(call(nvml.nvmlDeviceGetUUID, mig)),
                _text(call(nvml.nvmlDeviceGetName, mig)),
            )
            fams["gpu_mig_memory_used_bytes"].samples[labels] = float(mem.used)
            fams["gpu_mig_memory_total_bytes"].samples[labels] = float(mem.total)
