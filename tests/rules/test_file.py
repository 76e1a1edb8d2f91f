from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inferwatch._errors import RuleFileError, TemplateError
from inferwatch.rules import template
from inferwatch.rules.file import (
    check_command,
    duplicate_rules,
    load_rule_files,
    parse_rule_file,
)
from inferwatch.rules.model import AlertingRule, RecordingRule, RuleGroup

CORPUS = Path(__file__).parent / "data" / "check"
VALID = sorted((CORPUS / "valid").glob("*.yml"))
INVALID = sorted((CORPUS / "invalid").glob("*.yml"))
PROMTOOL = shutil.which("promtool")


def _template_engine_ready() -> bool:
    try:
        template.check("{{ .Labels }}", name="probe")
    except NotImplementedError:
        return False
    except TemplateError:
        return True
    return True


def promtool_accepts(path: Path) -> bool:
    if PROMTOOL is None:
        pytest.skip("promtool is not installed")
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    return done.returncode == 0


def problems_of(text: str, file: str = "rules.yml") -> list[tuple[int, str]]:
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file(text, file=file)
    return [(p.line, p.reason) for p in caught.value.errors]


# -- the corpus: promtool and inferwatch agree -------------------------------------


def test_the_corpus_is_big_enough() -> None:
    assert len(VALID) >= 8
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_a_file_promtool_accepts_is_accepted(path: Path) -> None:
    assert promtool_accepts(path), f"promtool rejects {path.name}; fix the corpus"
    parse_rule_file(path.read_text(), file=str(path))


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_a_file_promtool_rejects_is_rejected_at_the_expected_line(path: Path) -> None:
    assert not promtool_accepts(path), f"promtool accepts {path.name}; fix the corpus"
    if path.name.startswith("template_") and not _template_engine_ready():
        pytest.skip("inferwatch.rules.template.check is not implemented yet")
    text = path.read_text()
    line = int(re.search(r"# expect-line: (\d+)", text).group(1))  # type: ignore[union-attr]
    expected = re.search(r"# expect: (.*)", text).group(1)  # type: ignore[union-attr]
    problems = problems_of(text, file=path.name)
    assert any(got == line and expected in reason for got, reason in problems), problems


# -- what a valid file becomes -------------------------------------------------------


def test_groups_and_rules_carry_their_values_file_and_line() -> None:
    text = """\
groups:
  - name: model
    interval: 30s
    limit: 5
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          team: ml
      - alert: ModelDown
        expr: up == 0
        for: 1m30s
        keep_firing_for: 500ms
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} is down"
"""
    [group] = parse_rule_file(text, file="model.yml")
    assert group == RuleGroup(
        name="model",
        file="model.yml",
        rules=(
            RecordingRule("job:up:sum", "sum by (job) (up)", {"team": "ml"}, "model.yml", 6),
            AlertingRule(
                "ModelDown",
                "up == 0",
                90.0,
                0.5,
                {"severity": "page"},
                {"summary": "{{ $labels.instance }} is down"},
                "model.yml",
                10,
            ),
        ),
        interval_s=30.0,
        limit=5,
        line=2,
    )
    assert group.query_offset_s is None


def test_an_empty_file_has_no_groups() -> None:
    assert parse_rule_file("") == []
    assert parse_rule_file("# nothing yet\n") == []
    assert parse_rule_file("groups:\n") == []


def test_later_yaml_documents_are_ignored() -> None:
    groups = parse_rule_file("groups: []\n---\nthis: is: not yaml\n")
    assert groups == []


def test_query_offset_and_group_labels_from_newer_prometheus_are_accepted() -> None:
    text = """\
groups:
  - name: g
    query_offset: 1m
    labels:
      team: ml
    rules:
      - record: a
        expr: up
"""
    [group] = parse_rule_file(text)
    assert group.query_offset_s == 60.0
    assert group.labels == {"team": "ml"}


def test_group_labels_are_validated() -> None:
    text = "groups:\n  - name: g\n    labels:\n      __name__: x\n    rules: []\n"
    assert problems_of(text) == [(4, 'group "g": invalid label name: __name__')]


def test_scalars_decode_as_written() -> None:
    text = """\
groups:
  - name: 10
    limit: 2.9
    rules:
      - alert: yes
        expr: 1
        labels:
          on: off
          empty:
"""
    [group] = parse_rule_file(text)
    assert (group.name, group.limit) == ("10", 2)
    [rule] = group.rules
    assert isinstance(rule, AlertingRule)
    assert (rule.alert, rule.expr, dict(rule.labels)) == ("yes", "1", {"on": "off", "empty": ""})


# -- problems: every one, with its line ----------------------------------------------


def test_every_problem_is_reported_in_line_order() -> None:
    text = """\
groups:
  - name: g
    rules:
      - record: bad-name
        expr: sum(up
        color: red
      - alert: A
        expr: up
        for: soon
"""
    assert problems_of(text) == [
        (4, 'group "g", rule 1, "bad-name": invalid recording rule name: bad-name'),
        (
            5,
            'group "g", rule 1, "bad-name": could not parse expression: 1:4: parse error: '
            "unclosed left parenthesis",
        ),
        (6, "field color not found in type rulefmt.RuleNode"),
        (9, 'not a valid duration string: "soon"'),
    ]


def test_a_long_scalar_is_shortened_in_a_type_error_as_yaml_v3_does() -> None:
    text = "groups:\n  - name: g\n    limit: unlimited-please\n"
    assert problems_of(text) == [(3, "cannot unmarshal !!str `unlimit...` into int")]


def test_the_error_message_names_file_and_line() -> None:
    with pytest.raises(RuleFileError) as caught:
        parse_rule_file("groups:\n  - name: g\n    bogus: 1\n", file="x.yml")
    assert str(caught.value) == "x.yml:3: field bogus not found in type rulefmt.RuleGroup"


def test_an_out_of_range_duration_is_refused() -> None:
    text = "groups:\n  - name: g\n    interval: 999999999999y\n"
    assert problems_of(text) == [(3, "duration out of range")]


# -- loading files -------------------------------------------------------------------


def test_load_rule_files_expands_globs_in_order(tmp_path: Path) -> None:
    for name in ("b.yml", "a.yml"):
        (tmp_path / name).write_text(
            f"groups:\n  - name: {name[0]}\n    rules:\n      - record: r\n        expr: up\n"
        )
    groups = load_rule_files([str(tmp_path / "*.yml"), str(tmp_path / "none-*.yml")])
    assert [(g.name, Path(g.file).name) for g in groups] == [("a", "a.yml"), ("b", "b.yml")]


def test_load_rule_files_collects_problems_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("groups:\n  - name: ''\n")
    missing = str(tmp_path / "missing.yml")
    with pytest.raises(RuleFileError) as caught:
        load_rule_files([str(tmp_path / "bad.yml"), missing])
    [bad, unreadable] = caught.value.errors
    assert (Path(bad.file).name, bad.line, bad.reason) == (
        "bad.yml",
        2,
        "Groupname must not be empty",
    )
    assert unreadable.file == missing
    assert "No such file or directory" in unreadable.reason


# -- the check command ---------------------------------------------------------------


def test_check_command_prints_like_promtool(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text("groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n")
    lines: list[str] = []
    assert check_command([str(good), str(bad)], lines.append) == 1
    assert lines == [
        f"Checking {good}",
        "  SUCCESS: 1 rules found",
        "",
        f"Checking {bad}",
        "  FAILED:",
        f'{bad}:4: group "g", rule 1, "A": field \'expr\' must be set in rule',
        "",
    ]


def test_check_command_only_warns_about_duplicate_rules(tmp_path: Path) -> None:
    path = tmp_path / "dup.yml"
    rule = "      - record: r\n        expr: up\n"
    path.write_text("groups:\n  - name: g\n    rules:\n" + rule + rule)
    lines: list[str] = []
    assert check_command([str(path)], lines.append) == 0
    assert "  WARNING: 1 duplicate rule(s) found." in lines
    assert "  SUCCESS: 2 rules found" in lines


def test_duplicate_rules_compare_name_and_labels() -> None:
    text = """\
groups:
  - name: g
    rules:
      - {record: r, expr: up, labels: {a: "1"}}
      - {record: r, expr: up, labels: {a: "2"}}
  - name: h
    rules:
      - {record: r, expr: sum(up), labels: {a: "1"}}
"""
    assert duplicate_rules(parse_rule_file(text)) == [("r", {"a": "1"})]
