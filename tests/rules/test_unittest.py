"""``inferwatch rules test`` gives the same verdict as ``promtool test rules``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from inferwatch.rules.unittest import go_duration, model_duration, run_file, test_command

DATA = Path(__file__).parent / "data" / "unittest"
EXAMPLES = Path(__file__).parents[2] / "examples" / "rules"
PROMTOOL = shutil.which("promtool")
TEST_FILES = sorted(DATA.glob("*.test.yml"))


def ours(path: Path) -> tuple[int, str]:
    lines: list[str] = []
    code = test_command([str(path)], lines.append)
    return code, "\n".join(lines)


def templates_work() -> bool:
    from inferwatch.rules import template

    try:
        template.expand_or_error("{{ $value }}", labels={}, value=1.0)
    except NotImplementedError:
        return False
    return True


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_verdict_is_the_expected_one(path: Path) -> None:
    code, output = ours(path)
    assert code == (0 if path.name.startswith("pass_") else 1), output
    assert output.startswith(f"Unit Testing:  {path}\n")
    assert ("  SUCCESS" in output) == (code == 0)


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_verdict_is_the_same_as_promtools(path: Path) -> None:
    assert PROMTOOL is not None
    real = subprocess.run(
        [PROMTOOL, "test", "rules", path.name], cwd=DATA, capture_output=True, timeout=60
    )
    code, output = ours(path)
    assert code == real.returncode, (
        f"promtool:\n{real.stdout.decode()}{real.stderr.decode()}\n{output}"
    )


def test_a_wrong_alert_is_reported_with_expected_and_got() -> None:
    errors = run_file(str(DATA / "fail_labels.test.yml"))
    assert len(errors) == 1
    assert errors[0].startswith("    alertname: InstanceDown, time: 5m, \n        exp:[\n")
    assert 'severity="page"' in errors[0] and 'severity="ticket"' in errors[0]


def test_a_wrong_value_is_reported_with_the_test_name_of_the_expression() -> None:
    (error,) = run_file(str(DATA / "fail_value.test.yml"))
    assert error == (
        '    expr: "job:requests:rate5m", time: 10m,\n'
        '        exp: {__name__="job:requests:rate5m", job="api"} 2\n'
        '        got: {__name__="job:requests:rate5m", job="api"} 1'
    )


def test_an_evaluation_error_ends_the_test() -> None:
    (error,) = run_file(str(DATA / "fail_eval_error.test.yml"))
    assert error == (
        "    rule: y, time: 0s, err: vector contains metrics with the same labelset "
        "after applying rule labels"
    )


def test_a_bad_rule_file_is_named() -> None:
    (error,) = run_file(str(DATA / "fail_bad_rule_file.test.yml"))
    assert "broken.yml" in error


def test_a_rule_file_pattern_matching_nothing_is_a_warning() -> None:
    code, output = ours(DATA / "pass_no_rule_file_matches.test.yml")
    assert code == 0
    assert "  WARNING: no file match pattern" in output


def test_durations_print_as_go_and_prometheus_do() -> None:
    assert [go_duration(s) for s in (0, 1.5, 60, 3661, 0.25)] == [
        "0s",
        "1.5s",
        "1m0s",
        "1h1m1s",
        "250ms",
    ]
    assert [model_duration(ms) for ms in (0, 300_000, 5_400_000, 86_400_000)] == [
        "0s",
        "5m",
        "1h30m",
        "1d",
    ]


EXAMPLE_TESTS = sorted(EXAMPLES.glob("*.test.yml"))


@pytest.mark.parametrize("path", EXAMPLE_TESTS, ids=[p.name for p in EXAMPLE_TESTS])
def test_the_example_rule_tests_pass(path: Path) -> None:
    if not templates_work():
        pytest.skip("inferwatch.rules.template is not implemented yet")
    code, output = ours(path)
    assert code == 0, output
