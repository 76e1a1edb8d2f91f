"""Host-wide resource metrics: CPU utilisation, memory, load average, swap.

:class:`SystemCollector` reads them through psutil at collection time. They describe
the machine, not a process, so every family uses ``merge="local"``: in multi-worker
mode only the serving worker's reading is exposed, never one per worker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import TypeVar

import psutil

from inferwatch.sdk.family import FamilySnapshot

__all__ = ["SystemCollector"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_LOAD_PERIODS = ("1m", "5m", "15m")


def _gauge(name: str, documentation: str, value: float, unit: str = "") -> FamilySnapshot:
    fam = FamilySnapshot(name, documentation, "gauge", unit=unit, merge="local")
    fam.samples[()] = float(value)
    return fam


class SystemCollector:
    """Collects CPU, memory, load and swap readings of the whole host.

    CPU utilisation is the share of all CPUs busy since the previous collect (or since
    the collector was created, for the first one), read with
    ``psutil.cpu_percent(interval=None)``: it never sleeps. psutil keeps that
    "previous" reading per process, so another caller of ``cpu_percent`` in the same
    process shortens the window. :meth:`collect` never raises; a reading the platform
    lacks (load average on Windows) is left out.
    """

    def __init__(self) -> None:
        self._logged: set[str] = set()
        # The first cpu_percent(interval=None) call only starts the window and returns 0.0.
        self._read("cpu_percent", lambda: psutil.cpu_percent(interval=None))

    def _read(self, what: str, fn: Callable[[], _T]) -> _T | None:
        try:
            return fn()
        except Exception as exc:  # psutil.Error, OSError, or a platform gap
            if what not in self._logged:
                self._logged.add(what)
                logger.warning("cannot read system %s: %r", what, exc)
            return None

    def collect(self) -> Iterable[FamilySnapshot]:
        """Read the current values and return them as family snapshots."""
        out: list[FamilySnapshot] = []
        try:
            self._collect_into(out)
        except Exception as exc:
            if "collect" not in self._logged:
                self._logged.add("collect")
                logger.warning("system collector failed: %r", exc, exc_info=True)
        return out

    def _collect_into(self, out: list[FamilySnapshot]) -> None:
        percent = self._read("cpu_percent", lambda: psutil.cpu_percent(interval=None))
        if percent is not None:
            out.append(
                _gauge(
                    "system_cpu_utilization_ratio",
                    "Share of all CPUs busy since the previous collection, 0 to 1.",
                    percent / 100.0,
                    "ratio",
                )
            )
        count = self._read("cpu_count", psutil.cpu_count)
        if count:
            out.append(_gauge("system_cpu_count", "Number of logical CPUs.", count))
        mem = self._read("virtual_memory", psutil.virtual_memory)
        if mem is not None:
            out.append(
                _gauge(
                    "system_memory_total_bytes",
                    "Total physical memory, in bytes.",
                    mem.total,
                    "bytes",
                )
            )
            out.append(
                _gauge(
                    "system_memory_available_bytes",
                    "Memory available to new processes without swapping, in bytes.",
                    mem.available,
                    "bytes",
                )
            )
            out.append(
                _gauge(
                    "system_memory_used_ratio",
                    "Share of physical memory not available, 0 to 1.",
                    mem.percent / 100.0,
                    "ratio",
                )
            )
        if hasattr(os, "getloadavg"):
            load = self._read("load average", os.getloadavg)
            if load is not None:
                fam = FamilySnapshot(
                    "system_load_average",
                    "Average number of runnable processes over the period.",
                    "gauge",
                    ("period",),
                    merge="local",
                )
                for period, value in zip(_LOAD_PERIODS, load, strict=True):
                    fam.samples[(period,)] = float(value)
                out.append(fam)
        swap = self._read("swap_memory", psutil.swap_memory)
        if swap is not None:
            out.append(
                _gauge("system_swap_used_bytes", "Swap space in use, in bytes.", swap.used, "bytes")
            )
