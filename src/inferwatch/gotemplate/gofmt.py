"""Go's ``fmt``: ``Sprintf`` verbs, and ``%v`` printing of Python values.

Python values stand for Go's: ``str`` is ``string``, ``int`` is ``int``, ``float`` is
``float64``, ``bool`` is ``bool``, ``None`` is ``nil``, a list or tuple is a slice and a
mapping is a map (printed with sorted keys, as Go's ``fmt`` does).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from inferwatch.gotemplate.lexer import go_quote


def type_name(value: Any) -> str:
    """The Go type name a Python value stands for (``float64``, ``[]interface {}``)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return "map[string]interface {}"
        return "map[interface {}]interface {}"
    return type(value).__name__


def _shortest(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(value)`` (non-zero, finite) and the decimal
    point position: ``value == 0.digits * 10**point``."""
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0") or "0"
    return stripped, exponent + len(digits)


def _exp_form(digits: str, point: int, upper: bool = False) -> str:
    power = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    e = "E" if upper else "e"
    return f"{mantissa}{e}{'-' if power < 0 else '+'}{abs(power):02d}"


def _fixed_form(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def format_float_g(value: float, upper: bool = False) -> str:
    """``value`` as Go's ``%v`` / ``%g`` (shortest digits) writes it: ``0.5``, ``1e+06``."""
    if value != value:
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, point = _shortest(value)
    exp = point - 1
    # Go's shortest %g/%v switches to an exponent below 1e-4 and from 1e+06 on
    # (strconv's eprec of 6; the 1e21 cut-off belongs to encoding/json, not fmt).
    if exp < -4 or exp >= 6:
        return sign + _exp_form(digits, point, upper)
    return sign + _fixed_form(digits, point)


def go_str(value: Any) -> str:
    """``value`` as Go's ``fmt.Sprint`` writes one operand (``%v``)."""
    if type(value) is str:
        return value
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_float_g(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_str(k)}:{go_str(v)}" for k, v in sorted_items(value)) + "]"
    return str(value)


def sorted_items(mapping: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """The items of ``mapping`` in Go's ``fmtsort`` order (keys ascending)."""
    try:
        return sorted(mapping.items(), key=lambda kv: kv[0])
    except TypeError:
        return sorted(mapping.items(), key=lambda kv: (type(kv[0]).__name__, str(kv[0])))


def go_sprint(*args: Any) -> str:
    """Go's ``fmt.Sprint``: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_str(arg))
    return "".join(out)


def go_sprintln(*args: Any) -> str:
    """Go's ``fmt.Sprintln``: operands joined by spaces, then a newline."""
    return " ".join(go_str(a) for a in args) + "\n"


@dataclass(slots=True)
class _Spec:
    minus: bool = False
    plus: bool = False
    sharp: bool = False
    zero: bool = False
    space: bool = False
    width: int | None = None
    prec: int | None = None


def _pad(text: str, spec: _Spec, zero_ok: bool = False) -> str:
    if spec.width is None or len(text) >= spec.width:
        return text
    fill = spec.width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero and zero_ok:
        if text[:1] in "+- ":
            return text[0] + "0" * fill + text[1:]
        return "0" * fill + text
    return " " * fill + text


def _bad(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(arg)}={go_str(arg)})"


def _sign(negative: bool, spec: _Spec) -> str:
    if negative:
        return "-"
    if spec.plus:
        return "+"
    if spec.space:
        return " "
    return ""


def _fmt_int(value: int, verb: str, spec: _Spec) -> str:
    if verb == "c":
        return _pad(chr(value) if 0 <= value <= 0x10FFFF else "\ufffd", spec)
    if verb == "q":
        ch = chr(value) if 0 <= value <= 0x10FFFF else "\ufffd"
        quoted = go_quote(ch)[1:-1].replace('\\"', '"').replace("'", "\\'")
        return _pad("'" + quoted + "'", spec)
    if verb == "U":
        text = f"U+{value:04X}"
        if spec.sharp and 0 <= value <= 0x10FFFF and chr(value).isprintable():
            text += f" '{chr(value)}'"
        return _pad(text, spec)
    magnitude = abs(value)
    if verb in "dv":
        digits = str(magnitude)
        prefix = ""
    elif verb == "x":
        digits, prefix = f"{magnitude:x}", "0x" if spec.sharp else ""
    elif verb == "X":
        digits, prefix = f"{magnitude:X}", "0X" if spec.sharp else ""
    elif verb == "o":
        digits, prefix = f"{magnitude:o}", "0" if spec.sharp else ""
    elif verb == "O":
        digits, prefix = f"{magnitude:o}", "0o"
    else:  # "b"
        digits, prefix = f"{magnitude:b}", "0b" if spec.sharp else ""
    if spec.prec is not None:
        if spec.prec == 0 and value == 0:
            digits = ""
        digits = digits.rjust(spec.prec, "0")
    elif spec.zero and not spec.minus and spec.width is not None:
        sign_len = len(_sign(value < 0, spec)) + len(prefix)
        digits = digits.rjust(spec.width - sign_len, "0")
    if prefix == "0" and digits.startswith("0"):
        prefix = ""
    return _pad(_sign(value < 0, spec) + prefix + digits, spec)


def _fmt_float(value: float, verb: str, spec: _Spec) -> str:
    if value != value:
        return _pad(("+" if spec.plus else " " if spec.space else "") + "NaN", spec)
    if value in (math.inf, -math.inf):
        sign = "-" if value < 0 else " " if spec.space and not spec.plus else "+"
        return _pad(sign + "Inf", spec)
    negative = math.copysign(1.0, value) < 0
    magnitude = abs(value)
    if verb in "vgG" and spec.prec is None:
        body = format_float_g(magnitude, upper=verb == "G")
        if spec.sharp and "." not in body:
            body = body.replace("e", ".e") if "e" in body else body + "."
    else:
        prec = 6 if spec.prec is None else spec.prec
        flag = "#" if spec.sharp else ""
        pyverb = {"v": "g", "F": "f"}.get(verb, verb)
        body = f"{magnitude:{flag}.{prec}{pyverb}}"
    text = _sign(negative, spec) + body
    return _pad(text, spec, zero_ok=True)


def _fmt_str(value: str, verb: str, spec: _Spec) -> str:
    if verb in "sv":
        if spec.prec is not None:
            value = value[: spec.prec]
        return _pad(value, spec)
    if verb == "q":
        if spec.sharp and "`" not in value and all(c.isprintable() or c == "\t" for c in value):
            return _pad("`" + value + "`", spec)
        quoted = go_quote(value)
        if spec.plus:
            quoted = "".join(
                c
                if ord(c) < 0x80
                else f"\\u{ord(c):04x}"
                if ord(c) < 0x10000
                else f"\\U{ord(c):08x}"
                for c in quoted
            )
        return _pad(quoted, spec)
    data = value.encode()
    if spec.prec is not None:
        data = data[: spec.prec]
    form = "{:02x}" if verb == "x" else "{:02X}"
    parts = [form.format(b) for b in data]
    prefix = ("0x" if verb == "x" else "0X") if spec.sharp else ""
    if spec.space:
        text = " ".join(prefix + p for p in parts)
    else:
        text = prefix + "".join(parts) if parts else ""
    return _pad(text, spec)


def format_arg(arg: Any, verb: str, spec: _Spec) -> str:
    """One operand formatted with one verb, or Go's ``%!verb(type=value)``."""
    if isinstance(arg, bool):
        if verb in "tv":
            return _pad("true" if arg else "false", spec)
        return _bad(verb, arg)
    if isinstance(arg, int):
        if verb in "bcdoOqxXUv":
            return _fmt_int(int(arg), verb, spec)
        return _bad(verb, arg)
    if isinstance(arg, float):
        if verb in "eEfFgGv":
            return _fmt_float(arg, verb, spec)
        return _bad(verb, arg)
    if isinstance(arg, str):
        if verb in "svqxX":
            return _fmt_str(arg, verb, spec)
        return _bad(verb, arg)
    if arg is None:
        return _pad("<nil>", spec) if verb == "v" else _bad(verb, arg)
    if isinstance(arg, (list, tuple)):
        return "[" + " ".join(format_arg(a, verb, spec) for a in arg) + "]"
    if isinstance(arg, Mapping):
        items = sorted_items(arg)
        return (
            "map["
            + " ".join(f"{format_arg(k, verb, spec)}:{format_arg(v, verb, spec)}" for k, v in items)
            + "]"
        )
    if verb in "svq":
        return format_arg(str(arg), verb, spec)
    return _bad(verb, arg)


def go_sprintf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf(fmt, args...)`` as Go writes it, errors in the text included
    (``%!d(string=x)``, ``%!s(MISSING)``, ``%!(EXTRA int=1)``)."""
    out: list[str] = []
    argi = 0
    reordered = False
    i = 0
    end = len(fmt)
    while i < end:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        spec = _Spec()
        while i < end and fmt[i] in "#0+- ":
            flag = fmt[i]
            if flag == "#":
                spec.sharp = True
            elif flag == "0":
                spec.zero = not spec.minus
            elif flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus, spec.zero = True, False
            else:
                spec.space = True
            i += 1
        argi, i, reordered = _arg_index(fmt, i, argi, len(args), reordered)
        bad_width = False
        if i < end and fmt[i] == "*":
            i += 1
            if (
                argi < len(args)
                and isinstance(args[argi], int)
                and not isinstance(args[argi], bool)
            ):
                spec.width = args[argi]
                if spec.width < 0:
                    spec.width, spec.minus, spec.zero = -spec.width, True, False
            else:
                bad_width = True
            argi += 1
        else:
            start = i
            while i < end and fmt[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(fmt[start:i])
        bad_prec = False
        if i < end and fmt[i] == ".":
            i += 1
            argi, i, reordered = _arg_index(fmt, i, argi, len(args), reordered)
            if i < end and fmt[i] == "*":
                i += 1
                if (
                    argi < len(args)
                    and isinstance(args[argi], int)
                    and not isinstance(args[argi], bool)
                    and args[argi] >= 0
                ):
                    spec.prec = args[argi]
                else:
                    bad_prec = True
                argi += 1
            else:
                start = i
                while i < end and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[start:i]) if i > start else 0
        argi, i, reordered = _arg_index(fmt, i, argi, len(args), reordered)
        if bad_width:
            out.append("%!(BADWIDTH)")
        if bad_prec:
            out.append("%!(BADPREC)")
        if i >= end:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(format_arg(arg, verb, spec))
    if not reordered and argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{type_name(a)}={go_str(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _arg_index(fmt: str, i: int, argi: int, count: int, reordered: bool) -> tuple[int, int, bool]:
    if i < len(fmt) and fmt[i] == "[":
        close = fmt.find("]", i)
        if close > i + 1 and fmt[i + 1 : close].isdigit():
            index = int(fmt[i + 1 : close]) - 1
            if 0 <= index < count:
                return index, close + 1, True
    return argi, i, reordered
