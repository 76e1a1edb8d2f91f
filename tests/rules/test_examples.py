from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inferwatch.rules.file import load_rule_files, parse_rule_file
from inferwatch.rules.model import AlertingRule

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples" / "rules"
RULE_FILES = sorted(p for p in EXAMPLES.glob("*.yml") if not p.name.endswith(".test.yml"))
TEST_FILES = sorted(EXAMPLES.glob("*.test.yml"))
EXPECTED_ALERTS = {
    "HighCPUUsage",
    "HighMemoryUsage",
    "GPUMemoryHigh",
    "GPUTemperatureHigh",
    "HighP99Latency",
    "LowThroughput",
    "HighErrorRatio",
    "LowAccuracy",
    "ModelNotLoaded",
    "MemoryLeak",
    "GPUMemoryLeak",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd=EXAMPLES)


def alerts() -> list[AlertingRule]:
    groups = load_rule_files([str(p) for p in RULE_FILES])
    return [rule for group in groups for rule in group.rules if isinstance(rule, AlertingRule)]


def test_there_are_example_rule_files_and_tests() -> None:
    assert EXAMPLES / "model-serving.yml" in RULE_FILES
    assert EXAMPLES / "model-serving.test.yml" in TEST_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_promtool_accepts_the_example_rules(path: Path) -> None:
    done = promtool("check", "rules", path.name)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_promtool_passes_the_example_unit_tests(path: Path) -> None:
    done = promtool("test", "rules", path.name)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.name for p in RULE_FILES])
def test_inferwatch_parses_the_example_rules(path: Path) -> None:
    assert parse_rule_file(path.read_text(), file=path.name)


def test_every_starting_threshold_is_there_with_severity_and_annotations() -> None:
    found = alerts()
    assert {rule.alert for rule in found} == EXPECTED_ALERTS
    for rule in found:
        assert rule.labels["severity"] in ("warning", "critical"), rule.alert
        assert {"summary", "description"} <= set(rule.annotations), rule.alert
        assert "$labels" in rule.annotations["summary"], rule.alert
        if rule.alert != "ModelNotLoaded":  # its value is always 0
            assert "$value" in rule.annotations["description"], rule.alert
        assert rule.for_s > 0, rule.alert


def test_every_alert_is_exercised_by_the_unit_tests() -> None:
    tests = "\n".join(path.read_text() for path in TEST_FILES)
    for name in EXPECTED_ALERTS:
        assert re.search(rf"alertname: {name}\n\s+exp_alerts: \[\]", tests), name
        assert re.search(rf"alertname: {name}\n\s+exp_alerts:\n", tests), name


def test_the_examples_use_metric_names_inferwatch_exports() -> None:
    readme = (ROOT / "README.md").read_text()
    exported = set(re.findall(r"`([a-z_:]+)`", readme))
    for rule in alerts():
        for name in re.findall(r"\b(?:inferwatch|system|gpu|process)_[a-z_]+\b", rule.expr):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            assert base in exported, (rule.alert, name)
