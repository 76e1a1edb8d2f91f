"""Metric relabeling with Prometheus's semantics.

inferwatch supports five of the actions of ``metric_relabel_configs``: ``keep``,
``drop``, ``replace``, ``labeldrop`` and ``labelkeep``. Regular expressions are fully
anchored (``regex: a|b`` matches ``a`` or ``b``, not ``abc``), and ``\\w``, ``\\d``,
``\\s`` match ASCII only, as in Go's RE2. Replacement and target-label templates use
Go's syntax: ``$1``, ``${1}``, ``$name``, ``${name}``, and ``$$`` for a literal dollar;
a group that did not take part in the match (or does not exist) expands to ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from inferwatch._errors import ConfigError

RelabelAction = Literal["keep", "drop", "replace", "labeldrop", "labelkeep"]
ACTIONS: tuple[RelabelAction, ...] = ("keep", "drop", "replace", "labeldrop", "labelkeep")

#: A compiled template: literal text, or a reference to a group by number or name.
_Part: TypeAlias = str | int | tuple[str]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TARGET_TEMPLATE = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+", re.ASCII)


def compile_template(template: str) -> tuple[_Part, ...]:
    """Split a Go ``Regexp.Expand`` template into literal text and group references."""
    parts: list[_Part] = []
    text: list[str] = []
    rest = template
    while rest:
        before, dollar, after = rest.partition("$")
        text.append(before)
        if not dollar:
            break
        if after.startswith("$"):
            text.append("$")
            rest = after[1:]
            continue
        ref, rest = _extract(after)
        if ref is None:
            text.append("$")
            continue
        parts.extend(["".join(text), ref])
        text = []
    parts.append("".join(text))
    return tuple(p for p in parts if p != "")


def _extract(text: str) -> tuple[int | tuple[str] | None, str]:
    """Go's ``extract``: the group named after ``$`` and the remaining template."""
    brace = text.startswith("{")
    body = text[1:] if brace else text
    i = 0
    while i < len(body) and (body[i].isalpha() or body[i].isdecimal() or body[i] == "_"):
        i += 1
    if i == 0:
        return None, text
    name = body[:i]
    if brace:
        if i >= len(body) or body[i] != "}":
            return None, text
        i += 1
    rest = body[i:]
    if name.isascii() and name.isdigit() and not (name[0] == "0" and len(name) > 1):
        number = int(name)
        if number < 100_000_000:
            return number, rest
    return (name,), rest


def expand(parts: tuple[_Part, ...], match: re.Match[str]) -> str:
    """Fill a compiled template with the groups of ``match`` (missing groups give ``""``)."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        key: int | str = part if isinstance(part, int) else part[0]
        try:
            value = match.group(key)
        except IndexError:  # no such group: Go expands it to ""
            value = None
        if value:
            out.append(value)
    return "".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class RelabelConfig:
    """One ``metric_relabel_configs`` entry, validated like Prometheus does.

    ``replace`` joins the values of ``source_labels`` with ``separator``, and if
    ``regex`` matches the result, sets ``target_label`` to ``replacement`` (an empty
    result deletes the label). ``keep``/``drop`` keep or drop the series when ``regex``
    matches the joined value. ``labeldrop``/``labelkeep`` drop the labels whose *names*
    match (or do not match) ``regex``; they take no other field.
    """

    source_labels: tuple[str, ...] = ()
    separator: str = ";"
    regex: str = "(.*)"
    target_label: str = ""
    replacement: str = "$1"
    action: RelabelAction = "replace"
    _pattern: re.Pattern[str] = field(init=False, compare=False, repr=False)
    _target: tuple[_Part, ...] = field(init=False, compare=False, repr=False)
    _replacement: tuple[_Part, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(
                f"unsupported relabel action {self.action!r}; inferwatch supports "
                f"{', '.join(ACTIONS)}",
                field="action",
                value=self.action,
            )
        try:
            pattern = re.compile(f"^(?:{self.regex})\\Z", re.ASCII)
        except re.error as exc:
            raise ConfigError(
                f"invalid regular expression: {exc.msg}", field="regex", value=self.regex
            ) from None
        if self.action == "replace":
            self._check_target()
        if self.action in ("labeldrop", "labelkeep") and (
            self.source_labels
            or self.target_label
            or self.separator != ";"
            or self.replacement != "$1"
        ):
            raise ConfigError(
                f"{self.action} action requires only 'regex', and no other fields",
                field="action",
                value=self.action,
            )
        object.__setattr__(self, "_pattern", pattern)
        object.__setattr__(self, "_target", compile_template(self.target_label))
        object.__setattr__(self, "_replacement", compile_template(self.replacement))

    def _check_target(self) -> None:
        if not self.target_label:
            raise ConfigError(
                "relabel configuration for replace action requires 'target_label' value",
                field="target_label",
                value=self.target_label,
            )
        template = "$" in self.target_label
        ok = (
            _TARGET_TEMPLATE.fullmatch(self.target_label)
            if template
            else _LABEL_NAME.fullmatch(self.target_label)
        )
        if not ok:
            raise ConfigError(
                f"{self.target_label!r} is invalid 'target_label' for replace action",
                field="target_label",
                value=self.target_label,
            )

    def apply(self, labels: dict[str, str]) -> bool:
        """Apply this rule to ``labels`` in place; ``False`` means drop the series."""
        action = self.action
        if action == "labeldrop" or action == "labelkeep":
            keep_matching = action == "labelkeep"
            for name in list(labels):
                if (self._pattern.match(name) is not None) != keep_matching:
                    del labels[name]
            return True
        value = self.separator.join(labels.get(name, "") for name in self.source_labels)
        match = self._pattern.match(value)
        if action == "keep":
            return match is not None
        if action == "drop":
            return match is None
        if match is None:
            return True
        target = expand(self._target, match)
        if not _LABEL_NAME.fullmatch(target):
            return True
        result = expand(self._replacement, match)
        if result:
            labels[target] = result
        else:
            labels.pop(target, None)
        return True


def relabel(labels: Mapping[str, str], configs: Iterable[RelabelConfig]) -> dict[str, str] | None:
    """``labels`` rewritten by ``configs`` in order, or ``None`` when a rule drops them.

    ``labels`` includes ``__name__``; the input mapping is not modified. Labels whose
    value ends up empty are removed, as Prometheus treats an empty value as no label.
    """
    out = {k: v for k, v in labels.items() if v != ""}
    for config in configs:
        if not config.apply(out):
            return None
    return out
