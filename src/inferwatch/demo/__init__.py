"""The demo service: a real scikit-learn model behind FastAPI, monitored by inferwatch.

Run it with ``inferwatch demo`` (or :func:`run_demo`); build the app alone with
:func:`create_app`. Needs the ``demo`` extra: ``pip install 'inferwatch[demo]'``.
"""

from __future__ import annotations

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
