"""Go's ``text/template``, for Prometheus rule annotations and Alertmanager templates.

Use :func:`parse` once and :meth:`Template.execute` many times::

    t = parse("{{ .Labels.job }} is down ({{ .Value | printf \"%.2f\" }})", name="summary")
    t.execute({"Labels": {"job": "api"}, "Value": 0.5})

The parse tree is compiled to a tree of Python closures, so executing costs a few
function calls per node. Errors raise :class:`inferwatch.TemplateError` worded as Go's.
"""

from __future__ import annotations

from inferwatch.gotemplate.execute import Template, parse
from inferwatch.gotemplate.funcs import BUILTINS
from inferwatch.gotemplate.gofmt import go_sprintf

__all__ = ["BUILTINS", "Template", "go_sprintf", "parse"]
