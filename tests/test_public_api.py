from __future__ import annotations

import subprocess
import sys

import inferwatch

PUBLIC = {
    "AlertingConfigError",
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
    "NotifyError",
    "QuantileSketch",
    "QueryError",
    "Registry",
    "Rejected",
    "RuleFileError",
    "ScrapeError",
    "TemplateError",
    "__version__",
    "default_registry",
}


def test_exported_names_are_exactly_the_public_api() -> None:
    assert set(inferwatch.__all__) == PUBLIC
    for name in inferwatch.__all__:
        assert hasattr(inferwatch, name)


def test_errors_form_one_hierarchy() -> None:
    names = (
        "ConfigError",
        "MetricError",
        "DuplicateMetricError",
        "Rejected",
        "ScrapeError",
        "QueryError",
        "TemplateError",
        "RuleFileError",
        "AlertingConfigError",
        "NotifyError",
    )
    for name in names:
        assert issubclass(getattr(inferwatch, name), inferwatch.InferwatchError)
    for name in ("ConfigError", "TemplateError", "RuleFileError", "AlertingConfigError"):
        assert issubclass(getattr(inferwatch, name), ValueError)
    assert issubclass(inferwatch.AlertingConfigError, inferwatch.ConfigError)


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
