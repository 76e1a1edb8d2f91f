"""Writing metrics in the Prometheus text format and OpenMetrics.

The writers are prometheus_client's own; inferwatch only converts its
:class:`~inferwatch.sdk.family.FamilySnapshot` values to prometheus_client metric
families (:mod:`inferwatch.exposition.convert`) and picks the format from the
``Accept`` header (:func:`render`).
"""

from inferwatch.exposition.render import CONTENT_TYPE_OPENMETRICS, CONTENT_TYPE_TEXT, render

__all__ = ["CONTENT_TYPE_OPENMETRICS", "CONTENT_TYPE_TEXT", "render"]
