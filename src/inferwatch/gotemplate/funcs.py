"""The builtin functions of Go's ``text/template`` (``and``, ``eq``, ``index``, ...).

Each raises a plain exception on bad input; the executor reports it as Go does:
``error calling eq: incompatible types for comparison``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sized
from typing import Any
from urllib.parse import quote_plus

from inferwatch.gotemplate.gofmt import go_sprint, go_sprintf, go_sprintln, go_str, type_name
from inferwatch.gotemplate.lexer import is_print


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, "", nil and empty collections are false."""
    if value is None:
        return False
    kind = type(value)
    if kind is bool:
        return bool(value)
    if kind is int or kind is float:
        return bool(value != 0)
    if isinstance(value, (str, Sized)):
        return len(value) > 0
    if isinstance(value, (int, float)):
        return value != 0
    return True


def _and(first: Any, *rest: Any) -> Any:
    """The first empty argument, or the last argument."""
    if not truth(first):
        return first
    for arg in rest:
        if not truth(arg):
            return arg
    return rest[-1] if rest else first


def _or(first: Any, *rest: Any) -> Any:
    """The first non-empty argument, or the last argument."""
    if truth(first):
        return first
    for arg in rest:
        if truth(arg):
            return arg
    return rest[-1] if rest else first


def _not(arg: Any) -> bool:
    return not truth(arg)


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())
    if isinstance(item, Sized) and not isinstance(item, (int, float)):
        return len(item)
    if item is None:
        raise ValueError("len of nil pointer")
    raise ValueError(f"len of type {type_name(item)}")


def _int_index(index: Any, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        if index is None:
            raise ValueError(f"cannot index {what} with nil")
        raise ValueError(f"cannot index {what} with type {type_name(index)}")
    return index


def _index(item: Any, *indices: Any) -> Any:
    """``index x 1 2`` is ``x[1][2]``; a missing map key gives the empty string."""
    if item is None:
        raise ValueError("index of untyped nil")
    for index in indices:
        if isinstance(item, Mapping):
            item = item.get(index, "")
        elif isinstance(item, (list, tuple, str)):
            position = _int_index(index, "slice/array")
            if isinstance(item, str):
                data = item.encode()
                if not 0 <= position < len(data):
                    raise ValueError(f"index out of range: {position}")
                item = data[position]
                continue
            if not 0 <= position < len(item):
                raise ValueError(f"index out of range: {position}")
            item = item[position]
        elif item is None:
            raise ValueError("index of nil pointer")
        else:
            raise ValueError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indices: Any) -> Any:
    """``slice x 1 2`` is ``x[1:2]``."""
    if item is None:
        raise ValueError("slice of untyped nil")
    if not isinstance(item, (list, tuple, str)):
        raise ValueError(f"can't slice item of type {type_name(item)}")
    if len(indices) > 3:
        raise ValueError(f"too many slice indexes: {len(indices)}")
    if len(indices) == 3 and isinstance(item, str):
        raise ValueError("cannot 3-index slice a string")
    size = len(item.encode()) if isinstance(item, str) else len(item)
    bounds = [0, size, size]
    for i, index in enumerate(indices):
        position = _int_index(index, "slice/array")
        if not 0 <= position <= size:
            raise ValueError(f"index out of range: {position}")
        bounds[i] = position
    if bounds[0] > bounds[1]:
        raise ValueError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    if len(indices) == 3 and bounds[1] > bounds[2]:
        raise ValueError(f"invalid slice index: {bounds[1]} > {bounds[2]}")
    if isinstance(item, str):
        return item.encode()[bounds[0] : bounds[1]].decode(errors="replace")
    return item[bounds[0] : bounds[1]]


def _kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(first: Any, *others: Any) -> bool:
    """``eq a b c`` is ``a == b || a == c``; only values of one basic kind compare."""
    if not others:
        raise ValueError("missing argument for comparison")
    kind = _kind(first)
    for other in others:
        other_kind = _kind(other)
        if kind != other_kind:
            if first is not None and other is not None:
                raise ValueError("incompatible types for comparison")
            continue
        if kind == "other":
            for value in (first, other):
                if isinstance(value, (list, dict)) or not isinstance(value, _Hashable):
                    raise ValueError(f"non-comparable type {go_str(value)}: {type_name(value)}")
        if first == other:
            return True
    return False


class _Hashable:
    """Anything with ``__hash__`` (Go's comparable types)."""

    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        return getattr(other, "__hash__", None) is not None


def _ne(first: Any, second: Any) -> bool:
    return not _eq(first, second)


def _lt(first: Any, second: Any) -> bool:
    kind, other_kind = _kind(first), _kind(second)
    if kind in ("invalid", "other") or other_kind in ("invalid", "other"):
        raise ValueError("invalid type for comparison")
    if kind != other_kind:
        raise ValueError("incompatible types for comparison")
    if kind == "bool":
        raise ValueError("invalid type for comparison")
    return bool(first < second)


def _le(first: Any, second: Any) -> bool:
    return _lt(first, second) or _eq(first, second)


def _gt(first: Any, second: Any) -> bool:
    return not _le(first, second)


def _ge(first: Any, second: Any) -> bool:
    return not _lt(first, second)


def _args_text(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return go_sprint(*args)


_HTML = {"\0": "\ufffd", '"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_JS = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "<": "\\u003C",
    ">": "\\u003E",
    "&": "\\u0026",
    "=": "\\u003D",
}


def _html(*args: Any) -> str:
    """The arguments' text with HTML's special characters escaped."""
    text = _args_text(args)
    return "".join(_HTML.get(c, c) for c in text)


def _js(*args: Any) -> str:
    """The arguments' text escaped for a JavaScript string."""
    out = []
    for ch in _args_text(args):
        if ch in _JS:
            out.append(_JS[ch])
        elif ch < " " or not is_print(ch):
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    """The arguments' text escaped for a URL query."""
    return quote_plus(_args_text(args), safe="")


def _printf(fmt: Any, *args: Any) -> str:
    if not isinstance(fmt, str):
        raise ValueError(f"wrong type for value; expected string; got {type_name(fmt)}")
    return go_sprintf(fmt, *args)


def _call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise ValueError("call of nil")
    if not callable(fn):
        raise ValueError(f"non-function of type {type_name(fn)}")
    return fn(*args)


BUILTINS: Mapping[str, Callable[..., Any]] = {
    "and": _and,
    "call": _call,
    "html": _html,
    "index": _index,
    "slice": _slice,
    "js": _js,
    "len": _len,
    "not": _not,
    "or": _or,
    "print": go_sprint,
    "printf": _printf,
    "println": go_sprintln,
    "urlquery": _urlquery,
    "eq": _eq,
    "ge": _ge,
    "gt": _gt,
    "le": _le,
    "lt": _lt,
    "ne": _ne,
}
"""Go's builtin template functions, by name."""
