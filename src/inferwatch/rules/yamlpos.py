"""YAML read the way Go's ``gopkg.in/yaml.v3`` decodes it into typed structs, with lines.

Prometheus reads rule files with yaml.v3 in strict mode (unknown fields are errors) and
only looks at the first document of the stream. This module gives the rule file loader
the same view: :func:`first_document` composes the first document (PyYAML nodes carry
their position), and :class:`Decoder` turns nodes into strings, integers, maps and lists
with yaml.v3's rules (a scalar of any type decodes into a string as written; ``null`` is
the zero value; duplicate mapping keys and unknown fields are errors), recording every
problem as ``(line, reason)`` in yaml.v3's words instead of stopping at the first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_T = TypeVar("_T")

_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = frozenset(
    {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF"}
    | {".nan", ".NaN", ".NAN"}
)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INT64_MAX = 2**63 - 1


class YamlSyntaxError(Exception):
    """The text is not YAML; ``line`` is 1-based (0 when unknown)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line = line
        self.reason = reason


def first_document(text: str) -> Node | None:
    """The root node of the first YAML document in ``text``, or None for an empty stream.

    Later documents are not read, as yaml.v3's ``Decoder.Decode`` called once does not
    read them. Raises :class:`YamlSyntaxError` when the first document does not parse.
    """
    try:
        return _compose_first(text)
    except YamlSyntaxError as exc:
        # yaml.v3 takes a tab after "key:" as a separator; PyYAML refuses it.
        if "'\\t'" not in exc.reason:
            raise
        retry = _TAB_AFTER_KEY.sub(lambda m: m.group(1) + " " * len(m.group(2)), text)
        if retry == text:
            raise
        return _compose_first(retry)


_TAB_AFTER_KEY = re.compile(r"(?m)^([ ]*(?:- )*[^\s#'\"\t][^:\n]*:)([ \t]*\t[ \t]*)(?=\S)")


def _compose_first(text: str) -> Node | None:
    loader = yaml.SafeLoader(text)
    try:
        if not loader.check_node():
            return None
        start = loader.peek_event()  # type: ignore[no-untyped-call]
        version = getattr(start, "version", None)
        if version is not None and tuple(version) != (1, 1):
            line = int(start.start_mark.line) + 1
            raise YamlSyntaxError(line, "yaml: found incompatible YAML document")
        return loader.get_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "<stream end>" in str(exc.problem):
            mark = exc.context_mark  # where the unclosed thing opened, not the file's end
        line = int(mark.line) + 1 if mark is not None else 0
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        raise YamlSyntaxError(line, f"yaml: {reason}") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(0, f"yaml: {exc}") from None
    finally:
        loader.dispose()


def line_of(node: Node) -> int:
    """The 1-based line where ``node`` starts."""
    return int(node.start_mark.line) + 1


def short_tag(node: Node) -> str:
    """The tag yaml.v3 resolves for ``node`` (``!!str``, ``!!int``, ``!!map``, ...)."""
    if isinstance(node, MappingNode):
        return "!!map"
    if isinstance(node, SequenceNode):
        return "!!seq"
    if not isinstance(node, ScalarNode) or node.style is not None:
        return "!!str"
    value = str(node.value)
    if value in _NULL:
        return "!!null"
    if value in _BOOL:
        return "!!bool"
    if go_int(value) is not None:
        return "!!int"
    if value in _SPECIAL_FLOAT or _FLOAT.fullmatch(value):
        return "!!float"
    return "!!str"


def go_int(value: str) -> int | None:
    """``value`` as Go's ``strconv.ParseInt(s, 0, 64)`` reads it after yaml.v3 drops
    underscores (``0x1F``, ``0o17``, ``017``, ``0b101``, ``1_000``), or None."""
    plain = value.replace("_", "")
    sign, digits = (plain[0], plain[1:]) if plain[:1] in ("+", "-") else ("", plain)
    if not digits:
        return None
    base = 10
    if digits[:2] in ("0x", "0X", "0o", "0O", "0b", "0B"):
        base = {"x": 16, "o": 8, "b": 2}[digits[1].lower()]
        digits = digits[2:]
    elif len(digits) > 1 and digits[0] == "0":
        base, digits = 8, digits[1:]
    try:
        number = int(sign + digits, base) if digits and digits.isalnum() else None
    except ValueError:
        return None
    if number is None or not -(2**63) <= number <= _INT64_MAX:
        return None
    return number


class Decoder:
    """Decodes nodes into Python values as yaml.v3 decodes them into Go types.

    Every problem is appended to :attr:`problems` as ``(line, reason)``; the methods
    return None (or an empty value) where a node cannot be decoded, so one pass reports
    everything that is wrong.
    """

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []

    def problem(self, node: Node, reason: str) -> None:
        """Record ``reason`` at ``node``'s line."""
        self.problems.append((line_of(node), reason))

    def type_error(self, node: Node, into: str) -> None:
        """Record yaml.v3's ``cannot unmarshal !!tag `value` into TYPE``."""
        tag = short_tag(node)
        shown = ""
        if tag not in ("!!seq", "!!map"):
            value = str(node.value)
            shown = f" `{value[:7]}...`" if len(value) > 10 else f" `{value}`"
        self.problem(node, f"cannot unmarshal {tag}{shown} into {into}")

    def is_null(self, node: Node) -> bool:
        """Whether ``node`` is a plain ``null`` (decodes to the zero value)."""
        return isinstance(node, ScalarNode) and short_tag(node) == "!!null"

    def string(self, node: Node) -> str | None:
        """A scalar as written (any type), ``""`` for null; None for a list or map."""
        if isinstance(node, ScalarNode):
            return "" if self.is_null(node) else str(node.value)
        self.type_error(node, "string")
        return None

    def integer(self, node: Node) -> int | None:
        """An integer; a float is truncated as yaml.v3 does; null is 0."""
        if self.is_null(node):
            return 0
        tag = short_tag(node)
        value = str(node.value) if isinstance(node, ScalarNode) else ""
        if tag == "!!int":
            return go_int(value)
        if tag == "!!float" and value not in _SPECIAL_FLOAT:
            number = float(value)
            if -(2**63) <= number <= _INT64_MAX:
                return int(number)
        self.type_error(node, "int")
        return None

    def sequence(self, node: Node, into: str) -> list[Node]:
        """The non-null items of a list; null is an empty list."""
        if self.is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.type_error(node, into)
            return []
        return [item for item in node.value if not self.is_null(item)]

    def pairs(self, node: Node, into: str) -> list[tuple[Node, Node]] | None:
        """The key/value nodes of a mapping, merge keys (``<<: *anchor``) applied and
        duplicate keys reported; None (after a type error) when ``node`` is no mapping."""
        if self.is_null(node):
            return []
        if not isinstance(node, MappingNode):
            self.type_error(node, into)
            return None
        pairs = _merged(node)
        seen: dict[str, int] = {}
        unique: list[tuple[Node, Node]] = []
        for key, value in pairs:
            name = str(key.value) if isinstance(key, ScalarNode) else ""
            if name in seen:
                self.problem(key, f'mapping key "{name}" already defined at line {seen[name]}')
                continue
            seen.setdefault(name, line_of(key))
            unique.append((key, value))
        return unique

    def fields(
        self, node: Node, into: str, known: Collection[str]
    ) -> dict[str, tuple[Node, Node]] | None:
        """A mapping decoded into a struct: ``{field: (key node, value node)}``; keys
        not in ``known`` are reported as ``field X not found in type INTO``."""
        pairs = self.pairs(node, into)
        if pairs is None:
            return None
        out: dict[str, tuple[Node, Node]] = {}
        for key, value in pairs:
            name = self.string(key)
            if name is None:
                continue
            if name not in known:
                self.problem(key, f"field {name} not found in type {into}")
            elif name not in out:
                out[name] = (key, value)
        return out

    def string_map(self, node: Node) -> dict[str, tuple[str, Node]] | None:
        """A ``map[string]string``: ``{key: (value, key node)}``; null keys are skipped."""
        pairs = self.pairs(node, "map[string]string")
        if pairs is None:
            return None
        out: dict[str, tuple[str, Node]] = {}
        for key, value in pairs:
            if self.is_null(key):
                continue
            name, text = self.string(key), self.string(value)
            if name is not None and text is not None and name not in out:
                out[name] = (text, key)
        return out


def _merged(node: MappingNode) -> list[tuple[Node, Node]]:
    """``node``'s pairs with ``<<`` merges expanded; explicit keys win over merged ones."""
    own: list[tuple[Node, Node]] = []
    merged: list[tuple[Node, Node]] = []
    for key, value in node.value:
        if key.tag == _MERGE_TAG and isinstance(key, ScalarNode) and key.style is None:
            sources = value.value if isinstance(value, SequenceNode) else [value]
            for source in sources:
                if isinstance(source, MappingNode):
                    merged.extend(_merged(source))
        else:
            own.append((key, value))
    names = {str(k.value) for k, _ in own if isinstance(k, ScalarNode)}
    taken: set[str] = set()
    result: list[tuple[Node, Node]] = []
    for key, value in merged:
        name = str(key.value) if isinstance(key, ScalarNode) else ""
        if name not in names and name not in taken:
            taken.add(name)
            result.append((key, value))
    return result + own


def config_document(text: str, file: str) -> Node | None:
    """The first YAML document of a config file (None when empty); a syntax error
    raises :class:`~inferwatch.ConfigError` as ``file:line: reason``."""
    from inferwatch._errors import ConfigError

    try:
        return first_document(text)
    except YamlSyntaxError as exc:
        raise ConfigError(
            f"{file}:{exc.line}: {exc.reason}" if exc.line else f"{file}: {exc.reason}"
        ) from None


class FileProblems:
    """What reading one YAML config file found wrong: the :class:`Decoder`'s problems and
    the reader's own (:meth:`problem`), reported together as ``file:line: field: reason``
    in line order. Readers of probe and guard files build on it."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.decoder = Decoder()
        self.own: list[tuple[int, str, str, object]] = []

    def problem(self, node: Node, name: str, reason: str, value: object) -> None:
        """Note a problem of field ``name`` (with its offending ``value``) at ``node``."""
        self.own.append((line_of(node), name, reason, value))

    def problems(self) -> list[tuple[str, str | None, object]]:
        """``(message, field, value)`` for every problem, in line order."""
        found: list[tuple[int, str, str | None, object]] = [
            (line, f"{self.file}:{line}: {reason}", None, None)
            for line, reason in self.decoder.problems
        ]
        found.extend(
            (line, f"{self.file}:{line}: {name}: {reason}", name, value)
            for line, name, reason, value in self.own
        )
        found.sort(key=lambda p: p[0])
        return [(message, name, value) for _, message, name, value in found]

    def raise_if_any(self) -> None:
        """Raise :class:`~inferwatch.ConfigError` listing every problem (field and value
        of the first), if there is one."""
        from inferwatch._errors import ConfigError

        problems = self.problems()
        if problems:
            first = problems[0]
            raise ConfigError("\n".join(p[0] for p in problems), field=first[1], value=first[2])

    def named_list(
        self,
        root: Node,
        top_fields: Collection[str],
        noun: str,
        item: Callable[[str, Node], _T | None],
        name_of: Callable[[_T], str],
    ) -> list[_T]:
        """The items of the file's ``<noun>s:`` list, each read by ``item(where, node)``,
        with a problem for a missing list and for a name given twice."""
        key = f"{noun}s"
        top = self.decoder.fields(root, f"{noun} file", top_fields)
        if top is None:
            return []
        if key not in top:
            self.problem(root, key, f"a {noun} file needs a '{key}:' list", None)
            return []
        out: list[_T] = []
        seen: dict[str, int] = {}
        for i, node in enumerate(self.decoder.sequence(top[key][1], f"[]{noun}")):
            value = item(f"{key}[{i}]", node)
            if value is None:
                continue
            name = name_of(value)
            if name in seen:
                self.problem(
                    node,
                    f"{key}[{i}].name",
                    f"duplicate {noun} name {name!r} (first at line {seen[name]})",
                    name,
                )
                continue
            seen[name] = line_of(node)
            out.append(value)
        return out
