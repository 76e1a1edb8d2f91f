"""Resource metrics of the current process: CPU time, memory, threads, file descriptors, GC.

:class:`ProcessCollector` reads them through psutil at collection time, so recording an
inference costs nothing extra. Every family uses ``merge="all"``: in multi-worker mode
each worker's reading is kept, labelled with its ``worker``.
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import sys
from collections.abc import Callable, Iterable
from typing import TypeVar

import psutil

from inferwatch.sdk.family import FamilySnapshot, MetricType

try:
    import resource
except ImportError:  # Windows has no resource module and no fd limit to report
    resource = None  # type: ignore[assignment]

__all__ = ["ProcessCollector"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_GENERATION = ("generation",)


def _family(
    name: str,
    documentation: str,
    type: MetricType,
    value: float | None = None,
    *,
    labelnames: tuple[str, ...] = (),
    unit: str = "",
) -> FamilySnapshot:
    fam = FamilySnapshot(name, documentation, type, labelnames, unit=unit, merge="all")
    if value is not None:
        fam.samples[()] = float(value)
    return fam


class ProcessCollector:
    """Collects CPU, memory, thread, file-descriptor and GC metrics of this process.

    Use one per process (``default_collectors()`` includes one). The process id is
    re-read on every collect, so a collector created before ``os.fork()`` reports the
    child after it. A reading the platform lacks (file descriptors on Windows) or that
    the OS refuses is left out; :meth:`collect` never raises.
    """

    def __init__(self) -> None:
        self._pid = -1
        self._proc: psutil.Process | None = None
        self._logged: set[str] = set()
        vi = sys.version_info
        self._info_labels = (
            platform.python_implementation(),
            str(vi.major),
            str(vi.minor),
            str(vi.micro),
            platform.python_version(),
        )

    def _process(self) -> psutil.Process:
        pid = os.getpid()
        if self._proc is None or pid != self._pid:
            self._proc = psutil.Process(pid)
            self._pid = pid
        return self._proc

    def _read(self, what: str, fn: Callable[[], _T]) -> _T | None:
        try:
            return fn()
        except Exception as exc:  # psutil.Error, OSError, or a platform gap
            if what not in self._logged:
                self._logged.add(what)
                logger.warning("cannot read process %s: %r", what, exc)
            return None

    def collect(self) -> Iterable[FamilySnapshot]:
        """Read the current values and return them as family snapshots."""
        out: list[FamilySnapshot] = []
        try:
            self._collect_into(out)
        except Exception as exc:
            if "collect" not in self._logged:
                self._logged.add("collect")
                logger.warning("process collector failed: %r", exc, exc_info=True)
        return out

    def _collect_into(self, out: list[FamilySnapshot]) -> None:
        proc = self._process()
        with proc.oneshot():
            cpu = self._read("cpu_times", proc.cpu_times)
            mem = self._read("memory_info", proc.memory_info)
            start = self._read("create_time", proc.create_time)
            threads = self._read("num_threads", proc.num_threads)
            fds = self._read("num_fds", proc.num_fds) if hasattr(proc, "num_fds") else None
        if cpu is not None:
            out.append(
                _family(
                    "process_cpu_seconds_total",
                    "Total user and system CPU time spent by the process, in seconds.",
                    "counter",
                    cpu.user + cpu.system,
                    unit="seconds",
                )
            )
        if mem is not None:
            out.append(
                _family(
                    "process_resident_memory_bytes",
                    "Resident set size of the process, in bytes.",
                    "gauge",
                    mem.rss,
                    unit="bytes",
                )
            )
            out.append(
                _family(
                    "process_virtual_memory_bytes",
                    "Virtual memory size of the process, in bytes.",
                    "gauge",
                    mem.vms,
                    unit="bytes",
                )
            )
        if start is not None:
            out.append(
                _family(
                    "process_start_time_seconds",
                    "Start time of the process since the Unix epoch, in seconds.",
                    "gauge",
                    start,
                    unit="seconds",
                )
            )
        if threads is not None:
            out.append(
                _family("process_threads", "Number of OS threads in the process.", "gauge", threads)
            )
        if fds is not None:
            out.append(
                _family("process_open_fds", "Number of open file descriptors.", "gauge", fds)
            )
        max_fds = self._max_fds()
        if max_fds is not None:
            out.append(
                _family(
                    "process_max_fds",
                    "Maximum number of open file descriptors (soft limit).",
                    "gauge",
                    max_fds,
                )
            )
        out.extend(self._gc_families())
        info = _family(
            "python_info",
            "Python platform information; the value is always 1.",
            "gauge",
            labelnames=("implementation", "major", "minor", "patchlevel", "version"),
        )
        info.samples[self._info_labels] = 1.0
        out.append(info)

    def _max_fds(self) -> int | None:
        if resource is None:
            return None
        soft = self._read("fd limit", lambda: resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        if soft is None or soft == resource.RLIM_INFINITY:
            return None
        return soft

    def _gc_families(self) -> list[FamilySnapshot]:
        collections = _family(
            "python_gc_collections_total",
            "Number of times each garbage-collector generation was collected.",
            "counter",
            labelnames=_GENERATION,
        )
        collected = _family(
            "python_gc_objects_collected_total",
            "Objects collected during garbage collection, by generation.",
            "counter",
            labelnames=_GENERATION,
        )
        uncollectable = _family(
            "python_gc_objects_uncollectable_total",
            "Uncollectable objects found during garbage collection, by generation.",
            "counter",
            labelnames=_GENERATION,
        )
        for generation, stats in enumerate(gc.get_stats()):
            key = (str(generation),)
            collections.samples[key] = float(stats["collections"])
            collected.samples[key] = float(stats["collected"])
            uncollectable.samples[key] = float(stats["uncollectable"])
        return [collections, collected, uncollectable]
