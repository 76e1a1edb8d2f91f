"""A fake NVML library, for testing GPU monitoring on machines without a GPU.

:class:`FakeNVML` is a module-like object with the subset of ``pynvml``
(nvidia-ml-py) that :class:`~inferwatch.collectors.GPUCollector` calls. Pass it as
``GPUCollector(nvml=FakeNVML(gpus=[...]))``; each :class:`FakeGPU` is a mutable
dataclass read live on every call, so a test raises ``memory_used`` or
``temperature`` and the next collect sees it::

    gpu = FakeGPU(name="NVIDIA H100", memory_total=80 * 2**30)
    fake = FakeNVML(gpus=[gpu])
    collector = GPUCollector(nvml=fake)
    gpu.memory_used = 79 * 2**30          # simulate memory pressure
    fake.inject_xid(0, 79)                # simulate "GPU has fallen off the bus"
    FakeNVML.without_driver()             # a host where nvmlInit fails

Errors are pynvml's own ``NVMLError`` classes when nvidia-ml-py is installed, so an
``except pynvml.NVMLError_NotSupported`` in code under test matches; without it, a
minimal stand-in hierarchy with the same names and codes is used. Either way they are
reachable as attributes of the fake (``fake.NVMLError_NotFound``), like on ``pynvml``.

Device handles are the :class:`FakeGPU` objects themselves.
"""

from __future__ import annotations

import uuid as _uuid
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from typing import Any

__all__ = ["READINGS", "FakeGPU", "FakeNVML"]

#: Reading names accepted in :attr:`FakeGPU.unsupported`; each makes the matching
#: ``nvmlDevice*`` call raise ``NVMLError_NotSupported`` for that device.
READINGS = frozenset(
    {
        "name",  # nvmlDeviceGetName
        "uuid",  # nvmlDeviceGetUUID
        "utilization",  # nvmlDeviceGetUtilizationRates
        "memory",  # nvmlDeviceGetMemoryInfo
        "temperature",  # nvmlDeviceGetTemperature
        "power",  # nvmlDeviceGetPowerUsage
        "power_limit",  # nvmlDeviceGetEnforcedPowerLimit
        "processes",  # nvmlDeviceGetComputeRunningProcesses
        "ecc",  # nvmlDeviceGetTotalEccErrors
        "xid_events",  # nvmlDeviceRegisterEvents
        "mig",  # nvmlDeviceGetMigMode, nvmlDeviceGetMaxMigDeviceCount
    }
)

_CONSTANTS: dict[str, int] = {
    "NVML_TEMPERATURE_GPU": 0,
    "NVML_VOLATILE_ECC": 0,
    "NVML_AGGREGATE_ECC": 1,
    "NVML_MEMORY_ERROR_TYPE_CORRECTED": 0,
    "NVML_MEMORY_ERROR_TYPE_UNCORRECTED": 1,
    "NVML_DEVICE_MIG_DISABLE": 0,
    "NVML_DEVICE_MIG_ENABLE": 1,
    "nvmlEventTypeXidCriticalError": 0x8,
    "NVML_ERROR_UNINITIALIZED": 1,
    "NVML_ERROR_INVALID_ARGUMENT": 2,
    "NVML_ERROR_NOT_SUPPORTED": 3,
    "NVML_ERROR_NOT_FOUND": 6,
    "NVML_ERROR_DRIVER_NOT_LOADED": 9,
    "NVML_ERROR_TIMEOUT": 10,
    "NVML_ERROR_LIBRARY_NOT_FOUND": 12,
    "NVML_ERROR_UNKNOWN": 999,
}
_ERRORS: dict[str, str] = {
    "NVMLError_Uninitialized": "NVML_ERROR_UNINITIALIZED",
    "NVMLError_InvalidArgument": "NVML_ERROR_INVALID_ARGUMENT",
    "NVMLError_NotSupported": "NVML_ERROR_NOT_SUPPORTED",
    "NVMLError_NotFound": "NVML_ERROR_NOT_FOUND",
    "NVMLError_DriverNotLoaded": "NVML_ERROR_DRIVER_NOT_LOADED",
    "NVMLError_Timeout": "NVML_ERROR_TIMEOUT",
    "NVMLError_LibraryNotFound": "NVML_ERROR_LIBRARY_NOT_FOUND",
    "NVMLError_Unknown": "NVML_ERROR_UNKNOWN",
}


class _StandInNVMLError(Exception):
    """The base of the stand-in error hierarchy, used when pynvml is not installed."""

    code = 999

    def __init__(self, value: int | None = None) -> None:
        self.value = self.code if value is None else value
        super().__init__(self.value)

    def __str__(self) -> str:
        return f"{type(self).__name__} (NVML error {self.value})"


@cache
def _library() -> dict[str, Any]:
    """pynvml's error classes and constants, or stand-ins with the same names."""
    try:
        import pynvml
    except ImportError:
        pynvml = None
    names: dict[str, Any] = {}
    if pynvml is not None:
        names["NVMLError"] = pynvml.NVMLError
        for name in (*_CONSTANTS, *_ERRORS):
            names[name] = getattr(pynvml, name)
        return names
    names.update(_CONSTANTS)
    base = type("NVMLError", (_StandInNVMLError,), {"__module__": __name__})
    names["NVMLError"] = base
    for cls_name, const in _ERRORS.items():
        names[cls_name] = type(cls_name, (base,), {"code": _CONSTANTS[const]})
    return names


@dataclass(eq=False)
class FakeGPU:
    """One simulated GPU (or MIG device). Mutate its fields at any time; reads are live.

    ``utilization`` and ``memory_utilization`` are percentages (0-100), memory in
    bytes, power in milliwatts (as NVML reports them). ``processes`` holds
    ``(pid, used bytes)`` pairs; a ``None`` size is what NVML reports when it cannot
    tell. ``mig_devices`` non-empty means MIG mode is enabled; a ``None`` entry leaves
    that MIG index empty (NVML answers ``NotFound`` for it). ``unsupported`` names the
    readings (see :data:`READINGS`) that raise ``NVMLError_NotSupported``.
    """

    name: str = "NVIDIA Fake GPU"
    uuid: str = field(default_factory=lambda: f"GPU-{_uuid.uuid4()}")
    utilization: int = 0
    memory_utilization: int = 0
    memory_used: int = 0
    memory_total: int = 80 * 2**30
    temperature: int = 35
    power_mw: int = 70_000
    power_limit_mw: int = 700_000
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    ecc_corrected: int = 0
    ecc_uncorrected: int = 0
    mig_devices: list[FakeGPU | None] = field(default_factory=list)
    max_mig_devices: int = 7
    unsupported: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        unknown = self.unsupported - READINGS
        if unknown:
            raise ValueError(
                f"unknown readings in unsupported: {sorted(unknown)}; use names from "
                f"{sorted(READINGS)}"
            )


@dataclass(frozen=True, slots=True)
class FakeUtilization:
    """What ``nvmlDeviceGetUtilizationRates`` returns: percentages."""

    gpu: int
    memory: int


@dataclass(frozen=True, slots=True)
class FakeMemory:
    """What ``nvmlDeviceGetMemoryInfo`` returns: bytes."""

    total: int
    free: int
    used: int


@dataclass(frozen=True, slots=True)
class FakeProcessInfo:
    """One entry of ``nvmlDeviceGetComputeRunningProcesses``."""

    pid: int
    usedGpuMemory: int | None  # pynvml's field name
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class FakeEventData:
    """What ``nvmlEventSetWait_v2`` returns: ``eventData`` is the XID number."""

    device: FakeGPU
    eventType: int  # pynvml's field name
    eventData: int
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


class FakeEventSet:
    """An NVML event set: the devices registered on it and its queue of events."""

    def __init__(self) -> None:
        self.registered: dict[FakeGPU, int] = {}
        self.queue: deque[FakeEventData] = deque()


class FakeNVML:
    """A module-like stand-in for ``pynvml`` over a list of :class:`FakeGPU`.

    ``init_error`` (an exception instance or class) makes ``nvmlInit`` raise it, as on
    a host without the driver; assign ``fake.init_error = None`` later to simulate the
    driver appearing. ``init_calls`` counts ``nvmlInit`` calls. Like real NVML, every
    device call before ``nvmlInit`` raises ``NVMLError_Uninitialized``, and
    ``nvmlEventSetWait_v2`` raises ``NVMLError_Timeout`` when no event is queued (it
    never sleeps, whatever the timeout).
    """

    def __init__(
        self,
        gpus: list[FakeGPU] | None = None,
        init_error: BaseException | type[BaseException] | None = None,
    ) -> None:
        self.gpus: list[FakeGPU] = list(gpus) if gpus is not None else []
        self.init_error = init_error
        self.init_calls = 0
        self._refcount = 0
        self._event_sets: list[FakeEventSet] = []
        for name, value in _library().items():
            setattr(self, name, value)

    @classmethod
    def without_driver(cls) -> FakeNVML:
        """A fake whose ``nvmlInit`` raises ``NVMLError_DriverNotLoaded``."""
        return cls(init_error=_library()["NVMLError_DriverNotLoaded"])

    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set in __init__; typed for mypy's sake.
        raise AttributeError(f"FakeNVML does not implement {name!r}")

    @property
    def initialized(self) -> bool:
        """Whether ``nvmlInit`` has been called more often than ``nvmlShutdown``."""
        return self._refcount > 0

    def inject_xid(self, gpu_index: int, xid: int) -> int:
        """Queue an XID critical-error event for ``gpus[gpu_index]``.

        The event reaches every event set on which the device is registered for XID
        events (none before the collector has registered). Returns how many sets got it.
        """
        gpu = self.gpus[gpu_index]
        xid_type = _library()["nvmlEventTypeXidCriticalError"]
        delivered = 0
        for event_set in self._event_sets:
            if event_set.registered.get(gpu, 0) & xid_type:
                event_set.queue.append(FakeEventData(gpu, xid_type, xid))
                delivered += 1
        return delivered

    # -- the pynvml subset ------------------------------------------------------------

    def _error(self, name: str) -> BaseException:
        cls: type[BaseException] = _library()[name]
        return cls()

    def _device(self, handle: object, reading: str | None = None) -> FakeGPU:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        if not isinstance(handle, FakeGPU):
            raise self._error("NVMLError_InvalidArgument")
        if reading is not None and reading in handle.unsupported:
            raise self._error("NVMLError_NotSupported")
        return handle

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            err = self.init_error
            raise err() if isinstance(err, type) else err
        self._refcount += 1

    def nvmlShutdown(self) -> None:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        self._refcount -= 1

    def nvmlDeviceGetCount(self) -> int:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGPU:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        if not 0 <= index < len(self.gpus):
            raise self._error("NVMLError_InvalidArgument")
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: object) -> str:
        return self._device(handle, "name").name

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        return self._device(handle, "uuid").uuid

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> FakeUtilization:
        gpu = self._device(handle, "utilization")
        return FakeUtilization(gpu.utilization, gpu.memory_utilization)

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: int | None = None) -> FakeMemory:
        gpu = self._device(handle, "memory")
        return FakeMemory(gpu.memory_total, gpu.memory_total - gpu.memory_used, gpu.memory_used)

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        gpu = self._device(handle, "temperature")
        if sensor != _library()["NVML_TEMPERATURE_GPU"]:
            raise self._error("NVMLError_InvalidArgument")
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self._device(handle, "power").power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        return self._device(handle, "power_limit").power_limit_mw

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[FakeProcessInfo]:
        gpu = self._device(handle, "processes")
        return [FakeProcessInfo(pid, used) for pid, used in gpu.processes]

    def nvmlDeviceGetTotalEccErrors(self, handle: object, error_type: int, counter: int) -> int:
        """Both counter types (volatile and aggregate) read the same FakeGPU fields."""
        gpu = self._device(handle, "ecc")
        lib = _library()
        if counter not in (lib["NVML_VOLATILE_ECC"], lib["NVML_AGGREGATE_ECC"]):
            raise self._error("NVMLError_InvalidArgument")
        if error_type == lib["NVML_MEMORY_ERROR_TYPE_CORRECTED"]:
            return gpu.ecc_corrected
        if error_type == lib["NVML_MEMORY_ERROR_TYPE_UNCORRECTED"]:
            return gpu.ecc_uncorrected
        raise self._error("NVMLError_InvalidArgument")

    def nvmlEventSetCreate(self) -> FakeEventSet:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        event_set = FakeEventSet()
        self._event_sets.append(event_set)
        return event_set

    def nvmlEventSetFree(self, event_set: FakeEventSet) -> None:
        if event_set not in self._event_sets:
            raise self._error("NVMLError_InvalidArgument")
        self._event_sets.remove(event_set)

    def nvmlDeviceRegisterEvents(
        self, handle: object, event_types: int, event_set: FakeEventSet
    ) -> None:
        gpu = self._device(handle, "xid_events")
        if event_set not in self._event_sets:
            raise self._error("NVMLError_InvalidArgument")
        event_set.registered[gpu] = event_set.registered.get(gpu, 0) | event_types

    def nvmlEventSetWait_v2(self, event_set: FakeEventSet, timeoutms: int) -> FakeEventData:
        if self._refcount <= 0:
            raise self._error("NVMLError_Uninitialized")
        if not event_set.queue:
            raise self._error("NVMLError_Timeout")
        return event_set.queue.popleft()

    def nvmlDeviceGetMigMode(self, handle: object) -> list[int]:
        gpu = self._device(handle, "mig")
        mode = _library()[
            "NVML_DEVICE_MIG_ENABLE" if gpu.mig_devices else "NVML_DEVICE_MIG_DISABLE"
        ]
        return [mode, mode]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        gpu = self._device(handle, "mig")
        return max(gpu.max_mig_devices, len(gpu.mig_devices))

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> FakeGPU:
        gpu = self._device(handle, "mig")
        if not 0 <= index < len(gpu.mig_devices):
            raise self._error("NVMLError_NotFound")
        mig = gpu.mig_devices[index]
        if mig is None:
            raise self._error("NVMLError_NotFound")
        return mig
