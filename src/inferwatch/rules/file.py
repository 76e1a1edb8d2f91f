"""Prometheus rule files: load them into :class:`~inferwatch.rules.model.RuleGroup` values
and validate them as ``promtool check rules`` does.

A file is valid here exactly when ``promtool check rules`` 2.42 accepts it (a corpus test
runs both on the same files), with two extensions from later Prometheus versions that
promtool 2.42 rejects as unknown fields: a group's ``query_offset`` (2.53) and a group's
``labels`` (3.0, added to every rule of the group). Only the first YAML document of a file
is read, as Prometheus does. Problems are reported all at once, each with its file and
line, in promtool's words::

    rules.yml:12: group "model", rule 2, "HighLatency": could not parse expression: ...

Where promtool stops after YAML structure errors (unknown fields, wrong types), this
loader goes on and validates the rest too, so one run lists every problem.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable, Mapping, Sequence

from yaml.nodes import Node

from inferwatch._duration import duration_ms
from inferwatch._errors import QuerySyntaxError, RuleFileError, RuleFileProblem, TemplateError
from inferwatch.promql.engine import parse as parse_promql
from inferwatch.rules import template
from inferwatch.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from inferwatch.rules.yamlpos import Decoder, YamlSyntaxError, first_document, line_of

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_INT64_MAX = 2**63 - 1

_FILE_FIELDS = ("groups",)
_GROUP_FIELDS = ("name", "interval", "query_offset", "limit", "rules", "labels")
_RULE_FIELDS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


def parse_rule_file(text: str, *, file: str = "<string>") -> list[RuleGroup]:
    """Parse and validate the text of one rule file.

    Returns its groups in file order (an empty file, or one with only comments, has
    none). Raises :class:`~inferwatch.RuleFileError` listing every problem, each naming
    ``file`` and the line of the offending YAML node.
    """
    try:
        root = first_document(text)
    except YamlSyntaxError as exc:
        raise RuleFileError([RuleFileProblem(file, exc.line, exc.reason)]) from None
    reader = _FileReader(file)
    groups = reader.read(root) if root is not None else []
    if reader.problems:
        raise RuleFileError(reader.problems)
    return groups


def load_rule_files(paths: Sequence[str]) -> list[RuleGroup]:
    """Read and parse rule files, as Prometheus's ``rule_files`` does.

    Each path may be a glob (``rules/*.yml``; a glob that matches nothing adds nothing).
    Problems in all files are collected into one :class:`~inferwatch.RuleFileError`; a
    file that cannot be read is a problem naming the file.
    """
    groups: list[RuleGroup] = []
    problems: list[RuleFileProblem] = []
    for file in _expand(paths):
        try:
            groups.extend(_parse_path(file))
        except RuleFileError as exc:
            problems.extend(exc.errors)
    if problems:
        raise RuleFileError(problems)
    return groups


def check_command(files: list[str], echo: Callable[[str], None]) -> int:
    """``inferwatch rules check``: check each file and print the result as ``promtool
    check rules`` does. Returns 0 when every file is valid, else 1.

    Duplicate rules (same name and labels) are a warning, as in promtool, not a failure.
    """
    failed = False
    for file in files:
        echo(f"Checking {file}")
        try:
            groups = _parse_path(file)
        except RuleFileError as exc:
            failed = True
            echo("  FAILED:")
            for problem in exc.errors:
                echo(str(problem))
            echo("")
            continue
        duplicates = duplicate_rules(groups)
        if duplicates:
            echo(f"  WARNING: {len(duplicates)} duplicate rule(s) found.")
            for name, labels in duplicates:
                echo(f"Metric: {name}")
                echo("Label(s):")
                for label, value in sorted(labels.items()):
                    echo(f"\t{label}: {value}")
            echo("Might cause inconsistency while recording expressions")
        echo(f"  SUCCESS: {sum(len(g.rules) for g in groups)} rules found")
        echo("")
    return 1 if failed else 0


def duplicate_rules(groups: Sequence[RuleGroup]) -> list[tuple[str, Mapping[str, str]]]:
    """Rules that repeat an earlier rule's name and labels (promtool's lint), one entry
    per repeat."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    repeats: list[tuple[str, Mapping[str, str]]] = []
    for group in groups:
        for rule in group.rules:
            key = (rule.name, tuple(sorted(rule.labels.items())))
            if key in seen:
                repeats.append((rule.name, rule.labels))
            seen.add(key)
    return repeats


def _expand(paths: Sequence[str]) -> list[str]:
    files: list[str] = []
    for path in paths:
        if glob.has_magic(path):
            files.extend(sorted(glob.glob(path)))
        else:
            files.append(path)
    return files


def _parse_path(file: str) -> list[RuleGroup]:
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise RuleFileError([RuleFileProblem(file, 0, f"cannot read file: {reason}")]) from None
    return parse_rule_file(text, file=file)


class _FileReader:
    """Decodes one file's nodes into groups, recording problems as it goes."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.decoder = Decoder()
        self.validation: list[RuleFileProblem] = []

    @property
    def problems(self) -> list[RuleFileProblem]:
        structure = [RuleFileProblem(self.file, line, r) for line, r in self.decoder.problems]
        return sorted(structure + self.validation, key=lambda p: p.line)

    def problem(self, line: int, reason: str) -> None:
        self.validation.append(RuleFileProblem(self.file, line, reason))

    def read(self, root: Node) -> list[RuleGroup]:
        fields = self.decoder.fields(root, "rulefmt.RuleGroups", _FILE_FIELDS)
        if not fields or "groups" not in fields:
            return []
        items = self.decoder.sequence(fields["groups"][1], "[]rulefmt.RuleGroup")
        groups: list[RuleGroup] = []
        names: set[str] = set()
        for node in items:
            group = self.group(node)
            if group is None:
                continue
            if group.name == "":
                self.problem(group.line, "Groupname must not be empty")
            if group.name in names:
                self.problem(group.line, f'groupname: "{group.name}" is repeated in the same file')
            names.add(group.name)
            groups.append(group)
        return groups

    def group(self, node: Node) -> RuleGroup | None:
        fields = self.decoder.fields(node, "rulefmt.RuleGroup", _GROUP_FIELDS)
        if fields is None:
            return None
        name = self.text(fields, "name")
        where = f'group "{name}"'
        labels = self.labels(fields, "labels", where)
        limit = 0
        if "limit" in fields:
            limit = self.decoder.integer(fields["limit"][1]) or 0
        rules: list[Rule] = []
        if "rules" in fields:
            items = self.decoder.sequence(fields["rules"][1], "[]rulefmt.RuleNode")
            for index, item in enumerate(items, start=1):
                rule = self.rule(item, name, index)
                if rule is not None:
                    rules.append(rule)
        return RuleGroup(
            name=name,
            file=self.file,
            rules=tuple(rules),
            interval_s=self.duration(fields, "interval"),
            limit=limit,
            query_offset_s=self.duration(fields, "query_offset"),
            labels=_values(labels),
            line=line_of(node),
        )

    def rule(self, node: Node, group: str, index: int) -> Rule | None:
        fields = self.decoder.fields(node, "rulefmt.RuleNode", _RULE_FIELDS)
        if fields is None:
            return None
        line = line_of(node)
        record, alert = self.text(fields, "record"), self.text(fields, "alert")
        name_line = self.line(fields, "record", self.line(fields, "alert", line))
        where = f'group "{group}", rule {index}, "{alert or record}"'
        if record and alert:
            self.problem(name_line, f"{where}: only one of 'record' and 'alert' must be set")
        elif not record and not alert:
            self.problem(name_line, f"{where}: one of 'record' or 'alert' must be set")
        expr = self.text(fields, "expr")
        expr_line = self.line(fields, "expr", line, value=True)
        if not expr:
            self.problem(expr_line, f"{where}: field 'expr' must be set in rule")
        else:
            try:
                parse_promql(expr)
            except QuerySyntaxError as exc:
                self.problem(expr_line, f"{where}: could not parse expression: {exc}")
        for_s = self.duration(fields, "for") or 0.0
        keep_s = self.duration(fields, "keep_firing_for") or 0.0
        labels = self.labels(fields, "labels", where)
        annotations = self.annotations(fields, where)
        if record:
            if annotations:
                self.problem(name_line, f"{where}: invalid field 'annotations' in recording rule")
            if for_s:
                self.problem(name_line, f"{where}: invalid field 'for' in recording rule")
            if keep_s:
                self.problem(
                    name_line, f"{where}: invalid field 'keep_firing_for' in recording rule"
                )
            if not _METRIC_NAME.fullmatch(record):
                self.problem(name_line, f"{where}: invalid recording rule name: {record}")
        if alert:
            self.templates(labels, "label", alert, where)
            self.templates(annotations, "annotation", alert, where)
        if record:
            return RecordingRule(record, expr, _values(labels), file=self.file, line=line)
        return AlertingRule(
            alert,
            expr,
            for_s,
            keep_s,
            _values(labels),
            _values(annotations),
            file=self.file,
            line=line,
        )

    # -- fields ---------------------------------------------------------------------

    def text(self, fields: dict[str, tuple[Node, Node]], name: str) -> str:
        if name not in fields:
            return ""
        return self.decoder.string(fields[name][1]) or ""

    @staticmethod
    def line(
        fields: dict[str, tuple[Node, Node]], name: str, default: int, *, value: bool = False
    ) -> int:
        if name not in fields:
            return default
        return line_of(fields[name][1 if value else 0])

    def duration(self, fields: dict[str, tuple[Node, Node]], name: str) -> float | None:
        """Seconds in a Prometheus duration field; None when absent or null."""
        if name not in fields or self.decoder.is_null(fields[name][1]):
            return None
        node = fields[name][1]
        text = self.decoder.string(node)
        if text is None:
            return None
        if text == "":
            self.decoder.problem(node, "empty duration string")
            return None
        ms = duration_ms(text)
        if ms is None:
            self.decoder.problem(node, f'not a valid duration string: "{text}"')
            return None
        if ms > _INT64_MAX:
            self.decoder.problem(node, "duration out of range")
            return None
        return ms / 1000.0

    def string_map(
        self, fields: dict[str, tuple[Node, Node]], name: str
    ) -> dict[str, tuple[str, Node]]:
        """``{key: (value, key node)}`` of a ``map[string]string`` field."""
        if name not in fields:
            return {}
        return self.decoder.string_map(fields[name][1]) or {}

    def labels(
        self, fields: dict[str, tuple[Node, Node]], name: str, where: str
    ) -> dict[str, tuple[str, Node]]:
        entries = self.string_map(fields, name)
        for key, (_, node) in entries.items():
            if not _LABEL_NAME.fullmatch(key) or key == "__name__":
                self.problem(line_of(node), f"{where}: invalid label name: {key}")
        return entries

    def annotations(
        self, fields: dict[str, tuple[Node, Node]], where: str
    ) -> dict[str, tuple[str, Node]]:
        entries = self.string_map(fields, "annotations")
        for key, (_, node) in entries.items():
            if not _LABEL_NAME.fullmatch(key):
                self.problem(line_of(node), f"{where}: invalid annotation name: {key}")
        return entries

    def templates(
        self, entries: dict[str, tuple[str, Node]], kind: str, alert: str, where: str
    ) -> None:
        for key, (value, node) in entries.items():
            reason = _template_problem(value, f"__alert_{alert}")
            if reason is not None:
                self.problem(line_of(node), f'{where}: {kind} "{key}": {reason}')


def _values(entries: dict[str, tuple[str, Node]]) -> dict[str, str]:
    return {key: value for key, (value, _) in entries.items()}


def _template_problem(text: str, name: str) -> str | None:
    try:
        template.check(text, name=name)
    except TemplateError as exc:
        return str(exc)
    except NotImplementedError:  # the template engine is not there yet
        return None
    return None


__all__ = ["check_command", "duplicate_rules", "load_rule_files", "parse_rule_file"]
