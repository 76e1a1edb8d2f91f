"""Analyzers: what inferwatch computes about the model, beyond request metrics.

Quality from delayed labels (:mod:`inferwatch.analyze.quality`) and drift of features and
predictions against a reference profile (:mod:`inferwatch.analyze.drift`). Each exports
its results as ordinary series, so dashboards and alert rules read them through PromQL.
"""

from inferwatch.analyze.drift import DriftDetector, FeatureDrift
from inferwatch.analyze.profile import ReferenceProfile
from inferwatch.analyze.quality import FeedbackImport, QualityTracker

__all__ = ["DriftDetector", "FeatureDrift", "FeedbackImport", "QualityTracker", "ReferenceProfile"]
