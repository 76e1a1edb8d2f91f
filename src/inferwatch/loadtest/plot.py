"""The PNG of a load test: latency over time, and the percentile spectrum.

matplotlib (the ``loadtest`` extra) is imported here only, with the Agg back end, so
that no display is needed.
"""

from __future__ import annotations

import math
from pathlib import Path

from inferwatch.loadtest.report import LoadReport
from inferwatch.sdk.sketch import QuantileSketch

#: Spectrum points: quantile 1 - 10**-k for k in steps of 0.1 from 0 to 5 (p99.999).
_SPECTRUM_STEPS = 51
_MARKS = (
    (0.0, "0%"),
    (0.9, "90%"),
    (0.99, "99%"),
    (0.999, "99.9%"),
    (0.9999, "99.99%"),
    (0.99999, "99.999%"),
)


def spectrum(sketch: QuantileSketch) -> list[tuple[float, float]]:
    """``(quantile, latency in ms)`` points from the minimum out to the largest
    quantile the sample count supports, spaced evenly in ``1 / (1 - q)``."""
    points: list[tuple[float, float]] = []
    if sketch.count <= 0:
        return points
    top = 1 - 1 / max(sketch.count, 2)
    for i in range(_SPECTRUM_STEPS):
        q = 1 - 10 ** (-i / 10)
        if q > top:
            break
        points.append((q, sketch.quantile(q) * 1000))
    points.append((top, sketch.max * 1000))
    return points


def write_plot(report: LoadReport, path: Path | str) -> None:
    """Write ``report`` as a PNG at ``path``: per-second p50, p99 and max latency
    over the run (and the p99 service time in open loop) above the percentile
    spectrum of the whole run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullLocator

    fig = Figure(figsize=(9, 7.5), dpi=100, layout="constrained")
    over_time, spec_ax = fig.subplots(2, 1)
    corrected = report.mode == "open"
    label = "latency (from intended start)" if corrected else "latency"
    seconds = [row["second"] + 0.5 for row in report.timeline]

    def series(key: str) -> list[float]:
        return [math.nan if row[key] is None else row[key] for row in report.timeline]

    over_time.plot(seconds, series("p50_ms"), label="p50", color="tab:blue")
    over_time.plot(seconds, series("p99_ms"), label="p99", color="tab:orange")
    over_time.plot(seconds, series("max_ms"), label="max", color="tab:red", linewidth=0.8)
    if corrected:
        over_time.plot(
            seconds,
            series("service_p99_ms"),
            label="p99 service time",
            color="tab:green",
            linestyle="--",
        )
    over_time.set_xlabel("second of the measured run (by intended start)")
    over_time.set_ylabel(f"{label} (ms)")
    over_time.set_title(f"{report.url}: {_mode(report)}")
    over_time.grid(True, alpha=0.3)
    over_time.legend(loc="upper left", fontsize="small")

    spectrum_top = 0.0
    for sketch, name, style in (
        (report.latency_sketch, label, "-"),
        (report.service_sketch if corrected else None, "service time (uncorrected)", "--"),
    ):
        if sketch is None:
            continue
        points = spectrum(sketch)
        spectrum_top = max([spectrum_top, *(q for q, _ in points)])
        if points:
            xs = [1 / (1 - q) if q < 1 else math.nan for q, _ in points]
            spec_ax.plot(xs, [ms for _, ms in points], linestyle=style, label=name)
    spec_ax.set_xscale("log")
    top = 1 / (1 - spectrum_top) if spectrum_top < 1 else 1e5
    marks = [(q, name) for q, name in _MARKS if 1 / (1 - q) <= top * 1.0001] or _MARKS[:1]
    spec_ax.set_xticks([1 / (1 - q) for q, _ in marks], [name for _, name in marks])
    spec_ax.xaxis.set_minor_locator(NullLocator())
    spec_ax.set_xlabel("percentile")
    spec_ax.set_ylabel("latency (ms)")
    spec_ax.set_title("percentile spectrum")
    spec_ax.grid(True, which="both", alpha=0.3)
    spec_ax.legend(loc="upper left", fontsize="small")
    fig.savefig(path, format="png")


def _mode(report: LoadReport) -> str:
    if report.mode == "open":
        return f"{report.requested_rate:g} req/s open loop, {report.throughput:.0f} achieved"
    return f"{report.connections} connections closed loop, {report.throughput:.0f} req/s"
