"""Splitting template text into tokens, as Go's ``text/template/parse`` lexer does.

The tokens (and their error texts) follow Go's ``lex.go`` so that the parser can
report the same messages as Go (``unclosed action``, ``bad number syntax: "1x"``).
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass


class T(enum.IntEnum):
    """Token types; those after ``KEYWORD`` are keywords."""

    ERROR = enum.auto()
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}

LEFT = "{{"
RIGHT = "}}"
_SPACE = " \t\r\n"
_TERMINATORS = frozenset(" \t\r\n.,|:)(")


@dataclass(slots=True)
class Token:
    """One token: type, text, byte-free character offset and 1-based line."""

    typ: T
    val: str
    pos: int
    line: int

    def __str__(self) -> str:
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def go_quote(text: str) -> str:
    """``text`` as Go's ``strconv.Quote`` writes it."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x80 or is_print(ch):
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_QUOTE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def is_print(ch: str) -> bool:
    """Go's ``strconv.IsPrint``: letters, marks, numbers, punctuation, symbols, ASCII space."""
    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


def go_char_name(ch: str) -> str:
    """A character as Go's ``%#U`` writes it: ``U+0023 '#'``."""
    code = f"U+{ord(ch):04X}"
    return f"{code} '{ch}'" if is_print(ch) else code


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


def _has_left_trim(text: str, pos: int) -> bool:
    return text.startswith("-", pos) and pos + 1 < len(text) and text[pos + 1] in _SPACE


def _has_right_trim(text: str, pos: int) -> bool:
    return pos + 1 < len(text) and text[pos] in _SPACE and text[pos + 1] == "-"


def lex(text: str, *, break_ok: bool = True) -> list[Token]:
    """All tokens of ``text``, ending with an EOF or an ERROR token."""
    return _Lexer(text, break_ok).run()


class _Lexer:
    def __init__(self, text: str, break_ok: bool) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self.break_ok = break_ok
        self.tokens: list[Token] = []

    def emit(self, typ: T) -> None:
        val = self.text[self.start : self.pos]
        self.tokens.append(Token(typ, val, self.start, self.start_line))
        self.line += val.count("\n")
        self.start = self.pos
        self.start_line = self.line

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def error(self, message: str) -> bool:
        self.tokens.append(Token(T.ERROR, message, self.start, self.start_line))
        return False

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_right_delim(self) -> tuple[bool, bool]:
        if _has_right_trim(self.text, self.pos) and self.text.startswith(RIGHT, self.pos + 2):
            return True, True
        return self.text.startswith(RIGHT, self.pos), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _TERMINATORS or self.text.startswith(RIGHT, self.pos)

    def run(self) -> list[Token]:
        text = self.text
        while True:
            x = text.find(LEFT, self.pos)
            if x < 0:
                self.pos = len(text)
                if self.pos > self.start:
                    self.emit(T.TEXT)
                self.emit(T.EOF)
                return self.tokens
            if x > self.pos or x > self.start:
                self.pos = x
                end = x
                if _has_left_trim(text, x + len(LEFT)):
                    end = len(text[self.start : x].rstrip(_SPACE)) + self.start
                if end > self.start:
                    self.pos = end
                    self.emit(T.TEXT)
                self.pos = x
                self.ignore()
            if not self.left_delim():
                return self.tokens

    def left_delim(self) -> bool:
        text = self.text
        self.pos += len(LEFT)
        trim = _has_left_trim(text, self.pos)
        after = 2 if trim else 0
        if text.startswith("/*", self.pos + after):
            self.pos += after
            self.ignore()
            return self.comment()
        self.emit(T.LEFT_DELIM)
        self.pos += after
        self.ignore()
        self.paren_depth = 0
        return self.inside_action()

    def comment(self) -> bool:
        self.pos += 2
        x = self.text.find("*/", self.pos)
        if x < 0:
            return self.error("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.error("comment ends before closing delimiter")
        self.pos += (2 if trim else 0) + len(RIGHT)
        if trim:
            self.pos = len(self.text) - len(self.text[self.pos :].lstrip(_SPACE))
        self.ignore()
        return True

    def right_delim(self, trim: bool) -> bool:
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += len(RIGHT)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos = len(self.text) - len(self.text[self.pos :].lstrip(_SPACE))
            self.ignore()
        return True

    def inside_action(self) -> bool:
        text = self.text
        while True:
            delim, trim = self.at_right_delim()
            if delim:
                if self.paren_depth == 0:
                    return self.right_delim(trim)
                return self.error("unclosed left paren")
            ch = self.peek()
            if ch == "":
                return self.error("unclosed action")
            self.pos += 1
            if ch in _SPACE:
                self.pos -= 1
                while self.peek() in _SPACE and self.peek() != "":
                    self.pos += 1
                if _has_right_trim(text, self.pos - 1) and text.startswith(RIGHT, self.pos + 1):
                    self.pos -= 1
                    if self.pos == self.start:
                        continue
                self.emit(T.SPACE)
            elif ch == "=":
                self.emit(T.ASSIGN)
            elif ch == ":":
                if self.peek() != "=":
                    self.pos += 1
                    return self.error("expected :=")
                self.pos += 1
                self.emit(T.DECLARE)
            elif ch == "|":
                self.emit(T.PIPE)
            elif ch == '"':
                if not self.quote():
                    return False
            elif ch == "`":
                x = text.find("`", self.pos)
                if x < 0:
                    return self.error("unterminated raw quoted string")
                self.pos = x + 1
                self.emit(T.RAW_STRING)
            elif ch == "$":
                if not self.field_or_variable(T.VARIABLE):
                    return False
            elif ch == "'":
                if not self.char():
                    return False
            elif ch == "." and not ("0" <= self.peek() <= "9" and self.peek() != ""):
                if not self.field_or_variable(T.FIELD):
                    return False
            elif ch in "+-." or "0" <= ch <= "9":
                self.pos -= 1
                if not self.number():
                    return False
            elif _is_alnum(ch):
                self.pos -= 1
                if not self.identifier():
                    return False
            elif ch == "(":
                self.emit(T.LEFT_PAREN)
                self.paren_depth += 1
            elif ch == ")":
                self.emit(T.RIGHT_PAREN)
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    return self.error("unexpected right paren")
            elif ord(ch) < 0x80 and ch.isprintable():
                self.emit(T.CHAR)
            else:
                return self.error(f"unrecognized character in action: {go_char_name(ch)}")

    def quote(self) -> bool:
        return self.quoted('"', T.STRING, "unterminated quoted string")

    def char(self) -> bool:
        return self.quoted("'", T.CHAR_CONSTANT, "unterminated character constant")

    def quoted(self, close: str, typ: T, unterminated: str) -> bool:
        """Scan past a ``"..."`` or ``'...'`` literal (opening quote already read)."""
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                return self.error(unterminated)
            if ch == close:
                break
        self.emit(typ)
        return True

    def field_or_variable(self, typ: T) -> bool:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return True
        while (ch := self.peek()) != "" and _is_alnum(ch):
            self.pos += 1
        if not self.at_terminator():
            self.pos += 1
            return self.error(f"bad character {go_char_name(self.text[self.pos - 1])}")
        self.emit(typ)
        return True

    def identifier(self) -> bool:
        while (ch := self.peek()) != "" and _is_alnum(ch):
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            return self.error(f"bad character {go_char_name(self.peek())}")
        keyword = KEYWORDS.get(word)
        if keyword is not None and keyword is not T.DOT:
            if keyword in (T.BREAK, T.CONTINUE) and not self.break_ok:
                self.emit(T.IDENTIFIER)
            else:
                self.emit(keyword)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return True

    def accept(self, chars: str) -> bool:
        ch = self.peek()
        if ch != "" and ch in chars:
            self.pos += 1
            return True
        return False

    def accept_run(self, chars: str) -> None:
        while self.accept(chars):
            pass

    def number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        ch = self.peek()
        if ch != "" and _is_alnum(ch):
            self.pos += 1
            return self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
        if self.peek() in ("+", "-") and self.peek() != "":
            # Go lexes 1+2i as a complex constant; templates here have no complex numbers.
            self.pos += 1
            self.accept_run("0123456789_.eEi")
            return self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
        self.emit(T.NUMBER)
        return True
