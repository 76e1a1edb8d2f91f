"""Load tests for any HTTP model endpoint: ``inferwatch loadtest URL``.

Open loop (a fixed rate, latency corrected for coordinated omission) or closed loop (a
fixed number of connections sending back to back), over keep-alive HTTP/1.1 on bare
asyncio, optionally in several processes::

    from inferwatch.loadtest import LoadSpec, run_load

    report = run_load(LoadSpec(url="http://127.0.0.1:8000/predict", rate=500, duration=30))
    print(report.latency.p99, report.service.p99, report.errors)
"""

from __future__ import annotations

from inferwatch.loadtest.report import LatencySummary, LoadReport, render
from inferwatch.loadtest.runner import run_load
from inferwatch.loadtest.spec import LoadSpec, TargetUnreachable

__all__ = ["LatencySummary", "LoadReport", "LoadSpec", "TargetUnreachable", "render", "run_load"]
