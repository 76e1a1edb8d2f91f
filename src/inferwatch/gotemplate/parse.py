"""Parsing template text into trees, following Go's ``text/template/parse``.

Error messages match Go's word for word (``template: name:3: function "foo" not
defined``), with the line of the token the parser was looking at.
"""

from __future__ import annotations

import re
from collections.abc import Container

from inferwatch._errors import TemplateError
from inferwatch.gotemplate import nodes as n
from inferwatch.gotemplate.lexer import T, Token, go_quote, lex

_OPERAND_START = frozenset(
    {
        T.BOOL,
        T.CHAR_CONSTANT,
        T.DOT,
        T.FIELD,
        T.IDENTIFIER,
        T.NUMBER,
        T.NIL,
        T.RAW_STRING,
        T.STRING,
        T.VARIABLE,
        T.LEFT_PAREN,
    }
)
_LEGACY_OCTAL = re.compile(r"[+-]?0[0-7_]+")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def parse_trees(
    text: str, name: str, funcs: Container[str], *, parse_name: str | None = None
) -> dict[str, n.Tree]:
    """Parse ``text``: the main tree under ``name`` plus every ``define``/``block``.

    ``funcs`` holds the names of the functions the text may call (checked as Go does).
    """
    source = n.Source(parse_name if parse_name is not None else name, text)
    parser = _Parser(source, lex(text, break_ok="break" not in funcs), funcs)
    return parser.parse(name)


class _Parser:
    def __init__(self, source: n.Source, tokens: list[Token], funcs: Container[str]) -> None:
        self.source = source
        self.tokens = tokens
        self.funcs = funcs
        self.i = 0
        self.seen = 0
        self.trees: dict[str, n.Tree] = {}
        self.vars: list[tuple[str, int]] = [("$", 0)]
        self.slots = 1
        self.range_depth = 0
        self.action_line = 0

    # Token access, with Go's look-ahead semantics (the error line is the newest token's).
    def next(self) -> Token:
        token = self.tokens[self.i]
        if self.i > self.seen:
            self.seen = self.i
        if token.typ is not T.EOF and token.typ is not T.ERROR:
            self.i += 1
        else:
            self.i += 1
            self.tokens.append(token)
        return token

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Token:
        token = self.next()
        self.backup()
        return token

    def next_non_space(self) -> Token:
        while (token := self.next()).typ is T.SPACE:
            pass
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup()
        return token

    def errorf(self, message: str) -> TemplateError:
        line = self.tokens[self.seen].line
        return TemplateError(
            f"template: {self.source.name}:{line}: {message}", name=self.source.name, line=line
        )

    def unexpected(self, token: Token, context: str) -> TemplateError:
        if token.typ is T.ERROR:
            extra = ""
            if self.action_line and self.action_line != token.line:
                extra = f" in action started at {self.source.name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{token}{extra}")
        return self.errorf(f"unexpected {token} in {context}")

    def expect(self, typ: T, context: str) -> Token:
        token = self.next_non_space()
        if token.typ is not typ:
            raise self.unexpected(token, context)
        return token

    # Trees.
    def add(self, tree: n.Tree) -> None:
        old = self.trees.get(tree.name)
        if old is None or old.is_empty:
            self.trees[tree.name] = tree
        elif not tree.is_empty:
            raise self.errorf(f"template: multiple definition of template {_q(tree.name)}")

    def new_scope(self) -> tuple[list[tuple[str, int]], int, int]:
        saved = (self.vars, self.slots, self.range_depth)
        self.vars, self.slots, self.range_depth = [("$", 0)], 1, 0
        return saved

    def parse(self, name: str) -> dict[str, n.Tree]:
        root = n.ListNode(self.peek().pos)
        while self.peek().typ is not T.EOF:
            if self.peek().typ is T.LEFT_DELIM:
                start = self.i
                self.next()
                if self.next_non_space().typ is T.DEFINE:
                    self.definition()
                    continue
                self.i = start
            node = self.text_or_action()
            if isinstance(node, (n.End, n.Else)):
                raise self.errorf(f"unexpected {node}")
            root.nodes.append(node)
        self.add(n.Tree(name, self.source, root, self.slots))
        return self.trees

    def definition(self) -> None:
        context = "define clause"
        token = self.next_non_space()
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        name = self.unquote(token.val)
        self.expect(T.RIGHT_DELIM, context)
        saved = self.new_scope()
        body, end = self.item_list()
        if not isinstance(end, n.End):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(n.Tree(name, self.source, body, self.slots))
        self.vars, self.slots, self.range_depth = saved

    def item_list(self) -> tuple[n.ListNode, n.Node]:
        body = n.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ is not T.EOF:
            node = self.text_or_action()
            if isinstance(node, (n.End, n.Else)):
                return body, node
            body.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> n.Node:
        token = self.next_non_space()
        if token.typ is T.TEXT:
            return n.Text(token.pos, token.val)
        if token.typ is T.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        raise self.unexpected(token, "input")

    def action(self) -> n.Node:
        token = self.next_non_space()
        typ = token.typ
        if typ is T.BLOCK:
            return self.block()
        if typ is T.BREAK or typ is T.CONTINUE:
            word = "break" if typ is T.BREAK else "continue"
            after = self.next_non_space()
            if after.typ is not T.RIGHT_DELIM:
                raise self.unexpected(after, "{{" + word + "}}")
            if self.range_depth == 0:
                raise self.errorf("{{" + word + "}} outside {{range}}")
            return (
                n.Break(token.pos, token.line)
                if typ is T.BREAK
                else n.Continue(token.pos, token.line)
            )
        if typ is T.ELSE:
            peek = self.peek_non_space()
            if peek.typ in (T.IF, T.WITH):
                return n.Else(peek.pos, peek.line)
            end = self.expect(T.RIGHT_DELIM, "else")
            return n.Else(end.pos, end.line)
        if typ is T.END:
            return n.End(self.expect(T.RIGHT_DELIM, "end").pos)
        if typ in (T.IF, T.RANGE, T.WITH):
            return self.control(token.val)
        if typ is T.TEMPLATE:
            return self.template_call()
        self.backup()
        token = self.peek()
        return n.Action(token.pos, token.line, self.pipeline("command", T.RIGHT_DELIM))

    def control(self, kind: str) -> n.Branch:
        depth = len(self.vars)
        try:
            pipe = self.pipeline(kind, T.RIGHT_DELIM)
            if kind == "range":
                self.range_depth += 1
            body, end = self.item_list()
            if kind == "range":
                self.range_depth -= 1
            else_body: n.ListNode | None = None
            if isinstance(end, n.Else):
                if kind != "range" and self.peek().typ is _KEYWORD_OF[kind]:
                    self.next()
                    else_body = n.ListNode(end.pos, [self.control(kind)])
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, n.End):
                        raise self.errorf(f"expected end; found {end}")
            return n.Branch(kind, pipe.pos, pipe.line, pipe, body, else_body)
        finally:
            del self.vars[depth:]

    def template_name(self, token: Token, context: str) -> str:
        if token.typ not in (T.STRING, T.RAW_STRING):
            raise self.unexpected(token, context)
        return self.unquote(token.val)

    def template_call(self) -> n.TemplateCall:
        context = "template clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = None
        if self.next_non_space().typ is not T.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline(context, T.RIGHT_DELIM)
        return n.TemplateCall(token.pos, token.line, name, pipe)

    def block(self) -> n.TemplateCall:
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, T.RIGHT_DELIM)
        saved = self.new_scope()
        body, end = self.item_list()
        if not isinstance(end, n.End):
            raise self.errorf(f"unexpected {end} in {context}")
        self.add(n.Tree(name, self.source, body, self.slots))
        self.vars, self.slots, self.range_depth = saved
        return n.TemplateCall(token.pos, token.line, name, pipe)

    def declare(self, token: Token) -> n.Variable:
        variable = n.Variable(token.pos, [token.val], self.slots)
        self.slots += 1
        self.vars.append((token.val, variable.slot))
        return variable

    def pipeline(self, context: str, end: T) -> n.Pipe:
        token = self.peek_non_space()
        pipe = n.Pipe(token.pos, token.line)
        while (var := self.peek_non_space()).typ is T.VARIABLE:
            start = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.typ in (T.ASSIGN, T.DECLARE):
                pipe.is_assign = nxt.typ is T.ASSIGN
                self.next_non_space()
                if pipe.is_assign:
                    pipe.decls.append(n.Variable(var.pos, [var.val], self.lookup(var.val)))
                else:
                    pipe.decls.append(self.declare(var))
                break
            if nxt.typ is T.CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decls.append(self.declare(var))
                if context == "range" and len(pipe.decls) < 2:
                    if self.peek_non_space().typ in (T.VARIABLE, T.RIGHT_DELIM, T.RIGHT_PAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            self.i = start
            break
        while True:
            token = self.next_non_space()
            if token.typ is end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ in _OPERAND_START:
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: n.Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:]):
            if isinstance(cmd.args[0], (n.Bool, n.Dot, n.Nil, n.Number, n.String)):
                raise self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> n.Command:
        cmd = n.Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ is T.SPACE:
                continue
            if token.typ in (T.RIGHT_DELIM, T.RIGHT_PAREN):
                self.backup()
            elif token.typ is not T.PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> n.Node | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().typ is T.FIELD:
            pos = self.peek().pos
            fields: list[str] = []
            while self.peek().typ is T.FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, n.Field):
                return n.Field(pos, node.idents + fields)
            if isinstance(node, n.Variable):
                return n.Variable(pos, node.idents + fields, node.slot)
            if isinstance(node, (n.Bool, n.String, n.Number, n.Nil, n.Dot)):
                raise self.errorf(f"unexpected . after term {_q(str(node))}")
            return n.Chain(pos, node, fields)
        return node

    def term(self) -> n.Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ is T.IDENTIFIER:
            if token.val not in self.funcs:
                raise self.errorf(f"function {_q(token.val)} not defined")
            return n.Identifier(token.pos, token.val)
        if typ is T.DOT:
            return n.Dot(token.pos)
        if typ is T.NIL:
            return n.Nil(token.pos)
        if typ is T.VARIABLE:
            return self.use_var(token)
        if typ is T.FIELD:
            return n.Field(token.pos, [token.val[1:]])
        if typ is T.BOOL:
            return n.Bool(token.pos, token.val == "true")
        if typ is T.NUMBER or typ is T.CHAR_CONSTANT:
            return n.Number(token.pos, token.val, self.number(token))
        if typ is T.LEFT_PAREN:
            return self.pipeline("parenthesized pipeline", T.RIGHT_PAREN)
        if typ is T.STRING or typ is T.RAW_STRING:
            return n.String(token.pos, token.val, self.unquote(token.val))
        self.backup()
        return None

    def lookup(self, name: str) -> int:
        for var_name, slot in reversed(self.vars):
            if var_name == name:
                return slot
        return -1

    def use_var(self, token: Token) -> n.Variable:
        idents = token.val.split(".")
        slot = self.lookup(idents[0])
        if slot < 0:
            raise self.errorf(f"undefined variable {_q(idents[0])}")
        return n.Variable(token.pos, idents, slot)

    def number(self, token: Token) -> int | float:
        text = token.val
        if token.typ is T.CHAR_CONSTANT:
            value, tail = _unquote_char(text[1:], "'")
            if value is None or tail != "'":
                raise self.errorf(f"malformed character constant: {text}")
            return ord(value)
        if text.endswith("i"):
            raise self.errorf(f"complex constants are not supported: {_q(text)}")
        is_hex_int = (
            len(text) > 2 and text[0] == "0" and text[1] in "xX" and not (set(text) & set("pP"))
        )
        try:
            if _LEGACY_OCTAL.fullmatch(text):
                as_int = int(text.replace("_", ""), 8)
            else:
                as_int = int(text, 0)
        except ValueError:
            as_int = None
        if as_int is not None and not -(2**63) <= as_int < 2**64:
            as_int = None
        if as_int is not None and not (set(text) & set(".eEpP") and not is_hex_int):
            return as_int
        try:
            lowered = text.lower()
            number = float.fromhex(text.replace("_", "")) if "0x" in lowered else float(text)
        except ValueError:
            raise self.errorf(f"illegal number syntax: {_q(text)}") from None
        if not set(text) & set(".eEpP"):
            raise self.errorf(f"integer overflow: {_q(text)}")
        return number

    def unquote(self, quoted: str) -> str:
        text = go_unquote(quoted)
        if text is None:
            raise self.errorf("invalid syntax")
        return text


_KEYWORD_OF = {"if": T.IF, "with": T.WITH, "range": T.RANGE}


def _q(text: str) -> str:
    return go_quote(text)


def _unquote_char(text: str, quote: str) -> tuple[str | None, str]:
    """One (possibly escaped) character from the front of ``text``, and the rest."""
    if not text:
        return None, ""
    ch = text[0]
    if ch != "\\":
        if ch == quote:
            return None, text
        return ch, text[1:]
    if len(text) < 2:
        return None, ""
    esc = text[1]
    if esc in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[esc], text[2:]
    if esc == quote:
        return esc, text[2:]
    if esc in "xuU":
        size = {"x": 2, "u": 4, "U": 8}[esc]
        digits = text[2 : 2 + size]
        if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
            return None, ""
        code = int(digits, 16)
        if esc == "x":
            # Go's \xHH is a byte; a lone byte above 0x7f is not valid UTF-8 text here.
            return (chr(code) if code < 0x80 else "\ufffd"), text[2 + size :]
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None, ""
        return chr(code), text[2 + size :]
    if esc in "01234567":
        digits = text[1:4]
        if len(digits) != 3 or not all(c in "01234567" for c in digits):
            return None, ""
        code = int(digits, 8)
        if code > 0xFF:
            return None, ""
        return (chr(code) if code < 0x80 else "\ufffd"), text[4:]
    return None, ""


def go_unquote(quoted: str) -> str | None:
    """Go's ``strconv.Unquote`` for ``"..."`` and raw strings; None if invalid."""
    if len(quoted) < 2:
        return None
    if quoted[0] == "`":
        if quoted[-1] != "`" or "`" in quoted[1:-1]:
            return None
        return quoted[1:-1].replace("\r", "")
    if quoted[0] != '"' or quoted[-1] != '"':
        return None
    body = quoted[1:-1]
    if "\\" not in body:
        return None if '"' in body or "\n" in body else body
    out: list[str] = []
    while body:
        ch, body = _unquote_char(body, '"')
        if ch is None:
            return None
        out.append(ch)
    return "".join(out)
