from __future__ import annotations

import subprocess
import sys

import inferwatch

PUBLIC = {
    "BucketCounts",
    "ConfigError",
    "Counter",
    "DuplicateMetricError",
    "FamilySnapshot",
    "Gauge",
    "Histogram",
    "Inference",
    "InferwatchError",
    "MetricError",
    "Monitor",
    "QuantileSketch",
    "Registry",
    "Rejected",
    "__version__",
    "default_registry",
}


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(inferwatch.__all__) == PUBLIC
    for name in inferwatch.__all__:
        assert hasattr(inferwatch, name)


def test_errors_form_one_hierarchy() -> None:
    for name in ("ConfigError", "MetricError", "DuplicateMetricError", "Rejected"):
        assert issubclass(getattr(inferwatch, name), inferwatch.InferwatchError)
    assert issubclass(inferwatch.ConfigError, ValueError)


def test_sdk_core_imports_without_heavy_dependencies() -> None:
    code = (
        "import sys, inferwatch\n"
        "m = inferwatch.Monitor('x', registry=inferwatch.Registry(collectors=[]))\n"
        "heavy = {'numpy', 'fastapi', 'starlette', 'sklearn', 'torch', 'pynvml'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
