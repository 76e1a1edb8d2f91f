"""Configs for the scale-out stack: Prometheus, Alertmanager, Grafana, KEDA, compose.

``inferwatch export --config inferwatch.yaml --out DIR`` writes them (see
:func:`write_stack`); each generator is a module of its own and takes plain values:
:mod:`~inferwatch.export.prometheus`, :mod:`~inferwatch.export.alertmanager`,
:mod:`~inferwatch.export.grafana`, :mod:`~inferwatch.export.kubernetes`,
:mod:`~inferwatch.export.compose`.
"""

from __future__ import annotations

from inferwatch.export.kubernetes import Deployment
from inferwatch.export.stack import Addresses, Stack, demo_stack, stack_from_config, write_stack

__all__ = ["Addresses", "Deployment", "Stack", "demo_stack", "stack_from_config", "write_stack"]
