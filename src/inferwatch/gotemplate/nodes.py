"""The parse tree of a Go template; ``str(node)`` writes it back as Go's ``String()``.

Positions are character offsets into the parsed text; :class:`Source` turns one into
the ``name:line:col`` that Go's error messages show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from inferwatch.gotemplate.lexer import go_quote


@dataclass(slots=True, frozen=True)
class Source:
    """The text one ``parse`` call read, and the name errors give it."""

    name: str
    text: str

    def location(self, pos: int) -> str:
        """``name:line:col`` as Go's ``ErrorContext`` (col counts bytes from 0)."""
        before = self.text[:pos]
        line = before.count("\n") + 1
        last = before.rfind("\n")
        column = before[last + 1 :] if last >= 0 else before
        return f"{self.name}:{line}:{len(column.encode())}"


@dataclass(slots=True)
class Text:
    pos: int
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class Dot:
    pos: int

    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class Nil:
    pos: int

    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class Bool:
    pos: int
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class Number:
    """A numeric constant; ``value`` is what it becomes when used (Go's idealConstant)."""

    pos: int
    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class String:
    pos: int
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class Identifier:
    """A function name."""

    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class Field:
    """``.A.B``: field or key names looked up on dot."""

    pos: int
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(slots=True)
class Variable:
    """``$x.A.B``; ``slot`` is the variable's place in the template's frame."""

    pos: int
    idents: list[str]
    slot: int = 0

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(slots=True)
class Chain:
    """``(pipeline).A.B``: fields looked up on the value of another term."""

    pos: int
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class Command:
    pos: int
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass(slots=True)
class Pipe:
    pos: int
    line: int
    is_assign: bool = False
    decls: list[Variable] = field(default_factory=list)
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        head = ", ".join(str(v) for v in self.decls) + " := " if self.decls else ""
        return head + " | ".join(str(c) for c in self.cmds)


@dataclass(slots=True)
class Action:
    pos: int
    line: int
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class ListNode:
    pos: int
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass(slots=True)
class Branch:
    """``if``, ``range`` or ``with`` (``kind``), with its body and ``else`` body."""

    kind: str
    pos: int
    line: int
    pipe: Pipe
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        text = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.body)
        if self.else_body is not None:
            text += "{{else}}" + str(self.else_body)
        return text + "{{end}}"


@dataclass(slots=True)
class TemplateCall:
    pos: int
    line: int
    name: str
    pipe: Pipe | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + go_quote(self.name) + "}}"
        return "{{template " + go_quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass(slots=True)
class Break:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{break}}"


@dataclass(slots=True)
class Continue:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{continue}}"


@dataclass(slots=True)
class End:
    pos: int

    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class Else:
    pos: int
    line: int

    def __str__(self) -> str:
        return "{{else}}"


Node = Union[  # noqa: UP007 - a runtime alias used in isinstance-free annotations only
    Text,
    Dot,
    Nil,
    Bool,
    Number,
    String,
    Identifier,
    Field,
    Variable,
    Chain,
    Command,
    Pipe,
    Action,
    ListNode,
    Branch,
    TemplateCall,
    Break,
    Continue,
    End,
    Else,
]


@dataclass(slots=True)
class Tree:
    """One named template: its body, where it came from, and how many variable slots."""

    name: str
    source: Source
    root: ListNode
    slots: int = 1

    @property
    def is_empty(self) -> bool:
        """Go's ``IsEmptyTree``: only whitespace text (and comments)."""
        return all(isinstance(n, Text) and not n.text.strip() for n in self.root.nodes)
