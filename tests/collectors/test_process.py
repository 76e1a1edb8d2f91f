from __future__ import annotations

import gc
import logging
import os
import platform
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from inferwatch.collectors.process import ProcessCollector
from inferwatch.sdk.family import FamilySnapshot


def _families(collector: ProcessCollector) -> dict[str, FamilySnapshot]:
    return {f.name: f for f in collector.collect()}


def _value(name: str, labels: tuple[str, ...] = ()) -> float:
    sample = _families(ProcessCollector())[name].samples[labels]
    assert isinstance(sample, float)
    return sample


def test_resident_memory_is_within_20_percent_of_psutil() -> None:
    expected = psutil.Process().memory_info().rss
    assert _value("process_resident_memory_bytes") == pytest.approx(expected, rel=0.2)


def test_virtual_memory_is_at_least_resident_memory() -> None:
    fams = _families(ProcessCollector())
    vms = fams["process_virtual_memory_bytes"].samples[()]
    rss = fams["process_resident_memory_bytes"].samples[()]
    assert isinstance(vms, float) and isinstance(rss, float)
    assert vms >= rss > 0


def test_cpu_seconds_are_user_plus_system_time() -> None:
    times = psutil.Process().cpu_times()
    assert _value("process_cpu_seconds_total") == pytest.approx(times.user + times.system, abs=0.5)


def test_cpu_seconds_increase_after_busy_work() -> None:
    collector = ProcessCollector()
    before = _families(collector)["process_cpu_seconds_total"].samples[()]
    start = time.process_time()
    while time.process_time() - start < 0.1:
        sum(i * i for i in range(1000))
    after = _families(collector)["process_cpu_seconds_total"].samples[()]
    assert isinstance(before, float) and isinstance(after, float)
    assert after - before >= 0.05


def test_start_time_is_the_process_create_time() -> None:
    expected = psutil.Process().create_time()
    assert _value("process_start_time_seconds") == pytest.approx(expected)
    assert _value("process_start_time_seconds") <= time.time()


def test_threads_grow_by_one_when_a_thread_starts() -> None:
    collector = ProcessCollector()
    before = _families(collector)["process_threads"].samples[()]
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        during = _families(collector)["process_threads"].samples[()]
    finally:
        stop.set()
        thread.join()
    assert isinstance(before, float) and isinstance(during, float)
    assert during == before + 1


@pytest.mark.skipif(not hasattr(psutil.Process, "num_fds"), reason="no fds on this platform")
def test_open_fds_grow_by_one_when_a_file_is_opened(tmp_path: Path) -> None:
    collector = ProcessCollector()
    before = _families(collector)["process_open_fds"].samples[()]
    with (tmp_path / "f.txt").open("w"):
        during = _families(collector)["process_open_fds"].samples[()]
    assert isinstance(before, float) and isinstance(during, float)
    assert during == before + 1


@pytest.mark.skipif(sys.platform == "win32", reason="no fd limit on Windows")
def test_max_fds_is_the_soft_open_file_limit() -> None:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("unlimited open files")
    assert _value("process_max_fds") == soft


def test_gc_counts_match_gc_get_stats() -> None:
    gc.disable()
    try:
        fams = _families(ProcessCollector())
        stats = gc.get_stats()
    finally:
        gc.enable()
    for generation, gen_stats in enumerate(stats):
        key = (str(generation),)
        assert fams["python_gc_collections_total"].samples[key] == gen_stats["collections"]
        assert fams["python_gc_objects_collected_total"].samples[key] == gen_stats["collected"]
        uncollectable = fams["python_gc_objects_uncollectable_total"].samples[key]
        assert uncollectable == gen_stats["uncollectable"]


def test_gc_collections_increase_after_gc_collect() -> None:
    collector = ProcessCollector()
    before = _families(collector)["python_gc_collections_total"].samples[("2",)]
    gc.collect()
    after = _families(collector)["python_gc_collections_total"].samples[("2",)]
    assert isinstance(before, float) and isinstance(after, float)
    assert after >= before + 1


def test_python_info_describes_the_interpreter() -> None:
    info = _families(ProcessCollector())["python_info"]
    vi = sys.version_info
    assert info.labelnames == ("implementation", "major", "minor", "patchlevel", "version")
    labels = (
        platform.python_implementation(),
        str(vi.major),
        str(vi.minor),
        str(vi.micro),
        platform.python_version(),
    )
    assert info.samples == {labels: 1.0}


def test_every_family_is_kept_per_worker() -> None:
    assert {f.merge for f in ProcessCollector().collect()} == {"all"}


def test_counters_end_in_total_and_gauges_do_not() -> None:
    for fam in ProcessCollector().collect():
        assert fam.name.endswith("_total") == (fam.type == "counter"), fam.name


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_collect_after_fork_reports_the_child_process() -> None:
    collector = ProcessCollector()
    collector.collect()  # resolve the parent's process first
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its own start time, then leave at once
        try:
            start = _families(collector)["process_start_time_seconds"].samples[()]
            os.write(write_end, repr(start).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        child_start = float(pipe.read())
    child_create_time = psutil.Process(pid).create_time()
    os.waitpid(pid, 0)
    assert child_start == pytest.approx(child_create_time)
    assert child_start != psutil.Process().create_time()


def test_a_refused_reading_is_left_out_and_logged_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: psutil.Process) -> int:
        raise psutil.AccessDenied(os.getpid())

    monkeypatch.setattr(psutil.Process, "num_threads", refuse)
    collector = ProcessCollector()
    with caplog.at_level(logging.WARNING, logger="inferwatch.collectors.process"):
        for _ in range(3):
            names = {f.name for f in collector.collect()}
    assert "process_threads" not in names
    assert "process_resident_memory_bytes" in names
    assert len(caplog.records) == 1
