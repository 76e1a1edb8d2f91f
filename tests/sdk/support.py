"""Shared helpers of the SDK tests."""

from __future__ import annotations

from typing import Any

Samples = dict[tuple[tuple[str, str], ...], Any]
MV = (("model", "m"), ("version", "1"))


def outcome(name: str, etype: str = "") -> tuple[tuple[str, str], ...]:
    return (("error_type", etype), ("model", "m"), ("outcome", name), ("version", "1"))
