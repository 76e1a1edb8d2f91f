from __future__ import annotations

import pytest

from inferwatch.sdk.family import FamilySnapshot
from inferwatch.sdk.sketch import QuantileSketch
from inferwatch.sdk.workers import decode, encode, merge, supervisor_program


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        (["/venv/bin/python", "/venv/bin/gunicorn", "app:app", "-w", "4"], "gunicorn"),
        (["/usr/bin/python3.11", "/venv/bin/uvicorn", "app:app", "--workers", "4"], "uvicorn"),
        (["python", "-m", "uvicorn", "app:app", "--workers", "2"], "uvicorn"),
        (["gunicorn: master [app:app]"], "gunicorn"),
        (["/usr/local/bin/hypercorn", "app:app", "-w", "2"], "hypercorn"),
        (["sh", "-c", "uvicorn app:app"], None),
        (["bash", "notes-about-uvicorn.txt"], None),
        (["python", "train.py", "--compare-with", "gunicorn"], None),
        ([], None),
    ],
)
def test_supervisor_is_recognised_by_program_not_arguments(
    cmdline: list[str], expected: str | None
) -> None:
    assert supervisor_program(cmdline) == expected


def fam(name: str, kind: str, merge_mode: str, samples: dict) -> FamilySnapshot:  # type: ignore[type-arg]
    return FamilySnapshot(name, "doc", kind, ("model",), samples, merge=merge_mode)  # type: ignore[arg-type]


def sketch(*values: float) -> QuantileSketch:
    sk = QuantileSketch()
    for v in values:
        sk.add(v)
    return sk


def test_merge_sums_counters_and_histograms_and_labels_per_worker_gauges() -> None:
    w1 = [
        fam("req_total", "counter", "sum", {("a",): 3.0}),
        fam("lat", "histogram", "sum", {("a",): sketch(0.1, 0.2)}),
        fam("rss", "gauge", "all", {("a",): 100.0}),
        fam("inflight", "gauge", "sum", {("a",): 1.0}),
        fam("peak", "gauge", "max", {("a",): 5.0}),
    ]
    w2 = [
        fam("req_total", "counter", "sum", {("a",): 4.0, ("b",): 1.0}),
        fam("lat", "histogram", "sum", {("a",): sketch(0.3)}),
        fam("rss", "gauge", "all", {("a",): 200.0}),
        fam("inflight", "gauge", "sum", {("a",): 2.0}),
        fam("peak", "gauge", "max", {("a",): 9.0}),
    ]
    out = {f.name: f for f in merge(w1, {"1": w1, "2": w2}, [])}
    assert out["req_total"].samples == {("a",): 7.0, ("b",): 1.0}
    assert out["lat"].samples[("a",)] == sketch(0.1, 0.2, 0.3)
    assert out["rss"].labelnames == ("model", "worker")
    assert out["rss"].samples == {("a", "1"): 100.0, ("a", "2"): 200.0}
    assert out["inflight"].samples == {("a",): 3.0}
    assert out["peak"].samples == {("a",): 9.0}


def test_dead_workers_keep_totals_but_not_readings() -> None:
    live = [fam("req_total", "counter", "sum", {("a",): 1.0})]
    dead = [
        fam("req_total", "counter", "sum", {("a",): 10.0}),
        fam("inflight", "gauge", "sum", {("a",): 3.0}),
        fam("rss", "gauge", "all", {("a",): 100.0}),
    ]
    out = {f.name: f for f in merge(live, {"1": live}, dead)}
    assert out["req_total"].samples == {("a",): 11.0}
    assert "inflight" not in out
    assert "rss" not in out


def test_local_families_come_only_from_the_serving_worker() -> None:
    mine = [fam("gpu_temp", "gauge", "local", {("a",): 50.0})]
    other = [fam("gpu_temp", "gauge", "local", {("a",): 70.0})]
    out = merge(mine, {"1": mine, "2": other}, [])
    assert out[0].samples == {("a",): 50.0}


def test_encode_decode_round_trip() -> None:
    families = [
        fam("lat", "histogram", "sum", {("a",): sketch(0.5, 1.5)}),
        fam("x_total", "counter", "sum", {("b",): float("inf")}),
    ]
    back = decode(encode(families))
    assert back[0].samples[("a",)] == families[0].samples[("a",)]
    assert back[1].samples == {("b",): float("inf")}
