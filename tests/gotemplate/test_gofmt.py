"""go_sprintf and %v printing; expected strings come from Go's fmt (run through
Prometheus 2.42's template expansion) or from Go's fmt documentation."""

from __future__ import annotations

from typing import Any

import pytest

from inferwatch.gotemplate import go_sprintf
from inferwatch.gotemplate.gofmt import format_float_g, go_sprint, go_str

SPRINTF: list[tuple[str, tuple[Any, ...], str]] = [
    (
        "%v %.2f %5.1f|%-4d|%x|%q",
        (1234567.0, 1234567.0, 3.14159, 7, 255, 'a"b'),
        '1.234567e+06 1234567.00   3.1|7   |ff|"a\\"b"',
    ),
    (
        "%e %g %G %08.3f %+d % d %#x %o %b %c %U",
        (123456.789, 0.000012345, 1e20, -3.14159, 5, 5, 255, 8, 5, 65, 65),
        "1.234568e+05 1.2345e-05 1E+20 -003.142 +5  5 0xff 10 101 A U+0041",
    ),
    ("%t %v %s", (True, None, ""), "true <nil> "),
    ("%5s|%-5s|%.2s", ("ab", "ab", "abcdef"), "   ab|ab   |ab"),
    ("%d %d", (1,), "1 %!d(MISSING)"),
    ("%d", (1, 2), "1%!(EXTRA int=2)"),
    ("%d", ("x",), "%!d(string=x)"),
    ("%s", (5,), "%!s(int=5)"),
    ("%f", (1,), "%!f(int=1)"),
    ("%d", (1.5,), "%!d(float64=1.5)"),
    ("%t", (1,), "%!t(int=1)"),
    ("%d", (None,), "%!d(<nil>)"),
    ("%z", (1,), "%!z(int=1)"),
    ("100%%", (), "100%"),
    ("%", (), "%!(NOVERB)"),
    ("%.4g", (1234567.0,), "1.235e+06"),
    ("%.4g", (0.0,), "0"),
    ("%.4g", (float("inf"),), "+Inf"),
    ("%.4g", (float("-inf"),), "-Inf"),
    ("%.4g", (float("nan"),), "NaN"),
    (
        "%v|%+v|% f|%6.2f",
        (float("inf"), float("nan"), float("inf"), float("inf")),
        "+Inf|+NaN| Inf|  +Inf",
    ),
    ("%0.2f", (3720.01,), "3720.01"),
    ("%05d|%-05d|%.3d|%+.3d", (-42, 42, 7, 7), "-0042|42   |007|+007"),
    ("%X|%#o|%O|%#b", (255, 8, 8, 5), "FF|010|0o10|0b101"),
    ("%x|% x|%X", ("hi", "hi", "hi"), "6869|68 69|6869"),
    ("%q|%#q|%+q", ("tab\t", "raw", "é"), '"tab\\t"|`raw`|"\\u00e9"'),
    ("%q", (97,), "'a'"),
    ("%*d|%-*d", (4, 7, 4, 7), "   7|7   "),
    ("%.*f", (1, 2.25), "2.2"),
    ("%[2]d %[1]d", (1, 2), "2 1"),
    ("%v %d", ([1, 2], [3, 4]), "[1 2] [3 4]"),
    ("%s", (["a", 1],), "[a %!s(int=1)]"),
    ("%v", ({"b": 1, "a": [1]},), "map[a:[1] b:1]"),
    ("%6.2v|%-8v|", (3.14159, "x"), "   3.1|x       |"),
    ("%e|%E", (0.0, 1e-7), "0.000000e+00|1.000000E-07"),
    ("%g|%g|%g", (1e21, 1e-5, 123456789.0), "1e+21|1e-05|1.23456789e+08"),
    ("%v", (True,), "true"),
]


@pytest.mark.parametrize(("fmt", "args", "expected"), SPRINTF)
def test_go_sprintf(fmt: str, args: tuple[Any, ...], expected: str) -> None:
    assert go_sprintf(fmt, *args) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.5, "0.5"),
        (1e6, "1e+06"),
        (999999.0, "999999"),
        (100.0, "100"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0"),
        (1.5e300, "1.5e+300"),
        (2.0**64, "1.8446744073709552e+19"),
        (-9.223372036854776e18, "-9.223372036854776e+18"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (0.1 + 0.2, "0.30000000000000004"),
    ],
)
def test_float_prints_as_go_v(value: float, expected: str) -> None:
    assert format_float_g(value) == expected
    assert go_str(value) == expected


def test_sprint_spaces_only_between_non_strings() -> None:
    assert go_sprint(1, 2, "a", 3, "b", "c") == "1 2a3bc"


def test_go_str_of_other_values() -> None:
    assert go_str(None) == "<nil>"
    assert go_str((1, "a")) == "[1 a]"
    assert go_str({2: "b", 1: "a"}) == "map[1:a 2:b]"
