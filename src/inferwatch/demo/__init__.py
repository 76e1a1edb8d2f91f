"""The demo service: a real scikit-learn model behind FastAPI, monitored by inferwatch.

Run it with ``inferwatch demo`` (or :func:`run_demo`); build the app alone with
:func:`create_app`. Needs the ``demo`` extra: ``pip install 'inferwatch[demo]'``.

The names below are imported on first use, so ``inferwatch.demo.command`` (the
``inferwatch fault`` command) loads without numpy, FastAPI or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inferwatch.demo.app import (
        DigitsClassifier,
        DigitsData,
        TrafficGenerator,
        create_app,
        load_digits_split,
        run_demo,
    )

__all__ = [
    "DigitsClassifier",
    "DigitsData",
    "TrafficGenerator",
    "create_app",
    "load_digits_split",
    "run_demo",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from inferwatch.demo import app

        return getattr(app, name)
    raise AttributeError(f"module 'inferwatch.demo' has no attribute {name!r}")
