"""Numbers, strings and label sets written as Prometheus (Go) writes them.

The engine's messages, ``count_values`` labels and the HTTP API's JSON must match
Prometheus's to the character, so they share these writers.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal

from inferwatch.tsdb.labels import Labels


def go_quote(text: str) -> str:
    """``text`` in double quotes, as Go's ``%q`` prints it (close enough: JSON escapes)."""
    return json.dumps(text, ensure_ascii=False)


def go_labels(labels: Labels) -> str:
    """A label set as Go's ``labels.Labels.String()`` prints it."""
    return "{" + ", ".join(f"{k}={go_quote(v)}" for k, v in labels) + "}"


def _digits(value: float) -> tuple[str, int]:
    """The shortest decimal digits of ``abs(value)`` and ``e``: it equals digits * 10**e."""
    _, digits, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits)).lstrip("0")
    stripped = text.rstrip("0")
    return stripped, exponent + len(text) - len(stripped)


def go_format_float(value: float, fmt: str = "f") -> str:
    """``value`` as Go's ``strconv.FormatFloat(value, fmt, -1, 64)`` writes it."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return f"{sign}0" if fmt == "f" else f"{sign}0e+00"
    digits, exp = _digits(value)
    if fmt == "e":
        power = len(digits) - 1 + exp
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"
    if exp >= 0:
        return sign + digits + "0" * exp
    point = len(digits) + exp
    if point > 0:
        return f"{sign}{digits[:point]}.{digits[point:]}"
    return f"{sign}0.{'0' * -point}{digits}"
