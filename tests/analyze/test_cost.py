from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inferwatch._errors import ConfigError
from inferwatch.analyze.cost import GIB, cost_report, load_prices, parse_prices
from inferwatch.cli import app
from inferwatch.promql.engine import Engine
from inferwatch.tsdb.labels import make_labels
from inferwatch.tsdb.store import Store

T0 = 1_700_000_000
HOUR = 3600

PRICES = """\
currency: USD
gpu_hour:
  a10g: 0.6
instance_types:
  small: {hourly: 0.1, cpus: 2, memory_gib: 4}
  big: {hourly: 0.4, cpus: 8, memory_gib: 16}
  gpu: {hourly: 0.4, cpus: 4, memory_gib: 16, gpus: 1, gpu_type: a10g}
models:
  fraud: {instance_type: big, replicas: 2, selector: 'job="fraud"'}
  vision: {instance_type: gpu, selector: 'job="vision"'}
  tiny: {instance_type: small, selector: 'job="tiny"'}
"""


def fill(store: Store) -> None:
    """Two hours a minute apart: fraud (3 rps, 5% of 16 CPUs, small memory), vision
    (1 rps, GPU 90% busy) and tiny (1 rps, CPU 95% of 2 CPUs)."""
    ts = (np.arange(0, 2 * HOUR + 1, 60, dtype=np.int64) + T0) * 1000
    secs = (ts - ts[0]) / 1000.0

    def put(name: str, values: np.ndarray, **labels: str) -> None:
        store.append_series(make_labels({"__name__": name, **labels}), ts, values.astype(float))

    for model, rps in (("fraud", 3.0), ("vision", 1.0), ("tiny", 1.0)):
        put("inferwatch_inferences_total", secs * rps, model=model, version="1", outcome="success")
    for replica in ("a", "b"):  # 0.4 CPU each of 8 -> 5%
        put("process_cpu_seconds_total", secs * 0.4, job="fraud", instance=replica)
        put(
            "process_resident_memory_bytes",
            np.full(ts.size, 0.5 * GIB),
            job="fraud",
            instance=replica,
        )
    put("process_cpu_seconds_total", secs * 1.9, job="tiny", instance="a")
    put("process_resident_memory_bytes", np.full(ts.size, 1.0 * GIB), job="tiny", instance="a")
    put("process_cpu_seconds_total", secs * 1.0, job="vision", instance="a")
    put("process_resident_memory_bytes", np.full(ts.size, 4.0 * GIB), job="vision", instance="a")
    put("gpu_utilization_ratio", np.full(ts.size, 0.9), job="vision", gpu="0")
    put("gpu_memory_used_ratio", np.full(ts.size, 0.5), job="vision", gpu="0")


@pytest.fixture
def store_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "inferwatch.db"
    with Store(path, fsync="never", retention_seconds=None) as store:
        fill(store)
    yield path


def report_for(path: Path, text: str = PRICES):  # type: ignore[no-untyped-def]
    with Store(path, fsync="never", retention_seconds=None) as store:
        return cost_report(Engine(store), parse_prices(text), start=T0, end=T0 + 2 * HOUR, step=60)


def test_cost_and_cost_per_thousand_inferences(store_path: Path) -> None:
    report = report_for(store_path)
    fraud = next(m for m in report.models if m.model == "fraud")
    assert fraud.seconds == pytest.approx(2 * HOUR, abs=60)
    assert fraud.cost == pytest.approx(0.4 * 2 * 2, rel=0.01)
    assert fraud.inferences == pytest.approx(3 * 2 * HOUR, rel=0.01)
    assert fraud.cost_per_1000 == pytest.approx(1.6 / 21.6, rel=0.02)
    vision = next(m for m in report.models if m.model == "vision")
    assert vision.hourly == pytest.approx(1.0)  # instance plus one a10g hour
    assert report.total_cost == pytest.approx(sum(m.cost for m in report.models))


def test_oversized_model_is_too_big_with_figures_and_cheaper_type(store_path: Path) -> None:
    fraud = next(m for m in report_for(store_path).models if m.model == "fraud")
    assert fraud.cpu is not None and fraud.cpu.p95 == pytest.approx(0.05, rel=0.05)
    assert fraud.memory is not None and fraud.memory.p95 == pytest.approx(1 / 32, rel=0.01)
    assert fraud.verdict == "too_big"
    assert any("CPU p95 5% < 30% of 8 CPUs" in r for r in fraud.reasons)
    assert fraud.suggested_instance_type == "small"
    assert fraud.suggested_hourly == pytest.approx(0.1)


def test_saturated_model_is_too_small(store_path: Path) -> None:
    tiny = next(m for m in report_for(store_path).models if m.model == "tiny")
    assert tiny.verdict == "too_small"
    assert any("CPU p95 95% > 85% of 2 CPUs" in r for r in tiny.reasons)
    assert tiny.suggested_instance_type == "big"


def test_busy_gpu_keeps_a_gpu_instance(store_path: Path) -> None:
    vision = next(m for m in report_for(store_path).models if m.model == "vision")
    assert vision.gpu is not None and vision.gpu.p95 == pytest.approx(0.9)
    assert vision.verdict == "too_small"
    assert vision.suggested_instance_type is None
    assert any("no listed instance type is big enough" in r for r in vision.reasons)


def test_default_prices_models_found_in_the_store(store_path: Path) -> None:
    text = PRICES.split("models:")[0] + "default: {instance_type: small}\n"
    report = report_for(store_path, text)
    assert [m.model for m in report.models] == ["fraud", "tiny", "vision"]
    assert all(m.instance_type == "small" for m in report.models)


def test_model_without_series_costs_nothing_and_says_so(store_path: Path) -> None:
    text = PRICES + "  ghost: {instance_type: small, selector: 'job=\"ghost\"'}\n"
    ghost = next(m for m in report_for(store_path, text).models if m.model == "ghost")
    assert (ghost.cost, ghost.inferences, ghost.cost_per_1000) == (0.0, 0.0, None)
    assert ghost.verdict == "unknown"


def test_unknown_instance_type_is_rejected_with_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "prices.yml"
    path.write_text(PRICES.replace("instance_type: small,", "instance_type: m5.huge,"))
    with pytest.raises(ConfigError) as info:
        load_prices(path)
    assert str(info.value).startswith(f"{path}:11: models.tiny.instance_type: ")
    assert "'m5.huge'" in str(info.value)
    assert info.value.value == "m5.huge"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "instance_types:\n  a: {hourly: -1, cpus: 1, memory_gib: 1}\n",
            ":2: instance_types.a.hourly",
        ),
        (
            "instance_types:\n  a: {hourly: 1, cpus: 1}\n",
            "instance_types.a.memory_gib: is required",
        ),
        (
            "instance_types:\n  a: {hourly: 1, cpus: 1, memory_gib: 1, gpu_type: h100}\n",
            "unknown GPU type 'h100'",
        ),
        ("instance_type: {}\n", "prices.instance_type: unknown field"),
        ("instance_types: [1\n", "not valid YAML"),
    ],
)
def test_bad_price_config_names_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_prices(text, "p.yml")


def test_cli_prints_table_and_json(store_path: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yml"
    prices.write_text(PRICES)
    runner = CliRunner()
    # the window reaches back from now: cover the synthetic hours of 2023
    args = ["report", "cost", "--db", str(store_path), "--prices", str(prices)]
    args += ["--window", str(10 * 365 * 86400), "--step", "3600"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fraud" in result.output and "too_big" in result.output
    assert "fraud: too big:" in result.output
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {m["model"] for m in data["models"]} == {"fraud", "vision", "tiny"}


def test_cli_reports_bad_prices_without_traceback(store_path: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yml"
    prices.write_text("models:\n  a: {instance_type: nope}\ninstance_types: {}\n")
    result = CliRunner().invoke(
        app, ["report", "cost", "--db", str(store_path), "--prices", str(prices)]
    )
    assert result.exit_code == 1
    assert "unknown instance type 'nope'" in result.output
