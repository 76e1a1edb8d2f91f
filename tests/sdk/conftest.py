from __future__ import annotations

from collections.abc import Callable

import pytest

from inferwatch import Monitor, Registry
from tests.sdk.support import Samples


@pytest.fixture
def registry() -> Registry:
    return Registry(collectors=[], include_default_registry=False, multiprocess=False)


@pytest.fixture
def monitor(registry: Registry) -> Monitor:
    return Monitor("m", "1", registry=registry)


@pytest.fixture
def read(registry: Registry) -> Callable[[str], Samples]:
    """Label set (sorted (name, value) pairs) -> value for one family, collected now."""

    def read_family(name: str) -> Samples:
        for fam in registry.snapshot():
            if fam.name == name:
                return {
                    tuple(sorted(zip(fam.labelnames, key, strict=True))): value
                    for key, value in fam.samples.items()
                }
        return {}

    return read_family
